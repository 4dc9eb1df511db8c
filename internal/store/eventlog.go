package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// EventCursor is a place in the whole audit log: the writing transaction
// (pg_current_xact_id on Postgres; 0 on SQLite and for events written
// before migration 130) and the event id. Events commit in cursor order as
// far as any reader can tell: LogEvents hands out an event only once every
// transaction that could still write a lower cursor has finished.
type EventCursor struct {
	Xid int64
	ID  int64
}

// LogEvent is an audit event with its place in the whole log.
type LogEvent struct {
	release.Event
	Cursor EventCursor
}

// EventHead is an audit event's place and release, which is all a watcher
// needs to know that a release changed.
type EventHead struct {
	Cursor    EventCursor
	ReleaseID string
}

// defaultLogWait is how long a reader of the whole log waits for older
// transactions still open to finish, when it can see events past them.
const defaultLogWait = 3 * time.Second

// pgStableXid is the lowest transaction of this database that the
// statement's snapshot sees in progress, or the snapshot's xmax when there
// is none: every transaction below it has finished (and, committed, is
// visible to the statement) or runs in another database, where it cannot
// write our events. It is pg_snapshot_xmin without the other databases of
// the cluster, whose long transactions would hold our readers back. A
// backend's database never changes, so reading pg_stat_activity after the
// snapshot was taken is safe; a transaction it cannot place (finished
// since, or its backend_xid hidden) counts as ours, which only waits.
const pgStableXid = `(SELECT COALESCE(min(x::text::bigint), pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
	FROM pg_snapshot_xip(pg_current_snapshot()) AS x
	WHERE x::xid NOT IN (SELECT backend_xid FROM pg_stat_activity WHERE backend_xid IS NOT NULL
		AND datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())))`

// stableXid is the SQL for "every transaction below this that could write
// our events has finished": pgStableXid on Postgres; on SQLite, whose
// single writer commits ids in order (xid 0), everything visible is final.
func (s *Store) stableXid() string {
	if s.DB.Engine == Postgres {
		return pgStableXid
	}
	return `9223372036854775807`
}

// LogEvents lists up to limit events of the whole audit log after a cursor,
// in commit order. It never skips an event: an event of a transaction that
// began after another one still open in this database (which may yet
// commit an event before it) waits until that one ends, and so does
// everything after it. When it can see such later events it waits up to
// three seconds for the older transactions, then returns what is final.
func (s *Store) LogEvents(ctx context.Context, after EventCursor, limit int) ([]LogEvent, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	var out []LogEvent
	err := s.settle(ctx, func() (bool, error) {
		rows, err := s.q.QueryContext(ctx, `SELECT id, at, actor, release_id, lane_id, kind, details, xid, xid < `+s.stableXid()+` FROM events
			WHERE (xid, id) > ($1, $2) ORDER BY xid, id LIMIT $3`, after.Xid, after.ID, limit)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			var e LogEvent
			var at int64
			var details string
			var stable bool
			if err := rows.Scan(&e.ID, &at, &e.Actor, &e.ReleaseID, &e.LaneID, &e.Kind, &details, &e.Cursor.Xid, &stable); err != nil {
				return false, err
			}
			if !stable {
				return true, rows.Err()
			}
			e.Cursor.ID, e.At = e.ID, fromMS(at)
			if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
				return false, fmt.Errorf("event %d details: %w", e.ID, err)
			}
			out = append(out, e)
		}
		return false, rows.Err()
	})
	return out, err
}

// EventHeads lists up to limit events of the whole log after a cursor, in
// commit order like LogEvents, by place and release only.
func (s *Store) EventHeads(ctx context.Context, after EventCursor, limit int) ([]EventHead, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	var out []EventHead
	err := s.settle(ctx, func() (bool, error) {
		rows, err := s.q.QueryContext(ctx, `SELECT id, release_id, xid, xid < `+s.stableXid()+` FROM events
			WHERE (xid, id) > ($1, $2) ORDER BY xid, id LIMIT $3`, after.Xid, after.ID, limit)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			var h EventHead
			var stable bool
			if err := rows.Scan(&h.Cursor.ID, &h.ReleaseID, &h.Cursor.Xid, &stable); err != nil {
				return false, err
			}
			if !stable {
				return true, rows.Err()
			}
			out = append(out, h)
		}
		return false, rows.Err()
	})
	return out, err
}

// settle runs read until it sees no event of a transaction that may still
// be followed by an older one, or s.LogWait has passed, or the result is
// full. read reports whether it stopped at such an event.
func (s *Store) settle(ctx context.Context, read func() (blocked bool, err error)) error {
	wait := s.LogWait
	if wait == 0 {
		wait = defaultLogWait
	}
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	for {
		blocked, err := read()
		if err != nil || !blocked || !time.Now().Before(deadline) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// LastEventCursor is the place of the newest event of the whole log ((0, 0)
// when there is none): a reader that starts there skips the history. Like
// LogEvents it waits up to three seconds for transactions older than the newest
// visible event to finish; then it settles for the newest final event, so
// that it never moves past an event that may still commit before it.
func (s *Store) LastEventCursor(ctx context.Context) (EventCursor, error) {
	var c EventCursor
	err := s.settle(ctx, func() (bool, error) {
		var top EventCursor
		var stable bool
		err := s.q.QueryRowContext(ctx, `SELECT xid, id, xid < `+s.stableXid()+` FROM events ORDER BY xid DESC, id DESC LIMIT 1`).Scan(&top.Xid, &top.ID, &stable)
		if errors.Is(err, sql.ErrNoRows) {
			c = EventCursor{}
			return false, nil
		}
		if err != nil || stable {
			c = top
			return false, err
		}
		err = s.q.QueryRowContext(ctx, `SELECT xid, id FROM events WHERE xid < `+s.stableXid()+` ORDER BY xid DESC, id DESC LIMIT 1`).Scan(&c.Xid, &c.ID)
		if errors.Is(err, sql.ErrNoRows) {
			c, err = EventCursor{}, nil
		}
		return true, err
	})
	return c, err
}
