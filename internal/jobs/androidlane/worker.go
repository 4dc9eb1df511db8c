package androidlane

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
)

// Worker runs android_lane jobs.
type Worker struct {
	river.WorkerDefaults[lane.AndroidArgs]
	Android *Android
}

// Timeout leaves room for a large AAB upload.
func (w *Worker) Timeout(*river.Job[lane.AndroidArgs]) time.Duration {
	return 30 * time.Minute
}

// NextRetry backs off from 30 s, doubling up to 15 minutes: Play's outages
// and quota windows are short, and a release should not sit for hours.
func (w *Worker) NextRetry(job *river.Job[lane.AndroidArgs]) time.Time {
	return lane.RetryAt(job.JobRow)
}

// Work runs the lane until it is handed to the reconciler. Play refusals
// and bad inputs fail the lane with the reason and cancel the job; outages
// return the error so River retries; waiting for CI's bundle snoozes.
func (w *Worker) Work(ctx context.Context, job *river.Job[lane.AndroidArgs]) error {
	a := w.Android
	return lane.Attempt(ctx, a.Store, a.log(), "android", job.Args.LaneID, job.JobRow, a.now(), a.runLane(ctx, job.Args.LaneID))
}

// runLane is one run of the lane job: bundle, internal track, ready.
func (a *Android) runLane(ctx context.Context, laneID string) error {
	noClient := ""
	if a.Play == nil {
		noClient = "no Google Play client: set playstore.service_account"
	}
	run, err := lane.LoadStore(ctx, a.Store, a.Apps, laneID, release.Android, "an Android store lane", noClient)
	if run == nil || err != nil {
		return err
	}
	l, rel, app := run.Lane, run.Release, run.App
	var data androidLaneData
	if err := a.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	if data.Package == "" {
		if app.Android.PackageName == "" {
			return lane.Fail("apps %s android.package_name is empty", app.Name)
		}
		data.Package, data.Track = app.Android.PackageName, app.Android.Track
		if data.Track == "" {
			data.Track = playstore.TrackProduction
		}
		if err := a.Store.SetLaneData(ctx, l.ID, data, a.now()); err != nil {
			return err
		}
	}

	if !data.Uploaded {
		if app.Android.AABAsset != "" {
			err = a.uploadAsset(ctx, l, rel, app, &data)
		} else {
			err = a.pickUp(ctx, l, rel, app, &data)
		}
		if err != nil {
			return err
		}
	}

	if !data.Internal {
		if err := a.internalTrack(ctx, l, rel, app, &data); err != nil {
			return err
		}
	}

	fp, err := lane.Fingerprint(ctx, a.Store, rel.App, release.Android, rel.Commit)
	if err != nil {
		return err
	}
	now := a.now()
	bin := release.Binary{App: rel.App, Platform: release.Android, Version: rel.Version, BuildNumber: strconv.FormatInt(data.VersionCode, 10),
		Commit: rel.Commit, Fingerprint: fp, ReleaseID: rel.ID, CreatedAt: now}
	where := "on the internal track"
	if app.Android.SkipInternal || data.Track == playstore.TrackInternal {
		where = "in the app"
	}
	return lane.Ready(ctx, a.Store, l.ID, &bin, now, fmt.Sprintf("versionCode %d is %s; the %s rollout starts at the first stage", data.VersionCode, where, data.Track))
}
