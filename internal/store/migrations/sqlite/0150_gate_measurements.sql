-- When a lane last changed percentage, was resumed or handed over: gates
-- count measurements and data from then on.
ALTER TABLE rollouts ADD COLUMN stage_started_at INTEGER NOT NULL DEFAULT 0;

-- Every measurement of every gate rule of every lane, judged when taken.
CREATE TABLE gate_measurements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    lane_id     TEXT NOT NULL REFERENCES lanes(id),
    gate        TEXT NOT NULL,
    measured_at INTEGER NOT NULL,
    percent     INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    value       REAL NOT NULL,
    samples     INTEGER NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT '',
    vals        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX gate_measurements_lane ON gate_measurements (lane_id, measured_at);
