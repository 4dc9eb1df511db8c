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
	// Binaries recorded under an older fingerprint algorithm are compared
	// by their commit's fingerprint under the current rules (the planner
	// recorded the live binary's).
	if bins, err = gate.CurrentFingerprints(ctx, o.Store, app.Name, l.Platform, bins); err != nil {
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
	staged := lastUpload(hist, rel.Commit, data.TargetRange)
	if staged == nil {
		pattern := strings.ReplaceAll(app.OTA.BundleAsset, "{platform}", string(l.Platform))
		f, name, err := o.fetchAsset(ctx, l, rel, app, pattern, "asset", "bundle")
		if err != nil {
			return err
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

// lastUpload is the latest upload in a deployment's history of commit (for
// appVersion, unless it is ""): the release an earlier run of the lane made,
// so a retry releases nothing twice.
func lastUpload(hist []codepush.Release, commit, appVersion string) *codepush.Release {
	for i := len(hist) - 1; i >= 0; i-- {
		if h := hist[i]; h.Commit == commit && h.Method == codepush.MethodUpload && (appVersion == "" || h.AppVersion == appVersion) {
			return &hist[i]
		}
	}
	return nil
}

// fetchAsset fetches the GitHub release asset of rel matching pattern to a
// temporary file (the caller closes and removes it). While the asset has not
// appeared the lane waits (app.ota.bundle_timeout, else AssetWait, else the
// default) and the job snoozes; after that the lane is refused. noun names
// the asset in the wait reason, what in a fetch error.
func (o *OTA) fetchAsset(ctx context.Context, l release.Lane, rel release.Release, app config.App, pattern, noun, what string) (*os.File, string, error) {
	if o.Assets == nil {
		return nil, "", refuseLane("no source of GitHub release assets is configured to fetch %q", pattern)
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
			return nil, "", refuseLane("the GitHub release of %s has no asset matching %q after %s", rel.Tag, pattern, wait)
		}
		reason := lane.WaitReason(fmt.Sprintf("the %s %q has not appeared on the GitHub release %s", noun, pattern, rel.Tag), rel.CreatedAt, wait)
		if err := lane.Waiting(ctx, o.Store, l.ID, reason, o.now()); err != nil {
			return nil, "", err
		}
		return nil, "", river.JobSnooze(time.Minute)
	}
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s %s %q: %w", rel.Tag, what, pattern, err)
	}
	return f, name, nil
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
