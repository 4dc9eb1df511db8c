package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Session is a dashboard sign-in. IDHash is the hex SHA-256 of the secret
// in the person's cookie; the secret itself is never stored.
type Session struct {
	IDHash string
	// Subject names the credential that signed in (token:ops, say), so
	// that each request can check it still exists and what role it has.
	Subject   string
	Actor     string
	Role      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession records a sign-in.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	if se.IDHash == "" || se.Subject == "" || se.Actor == "" {
		return fmt.Errorf("session needs an id hash, a subject and an actor")
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO dashboard_sessions (id_hash, subject, actor, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		se.IDHash, se.Subject, se.Actor, se.Role, ms(se.CreatedAt), ms(se.ExpiresAt))
	return err
}

// Session reads the session with idHash that has not expired at now; an
// unknown or expired session is ErrNotFound.
func (s *Store) Session(ctx context.Context, idHash string, now time.Time) (Session, error) {
	var se Session
	var c, e int64
	err := s.q.QueryRowContext(ctx, `SELECT id_hash, subject, actor, role, created_at, expires_at FROM dashboard_sessions WHERE id_hash = $1 AND expires_at > $2`,
		idHash, ms(now)).Scan(&se.IDHash, &se.Subject, &se.Actor, &se.Role, &c, &e)
	se.CreatedAt, se.ExpiresAt = fromMS(c), fromMS(e)
	return se, notFound(err, "session")
}

// DeleteSession ends a session (sign-out); ending one that is gone is not
// an error.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE id_hash = $1`, idHash)
	return err
}

// DeleteExpiredSessions removes sessions that expired before now.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE expires_at <= $1`, ms(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ReleaseCursor is a position in the releases list, which runs newest
// first by (created_at, id).
type ReleaseCursor struct {
	CreatedAt time.Time
	ID        string
}

// String encodes the cursor for a URL: "<unix ms>.<id>".
func (c ReleaseCursor) String() string { return strconv.FormatInt(ms(c.CreatedAt), 10) + "." + c.ID }

// ParseReleaseCursor reads a cursor made by String.
func ParseReleaseCursor(s string) (ReleaseCursor, error) {
	n, id, ok := strings.Cut(s, ".")
	v, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || v < 0 || id == "" || len(id) > 64 {
		return ReleaseCursor{}, fmt.Errorf("%q is not a position in the releases list", s)
	}
	return ReleaseCursor{CreatedAt: fromMS(v), ID: id}, nil
}

// ReleaseFilter selects a page of releases. Before (older than) and After
// (newer than) are exclusive cursors; at most one may be set.
type ReleaseFilter struct {
	App    string
	State  release.ReleaseState
	Before *ReleaseCursor
	After  *ReleaseCursor
}

// ReleasePage is one page of releases, newest first, and whether there are
// releases on either side of it.
type ReleasePage struct {
	Releases []release.Release
	Older    bool
	Newer    bool
}

