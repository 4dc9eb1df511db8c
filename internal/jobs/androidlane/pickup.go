package androidlane

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// pickUp finds the bundle CI uploaded for this release: the newest one in
// the app, which must be newer than everything releasepilot ever sent (so it
// is not one of ours), every binary it recorded, and every release on the
// rollout track. Until one appears the lane waits.
func (a *Android) pickUp(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *androidLaneData) error {
	next, err := a.Play.NextVersionCode(ctx, data.Package)
	if err := playFailure("list the app's bundles", err); err != nil {
		return err
	}
	newest := next - 1 // the highest versionCode in Play or in our ledger
	sent, err := a.Store.VersionCodes().Max(ctx, data.Package)
	if err != nil {
		return err
	}
	floor, err := a.liveMax(ctx, rel, *data)
	if err != nil {
		return err
	}
	floor = max(floor, sent)
	if newest <= floor {
		return a.wait(ctx, l, app, data, fmt.Sprintf("waiting for CI to upload a bundle newer than versionCode %d", floor))
	}
	data.VersionCode, data.Uploaded, data.WaitingSince = newest, true, time.Time{}
	if err := a.Store.SetLaneData(ctx, l.ID, *data, a.now()); err != nil {
		return err
	}
	return lane.Progress(ctx, a.Store, l, "android.bundle_picked_up", map[string]any{"version_code": newest}, a.now())
}

// liveMax is the highest versionCode on the rollout track or recorded as a
// binary of the app (0 if none).
func (a *Android) liveMax(ctx context.Context, rel release.Release, data androidLaneData) (int64, error) {
	var top int64
	sums, err := a.Play.ReleaseSummaries(ctx, data.Package, data.Track)
	if err := playFailure(fmt.Sprintf("read the %s track", data.Track), err); err != nil {
		return 0, err
	}
	for _, s := range sums {
		for _, vc := range s.VersionCodes {
			top = max(top, vc)
		}
	}
	bins, err := a.Store.Binaries(ctx, rel.App, release.Android)
	if err != nil {
		return 0, err
	}
	for _, b := range bins {
		if b.ReleaseID == rel.ID {
			continue
		}
		if vc, err := strconv.ParseInt(b.BuildNumber, 10, 64); err == nil {
			top = max(top, vc)
		}
	}
	return top, nil
}

// checkNewer refuses a bundle that is not newer than what is live: Play
// would refuse to roll it out, after the internal track was already changed.
func (a *Android) checkNewer(ctx context.Context, rel release.Release, data androidLaneData) error {
	live, err := a.liveMax(ctx, rel, data)
	if err != nil {
		return err
	}
	if data.VersionCode <= live {
		return lane.Fail("versionCode %d is not newer than versionCode %d, already on the %s track or shipped before; build %s with a higher versionCode",
			data.VersionCode, live, data.Track, rel.Version)
	}
	return nil
}

// wait snoozes the lane job with the reason in the lane's status, or
// fails the lane once it waited longer than android.bundle_timeout.
func (a *Android) wait(ctx context.Context, l release.Lane, app config.App, data *androidLaneData, reason string) error {
	now := a.now()
	limit := app.Android.BundleTimeout.D()
	if limit <= 0 {
		limit = a.PickupTimeout
	}
	if limit <= 0 {
		limit = config.DefaultBundleTimeout
	}
	if data.WaitingSince.IsZero() {
		data.WaitingSince = now
		if err := a.Store.SetLaneData(ctx, l.ID, *data, now); err != nil {
			return err
		}
		if err := lane.Progress(ctx, a.Store, l, "android.waiting", map[string]any{"reason": reason, "limit": limit.String()}, now); err != nil {
			return err
		}
	}
	if now.Sub(data.WaitingSince) >= limit {
		return lane.Fail("%s: nothing came within %s", reason, limit)
	}
	if err := lane.Waiting(ctx, a.Store, l.ID, lane.WaitReason(reason, data.WaitingSince, limit), now); err != nil {
		return err
	}
	poll := a.PickupPoll
	if poll <= 0 {
		poll = 2 * time.Minute
	}
	return &lane.Wait{After: poll, Reason: reason}
}
