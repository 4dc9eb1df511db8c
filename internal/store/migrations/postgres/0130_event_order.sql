-- The audit log keeps its order without a global lock (issue 13).
--
-- seq is an event's place in its release's log. event_sequences hands it
-- out: the appending transaction bumps its release's row and holds that row
-- lock until it commits, so appenders of one release take turns (and take
-- their ids in turn) while appenders of different releases never wait on
-- each other.
--
-- xid is the writing transaction (pg_current_xact_id), set by the column
-- default so every writer gets it. Readers of the whole log page by
-- (xid, id) and read only events whose xid is below the snapshot's xmin:
-- every transaction that could still add an event before their cursor has
-- finished. Events written before this migration keep xid 0; they were
-- written under the old global lock, so their ids are in commit order.
ALTER TABLE events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN xid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ALTER COLUMN xid SET DEFAULT (pg_current_xact_id()::text::bigint);

CREATE TABLE event_sequences (
    release_id TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL
);

UPDATE events e SET seq = n.seq
FROM (SELECT id, row_number() OVER (PARTITION BY release_id ORDER BY id) AS seq FROM events WHERE release_id <> '') n
WHERE e.id = n.id;
INSERT INTO event_sequences (release_id, seq)
SELECT release_id, max(seq) FROM events WHERE release_id <> '' GROUP BY release_id;

CREATE UNIQUE INDEX events_release_seq ON events (release_id, seq) WHERE seq > 0;
CREATE INDEX events_xid_id ON events (xid, id);