// PageReleases lists up to limit releases matching f, newest first.
func (s *Store) PageReleases(ctx context.Context, f ReleaseFilter, limit int) (ReleasePage, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	if f.Before != nil && f.After != nil {
		return ReleasePage{}, fmt.Errorf("page releases: before and after are both set")
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.App != "" {
		where = append(where, "app = "+arg(f.App))
	}
	if f.State != "" {
		where = append(where, "state = "+arg(string(f.State)))
	}
	base := append([]string(nil), where...)
	baseArgs := len(args)
	older := func(c ReleaseCursor) string {
		t := arg(ms(c.CreatedAt))
		return "(created_at < " + t + " OR (created_at = " + t + " AND id < " + arg(c.ID) + "))"
	}
	newer := func(c ReleaseCursor) string {
		t := arg(ms(c.CreatedAt))
		return "(created_at > " + t + " OR (created_at = " + t + " AND id > " + arg(c.ID) + "))"
	}
	order := "created_at DESC, id DESC"
	switch {
	case f.Before != nil:
		where = append(where, older(*f.Before))
	case f.After != nil:
		where = append(where, newer(*f.After))
		order = "created_at ASC, id ASC"
	}
	q := `SELECT ` + releaseCols + ` FROM releases`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order + " LIMIT " + arg(limit+1)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return ReleasePage{}, err
	}
	var out []release.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			rows.Close()
			return ReleasePage{}, err
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ReleasePage{}, err
	}
	var p ReleasePage
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	if f.After != nil {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		p.Newer = more
	} else {
		p.Older = more
	}
	p.Releases = out
	// Whether anything lies on the other side of the page.
	if len(out) > 0 && (f.Before != nil || f.After != nil) {
		args = args[:baseArgs]
		cond := append([]string(nil), base...)
		if f.Before != nil {
			cond = append(cond, newer(ReleaseCursor{CreatedAt: out[0].CreatedAt, ID: out[0].ID}))
		} else {
			last := out[len(out)-1]
			cond = append(cond, older(ReleaseCursor{CreatedAt: last.CreatedAt, ID: last.ID}))
		}
		var one int
		err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM releases WHERE `+strings.Join(cond, " AND ")+` LIMIT 1) x`, args...).Scan(&one)
		if err != nil {
			return ReleasePage{}, err
		}
		if f.Before != nil {
			p.Newer = one > 0
		} else {
			p.Older = one > 0
		}
	}
	return p, nil
}

// LanesOf reads the lanes of several releases at once, by release id.
func (s *Store) LanesOf(ctx context.Context, releaseIDs []string) (map[string][]release.Lane, error) {
	out := map[string][]release.Lane{}
	if len(releaseIDs) == 0 {
		return out, nil
	}
	ph := make([]string, len(releaseIDs))
	args := make([]any, len(releaseIDs))
	for i, id := range releaseIDs {
		ph[i], args[i] = "$"+strconv.Itoa(i+1), id
	}
	lanes, err := s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE l.release_id IN (`+strings.Join(ph, ", ")+`) ORDER BY l.release_id, l.platform`, args...)
	if err != nil {
		return nil, err
	}
	for _, l := range lanes {
		out[l.ReleaseID] = append(out[l.ReleaseID], l)
	}
	return out, nil
}

// RecentEvents lists a release's audit events newest first: up to limit
// events with an id below beforeID (0: from the newest).
func (s *Store) RecentEvents(ctx context.Context, releaseID string, beforeID int64, limit int) ([]release.Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	return s.events(ctx, `SELECT id, at, actor, release_id, lane_id, kind, details FROM events
		WHERE release_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, releaseID, beforeID, limit)
}

// LatestGateEvent is the newest reconcile event of a lane whose reason
// comes from a gate ("gate crash_rate: 120 samples, need 1000", "gate
// crash_rate failed: …"): the last thing the lane learnt from its gates.
// ErrNotFound when the gates never spoke.
func (s *Store) LatestGateEvent(ctx context.Context, releaseID, laneID string) (release.Event, error) {
	evs, err := s.events(ctx, `SELECT id, at, actor, release_id, lane_id, kind, details FROM events
		WHERE release_id = $1 AND lane_id = $2 AND kind IN ('rollout.hold', 'rollout.halt') AND details LIKE '%"reason":"gate %'
		ORDER BY id DESC LIMIT 1`, releaseID, laneID)
	if err != nil {
		return release.Event{}, err
	}
	if len(evs) == 0 {
		return release.Event{}, fmt.Errorf("gate events of lane %s: %w", laneID, ErrNotFound)
	}
	return evs[0], nil
}

// LastEventID is the id of the newest audit event (0 when there is none).
// A release's stream may start after it; a reader of the whole log starts
// at LastEventCursor instead.
func (s *Store) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	err := s.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id)
	return id, err
}

func (s *Store) events(ctx context.Context, q string, args ...any) ([]release.Event, error) {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []release.Event
	for rows.Next() {
		var e release.Event
		var at int64
		var details string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.ReleaseID, &e.LaneID, &e.Kind, &details); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return nil, fmt.Errorf("event %d details: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
