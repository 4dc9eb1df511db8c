package lane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Failure is a problem a retry cannot fix: the lane fails with Reason.
type Failure struct{ Reason string }

func (e *Failure) Error() string { return e.Reason }

// Fail returns a *Failure with a formatted reason.
func Fail(format string, args ...any) error {
	return &Failure{Reason: fmt.Sprintf(format, args...)}
}

// Wait asks the job to look again After a while, for Reason.
type Wait struct {
	After  time.Duration
	Reason string
}

func (e *Wait) Error() string { return e.Reason }

// Attempt turns the outcome of one run of a store lane job into River's
// answer: done; a snooze for a wait; a failed lane (with its reason recorded)
// and a cancelled job for a problem no retry can fix; a cancelled job for a
// lane that no longer exists; otherwise the error, so River retries with the
// worker's backoff — and on the last attempt the lane fails saying so.
func Attempt(ctx context.Context, st *store.Store, log *slog.Logger, platform, laneID string, row *rivertype.JobRow, now time.Time, err error) error {
	if err == nil {
		return nil
	}
	var wait *Wait
	var fail *Failure
	var cancel *river.JobCancelError
	switch {
	case errors.As(err, &cancel):
		return err
	case ctx.Err() != nil:
		// The run was cut short (shutdown, timeout, a halt cancelling
		// lane jobs): say nothing about the lane. On shutdown River puts
		// the job back in the queue without counting the attempt.
		return err
	case errors.As(err, &wait):
		return river.JobSnooze(wait.After)
	case errors.Is(err, store.ErrNotFound) && !errors.As(err, &fail):
		return river.JobCancel(err)
	case errors.As(err, &fail):
		if ferr := Failed(ctx, st, laneID, fail.Reason, now); ferr != nil {
			return fmt.Errorf("record failure of lane %s (%s): %w", laneID, fail.Reason, ferr)
		}
		log.Warn(platform+" lane failed", "lane", laneID, "reason", fail.Reason)
		return river.JobCancel(err)
	}
	if row != nil && row.MaxAttempts > 0 && row.Attempt >= row.MaxAttempts {
		reason := fmt.Sprintf("gave up after %d attempts: %v", row.Attempt, err)
		if ferr := Failed(ctx, st, laneID, reason, now); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	log.Info(platform+" lane will retry", "lane", laneID, "err", err)
	return err
}

// RetryAt backs a store lane job off from 30 s, doubling up to 15
// minutes: store outages and quota windows are short, and a release should
// not sit for hours.
func RetryAt(row *rivertype.JobRow) time.Time {
	attempt := 1
	if row != nil && row.Attempt > 0 {
		attempt = row.Attempt
	}
	d := 30 * time.Second << min(attempt-1, 10)
	return time.Now().Add(min(d, 15*time.Minute))
}

// RemoteStoppedError is an executor's answer that the store shows the
// rollout stopped outside this lane's record (Play halted, the phased
// release paused, the OTA release disabled) when a scheduled move wanted
// it running. The reconciler records the lane halted (or paused) with
// Reason instead of failing the move every pass.
type RemoteStoppedError struct {
	Reason string
	// Paused is set when the store's state is a pause (iOS), not a halt.
	Paused bool
	// Percent is the percentage the store stopped at, 0 if unknown.
	Percent int
}

func (e *RemoteStoppedError) Error() string { return e.Reason }

// State is the lane state that matches the store: halted, or paused.
func (e *RemoteStoppedError) State() release.State {
	if e.Paused {
		return release.StatePaused
	}
	return release.StateHalted
}

// Refusal is the store's lasting refusal of an action (its answer says why,
// and asking again cannot change it: Play will not halt the first release
// of a track). A command that meets one is rejected with that reason, even
// a halt, instead of being tried every pass.
type Refusal struct{ Err error }

func (e *Refusal) Error() string { return e.Err.Error() }
func (e *Refusal) Unwrap() error { return e.Err }
