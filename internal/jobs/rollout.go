package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Executor carries out rollout decisions for one kind of lane on one
// platform (Play staged rollout, iOS phased release, OTA release).
//
// Execute makes the remote state match the decision — active at d.Percent
// (ActionAdvance), halted (ActionHalt), at 100 % (ActionComplete) or rolled
// back (ActionRollback) — and must read remote state first, so running it
// twice (a crash after the remote change, before the status was recorded)
// changes nothing the second time.
type Executor interface {
	Execute(ctx context.Context, lane release.Lane, d release.Decision) error
	// Observe returns the health metrics the lane's gates read.
	Observe(ctx context.Context, lane release.Lane) (release.Observations, error)
}

// ExecutorKey selects an executor.
type ExecutorKey struct {
	Kind     release.LaneKind
	Platform release.Platform
}

// Executors maps lanes to executors.
type Executors map[ExecutorKey]Executor

func (e Executors) For(l release.Lane) (Executor, error) {
	ex, ok := e[ExecutorKey{l.Kind, l.Platform}]
	if !ok {
		return nil, fmt.Errorf("no executor for %s lanes on %s", l.Kind, l.Platform)
	}
	return ex, nil
}

// Rollouts moves lanes through their plans: the periodic reconcile pass and
// people's commands both end here.
type Rollouts struct {
	Store     *store.Store
	Executors Executors
	Now       func() time.Time
	Log       *slog.Logger
	// OnChange is told about every recorded status change (notifications).
	OnChange func(ctx context.Context, lane release.Lane, d release.Decision)
	// Freezes hold scheduled advances (release.FreezesFor picks a lane's).
	Freezes []release.Freeze
	// Gates measures the lanes' gate rules and reads back the current
	// stage's measurements (*Gates); nil: gates are judged from
	// Executor.Observe alone.
	Gates interface {
		Observe(ctx context.Context, l release.Lane) (map[string]release.GateReading, error)
	}
}

func (r *Rollouts) now() time.Time {
	if r.Now == nil {
		return time.Now().UTC()
	}
	return r.Now().UTC()
}

func (r *Rollouts) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Pass reconciles every lane that is due. One lane's failure does not stop
// the others; the errors are joined.
func (r *Rollouts) Pass(ctx context.Context) error {
	lanes, err := r.Store.DueLanes(ctx, r.now(), 200)
	if err != nil {
		return fmt.Errorf("due lanes: %w", err)
	}
	var errs []error
	for _, l := range lanes {
		if err := r.ReconcileLane(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("lane %s: %w", l.ID, err))
		}
	}
	return errors.Join(errs...)
}

// ReconcileLane runs one reconcile step for a lane and records its outcome.
func (r *Rollouts) ReconcileLane(ctx context.Context, l release.Lane) error {
	ex, err := r.Executors.For(l)
	if err != nil {
		return err
	}
	obs, err := ex.Observe(ctx, l)
	if err != nil {
		// No data is not bad data: gates hold on it.
		r.log().Warn("observe failed; gates will hold", "lane", l.ID, "err", err)
		obs = release.Observations{}
	}
	if r.Gates != nil {
		if obs.Gates, err = r.Gates.Observe(ctx, l); err != nil {
			r.log().Warn("gate readings unavailable; gates will hold", "lane", l.ID, "err", err)
			obs.Gates = unread(l.Plan)
		}
	}
	if len(r.Freezes) > 0 {
		rel, err := r.Store.GetRelease(ctx, l.ReleaseID)
		if err != nil {
			return err
		}
		obs.Freezes = release.FreezesFor(r.Freezes, rel.App, l)
	}
	now := r.now()
	d, err := release.Reconcile(l.Plan, l.Status, obs, now)
	if err != nil {
		return err
	}
	switch d.Action {
	case release.ActionNone, release.ActionHold:
		if sameSchedule(l.Status, d.Status) {
			return nil
		}
		return r.record(ctx, l, d, "system", "rollout."+string(d.Action))
	}
	if err := ex.Execute(ctx, l, d); err != nil {
		// Look again in a minute; the reason says what failed.
		retry := l.Status
		retry.Reason = fmt.Sprintf("%s to %d%% failed: %v", d.Action, d.Percent, err)
		retry.NextEligibleAt = now.Add(time.Minute)
		retry.UpdatedAt = now
		_ = r.record(ctx, l, release.Decision{Action: release.ActionHold, Reason: retry.Reason, Status: retry}, "system", "rollout.action_failed")
		return err
	}
	return r.record(ctx, l, d, "system", "rollout."+string(d.Action))
}

