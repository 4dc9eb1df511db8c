-- A reader of the whole audit log keeps its place as (xid, id), the order
-- events commit in (0130). Cursors saved before stand at (0, event_id),
-- among the events written before 0130, which all have xid 0.
ALTER TABLE notify_cursors ADD COLUMN event_xid BIGINT NOT NULL DEFAULT 0;
