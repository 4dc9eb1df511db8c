package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// NotifyCursor is the id of the last audit event delivered to target; a
// target seen for the first time starts at the newest event, so turning
// notifications on does not replay history.
func (s *Store) NotifyCursor(ctx context.Context, target string) (int64, error) {
	var id int64
	err := s.q.QueryRowContext(ctx, `SELECT event_id FROM notify_cursors WHERE target = $1`, target).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id)
		if err == nil {
			err = s.SetNotifyCursor(ctx, target, id, time.Now())
		}
	}
	return id, err
}

// SetNotifyCursor records that target has every event up to eventID.
func (s *Store) SetNotifyCursor(ctx context.Context, target string, eventID int64, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO notify_cursors (target, event_id, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (target) DO UPDATE SET event_id = excluded.event_id, updated_at = excluded.updated_at`, target, eventID, ms(now))
	return err
}