func sameSchedule(a, b release.Status) bool {
	return a.State == b.State && a.StepIndex == b.StepIndex && a.Reason == b.Reason && a.NextEligibleAt.Equal(b.NextEligibleAt)
}

func (r *Rollouts) record(ctx context.Context, l release.Lane, d release.Decision, actor, kind string) error {
	err := r.Store.Tx(ctx, func(tx *store.Store) error {
		st, err := tx.UpdateStatus(ctx, l.ID, d.Status)
		if err != nil {
			return err
		}
		d.Status = st
		details := map[string]any{"action": string(d.Action), "percent": d.Percent, "state": string(d.Status.State), "reason": d.Reason, "platform": string(l.Platform)}
		if len(d.Measurements) > 0 {
			details["measurements"] = measurementDetails(d.Measurements)
		}
		_, err = tx.AppendEvent(ctx, release.Event{At: r.now(), Actor: actor, ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: kind, Details: details})
		return err
	})
	if err != nil {
		return err
	}
	if r.OnChange != nil {
		l.Status = d.Status
		r.OnChange(ctx, l, d)
	}
	return nil
}

// Command applies a person's command to a lane: decide, execute remotely,
// record. An illegal command is returned as *CommandError and changes nothing.
func (r *Rollouts) Command(ctx context.Context, laneID string, cmd release.Command, actor, reason string) (release.Decision, error) {
	l, err := r.Store.GetLane(ctx, laneID)
	if err != nil {
		return release.Decision{}, err
	}
	d, err := release.ApplyCommand(l.Plan, l.Status, cmd, reason, r.now())
	if err != nil {
		return d, &CommandError{Err: err}
	}
	if d.Action != release.ActionNone {
		ex, err := r.Executors.For(l)
		if err != nil {
			return d, err
		}
		if err := ex.Execute(ctx, l, d); err != nil {
			return d, err
		}
	}
	if d.Reason == "" {
		d.Reason = reason
	}
	return d, r.record(ctx, l, d, actor, "command."+string(cmd))
}

// CommandError is a command the lane's state does not allow.
type CommandError struct{ Err error }

func (e *CommandError) Error() string { return e.Err.Error() }
func (e *CommandError) Unwrap() error { return e.Err }

// LaneCommandArgs carries a person's command to the worker that executes it.
type LaneCommandArgs struct {
	LaneID  string `json:"lane_id"`
	Command string `json:"command"`
	Actor   string `json:"actor"`
	Reason  string `json:"reason"`
}

// Kind implements river.JobArgs.
func (LaneCommandArgs) Kind() string { return "lane_command" }

// InsertOpts gives commands priority over lane work.
func (LaneCommandArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Priority: 1, MaxAttempts: 10}
}

// LaneCommandWorker executes queued commands.
type LaneCommandWorker struct {
	river.WorkerDefaults[LaneCommandArgs]
	Rollouts *Rollouts
	// Cancel cancels in-flight lane jobs of a lane (halt takes priority).
	Cancel func(ctx context.Context, laneID string) error
}

func (w *LaneCommandWorker) Work(ctx context.Context, job *river.Job[LaneCommandArgs]) error {
	a := job.Args
	cmd, err := release.ParseCommand(a.Command)
	if err != nil {
		return river.JobCancel(err)
	}
	if (cmd == release.CmdHalt || cmd == release.CmdCancel) && w.Cancel != nil {
		if err := w.Cancel(ctx, a.LaneID); err != nil {
			return err
		}
	}
	_, err = w.Rollouts.Command(ctx, a.LaneID, cmd, a.Actor, a.Reason)
	var ce *CommandError
	switch {
	case errors.As(err, &ce):
		l, gerr := w.Rollouts.Store.GetLane(ctx, a.LaneID)
		if gerr == nil {
			_, _ = w.Rollouts.Store.AppendEvent(ctx, release.Event{At: w.Rollouts.now(), Actor: a.Actor, ReleaseID: l.ReleaseID, LaneID: l.ID,
				Kind: "command.rejected", Details: map[string]any{"command": a.Command, "error": ce.Error()}})
		}
		return river.JobCancel(err)
	case errors.Is(err, store.ErrNotFound):
		return river.JobCancel(err)
	}
	return err
}
