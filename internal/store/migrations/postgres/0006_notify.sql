-- How far outbound notifications have read the audit log, per target, so a
-- new leader carries on where the last one stopped.
CREATE TABLE notify_cursors (
    target     TEXT PRIMARY KEY,
    event_id   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
