-- When a lane last changed percentage, was resumed or handed over: gates
-- count measurements and data from then on.
ALTER TABLE rollouts ADD COLUMN stage_started_at BIGINT NOT NULL DEFAULT 0;

-- Every measurement of every gate rule of every lane, judged when taken.
CREATE TABLE gate_measurements (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lane_id     TEXT NOT NULL REFERENCES lanes(id),
    gate        TEXT NOT NULL,
    measured_at BIGINT NOT NULL,
    percent     BIGINT NOT NULL,
    phase       TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    samples     BIGINT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT '',
    vals        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX gate_measurements_lane ON gate_measurements (lane_id, measured_at);
