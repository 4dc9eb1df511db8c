package androidlane

import (
	"context"
	"fmt"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
)

// internalTrack puts the lane's bundle on the internal track as completed
// (unless the app skips that track or rolls out on it), after checking it is
// newer than what is live.
func (a *Android) internalTrack(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *androidLaneData) error {
	if data.Asset != "" {
		// A picked-up bundle was checked against the same floor.
		if err := a.checkNewer(ctx, rel, *data); err != nil {
			return err
		}
	}
	if !app.Android.SkipInternal && data.Track != playstore.TrackInternal {
		// PutRelease reads the internal track in its edit first and
		// commits nothing when our release is already there.
		res, err := a.Play.PutRelease(ctx, data.Package, playstore.TrackInternal, a.playRelease(rel, app, data.VersionCode, playstore.StatusCompleted, 0))
		if err := playFailure(fmt.Sprintf("put versionCode %d on the internal track", data.VersionCode), err); err != nil {
			return err
		}
		if err := lane.Progress(ctx, a.Store, l, "android.internal_track", map[string]any{"version_code": data.VersionCode, "changed": res.Changed, "calls": res.Calls}, a.now()); err != nil {
			return err
		}
	}
	data.Internal = true
	return a.Store.SetLaneData(ctx, l.ID, *data, a.now())
}
