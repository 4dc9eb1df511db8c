package otalane

import (
	"context"
	"os"
	"strings"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// stageExpo is target and stage for an app served over the Expo Updates
// protocol: the GitHub release asset app.ota.expo.dist_asset holds the
// output of `npx expo export`; its app config (expoConfig.json) gives the
// runtime version the update targets, and the native gate checks the
// commit against the binaries with that runtime version as Staging receives
// it. The history is read first, so a retry finds an update an earlier run
// released.
func (o *OTA) stageExpo(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *otaLaneData) error {
	data.CodePushApp = gate.CodePushAppName(app.OTA.AppName, l.Platform)
	hist, err := o.CodePush.History(ctx, data.CodePushApp, codepush.Staging)
	if err != nil {
		return otaReason("read the Staging history", err)
	}
	staged := lastUpload(hist, rel.Commit, "")
	if staged == nil {
		pattern := strings.ReplaceAll(app.OTA.Expo.DistAsset, "{platform}", string(l.Platform))
		f, name, err := o.fetchAsset(ctx, l, rel, app, pattern, "export", "export")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		dir, err := os.MkdirTemp("", "expo-dist-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dist, err := expoupdates.ExtractDist(f, dir)
		if err != nil {
			return refuseLane("the asset %s is not an npx expo export: %v", name, err)
		}
		// Record once more before releasing: a lane withdrawn since the
		// job began (its tag moved or was deleted) refuses the write, and
		// nothing is released.
		if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
			return err
		}
		r, _, err := expoupdates.Release(ctx, o.CodePush, expoupdates.ReleaseInput{
			App: data.CodePushApp, Deployment: codepush.Staging, Dist: dist, Platform: string(l.Platform),
			Description: otaDescription(rel), Mandatory: app.OTA.Mandatory, Commit: rel.Commit,
		})
		if err != nil {
			return otaReason("release the Expo export "+name+" to Staging", err)
		}
		staged = &r
	}
	data.TargetRange = staged.AppVersion
	data.StagingLabel, data.StagedAt = staged.Label, staged.UploadTime
	if data.StagedAt.IsZero() {
		data.StagedAt = o.now()
	}
	if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
		return err
	}
	if err := lane.Progress(ctx, o.Store, l, "ota.target", map[string]any{"runtime_version": staged.AppVersion,
		"codepush_app": data.CodePushApp, "protocol": "expo"}, o.now()); err != nil {
		return err
	}
	return lane.Progress(ctx, o.Store, l, "ota.staged", map[string]any{"codepush_app": data.CodePushApp, "label": staged.Label,
		"runtime_version": staged.AppVersion, "package_hash": staged.PackageHash, "size": staged.Size}, o.now())
}
