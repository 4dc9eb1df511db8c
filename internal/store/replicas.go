package store

import (
	"context"
	"time"
)

// Heartbeat records that node (a serving process) is alive at now.
func (s *Store) Heartbeat(ctx context.Context, node string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO replicas (node, started_at, heartbeat_at) VALUES ($1, $2, $2)
		ON CONFLICT (node) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, node, ms(now))
	return err
}

// StopHeartbeat marks node as gone: from now on it counts as dead, so any job
// it leaves running is handed to another replica at once.
func (s *Store) StopHeartbeat(ctx context.Context, node string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE replicas SET heartbeat_at = 0 WHERE node = $1`, node)
	return err
}

// DeadReplicas lists nodes whose last heartbeat is older than before.
func (s *Store) DeadReplicas(ctx context.Context, before time.Time) ([]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT node FROM replicas WHERE heartbeat_at < $1 ORDER BY node`, ms(before))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ForgetReplicas deletes nodes that started before before and have not beaten
// since: long dead, their jobs long handed over.
func (s *Store) ForgetReplicas(ctx context.Context, before time.Time) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM replicas WHERE started_at < $1 AND heartbeat_at < $1`, ms(before))
	return err
}

// AcquireLaneLease takes the lane's lease for node until until, under token.
// It succeeds when nobody holds it, when token holds it already (renewal),
// when the holder's lease expired at now, or when the holder is a replica
// that stopped beating before deadBefore. It reports whether it got it.
func (s *Store) AcquireLaneLease(ctx context.Context, laneID, node, token string, until, now, deadBefore time.Time) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO lane_leases (lane_id, node, token, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (lane_id) DO UPDATE SET node = excluded.node, token = excluded.token, expires_at = excluded.expires_at
		WHERE lane_leases.token = excluded.token OR lane_leases.expires_at < $5
			OR lane_leases.node IN (SELECT node FROM replicas WHERE heartbeat_at < $6)`,
		laneID, node, token, ms(until), ms(now), ms(deadBefore))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseLaneLease gives the lane's lease back if token still holds it.
func (s *Store) ReleaseLaneLease(ctx context.Context, laneID, token string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM lane_leases WHERE lane_id = $1 AND token = $2`, laneID, token)
	return err
}
