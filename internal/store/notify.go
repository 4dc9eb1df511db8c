package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// NotifyCursor is the place in the whole audit log (see LogEvents) of the
// last event delivered to target; a target seen for the first time starts
// after the newest event committed, so turning notifications on does not
// replay history. (An event whose transaction was still open at that
// moment, behind the newest in commit order, counts as history too.)
func (s *Store) NotifyCursor(ctx context.Context, target string) (EventCursor, error) {
	var c EventCursor
	err := s.q.QueryRowContext(ctx, `SELECT event_xid, event_id FROM notify_cursors WHERE target = $1`, target).Scan(&c.Xid, &c.ID)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.q.QueryRowContext(ctx, `SELECT xid, id FROM events ORDER BY xid DESC, id DESC LIMIT 1`).Scan(&c.Xid, &c.ID)
		if errors.Is(err, sql.ErrNoRows) {
			c, err = EventCursor{}, nil
		}
		if err == nil {
			err = s.SetNotifyCursor(ctx, target, c, time.Now())
		}
	}
	return c, err
}

// SetNotifyCursor records that target has every event up to c.
func (s *Store) SetNotifyCursor(ctx context.Context, target string, c EventCursor, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO notify_cursors (target, event_xid, event_id, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (target) DO UPDATE SET event_xid = excluded.event_xid, event_id = excluded.event_id, updated_at = excluded.updated_at`, target, c.Xid, c.ID, ms(now))
	return err
}
