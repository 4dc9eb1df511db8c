-- A person's command is durable from the moment it is accepted: it is
-- recorded here in the transaction that queues its job, and stays pending
-- until it was applied or rejected. Whichever replica runs next completes it.
CREATE TABLE lane_commands (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    lane_id      TEXT NOT NULL REFERENCES lanes(id),
    command      TEXT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL, -- pending, applied, rejected
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    outcome      TEXT NOT NULL DEFAULT '',
    requested_at BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX lane_commands_pending ON lane_commands (state, lane_id, id);

-- The oldest pending command of a lane, so that every reader of the lane
-- (the reconciler above all) sees "halt pending" at once.
ALTER TABLE rollouts ADD COLUMN pending_command TEXT NOT NULL DEFAULT '';

-- Each serving process (replica) beats here; a replica that stops beating is
-- dead, and the jobs it was running are handed to another at once.
CREATE TABLE replicas (
    node         TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- One remote action at a time per lane: the reconciler and people's commands
-- take the lane's lease before they read it and act on the store. A lease
-- of a dead replica, or past expires_at, is free.
CREATE TABLE lane_leases (
    lane_id    TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    token      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
