package otalane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// target decides the release's binary range: exactly the recorded binaries
// that share its commit's native fingerprint.
func (o *OTA) target(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *otaLaneData) error {
	fp, err := lane.Fingerprint(ctx, o.Store, app.Name, l.Platform, rel.Commit)
	if err != nil {
		return err
	}
	if fp == "" {
		return refuseLane("no %s native fingerprint is recorded for commit %s, so no binary can be targeted", l.Platform, rel.Commit)
	}
	bins, err := o.Store.Binaries(ctx, app.Name, l.Platform)
	if err != nil {
		return err
	}
	rng, excluded := gate.MatchingRange(bins, fp)
	if rng == "" {
		return refuseLane("no recorded %s binary has the native fingerprint %s of commit %s; a store release is needed", l.Platform, short(fp), short7(rel.Commit))
	}
	data.CodePushApp = gate.CodePushAppName(app.OTA.AppName, l.Platform)
	data.TargetRange = rng
	if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
		return err
	}
	details := map[string]any{"target_range": rng, "fingerprint": fp, "codepush_app": data.CodePushApp}
	if len(excluded) > 0 {
		details["excluded_versions"] = excluded
	}
	return lane.Progress(ctx, o.Store, l, "ota.target", details, o.now())
}

// stage releases the bundle to Staging, or finds the release an earlier run
// made.
func (o *OTA) stage(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *otaLaneData) error {
	hist, err := o.CodePush.History(ctx, data.CodePushApp, codepush.Staging)
	if err != nil {
		return otaReason("read the Staging history", err)
	}
	var staged *codepush.Release
	for i := len(hist) - 1; i >= 0; i-- {
		if h := hist[i]; h.Commit == rel.Commit && h.Method == codepush.MethodUpload && h.AppVersion == data.TargetRange {
			staged = &hist[i]
			break
		}
	}
	if staged == nil {
		pattern := strings.ReplaceAll(app.OTA.BundleAsset, "{platform}", string(l.Platform))
		if o.Assets == nil {
			return refuseLane("no source of GitHub release assets is configured to fetch %q", pattern)
		}
		f, name, err := o.Assets.FetchAsset(ctx, app.Repository, rel.Tag, pattern)
		if errors.Is(err, fs.ErrNotExist) {
			wait := app.OTA.BundleTimeout.D()
			if wait <= 0 {
				wait = o.AssetWait
			}
			if wait <= 0 {
				wait = config.DefaultOTABundleTimeout
			}
			if o.now().Sub(rel.CreatedAt) > wait {
				return refuseLane("the GitHub release of %s has no asset matching %q after %s", rel.Tag, pattern, wait)
			}
			reason := lane.WaitReason(fmt.Sprintf("the asset %q has not appeared on the GitHub release %s", pattern, rel.Tag), rel.CreatedAt, wait)
			if err := lane.Waiting(ctx, o.Store, l.ID, reason, o.now()); err != nil {
				return err
			}
			return river.JobSnooze(time.Minute)
		}
		if err != nil {
			return fmt.Errorf("fetch %s bundle %q: %w", rel.Tag, pattern, err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		// Record once more before releasing: a lane withdrawn since the
		// job began (its tag moved or was deleted) refuses the write, and
		// nothing is released.
		if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
			return err
		}
		r, err := o.CodePush.Release(ctx, codepush.ReleaseInput{
			App: data.CodePushApp, Deployment: codepush.Staging, AppVersion: data.TargetRange,
			Description: otaDescription(rel), Mandatory: app.OTA.Mandatory, Commit: rel.Commit, Package: f,
		})
		if err != nil {
			return otaReason("release "+name+" to Staging", err)
		}
		staged = &r
	}
	data.StagingLabel, data.StagedAt = staged.Label, staged.UploadTime
	if data.StagedAt.IsZero() {
		data.StagedAt = o.now()
	}
	if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
		return err
	}
	return lane.Progress(ctx, o.Store, l, "ota.staged", map[string]any{"codepush_app": data.CodePushApp, "label": staged.Label,
		"target_range": staged.AppVersion, "package_hash": staged.PackageHash, "size": staged.Size}, o.now())
}

func otaDescription(rel release.Release) string {
	d := rel.Tag
	if rel.Notes != "" {
		d += "\n\n" + rel.Notes
	}
	return d
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func short7(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
