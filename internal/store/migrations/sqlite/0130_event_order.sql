-- The audit log keeps its order without a global lock (issue 13); see the
-- Postgres migration of the same number. SQLite has one writer at a time,
-- so ids are in commit order already and xid stays 0; seq is handed out
-- the same way on both engines.
ALTER TABLE events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN xid INTEGER NOT NULL DEFAULT 0;

CREATE TABLE event_sequences (
    release_id TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL
);

UPDATE events SET seq = (SELECT count(*) FROM events e2 WHERE e2.release_id = events.release_id AND e2.id <= events.id)
WHERE release_id <> '';
INSERT INTO event_sequences (release_id, seq)
SELECT release_id, max(seq) FROM events WHERE release_id <> '' GROUP BY release_id;

CREATE UNIQUE INDEX events_release_seq ON events (release_id, seq) WHERE seq > 0;
CREATE INDEX events_xid_id ON events (xid, id);
