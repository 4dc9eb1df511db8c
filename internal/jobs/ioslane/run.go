package ioslane

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// iosRun is one run of a lane job.
type iosRun struct {
	x    *IOS
	l    release.Lane
	rel  release.Release
	app  config.App
	data iosLaneData
	// groups caches the app's beta groups for this run.
	groups []appstore.BetaGroup
}

func (r *iosRun) save(ctx context.Context) error {
	return r.x.Store.SetLaneData(ctx, r.l.ID, r.data, r.x.now())
}

// reach records that step is done and ends any wait.
func (r *iosRun) reach(ctx context.Context, step string) error {
	r.data.Step = step
	r.data.Waiting, r.data.WaitingSince, r.data.Polls = "", time.Time{}, 0
	return r.save(ctx)
}

func (r *iosRun) progress(ctx context.Context, kind string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	details["version"], details["build_number"] = r.data.Version, r.data.BuildNumber
	if r.data.BuildID != "" {
		details["build_id"] = r.data.BuildID
	}
	return lane.Progress(ctx, r.x.Store, r.l, kind, details, r.x.now())
}

// runLane is one run of the lane job: from the recorded step to the next
// wait, failure or the hand-over to the reconciler.
func (x *IOS) runLane(ctx context.Context, laneID string) error {
	noClient := ""
	if x.ASC == nil {
		noClient = "no App Store Connect client: set appstore.private_key"
	}
	run, err := lane.LoadStore(ctx, x.Store, x.Apps, laneID, release.IOS, "an iOS store lane", noClient)
	if run == nil || err != nil {
		return err
	}
	l, rel, app := run.Lane, run.Release, run.App
	r := &iosRun{x: x, l: l, rel: rel, app: app}
	if err := x.Store.LaneData(ctx, l.ID, &r.data); err != nil {
		return err
	}
	if r.data.BundleID == "" {
		if err := r.start(ctx); err != nil {
			return err
		}
	}
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{iosStepApp, r.resolveApp},
		{iosStepBuild, r.chooseBuild},
		{iosStepProcessed, r.awaitProcessing},
		{iosStepCompliance, r.exportCompliance},
		{iosStepWhatToTest, r.whatToTest},
		{iosStepInternal, r.internalGroups},
		{iosStepBetaSubmit, r.submitBetaReview},
		{iosStepBetaOK, r.awaitBetaReview},
		{iosStepTestFlight, r.externalGroups},
		{iosStepVersion, r.appStoreVersion},
		{iosStepAttached, r.attachBuild},
		{iosStepWhatsNew, r.whatsNew},
		{iosStepSubmitted, r.submitForReview},
		{iosStepApproved, r.awaitAppReview},
	} {
		if r.data.reached(step.name) {
			continue
		}
		if !r.data.AppStore && slices.Index(iosSteps, step.name) > slices.Index(iosSteps, iosStepTestFlight) {
			break
		}
		if err := step.run(ctx); err != nil {
			return err
		}
		if !r.data.reached(step.name) {
			return fmt.Errorf("ios lane %s: step %s returned without finishing", l.ID, step.name)
		}
	}
	return r.ready(ctx)
}

// start fixes what the lane ships: app, source, marketing version and, when
// the tag says so, the build number.
func (r *iosRun) start(ctx context.Context) error {
	ios := r.app.IOS
	if ios.BundleID == "" {
		return lane.Fail("apps %s ios.bundle_id is empty", r.app.Name)
	}
	version, build, err := iosVersion(r.rel.Version)
	if err != nil {
		return lane.Fail("release %s: %v", r.rel.Tag, err)
	}
	source := ios.BuildSource
	if source == "" {
		source = "pickup"
	}
	r.data = iosLaneData{BundleID: ios.BundleID, Source: source, AppStore: ios.AppStore, Phased: ios.AppStore && ios.PhasedRelease,
		Version: version, BuildNumber: build, AppID: ios.AppID}
	return r.save(ctx)
}

// iosVersion splits a release version into Apple's marketing version
// (major.minor.patch) and, from semver build metadata, the build number.
func iosVersion(v string) (marketing, build string, err error) {
	sv, err := semver.NewVersion(v)
	if err != nil {
		return "", "", fmt.Errorf("version %q is not a semantic version", v)
	}
	marketing = fmt.Sprintf("%d.%d.%d", sv.Major(), sv.Minor(), sv.Patch())
	if md := sv.Metadata(); md != "" {
		if !buildNumberRE.MatchString(md) {
			return "", "", fmt.Errorf("build metadata %q of version %s is not a CFBundleVersion (one to three numbers separated by dots)", md, v)
		}
		build = md
	}
	return marketing, build, nil
}

var buildNumberRE = regexp.MustCompile(`^[0-9]{1,18}(\.[0-9]{1,18}){0,2}$`)

func (r *iosRun) resolveApp(ctx context.Context) error {
	if r.data.AppID == "" {
		a, err := r.x.ASC.FindApp(ctx, r.data.BundleID)
		if errors.Is(err, appstore.ErrNotFound) {
			return lane.Fail("no App Store Connect app has bundle id %s (ios.bundle_id); set ios.app_id or create the app", r.data.BundleID)
		}
		if err := ascFailure("find the app "+r.data.BundleID, err); err != nil {
			return err
		}
		r.data.AppID = a.ID
	}
	return r.reach(ctx, iosStepApp)
}

// ready records the binary and hands the lane to the reconciler.
func (r *iosRun) ready(ctx context.Context) error {
	bin, err := r.binary(ctx)
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("build %s is in TestFlight; distribution is complete", r.data.label())
	switch {
	case r.data.Phased:
		detail = fmt.Sprintf("build %s is approved for the App Store; the phased release starts at the first stage", r.data.label())
	case r.data.AppStore:
		detail = fmt.Sprintf("build %s is approved for the App Store; it is released to everyone at once", r.data.label())
	}
	return lane.Ready(ctx, r.x.Store, r.l.ID, &bin, r.x.now(), detail)
}
