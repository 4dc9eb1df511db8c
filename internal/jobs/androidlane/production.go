package androidlane

import (
	"context"
	"errors"
	"fmt"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
)

// Execute makes the lane's release on its track match the decision. Each
// Play operation reads the track inside its edit and commits nothing when
// the release is already as wanted, so a repeated decision is a no-op:
//   - advance: the first stage puts the release on the track inProgress at
//     the fraction; later stages raise the fraction; a halted or paused lane
//     (a resume) serves the halted release again;
//   - halt, rollback: status halted, fraction kept;
//   - complete: status completed; a halted release only by a person's
//     resume or complete command (Play's Resume to everyone).
//
// Another release in progress or halted on the track is never dropped or
// halted: the operation fails with Play's conflict, which the reconciler
// records as the reason. A release halted on Play behind releasepilot's back
// is neither resumed nor completed by a scheduled step: the lane records
// itself halted (lane.RemoteStoppedError).
func (a *Android) Execute(ctx context.Context, l release.Lane, d release.Decision) error {
	switch d.Action {
	case release.ActionNone, release.ActionHold:
		return nil
	}
	if a.Play == nil {
		return errors.New("no Google Play client: set playstore.service_account")
	}
	var data androidLaneData
	if err := a.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	if data.VersionCode == 0 || data.Package == "" {
		if d.Action == release.ActionHalt || d.Action == release.ActionRollback {
			return nil // nothing of this lane is on Play: nothing to stop (a cancel before the upload)
		}
		return fmt.Errorf("lane %s has no versionCode on Play yet: its android_lane job has not finished", l.ID)
	}
	pkg, track, vc := data.Package, data.Track, data.VersionCode
	var res playstore.Result
	var err error
	switch d.Action {
	case release.ActionAdvance:
		if d.Percent <= 0 || d.Percent >= 100 {
			return fmt.Errorf("advance to %d%%: a staged rollout is between 0 and 100%% (complete for 100%%)", d.Percent)
		}
		f := float64(d.Percent) / 100
		resumed := false
		switch {
		case l.Status.State == release.StateHalted || l.Status.State == release.StatePaused:
			// Resume where Play halted it (0): that is the lane's percent,
			// unless a step raced the halt and Play stopped higher; a
			// rollout never shrinks.
			rf := f
			if d.Percent == l.Status.Percent {
				rf = 0
			}
			res, err = a.Play.Resume(ctx, pkg, track, vc, rf)
			resumed = true
			if r, ok := res.Track.Release(vc); err == nil && ok && r.UserFraction != f {
				a.log().Warn("resumed at the fraction Play had halted at", "lane", l.ID, "version_code", vc, "fraction", r.UserFraction, "lane_percent", d.Percent)
			}
		case l.Status.Percent == 0:
			var rel release.Release
			var app config.App
			if rel, app, err = a.releaseOf(ctx, l); err != nil {
				return err
			}
			res, err = a.Play.PutRelease(ctx, pkg, track, a.playRelease(rel, app, vc, playstore.StatusInProgress, f))
			var se *playstore.StateError
			if errors.As(err, &se) && se.Status == playstore.StatusInProgress {
				// Started before the status was recorded: raise it instead.
				res, err = a.Play.SetFraction(ctx, pkg, track, vc, f)
			}
		default:
			res, err = a.Play.SetFraction(ctx, pkg, track, vc, f)
		}
		var se *playstore.StateError
		if errors.As(err, &se) && se.Status == playstore.StatusHalted && !resumed {
			// Halted on Play but not in the lane (a halt whose record was
			// lost, or someone in the console): a scheduled step leaves it
			// halted, and the lane follows Play.
			return &lane.RemoteStoppedError{Reason: fmt.Sprintf("Play shows versionCode %d halted on the %s track; resume the lane to continue", vc, track)}
		}
		if err != nil {
			return err
		}
		if resumed || data.StagePercent != d.Percent || data.StageAt.IsZero() {
			now := a.now()
			if data.StartedAt.IsZero() {
				data.StartedAt = now
			}
			data.StageAt, data.StagePercent = now, d.Percent
			if err := a.Store.SetLaneData(ctx, l.ID, data, now); err != nil {
				return err
			}
		}
	case release.ActionHalt, release.ActionRollback:
		res, err = a.Play.Halt(ctx, pkg, track, vc)
		if errors.Is(err, playstore.ErrNotFound) {
			// Not on the track (never started, or replaced): nothing of
			// ours is served there, which is what a halt wants.
			a.log().Warn("halt: release is not on the track", "lane", l.ID, "package", pkg, "track", track, "version_code", vc)
			return nil
		}
		if err != nil && ctx.Err() == nil && !playstore.IsTemporary(err) {
			// Play's answer will not change (the first release of a
			// track cannot be halted): say so instead of asking again.
			return &lane.Refusal{Err: err}
		}
		if err != nil {
			return err
		}
	case release.ActionComplete:
		// Only a person undoes a halt: a resume or a complete command. A
		// halted lane's complete serves the halted release to everyone
		// (Resume to completed); otherwise Complete, which refuses a
		// release halted behind the lane's back (in the Play Console).
		resuming := lane.Resuming(l)
		person := resuming || d.Command == release.CmdComplete
		if resuming {
			res, err = a.Play.Resume(ctx, pkg, track, vc, 1)
			if se := (*playstore.StateError)(nil); errors.As(err, &se) && se.Status == playstore.StatusInProgress {
				res, err = a.Play.Complete(ctx, pkg, track, vc) // resumed in the console meanwhile
			}
		} else {
			res, err = a.Play.Complete(ctx, pkg, track, vc)
		}
		if errors.Is(err, playstore.ErrNotFound) && l.Status.Percent == 0 {
			var rel release.Release
			var app config.App
			if rel, app, err = a.releaseOf(ctx, l); err != nil {
				return err
			}
			res, err = a.Play.PutRelease(ctx, pkg, track, a.playRelease(rel, app, vc, playstore.StatusCompleted, 0))
		}
		if se := (*playstore.StateError)(nil); errors.As(err, &se) && se.Status == playstore.StatusHalted {
			if !person {
				// Halted on Play but not in the lane: the plan's 100 %
				// leaves it halted, and the lane follows Play.
				return &lane.RemoteStoppedError{Reason: fmt.Sprintf("Play shows versionCode %d halted on the %s track; resume the lane to continue", vc, track)}
			}
			// A person's complete of a lane Play shows halted: serve it
			// to everyone.
			res, err = a.Play.Resume(ctx, pkg, track, vc, 1)
		}
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("action %q is not one an Android lane can carry out", d.Action)
	}
	a.log().Info("play rollout step", "lane", l.ID, "action", string(d.Action), "percent", d.Percent, "track", track,
		"version_code", vc, "changed", res.Changed, "calls", res.Calls)
	return nil
}

func (a *Android) releaseOf(ctx context.Context, l release.Lane) (release.Release, config.App, error) {
	rel, err := a.Store.GetRelease(ctx, l.ReleaseID)
	if err != nil {
		return rel, config.App{}, err
	}
	app, ok := a.Apps[rel.App]
	if !ok {
		return rel, app, fmt.Errorf("app %q is not configured", rel.App)
	}
	return rel, app, nil
}
