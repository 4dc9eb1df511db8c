-- When a moving lane's gates are next due (the earliest of its rules'
-- next measurements; 0: now). The gates pass reads only the lanes whose
-- gates are due instead of every moving lane's measurements; a new stage
-- (stage_started_at changes) makes them due at once.
ALTER TABLE rollouts ADD COLUMN gates_due_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX rollouts_gates_due ON rollouts (gates_due_at, lane_id) WHERE state IN ('rolling', 'waiting');
