package lane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Ready records the binary a store lane shipped (nil for OTA lanes) and
// hands the lane to the reconciler: pending → rolling at step 0, with an
// event. Calling it again for a lane that is already rolling changes nothing.
func Ready(ctx context.Context, st *store.Store, laneID string, bin *release.Binary, now time.Time, detail string) error {
	return st.Tx(ctx, func(tx *store.Store) error {
		l, err := tx.GetLane(ctx, laneID)
		if err != nil {
			return err
		}
		if bin != nil {
			if _, err := tx.RecordBinary(ctx, *bin); err != nil {
				return err
			}
		}
		if l.Status.State != release.StatePending {
			return nil
		}
		next, err := l.Status.Transition(release.StateRolling, detail, now)
		if err != nil {
			return err
		}
		next.StepIndex, next.StepStartedAt, next.NextEligibleAt = 0, now, time.Time{}
		if _, err := tx.UpdateStatus(ctx, laneID, next); err != nil {
			return err
		}
		details := map[string]any{"platform": string(l.Platform), "detail": detail}
		if bin != nil {
			details["version"], details["build_number"], details["fingerprint"] = bin.Version, bin.BuildNumber, bin.Fingerprint
		}
		_, err = tx.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: "lane.ready", Details: details})
		return err
	})
}

// Failed marks a lane failed with a reason people can act on, and
// records the event. A lane already finished is left alone.
func Failed(ctx context.Context, st *store.Store, laneID, reason string, now time.Time) error {
	return st.Tx(ctx, func(tx *store.Store) error {
		l, err := tx.GetLane(ctx, laneID)
		if err != nil {
			return err
		}
		if l.Status.State.Terminal() {
			return nil
		}
		next, err := l.Status.Transition(release.StateFailed, reason, now)
		if err != nil {
			return err
		}
		if _, err := tx.UpdateStatus(ctx, laneID, next); err != nil {
			return err
		}
		_, err = tx.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: "lane.failed",
			Details: map[string]any{"platform": string(l.Platform), "reason": reason}})
		return err
	})
}

// Progress records a step of a lane job (uploaded, processing, in
// TestFlight…) in the audit log.
func Progress(ctx context.Context, st *store.Store, l release.Lane, kind string, details map[string]any, now time.Time) error {
	if details == nil {
		details = map[string]any{}
	}
	details["platform"] = string(l.Platform)
	_, err := st.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: kind, Details: details})
	return err
}

// Waiting shows why a pending lane stands still: reason goes into its
// status, where the API and the CLI show it, while the state stays pending.
// A lane that is no longer pending, or already says so, is left alone; a
// status that changed meanwhile is left to the next run.
func Waiting(ctx context.Context, st *store.Store, laneID, reason string, now time.Time) error {
	l, err := st.GetLane(ctx, laneID)
	if err != nil {
		return err
	}
	if l.Status.State != release.StatePending || l.Status.Reason == reason {
		return nil
	}
	next := l.Status
	next.Reason, next.UpdatedAt = reason, now
	if _, err := st.UpdateStatus(ctx, laneID, next); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	return nil
}

// WaitReason is the status reason of a wait with a deadline: what it waits
// for, since when, and when the lane gives up.
func WaitReason(reason string, since time.Time, limit time.Duration) string {
	if !strings.HasPrefix(reason, "waiting") {
		reason = "waiting: " + reason
	}
	return fmt.Sprintf("%s (since %s; the lane fails if this lasts %s)", reason, since.UTC().Format(time.RFC3339), limit)
}
