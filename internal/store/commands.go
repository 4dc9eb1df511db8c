package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Command states: a command is pending from the moment it is accepted until
// it was applied (the store and the lane both moved) or rejected (with the
// reason in Outcome).
const (
	CommandPending  = "pending"
	CommandApplied  = "applied"
	CommandRejected = "rejected"
)

// LaneCommand is a person's command on a lane, durable from acceptance.
type LaneCommand struct {
	ID      int64
	LaneID  string
	Command release.Command
	Actor   string
	Reason  string
	State   string
	// Attempts counts failed tries to carry it out; LastError says why the
	// last one failed.
	Attempts  int
	LastError string
	// Outcome says what became of it: the new state, or why it was refused.
	Outcome     string
	RequestedAt time.Time
	FinishedAt  time.Time
}

// CreateCommand records an accepted command as pending and marks the lane
// "<command> pending" at once. Call it in the transaction that queues the
// command's job, so neither exists without the other.
func (s *Store) CreateCommand(ctx context.Context, c LaneCommand) (int64, error) {
	if c.LaneID == "" || c.Command == "" || c.Actor == "" {
		return 0, errors.New("command needs a lane, a command and an actor")
	}
	var id int64
	err := s.Tx(ctx, func(tx *Store) error {
		if err := tx.q.QueryRowContext(ctx, `INSERT INTO lane_commands (lane_id, command, actor, reason, state, requested_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, c.LaneID, string(c.Command), c.Actor, c.Reason, CommandPending, ms(c.RequestedAt)).Scan(&id); err != nil {
			return fmt.Errorf("record %s command on lane %s: %w", c.Command, c.LaneID, err)
		}
		return tx.refreshPendingCommand(ctx, c.LaneID)
	})
	return id, err
}

// refreshPendingCommand writes the lane's oldest pending command into its
// rollout row, where every reader of the lane sees it. The status version
// is left alone: a pending command does not move the lane.
func (s *Store) refreshPendingCommand(ctx context.Context, laneID string) error {
	res, err := s.q.ExecContext(ctx, `UPDATE rollouts SET pending_command = COALESCE((SELECT command FROM lane_commands
		WHERE lane_id = $1 AND state = 'pending' ORDER BY id LIMIT 1), '') WHERE lane_id = $1`, laneID)
	if err != nil {
		return err
	}
	return oneRow(res, "lane "+laneID)
}

const commandCols = `id, lane_id, command, actor, reason, state, attempts, last_error, outcome, requested_at, finished_at`

func scanCommand(row interface{ Scan(...any) error }) (LaneCommand, error) {
	var c LaneCommand
	var cmd string
	var req, fin int64
	err := row.Scan(&c.ID, &c.LaneID, &cmd, &c.Actor, &c.Reason, &c.State, &c.Attempts, &c.LastError, &c.Outcome, &req, &fin)
	c.Command, c.RequestedAt, c.FinishedAt = release.Command(cmd), fromMS(req), fromMS(fin)
	return c, err
}

// GetCommand reads one command.
func (s *Store) GetCommand(ctx context.Context, id int64) (LaneCommand, error) {
	c, err := scanCommand(s.q.QueryRowContext(ctx, `SELECT `+commandCols+` FROM lane_commands WHERE id = $1`, id))
	return c, notFound(err, fmt.Sprintf("command %d", id))
}

// PendingCommands lists a lane's pending commands, oldest first: the order
// they must be applied in.
func (s *Store) PendingCommands(ctx context.Context, laneID string) ([]LaneCommand, error) {
	return s.commands(ctx, `SELECT `+commandCols+` FROM lane_commands WHERE lane_id = $1 AND state = 'pending' ORDER BY id`, laneID)
}

// LaneCommands lists a lane's commands, newest first.
func (s *Store) LaneCommands(ctx context.Context, laneID string, limit int) ([]LaneCommand, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	return s.commands(ctx, `SELECT `+commandCols+` FROM lane_commands WHERE lane_id = $1 ORDER BY id DESC LIMIT $2`, laneID, limit)
}

func (s *Store) commands(ctx context.Context, q string, args ...any) ([]LaneCommand, error) {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LaneCommand
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LanesWithPendingCommands lists lanes that have a pending command, the
// lane with the oldest one first.
func (s *Store) LanesWithPendingCommands(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.q.QueryContext(ctx, `SELECT lane_id FROM lane_commands WHERE state = 'pending'
		GROUP BY lane_id ORDER BY MIN(id) LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// FinishCommand moves a pending command to state (applied or rejected) with
// its outcome, and refreshes the lane's pending command. A command that is no
// longer pending is refused with ErrConflict: someone else finished it.
func (s *Store) FinishCommand(ctx context.Context, id int64, state, outcome string, now time.Time) error {
	if state != CommandApplied && state != CommandRejected {
		return fmt.Errorf("command %d: %q is not applied or rejected", id, state)
	}
	return s.Tx(ctx, func(tx *Store) error {
		var laneID string
		err := tx.q.QueryRowContext(ctx, `UPDATE lane_commands SET state = $2, outcome = $3, finished_at = $4
			WHERE id = $1 AND state = 'pending' RETURNING lane_id`, id, state, outcome, ms(now)).Scan(&laneID)
		if errors.Is(err, sql.ErrNoRows) {
			if _, gerr := tx.GetCommand(ctx, id); gerr != nil {
				return gerr
			}
			return fmt.Errorf("command %d is no longer pending: %w", id, ErrConflict)
		}
		if err != nil {
			return err
		}
		return tx.refreshPendingCommand(ctx, laneID)
	})
}

// NoteCommandFailure records a failed try of a pending command and returns
// how many tries failed so far.
func (s *Store) NoteCommandFailure(ctx context.Context, id int64, reason string) (int, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `UPDATE lane_commands SET attempts = attempts + 1, last_error = $2
		WHERE id = $1 AND state = 'pending' RETURNING attempts`, id, reason).Scan(&n)
	return n, notFound(err, fmt.Sprintf("pending command %d", id))
}
