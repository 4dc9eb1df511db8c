-- The reconciler walks due lanes in (next_eligible_at, lane_id) order, a
-- batch at a time from where the last batch ended (keyset pagination): a
-- partial index in that order, holding only the lanes that can be due,
-- answers each batch without sorting every moving lane.
CREATE INDEX rollouts_due_keyset ON rollouts (next_eligible_at, lane_id) WHERE state IN ('rolling', 'waiting');
