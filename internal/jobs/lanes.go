package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Lane jobs carry only the lane id: everything else is read from the store
// when the job runs, so a retried job sees the current state. Every lane job
// args type has a lane_id field, which is how a halt finds and cancels them.

// IOSLaneArgs drives an iOS store lane: build pickup or upload, processing,
// TestFlight, beta review, App Store submission and the phased release.
type IOSLaneArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (IOSLaneArgs) Kind() string { return "ios_lane" }

// AndroidLaneArgs drives an Android store lane: AAB upload or pickup,
// internal track, then production at the first stage.
type AndroidLaneArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (AndroidLaneArgs) Kind() string { return "android_lane" }

// OTALaneArgs drives an OTA lane: release to Staging, promote to Production
// at the first stage.
type OTALaneArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (OTALaneArgs) Kind() string { return "ota_lane" }

// LaneStart returns the job that starts a planned lane, or nil for a lane
// that does not run (refused).
func LaneStart(l release.Lane) river.JobArgs {
	switch {
	case l.Kind == release.KindOTA:
		return OTALaneArgs{LaneID: l.ID}
	case l.Kind == release.KindStore && l.Platform == release.IOS:
		return IOSLaneArgs{LaneID: l.ID}
	case l.Kind == release.KindStore && l.Platform == release.Android:
		return AndroidLaneArgs{LaneID: l.ID}
	}
	return nil
}

// LaneStartOpts makes a lane's start job unique per lane while it is not
// finished, so planning twice starts a lane once.
func LaneStartOpts() *river.InsertOpts {
	return &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Assets fetches build artifacts attached to the GitHub release of a tag
// (an .ipa, an .aab, a JS bundle zip).
type Assets interface {
	// FetchAsset downloads the first asset of the release at tag whose name
	// matches the glob pattern into a new temporary file, positioned at 0.
	// The caller closes and removes it. A missing release or asset matches
	// fs.ErrNotExist.
	FetchAsset(ctx context.Context, repository, tag, pattern string) (f *os.File, name string, err error)
}

// LaneFingerprint returns the stored native fingerprint hash of the
// release's commit for the lane's platform ("" when none was recorded).
func LaneFingerprint(ctx context.Context, st *store.Store, app string, p release.Platform, commit string) (string, error) {
	f, err := st.GetFingerprint(ctx, app, p, commit, nativecheck.Algorithm)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return f.Hash, err
}

// LaneReady records the binary a store lane shipped (nil for OTA lanes) and
// hands the lane to the reconciler: pending → rolling at step 0, with an
// event. Calling it again for a lane that is already rolling changes nothing.
func LaneReady(ctx context.Context, st *store.Store, laneID string, bin *release.Binary, now time.Time, detail string) error {
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

// LaneFailed marks a lane failed with a reason people can act on, and
// records the event. A lane already finished is left alone.
func LaneFailed(ctx context.Context, st *store.Store, laneID, reason string, now time.Time) error {
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

// LaneProgress records a step of a lane job (uploaded, processing, in
// TestFlight…) in the audit log.
func LaneProgress(ctx context.Context, st *store.Store, l release.Lane, kind string, details map[string]any, now time.Time) error {
	if details == nil {
		details = map[string]any{}
	}
	details["platform"] = string(l.Platform)
	_, err := st.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: kind, Details: details})
	return err
}

// laneFailure is a problem a retry cannot fix: the lane fails with reason.
type laneFailure struct{ reason string }

func (e *laneFailure) Error() string { return e.reason }

func failLane(format string, args ...any) error {
	return &laneFailure{reason: fmt.Sprintf(format, args...)}
}

// laneWait asks the job to look again later.
type laneWait struct {
	after  time.Duration
	reason string
}

func (e *laneWait) Error() string { return e.reason }

// laneAttempt turns the outcome of one run of a store lane job into River's
// answer: done; a snooze for a wait; a failed lane (with its reason recorded)
// and a cancelled job for a problem no retry can fix; a cancelled job for a
// lane that no longer exists; otherwise the error, so River retries with the
// worker's backoff — and on the last attempt the lane fails saying so.
func laneAttempt(ctx context.Context, st *store.Store, log *slog.Logger, platform, laneID string, row *rivertype.JobRow, now time.Time, err error) error {
	if err == nil {
		return nil
	}
	var wait *laneWait
	var fail *laneFailure
	var cancel *river.JobCancelError
	switch {
	case errors.As(err, &cancel):
		return err
	case errors.As(err, &wait):
		return river.JobSnooze(wait.after)
	case errors.Is(err, store.ErrNotFound) && !errors.As(err, &fail):
		return river.JobCancel(err)
	case errors.As(err, &fail):
		if ferr := LaneFailed(ctx, st, laneID, fail.reason, now); ferr != nil {
			return fmt.Errorf("record failure of lane %s (%s): %w", laneID, fail.reason, ferr)
		}
		log.Warn(platform+" lane failed", "lane", laneID, "reason", fail.reason)
		return river.JobCancel(err)
	}
	if row != nil && row.MaxAttempts > 0 && row.Attempt >= row.MaxAttempts {
		reason := fmt.Sprintf("gave up after %d attempts: %v", row.Attempt, err)
		if ferr := LaneFailed(ctx, st, laneID, reason, now); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	log.Info(platform+" lane will retry", "lane", laneID, "err", err)
	return err
}

// laneRetryAt backs a store lane job off from 30 s, doubling up to 15
// minutes: store outages and quota windows are short, and a release should
// not sit for hours.
func laneRetryAt(row *rivertype.JobRow) time.Time {
	attempt := 1
	if row != nil && row.Attempt > 0 {
		attempt = row.Attempt
	}
	d := 30 * time.Second << min(attempt-1, 10)
	return time.Now().Add(min(d, 15*time.Minute))
}

// storeLaneRun is what a store lane job works on: its lane, release and app.
type storeLaneRun struct {
	lane release.Lane
	rel  release.Release
	app  config.App
}

// loadStoreLane reads a pending store lane of platform p (what names it in
// errors: "an iOS store lane") for one run of its job. It answers nil, nil for a lane that is no longer pending (handed over
// before, or finished: a re-run does nothing), a cancelled job for a lane of
// another kind or platform (only the job is wrong), and a lane failure when
// noClient is set (the store client is not configured) or the release or
// its app cannot be found.
func loadStoreLane(ctx context.Context, st *store.Store, apps map[string]config.App, laneID string, p release.Platform, what, noClient string) (*storeLaneRun, error) {
	l, err := st.GetLane(ctx, laneID)
	if err != nil {
		return nil, err
	}
	if l.Kind != release.KindStore || l.Platform != p {
		return nil, river.JobCancel(fmt.Errorf("lane %s is a %s lane on %s, not %s", l.ID, l.Kind, l.Platform, what))
	}
	if l.Status.State != release.StatePending {
		return nil, nil
	}
	if noClient != "" {
		return nil, failLane("%s", noClient)
	}
	rel, err := st.GetRelease(ctx, l.ReleaseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, failLane("release %s of lane %s does not exist", l.ReleaseID, l.ID)
	}
	if err != nil {
		return nil, err
	}
	app, ok := apps[rel.App]
	if !ok {
		return nil, failLane("app %q is not configured", rel.App)
	}
	return &storeLaneRun{lane: l, rel: rel, app: app}, nil
}
