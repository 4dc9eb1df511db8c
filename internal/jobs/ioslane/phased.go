package ioslane

import (
	"context"
	"errors"
	"fmt"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// completeAtOnce releases a version without a phased release to everyone.
func (x *IOS) completeAtOnce(ctx context.Context, l release.Lane, data iosLaneData) error {
	if err := x.release(ctx, l, data, false); err != nil {
		return err
	}
	pr, err := x.ASC.PhasedRelease(ctx, data.VersionID)
	if errors.Is(err, appstore.ErrNotFound) {
		return nil // released without a phased release: everyone has it
	}
	if err != nil {
		return fmt.Errorf("read the phased release of %s: %w", data.Version, err)
	}
	if pr.State != appstore.PhasedComplete {
		if _, err := x.ASC.CompletePhasedRelease(ctx, data.VersionID); err != nil {
			return fmt.Errorf("complete the phased release of %s: %w", data.Version, err)
		}
	}
	return nil
}

// completePhased carries out a complete of a phased lane. A person's
// command releases to everyone now (only a person's complete ends a
// pause); the plan's own complete sends nothing before Apple's day 7.
func (x *IOS) completePhased(ctx context.Context, l release.Lane, data iosLaneData, d release.Decision) error {
	pr, err := x.phasedRelease(ctx, l, d)
	started := err == nil && pr.State != appstore.PhasedInactive
	if err != nil && !errors.Is(err, appstore.ErrNotFound) {
		return fmt.Errorf("read the phased release of %s: %w", data.Version, err)
	}
	if d.Command == "" {
		switch {
		case !started:
			return fmt.Errorf("Apple's phased release of %s has not started; the plan completes only once it has run its 7 days", data.Version)
		case pr.State == appstore.PhasedComplete:
			return nil
		case pr.State == appstore.PhasedPaused:
			return &lane.RemoteStoppedError{Paused: true, Reason: fmt.Sprintf("the phased release of %s was paused outside this rollout; resume the lane to continue it, or complete it by command", data.Version)}
		case pr.CurrentDayNumber < 7:
			return fmt.Errorf("Apple's phased release of %s is on day %d; it completes on its own on day 7", data.Version, pr.CurrentDayNumber)
		}
	} else if started && pr.State == appstore.PhasedPaused && d.Command != release.CmdComplete {
		return fmt.Errorf("the phased release of %s is paused; only a complete command releases it to everyone", data.Version)
	}
	if started && pr.State == appstore.PhasedComplete {
		return nil
	}
	if !started {
		// A person's complete before the release started: release first.
		if err := x.release(ctx, l, data, false); err != nil {
			return err
		}
		if errors.Is(err, appstore.ErrNotFound) {
			return nil // released without a phased release: everyone has it
		}
	}
	if _, err := x.ASC.CompletePhasedRelease(ctx, data.VersionID); err != nil {
		return fmt.Errorf("complete the phased release of %s: %w", data.Version, err)
	}
	return nil
}

// phasedRelease reads the lane's phased release. A scheduled pass uses
// the read Observe made moments before in the same pass, so a pass that
// changes nothing costs one call.
func (x *IOS) phasedRelease(ctx context.Context, l release.Lane, d release.Decision) (*appstore.PhasedRelease, error) {
	if d.Command == "" {
		if o, ok := x.takeObserved(l.ID); ok {
			return o.pr, o.err
		}
	}
	var data iosLaneData
	if err := x.Store.LaneData(ctx, l.ID, &data); err != nil {
		return nil, err
	}
	return x.ASC.PhasedRelease(ctx, data.VersionID)
}

// release releases the approved version unless it is out already. With
// phased, the phased release is enabled first: a version released without
// one goes to everyone at once, which Apple cannot undo.
func (x *IOS) release(ctx context.Context, l release.Lane, data iosLaneData, phased bool) error {
	v, err := x.ASC.AppStoreVersion(ctx, data.VersionID)
	if err != nil {
		return fmt.Errorf("read App Store version %s: %w", data.Version, err)
	}
	if v.AppVersionState != appstore.VersionPendingDeveloperRelease {
		return nil // released before (or by someone else)
	}
	if phased {
		// CreatePhasedRelease reads first and keeps an existing one.
		if _, err := x.ASC.CreatePhasedRelease(ctx, data.VersionID, appstore.PhasedInactive); err != nil {
			return fmt.Errorf("enable the phased release of %s: %w", data.Version, err)
		}
	}
	if _, err := x.ASC.ReleaseVersion(ctx, data.VersionID); err != nil {
		return fmt.Errorf("release App Store version %s: %w", data.Version, err)
	}
	x.log().Info("ios version released", "lane", l.ID, "version", data.Version, "phased", phased)
	return nil
}
