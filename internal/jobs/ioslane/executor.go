package ioslane

import (
	"context"
	"errors"
	"fmt"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// Execute carries out a rollout decision for an iOS lane, reading App Store
// Connect first so a repeated decision changes nothing:
//   - TestFlight-only lanes: distribution finished in the lane job, so every
//     action succeeds without a call (a halt there removes nothing);
//   - advance: the first one releases the approved version, which starts
//     the phased release (set up INACTIVE before review) on day 1. Apple
//     sets the percentage day by day; releasepilot cannot, so later
//     scheduled advances move nothing: they only check the phased release
//     is ACTIVE, and only a person's resume un-pauses it;
//   - halt, rollback: pause the phased release (never removed from sale).
//     A release that is on its way out (released, phased release not yet
//     started) cannot be paused yet: the halt fails so it is retried;
//   - complete: a person's complete releases to everyone now, paused or
//     not; a scheduled one (the plan's last step) waits for Apple's day 7,
//     so a pause, which stops Apple's days, never ends in an early 100 %.
func (x *IOS) Execute(ctx context.Context, l release.Lane, d release.Decision) error {
	switch d.Action {
	case release.ActionNone, release.ActionHold:
		return nil
	}
	if d.Action == release.ActionHalt && l.Status.State == release.StateCompleted {
		// The API refuses this command; a halt that still gets here must
		// not report a pause that did not happen.
		return fmt.Errorf("lane %s is completed: Apple cannot halt a release that reached everyone", l.ID)
	}
	var data iosLaneData
	if err := x.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	if !data.AppStore {
		if d.Action == release.ActionHalt || d.Action == release.ActionRollback {
			x.log().Info("halt of a TestFlight-only lane: nothing to pause on App Store Connect", "lane", l.ID)
		}
		return nil
	}
	if x.ASC == nil {
		return errors.New("no App Store Connect client: set appstore.private_key")
	}
	if data.VersionID == "" || !data.reached(iosStepApproved) {
		// Nothing is released before approval: a halt has nothing to stop.
		if d.Action == release.ActionHalt || d.Action == release.ActionRollback {
			return nil
		}
		return fmt.Errorf("lane %s has no approved App Store version yet: its ios_lane job has not finished", l.ID)
	}
	vid := data.VersionID
	switch d.Action {
	case release.ActionAdvance:
		if !data.Phased {
			return fmt.Errorf("advance to %d%%: App Store version %s has no phased release (ios.phased_release is off)", d.Percent, data.Version)
		}
		pr, err := x.phasedRelease(ctx, l, d)
		if errors.Is(err, appstore.ErrNotFound) || (err == nil && pr.State == appstore.PhasedInactive) {
			// Not started: release the version (nothing if it is out
			// already and Apple is still processing it for distribution).
			if err := x.release(ctx, l, data, true); err != nil {
				return err
			}
			x.log().Info("ios phased release started", "lane", l.ID, "version", data.Version, "plan_percent", d.Percent)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the phased release of %s: %w", data.Version, err)
		}
		if pr.State == appstore.PhasedPaused {
			// Only a person's resume un-pauses: a scheduled advance that
			// finds the release paused (in App Store Connect, or by a halt
			// racing this tick) must not undo the pause.
			if !lane.Resuming(l) {
				return &lane.RemoteStoppedError{Paused: true, Reason: fmt.Sprintf("the phased release of %s was paused outside this rollout; resume the lane to continue it", data.Version)}
			}
			if pr, err = x.ASC.ResumePhasedRelease(ctx, vid); err != nil {
				return fmt.Errorf("resume the phased release of %s: %w", data.Version, err)
			}
		}
		x.log().Info("ios phased release", "lane", l.ID, "version", data.Version, "state", string(pr.State), "day", pr.CurrentDayNumber, "plan_percent", d.Percent)
	case release.ActionHalt, release.ActionRollback:
		pr, err := x.ASC.PhasedRelease(ctx, vid)
		if errors.Is(err, appstore.ErrNotFound) {
			x.log().Warn("halt: the version has no phased release to pause", "lane", l.ID, "version", data.Version)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the phased release of %s: %w", data.Version, err)
		}
		switch pr.State {
		case appstore.PhasedPaused, appstore.PhasedComplete:
			return nil // paused already, or everyone has it: nothing to pause
		case appstore.PhasedInactive:
			v, err := x.ASC.AppStoreVersion(ctx, vid)
			if err != nil {
				return fmt.Errorf("read App Store version %s: %w", data.Version, err)
			}
			if !v.AppVersionState.PastReview() || v.AppVersionState == appstore.VersionPendingDeveloperRelease {
				return nil // not released: nothing to stop, and only a resume releases it
			}
			// Released and still being processed for distribution: the
			// phased release starts on its own shortly and cannot be
			// paused before. Failing keeps the halt unrecorded, and it is
			// retried until the pause can be sent.
			return fmt.Errorf("pause pending: the phased release has not started yet (App Store version %s is %s); the halt is retried until it can pause it",
				data.Version, v.AppVersionState)
		}
		if _, err := x.ASC.PausePhasedRelease(ctx, vid); err != nil {
			return fmt.Errorf("pause the phased release of %s: %w", data.Version, err)
		}
	case release.ActionComplete:
		if !data.Phased {
			return x.completeAtOnce(ctx, l, data)
		}
		return x.completePhased(ctx, l, data, d)
	default:
		return fmt.Errorf("action %q is not one an iOS lane can carry out", d.Action)
	}
	return nil
}
