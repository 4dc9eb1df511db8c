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

// ErrWithdrawn is a write to a lane that was withdrawn because its tag moved
// or was deleted before the lane passed its point of no return. Errors
// matching it also match ErrNotFound: for the lane's jobs, the lane is gone.
var ErrWithdrawn = errors.New("lane withdrawn")

func (s *Store) withdrawnOr(ctx context.Context, laneID string, err error) error {
	var at int64
	if qerr := s.q.QueryRowContext(ctx, `SELECT withdrawn_at FROM lanes WHERE id = $1`, laneID).Scan(&at); qerr == nil && at != 0 {
		return fmt.Errorf("lane %s: %w (its tag moved or was deleted before its point of no return): %w", laneID, ErrWithdrawn, ErrNotFound)
	}
	return err
}

// SetTagState records what deliveries said of a release's tag: moved to
// commit, deleted, or "" (back where the release is). It reports false and
// changes nothing when the release already says exactly that, so that the
// push and the create or delete delivery of one change act once.
func (s *Store) SetTagState(ctx context.Context, releaseID string, state release.TagState, commit string, now time.Time) (bool, error) {
	res, err := s.q.ExecContext(ctx, `UPDATE releases SET tag_state = $2, tag_commit = $3, updated_at = $4
		WHERE id = $1 AND NOT (tag_state = $2 AND tag_commit = $3)`, releaseID, string(state), commit, ms(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		if _, err := s.GetRelease(ctx, releaseID); err != nil {
			return false, err
		}
	}
	return n == 1, nil
}

// SupersedeRelease makes next the tag's current release in place of old
// (same app and tag): old keeps its lanes and history, and names next as
// what superseded it. It fails with ErrConflict when old is not current any
// more (superseded before). next.ID is assigned when empty.
func (s *Store) SupersedeRelease(ctx context.Context, oldID string, next release.Release) (release.Release, error) {
	if next.ID == "" {
		next.ID = NewID("rel")
	}
	if next.State == "" {
		next.State = release.ReleasePlanning
	}
	var out release.Release
	err := s.Tx(ctx, func(tx *Store) error {
		res, err := tx.q.ExecContext(ctx, `UPDATE releases SET superseded_by = $2, updated_at = $3 WHERE id = $1 AND superseded_by = ''`,
			oldID, next.ID, ms(next.CreatedAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := tx.GetRelease(ctx, oldID); err != nil {
				return err
			}
			return fmt.Errorf("release %s was superseded before: %w", oldID, ErrConflict)
		}
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO releases (id, app, tag, version, commit_sha, state, notes, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
			next.ID, next.App, next.Tag, next.Version, next.Commit, string(next.State), next.Notes, ms(next.CreatedAt)); err != nil {
			return fmt.Errorf("create release %s %s: %w", next.App, next.Tag, err)
		}
		out, err = tx.GetRelease(ctx, next.ID)
		return err
	})
	return out, err
}

// SetReleaseState sets a release's state alone.
func (s *Store) SetReleaseState(ctx context.Context, releaseID string, state release.ReleaseState, now time.Time) error {
	res, err := s.q.ExecContext(ctx, `UPDATE releases SET state = $2, updated_at = $3 WHERE id = $1`, releaseID, string(state), ms(now))
	if err != nil {
		return err
	}
	return oneRow(res, "release "+releaseID)
}

// ClaimPlanning is the planner's last look before it writes lanes: it
// locks the release row and reports whether the release is still planning
// and current. A release cancelled (its tag was deleted) or superseded (its
// tag moved) while its plan was being computed gets no lanes. Call it in
// the planning transaction.
func (s *Store) ClaimPlanning(ctx context.Context, releaseID string, now time.Time) (bool, error) {
	res, err := s.q.ExecContext(ctx, `UPDATE releases SET updated_at = $2 WHERE id = $1 AND state = $3 AND superseded_by = ''`,
		releaseID, ms(now), string(release.ReleasePlanning))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// LockLane reads a lane with its adapter data and, on Postgres, locks its
// row until the transaction ends (SQLite's writer lock already serialises
// writers), so a job's SetLaneData waits for a withdrawal being decided.
// Call it in a transaction.
func (s *Store) LockLane(ctx context.Context, laneID string) (release.Lane, json.RawMessage, bool, error) {
	if s.tx == nil {
		return release.Lane{}, nil, false, errors.New("lock lane: not in a transaction")
	}
	lock := ""
	if s.DB.Engine == Postgres {
		lock = " FOR UPDATE OF l"
	}
	var data string
	var withdrawn int64
	row := s.q.QueryRowContext(ctx, `SELECT `+laneCols+`, l.data, l.withdrawn_at`+laneFrom+`WHERE l.id = $1`+lock, laneID)
	l, err := scanLane(scanPlus{row, []any{&data, &withdrawn}})
	if err != nil {
		return l, nil, false, notFound(err, "lane "+laneID)
	}
	return l, json.RawMessage(data), withdrawn != 0, nil
}

// scanPlus scans a lane row followed by extra columns.
type scanPlus struct {
	row   *sql.Row
	extra []any
}

func (p scanPlus) Scan(dest ...any) error { return p.row.Scan(append(dest, p.extra...)...) }

// WithdrawLane marks a lane withdrawn and cancels its rollout with reason,
// if its status is still at version st.Version (ErrConflict otherwise).
// Later SetLaneData calls for it fail with ErrWithdrawn. Call it in the
// transaction that locked the lane with LockLane.
func (s *Store) WithdrawLane(ctx context.Context, l release.Lane, reason string, now time.Time) (release.Status, error) {
	next, err := l.Status.Transition(release.StateCancelled, reason, now)
	if err != nil {
		return l.Status, err
	}
	next.NextEligibleAt = time.Time{}
	if _, err := s.q.ExecContext(ctx, `UPDATE lanes SET withdrawn_at = $2, updated_at = $2 WHERE id = $1`, l.ID, ms(now)); err != nil {
		return l.Status, err
	}
	return s.UpdateStatus(ctx, l.ID, next)
}

// GitHubDeployment is the GitHub Deployment that mirrors a lane.
type GitHubDeployment struct {
	LaneID      string
	Repository  string
	Environment string
	SHA         string
	// DeploymentID is GitHub's id; 0 until the deployment was created or
	// found.
	DeploymentID int64
	// State is the last deployment status posted, EventID the audit event
	// it mirrored.
	State     string
	EventID   int64
	UpdatedAt time.Time
}

const ghDeploymentCols = `lane_id, repository, environment, sha, deployment_id, state, event_id, updated_at`

func scanGHDeployment(row interface{ Scan(...any) error }) (GitHubDeployment, error) {
	var d GitHubDeployment
	var u int64
	err := row.Scan(&d.LaneID, &d.Repository, &d.Environment, &d.SHA, &d.DeploymentID, &d.State, &d.EventID, &u)
	d.UpdatedAt = fromMS(u)
	return d, err
}

// GetGitHubDeployment reads a lane's deployment record.
func (s *Store) GetGitHubDeployment(ctx context.Context, laneID string) (GitHubDeployment, error) {
	d, err := scanGHDeployment(s.q.QueryRowContext(ctx, `SELECT `+ghDeploymentCols+` FROM github_deployments WHERE lane_id = $1`, laneID))
	return d, notFound(err, "github deployment of lane "+laneID)
}

// SaveGitHubDeployment inserts or replaces a lane's deployment record.
func (s *Store) SaveGitHubDeployment(ctx context.Context, d GitHubDeployment) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO github_deployments (`+ghDeploymentCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (lane_id) DO UPDATE SET repository = excluded.repository, environment = excluded.environment, sha = excluded.sha,
		deployment_id = excluded.deployment_id, state = excluded.state, event_id = excluded.event_id, updated_at = excluded.updated_at`,
		d.LaneID, d.Repository, d.Environment, d.SHA, d.DeploymentID, d.State, d.EventID, ms(d.UpdatedAt))
	return err
}

// GitHubDeploymentsIn lists the deployment records of one repository and
// environment, oldest first.
func (s *Store) GitHubDeploymentsIn(ctx context.Context, repository, environment string) ([]GitHubDeployment, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+ghDeploymentCols+` FROM github_deployments WHERE repository = $1 AND environment = $2
		ORDER BY updated_at, lane_id`, repository, environment)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GitHubDeployment
	for rows.Next() {
		d, err := scanGHDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// TryLease takes or renews the lease name for holder until now+ttl, and
// reports whether holder has it: a lease another holder keeps past now is
// not taken.
func (s *Store) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= $4`, name, holder, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseLease gives a lease up if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
	return err
}
