package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// DueCursor is where a walk over due lanes stands: the (next_eligible_at,
// lane id) of the last lane it took. The zero cursor is the beginning.
type DueCursor struct {
	At     time.Time
	LaneID string
}

// DueLanesAfter lists up to limit lanes that are rolling or waiting and
// eligible at now, in (next_eligible_at, lane id) order, strictly after c.
// Each batch is one indexed range read (rollouts_due_keyset), so walking
// every due lane costs the same per lane whatever the batch.
func (s *Store) DueLanesAfter(ctx context.Context, now time.Time, c DueCursor, limit int) ([]release.Lane, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE r.state IN ('rolling', 'waiting') AND r.next_eligible_at <= $1
		AND (r.next_eligible_at > $2 OR (r.next_eligible_at = $2 AND r.lane_id > $3))
		ORDER BY r.next_eligible_at, r.lane_id LIMIT $4`, ms(now), ms(c.At), c.LaneID, limit)
}

// placeholders returns "$from, $from+1, …" for n values.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

// LanesByID reads the lanes with the given ids in one query, keyed by id;
// ids that name no lane are absent.
func (s *Store) LanesByID(ctx context.Context, ids []string) (map[string]release.Lane, error) {
	out := make(map[string]release.Lane, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	ls, err := s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE l.id IN (`+placeholders(1, len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read %d lanes: %w", len(ids), err)
	}
	for _, l := range ls {
		out[l.ID] = l
	}
	return out, nil
}

// AcquireLaneLeases takes the leases of many lanes for node under one
// token in one statement, on the terms of AcquireLaneLease, and returns
// the ids of the lanes it got (the others are someone else's).
func (s *Store) AcquireLaneLeases(ctx context.Context, ids []string, node, token string, until, now, deadBefore time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{node, token, ms(until), ms(now), ms(deadBefore)}
	var values strings.Builder
	for i, id := range ids {
		if i > 0 {
			values.WriteString(", ")
		}
		fmt.Fprintf(&values, "($%d, $1, $2, $3)", len(args)+1)
		args = append(args, id)
	}
	rows, err := s.q.QueryContext(ctx, `INSERT INTO lane_leases (lane_id, node, token, expires_at) VALUES `+values.String()+`
		ON CONFLICT (lane_id) DO UPDATE SET node = excluded.node, token = excluded.token, expires_at = excluded.expires_at
		WHERE lane_leases.token = excluded.token OR lane_leases.expires_at < $4
			OR lane_leases.node IN (SELECT node FROM replicas WHERE heartbeat_at < $5)
		RETURNING lane_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("take the leases of %d lanes: %w", len(ids), err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		got = append(got, id)
	}
	return got, rows.Err()
}

// ReleaseLeases gives back every lane lease token still holds.
func (s *Store) ReleaseLeases(ctx context.Context, token string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM lane_leases WHERE token = $1`, token)
	return err
}

// MovingLanesAfter lists up to limit lanes that are rolling or waiting,
// whenever they are next due, in id order after the lane id after (""
// from the start): the gates pass pages through every moving lane with it.
func (s *Store) MovingLanesAfter(ctx context.Context, after string, limit int) ([]release.Lane, error) {
	if limit <= 0 {
		limit = 500
	}
	return s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE r.state IN ('rolling', 'waiting') AND r.lane_id > $1 ORDER BY r.lane_id LIMIT $2`, after, limit)
}
