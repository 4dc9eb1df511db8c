package jobs

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// IOS drives App Store Connect for iOS store lanes. Its lane job takes the
// release's build through processing and TestFlight (and, with ios.app_store,
// App Review), records the binary and hands the lane to the reconciler; as the
// lanes' Executor it starts, pauses, resumes and completes Apple's phased
// release. It never removes an app from sale.
//
// The lane job is a state machine whose position is kept in the lane's data:
// each run continues from the last recorded step, and every step reads App
// Store Connect before it writes (the appstore client does so for every
// mutation), so a run repeated after a crash sends no mutation twice.
//
// The build number: a tag with semver build metadata names it (v1.4.0+45 is
// marketing version 1.4.0, build 45). Otherwise an uploaded IPA declares it in
// its Info.plist (CFBundleVersion), and a picked-up build is the newest build
// of the marketing version in App Store Connect that no other release of the
// app shipped. Once chosen it is kept in the lane's data and never changes.
type IOS struct {
	Store *store.Store
	ASC   *appstore.Client
	// Apps is the configuration by app name.
	Apps map[string]config.App
	// Assets fetches ios.ipa_asset from the tag's GitHub release.
	Assets Assets
	// IPAVersion reads the marketing version and build number an IPA
	// declares; nil means IPAVersion.
	IPAVersion func(r io.ReaderAt, size int64) (version, build string, err error)
	// MaxPoll caps the interval between two polls of App Store Connect
	// (default 10 minutes); a nearly spent hourly budget stretches it.
	MaxPoll time.Duration
	Now     func() time.Time
	Log     *slog.Logger

	// observed holds Observe's phased-release reads for the Execute of
	// the same reconcile pass, by lane id.
	obsMu    sync.Mutex
	observed map[string]observed
}

// The steps of an iOS lane job, in order. A lane's data records the last one
// reached.
const (
	iosStepApp        = "app"                   // the App Store Connect app is known
	iosStepBuild      = "build"                 // the build is chosen (found or uploaded)
	iosStepProcessed  = "processed"             // processing ended VALID
	iosStepCompliance = "export_compliance"     // usesNonExemptEncryption answered
	iosStepWhatToTest = "what_to_test"          // release notes set
	iosStepInternal   = "internal_groups"       // in the internal groups
	iosStepBetaSubmit = "beta_review_submitted" // submitted to Beta App Review
	iosStepBetaOK     = "beta_approved"         // Beta App Review approved it
	iosStepTestFlight = "in_testflight"         // in every configured group
	iosStepVersion    = "app_store_version"     // the App Store version exists
	iosStepAttached   = "build_attached"        // the build is the version's build
	iosStepSubmitted  = "app_store_submitted"   // submitted to App Review
	iosStepApproved   = "app_store_approved"    // approved, waiting for release
)

var iosSteps = []string{"", iosStepApp, iosStepBuild, iosStepProcessed, iosStepCompliance, iosStepWhatToTest, iosStepInternal,
	iosStepBetaSubmit, iosStepBetaOK, iosStepTestFlight, iosStepVersion, iosStepAttached, iosStepSubmitted, iosStepApproved}

// iosLaneData is an iOS lane's memory between job runs and reconcile
// passes, stored as the lane's data. The ids are also how the App Store
// Connect webhook finds the lanes an event is about.
type iosLaneData struct {
	// BundleID, Source, AppStore and Phased are fixed when the lane starts,
	// so a config change cannot redirect a lane in flight.
	BundleID string `json:"bundle_id"`
	Source   string `json:"source"`
	AppStore bool   `json:"app_store,omitempty"`
	Phased   bool   `json:"phased_release,omitempty"`
	// Version is the marketing version (CFBundleShortVersionString) and
	// BuildNumber the CFBundleVersion; once set, BuildNumber never changes.
	Version     string `json:"version"`
	BuildNumber string `json:"build_number,omitempty"`
	AppID       string `json:"app_id,omitempty"`
	Asset       string `json:"asset,omitempty"`
	UploadID    string `json:"upload_id,omitempty"`
	BuildID     string `json:"build_id,omitempty"`
	VersionID   string `json:"version_id,omitempty"`
	// ReviewSubmissionID is the App Review submission holding VersionID.
	ReviewSubmissionID string `json:"review_submission_id,omitempty"`
	// ExternalGroupIDs are the ids of ios.external_groups, resolved before
	// Beta App Review so the groups are not listed again after it.
	ExternalGroupIDs []string `json:"external_group_ids,omitempty"`
	// Step is the last step reached (see iosSteps).
	Step string `json:"step,omitempty"`
	// Waiting names what the job is waiting for, since when and how often
	// it looked; polls slow down as Polls grows.
	Waiting      string    `json:"waiting,omitempty"`
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	Polls        int       `json:"polls,omitempty"`
}

func (d *iosLaneData) reached(step string) bool {
	return slices.Index(iosSteps, d.Step) >= slices.Index(iosSteps, step)
}

// label names the build in reasons: "1.4.0 (45)".
func (d *iosLaneData) label() string {
	if d.BuildNumber == "" {
		return d.Version
	}
	return fmt.Sprintf("%s (%s)", d.Version, d.BuildNumber)
}

// references reports whether an App Store Connect resource id is one this
// lane waits on (a build upload, a build or its beta detail, a version).
func (d *iosLaneData) references(id string) bool {
	return id != "" && (id == d.UploadID || id == d.BuildID || id == d.VersionID || id == d.ReviewSubmissionID)
}

func (x *IOS) now() time.Time {
	if x.Now == nil {
		return time.Now().UTC()
	}
	return x.Now().UTC()
}

func (x *IOS) log() *slog.Logger {
	if x.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return x.Log
}

// IOSLaneWorker runs ios_lane jobs.
type IOSLaneWorker struct {
	river.WorkerDefaults[IOSLaneArgs]
	IOS *IOS
}

// Timeout leaves room for a large IPA upload.
func (w *IOSLaneWorker) Timeout(*river.Job[IOSLaneArgs]) time.Duration { return 30 * time.Minute }

// NextRetry backs off from 30 s, doubling up to 15 minutes: App Store
// Connect's outages are usually short.
func (w *IOSLaneWorker) NextRetry(job *river.Job[IOSLaneArgs]) time.Time {
	return laneRetryAt(job.JobRow)
}

// Work runs the lane until it is handed to the reconciler. Refusals by App
// Store Connect, rejected reviews, broken builds and bad configuration fail
// the lane with the reason and cancel the job; outages return the error so
// River retries; waiting (processing, review, an exhausted hourly budget)
// snoozes.
func (w *IOSLaneWorker) Work(ctx context.Context, job *river.Job[IOSLaneArgs]) error {
	x := w.IOS
	laneID := job.Args.LaneID
	err := x.runLane(ctx, laneID)
	var budget *iosBudgetWait
	if errors.As(err, &budget) {
		// Say why the lane stands still; the snooze is the retry.
		if l, lerr := x.Store.GetLane(ctx, laneID); lerr == nil {
			_ = LaneProgress(ctx, x.Store, l, "ios.rate_limited", map[string]any{"reason": budget.reason}, x.now())
		}
		x.log().Warn("ios lane waits for App Store Connect's hourly budget", "lane", laneID, "after", budget.after.String())
		return river.JobSnooze(budget.after)
	}
	return laneAttempt(ctx, x.Store, x.log(), "ios", laneID, job.JobRow, x.now(), err)
}

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
	return LaneProgress(ctx, r.x.Store, r.l, kind, details, r.x.now())
}

// runLane is one run of the lane job: from the recorded step to the next
// wait, failure or the hand-over to the reconciler.
func (x *IOS) runLane(ctx context.Context, laneID string) error {
	noClient := ""
	if x.ASC == nil {
		noClient = "no App Store Connect client: set appstore.private_key"
	}
	run, err := loadStoreLane(ctx, x.Store, x.Apps, laneID, release.IOS, "an iOS store lane", noClient)
	if run == nil || err != nil {
		return err
	}
	l, rel, app := run.lane, run.rel, run.app
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
		return failLane("apps %s ios.bundle_id is empty", r.app.Name)
	}
	version, build, err := iosVersion(r.rel.Version)
	if err != nil {
		return failLane("release %s: %v", r.rel.Tag, err)
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
			return failLane("no App Store Connect app has bundle id %s (ios.bundle_id); set ios.app_id or create the app", r.data.BundleID)
		}
		if err := ascFailure("find the app "+r.data.BundleID, err); err != nil {
			return err
		}
		r.data.AppID = a.ID
	}
	return r.reach(ctx, iosStepApp)
}

// chooseBuild finds the build CI uploaded, or uploads the IPA asset.
func (r *iosRun) chooseBuild(ctx context.Context) error {
	if r.data.Source == "upload" {
		return r.upload(ctx)
	}
	return r.pickUp(ctx)
}

func (r *iosRun) pickUp(ctx context.Context) error {
	x, d := r.x, &r.data
	timeout := r.app.IOS.ProcessingTimeout.D()
	var b *appstore.Build
	if d.BuildNumber != "" {
		found, err := x.ASC.FindBuild(ctx, d.AppID, appstore.PlatformIOS, d.Version, d.BuildNumber)
		if errors.Is(err, appstore.ErrNotFound) {
			return r.wait(ctx, "pickup", timeout, fmt.Sprintf("build %s has not appeared in App Store Connect", d.label()))
		}
		if err := ascFailure("find build "+d.label(), err); err != nil {
			return err
		}
		taken, err := r.chosenElsewhere(ctx)
		if err != nil {
			return err
		}
		if other, ok := taken[found.ID]; ok {
			return failLane("build %s is already the build of release %s; tag a new build number", d.label(), other)
		}
		b = found
	} else {
		builds, err := x.ASC.FindBuilds(ctx, appstore.BuildQuery{AppID: d.AppID, Version: d.Version, Platform: appstore.PlatformIOS, Limit: 20})
		if err := ascFailure("list builds of "+d.Version, err); err != nil {
			return err
		}
		shipped, err := r.shippedElsewhere(ctx)
		if err != nil {
			return err
		}
		taken, err := r.chosenElsewhere(ctx)
		if err != nil {
			return err
		}
		for i := range builds {
			if _, ok := taken[builds[i].ID]; !ok && !shipped[builds[i].Version] {
				b = &builds[i]
				break
			}
		}
		if b == nil {
			return r.wait(ctx, "pickup", timeout, fmt.Sprintf("no new build of %s has appeared in App Store Connect", d.Version))
		}
		d.BuildNumber = b.Version
	}
	d.BuildID = b.ID
	if err := r.reach(ctx, iosStepBuild); err != nil {
		return err
	}
	if err := r.progress(ctx, "ios.build_found", map[string]any{"processing_state": string(b.ProcessingState)}); err != nil {
		return err
	}
	// This read was the first poll of processing.
	return r.processed(ctx, b.ProcessingState)
}

// shippedElsewhere lists the build numbers other releases of the app
// recorded, so a pickup never takes an older release's build.
func (r *iosRun) shippedElsewhere(ctx context.Context) (map[string]bool, error) {
	bins, err := r.x.Store.Binaries(ctx, r.rel.App, release.IOS)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, b := range bins {
		if b.ReleaseID != r.rel.ID {
			out[b.BuildNumber] = true
		}
	}
	return out, nil
}

// chosenElsewhere maps the build ids other iOS lanes of the app have
// chosen (kept in their lane data, before any binary is recorded) to
// their release's tag, so two releases never ship one build. Failed and
// cancelled lanes release their build.
func (r *iosRun) chosenElsewhere(ctx context.Context) (map[string]string, error) {
	rels, err := r.x.Store.ListReleases(ctx, r.rel.App, 200)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, rel := range rels {
		if rel.ID == r.rel.ID {
			continue
		}
		lanes, err := r.x.Store.Lanes(ctx, rel.ID)
		if err != nil {
			return nil, err
		}
		for _, l := range lanes {
			if l.Platform != release.IOS || l.Kind != release.KindStore || l.ID == r.l.ID ||
				l.Status.State == release.StateFailed || l.Status.State == release.StateCancelled {
				continue
			}
			var other iosLaneData
			if err := r.x.Store.LaneData(ctx, l.ID, &other); err != nil {
				return nil, err
			}
			if other.BuildID != "" {
				out[other.BuildID] = rel.Tag
			}
		}
	}
	return out, nil
}

// upload sends the release's IPA once (UploadBuild lists the app's uploads
// first and resumes or returns an existing one) and waits for App Store
// Connect to turn it into a build.
func (r *iosRun) upload(ctx context.Context) error {
	x, d := r.x, &r.data
	timeout := r.app.IOS.ProcessingTimeout.D()
	if d.UploadID == "" {
		pattern := r.app.IOS.IPAAsset
		if x.Assets == nil || pattern == "" {
			return failLane("ios.build_source is upload but no GitHub asset reader or ios.ipa_asset is configured")
		}
		f, name, err := x.Assets.FetchAsset(ctx, r.app.Repository, r.rel.Tag, pattern)
		if errors.Is(err, fs.ErrNotExist) {
			return r.wait(ctx, "asset", timeout, fmt.Sprintf("the asset %q has not appeared on the GitHub release %s", pattern, r.rel.Tag))
		}
		if err != nil {
			return fmt.Errorf("fetch %s from the GitHub release %s: %w", pattern, r.rel.Tag, err)
		}
		defer func() {
			f.Close()
			os.Remove(f.Name())
		}()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		read := x.IPAVersion
		if read == nil {
			read = func(r io.ReaderAt, size int64) (string, string, error) { return IPAVersionContext(ctx, r, size) }
		}
		version, build, err := read(f, fi.Size())
		switch {
		case err != nil:
			return failLane("asset %s of %s: %v", name, r.rel.Tag, err)
		case version != d.Version:
			return failLane("asset %s of %s is version %s, but the tag says %s", name, r.rel.Tag, version, d.Version)
		case d.BuildNumber != "" && build != d.BuildNumber:
			return failLane("asset %s of %s is build %s, but this lane ships build %s; tag a new release for a new build", name, r.rel.Tag, build, d.BuildNumber)
		}
		if d.BuildNumber == "" {
			d.BuildNumber, d.Asset = build, name
			if err := r.save(ctx); err != nil {
				return err
			}
		}
		up, err := x.ASC.UploadBuild(ctx, appstore.UploadRequest{AppID: d.AppID, Version: d.Version, BuildNumber: d.BuildNumber,
			Platform: appstore.PlatformIOS, FileName: path.Base(name), File: f, Size: fi.Size()})
		if err := ascFailure("upload "+name, err); err != nil {
			return err
		}
		d.UploadID, d.Asset = up.ID, name
		if err := r.save(ctx); err != nil {
			return err
		}
		if err := r.progress(ctx, "ios.uploaded", map[string]any{"asset": name, "upload_id": up.ID, "bytes": fi.Size()}); err != nil {
			return err
		}
	}
	up, err := x.ASC.BuildUpload(ctx, d.UploadID)
	if err := ascFailure("read upload "+d.UploadID, err); err != nil {
		return err
	}
	switch {
	case up.State == appstore.UploadFailed:
		var msgs []string
		for _, e := range up.Errors {
			msgs = append(msgs, fmt.Sprintf("%s: %s", e.Code, e.Description))
		}
		if len(msgs) == 0 {
			msgs = []string{"no reason given"}
		}
		return failLane("App Store Connect refused the upload of %s: %s", d.label(), strings.Join(msgs, "; "))
	case up.State == appstore.UploadComplete && up.BuildID != "":
		d.BuildID = up.BuildID
		return r.reach(ctx, iosStepBuild)
	}
	return r.wait(ctx, "processing", timeout, fmt.Sprintf("upload of %s still %s", d.label(), up.State))
}

// awaitProcessing polls the build until processing ends.
func (r *iosRun) awaitProcessing(ctx context.Context) error {
	b, err := r.x.ASC.Build(ctx, r.data.BuildID)
	if err := ascFailure("read build "+r.data.label(), err); err != nil {
		return err
	}
	return r.processed(ctx, b.ProcessingState)
}

// processed acts on a processing state just read: go on, fail or wait.
func (r *iosRun) processed(ctx context.Context, state appstore.ProcessingState) error {
	d := &r.data
	switch state {
	case appstore.ProcessingStateValid:
		polls := d.Polls + 1
		if err := r.reach(ctx, iosStepProcessed); err != nil {
			return err
		}
		return r.progress(ctx, "ios.processed", map[string]any{"reads": polls})
	case appstore.ProcessingStateInvalid, appstore.ProcessingStateFailed:
		return failLane("build %s ended %s in App Store Connect processing; upload a fixed build under a new build number", d.label(), state)
	}
	return r.wait(ctx, "processing", r.app.IOS.ProcessingTimeout.D(), fmt.Sprintf("build %s still %s", d.label(), state))
}

func (r *iosRun) exportCompliance(ctx context.Context) error {
	// SetUsesNonExemptEncryption reads the build first and sends nothing
	// when the answer is already given.
	want := r.app.IOS.UsesNonExemptEncryption
	_, err := r.x.ASC.SetUsesNonExemptEncryption(ctx, r.data.BuildID, want)
	var mismatch *appstore.EncryptionMismatchError
	if errors.As(err, &mismatch) {
		return failLane("ios.uses_non_exempt_encryption is %t, but build %s already declares usesNonExemptEncryption=%t (its Info.plist's ITSAppUsesNonExemptEncryption, or an answer in App Store Connect); make them agree and tag a new build",
			want, r.data.label(), mismatch.Declared)
	}
	if err := ascFailure("set export compliance of "+r.data.label(), err); err != nil {
		return err
	}
	return r.reach(ctx, iosStepCompliance)
}

func (r *iosRun) whatToTest(ctx context.Context) error {
	if notes := WhatToTest(r.rel.Notes); notes != "" {
		locale := r.app.IOS.Locale
		if locale == "" {
			locale = "en-US"
		}
		// SetWhatToTest reads the localization first: same text, no write.
		_, err := r.x.ASC.SetWhatToTest(ctx, r.data.BuildID, locale, notes)
		if err := ascFailure("set What to Test of "+r.data.label(), err); err != nil {
			return err
		}
	}
	return r.reach(ctx, iosStepWhatToTest)
}

// WhatToTest fits release notes into TestFlight's 4,000 characters: a cut
// ends at a whole line when one ends in the last fifth of the room, else at
// a whole character, and says so with "…". Invalid UTF-8 is replaced.
func WhatToTest(notes string) string {
	notes = strings.TrimSpace(strings.ToValidUTF8(notes, "\uFFFD"))
	if utf8.RuneCountInString(notes) <= appstore.MaxWhatToTest {
		return notes
	}
	room := appstore.MaxWhatToTest - 1 // for "…"
	cut, n := 0, 0
	for i := range notes {
		if n == room {
			cut = i
			break
		}
		n++
	}
	out := notes[:cut]
	if nl := strings.LastIndexByte(out, '\n'); nl >= 0 && utf8.RuneCountInString(out[:nl]) >= room*4/5 {
		out = out[:nl]
	}
	return strings.TrimRight(out, " \t\r\n") + "…"
}

// groupIDs maps configured group names to ids; an unknown name, or a group
// of the wrong kind, fails the lane naming it.
func (r *iosRun) groupIDs(ctx context.Context, key string, names []string, internal bool) ([]string, error) {
	if r.groups == nil {
		gs, err := r.x.ASC.BetaGroups(ctx, r.data.AppID)
		if err := ascFailure("list beta groups", err); err != nil {
			return nil, err
		}
		r.groups = gs
	}
	var ids, known []string
	for _, g := range r.groups {
		known = append(known, fmt.Sprintf("%q", g.Name))
	}
	slices.Sort(known)
	for _, name := range names {
		i := slices.IndexFunc(r.groups, func(g appstore.BetaGroup) bool { return g.Name == name })
		switch {
		case i < 0:
			return nil, failLane("%s: beta group %q does not exist in App Store Connect app %s (it has %s)", key, name, r.data.AppID, strings.Join(known, ", "))
		case r.groups[i].IsInternalGroup != internal:
			kind := "an external"
			if r.groups[i].IsInternalGroup {
				kind = "an internal"
			}
			return nil, failLane("%s: beta group %q is %s group", key, name, kind)
		}
		ids = append(ids, r.groups[i].ID)
	}
	return ids, nil
}

func (r *iosRun) internalGroups(ctx context.Context) error {
	if names := r.app.IOS.InternalGroups; len(names) > 0 {
		ids, err := r.groupIDs(ctx, "ios.internal_groups", names, true)
		if err != nil {
			return err
		}
		// AddBuildToGroups reads the build's groups and links only the missing ones.
		added, err := r.x.ASC.AddBuildToGroups(ctx, r.data.BuildID, ids...)
		if errors.Is(err, appstore.ErrInvalid) {
			return r.notReadyForTesting(ctx, "add "+r.data.label()+" to the internal groups", err)
		}
		if err := ascFailure("add "+r.data.label()+" to the internal groups", err); err != nil {
			return err
		}
		if err := r.reach(ctx, iosStepInternal); err != nil {
			return err
		}
		if len(r.app.IOS.ExternalGroups) > 0 {
			return r.progress(ctx, "ios.internal_testing", map[string]any{"groups": names, "added": len(added)})
		}
		return nil
	}
	return r.reach(ctx, iosStepInternal)
}

// notReadyForTesting handles App Store Connect's 422 to a group link: a
// VALID build can still be in TestFlight's own processing or export
// compliance review for a while, which is worth waiting for; anything else
// fails the lane with Apple's answer and the build's TestFlight state.
func (r *iosRun) notReadyForTesting(ctx context.Context, step string, cause error) error {
	bd, err := r.x.ASC.BuildBetaDetail(ctx, r.data.BuildID)
	if err := ascFailure("read the TestFlight state of "+r.data.label(), err); err != nil {
		return err
	}
	switch bd.InternalBuildState {
	case appstore.BetaStateProcessing:
		return r.wait(ctx, "beta_processing", r.app.IOS.ProcessingTimeout.D(), fmt.Sprintf("build %s is still PROCESSING for TestFlight", r.data.label()))
	case appstore.BetaBuildState("IN_EXPORT_COMPLIANCE_REVIEW"):
		return r.wait(ctx, "export_compliance_review", 0, fmt.Sprintf("build %s is in export compliance review", r.data.label()))
	}
	return failLane("%s: %v (TestFlight state %s)", step, cause, bd.InternalBuildState)
}

func (r *iosRun) submitBetaReview(ctx context.Context) error {
	if len(r.app.IOS.ExternalGroups) == 0 {
		// No external testers, no Beta App Review.
		return r.reach(ctx, iosStepBetaOK)
	}
	// Check the groups before anything goes to review.
	ids, err := r.groupIDs(ctx, "ios.external_groups", r.app.IOS.ExternalGroups, false)
	if err != nil {
		return err
	}
	r.data.ExternalGroupIDs = ids
	// SubmitForBetaReview returns the build's existing submission if any.
	sub, err := r.x.ASC.SubmitForBetaReview(ctx, r.data.BuildID)
	if errors.Is(err, appstore.ErrConflict) {
		return r.wait(ctx, "beta_submit", 0, fmt.Sprintf("build %s waits to be submitted to Beta App Review: %v", r.data.label(), err))
	}
	if err := ascFailure("submit "+r.data.label()+" to Beta App Review", err); err != nil {
		return err
	}
	if err := r.reach(ctx, iosStepBetaSubmit); err != nil {
		return err
	}
	return r.progress(ctx, "ios.beta_review_submitted", map[string]any{"submission_id": sub.ID, "state": string(sub.State)})
}

func (r *iosRun) awaitBetaReview(ctx context.Context) error {
	sub, err := r.x.ASC.BetaReviewSubmission(ctx, r.data.BuildID)
	if err := ascFailure("read the Beta App Review of "+r.data.label(), err); err != nil {
		return err
	}
	switch sub.State {
	case appstore.BetaReviewApproved:
		if err := r.reach(ctx, iosStepBetaOK); err != nil {
			return err
		}
		return r.progress(ctx, "ios.beta_approved", nil)
	case appstore.BetaReviewRejected:
		return failLane("Beta App Review rejected build %s; see App Store Connect for the reviewer's notes, fix and tag a new build", r.data.label())
	}
	return r.wait(ctx, "beta_review", 0, fmt.Sprintf("build %s is %s at Beta App Review", r.data.label(), sub.State))
}

func (r *iosRun) externalGroups(ctx context.Context) error {
	if names := r.app.IOS.ExternalGroups; len(names) > 0 {
		ids := r.data.ExternalGroupIDs
		if len(ids) != len(names) {
			var err error
			if ids, err = r.groupIDs(ctx, "ios.external_groups", names, false); err != nil {
				return err
			}
		}
		if _, err := r.x.ASC.AddBuildToGroups(ctx, r.data.BuildID, ids...); err != nil {
			if err := ascFailure("add "+r.data.label()+" to the external groups", err); err != nil {
				return err
			}
		}
	}
	if err := r.reach(ctx, iosStepTestFlight); err != nil {
		return err
	}
	// The binary is in testers' hands: record it now, so OTA releases can
	// target it even while App Review is pending.
	bin, err := r.binary(ctx)
	if err != nil {
		return err
	}
	if _, err := r.x.Store.RecordBinary(ctx, bin); err != nil {
		return err
	}
	groups := append(slices.Clone(r.app.IOS.InternalGroups), r.app.IOS.ExternalGroups...)
	return r.progress(ctx, "ios.in_testflight", map[string]any{"groups": groups})
}

func (r *iosRun) binary(ctx context.Context) (release.Binary, error) {
	fp, err := LaneFingerprint(ctx, r.x.Store, r.rel.App, release.IOS, r.rel.Commit)
	if err != nil {
		return release.Binary{}, err
	}
	return release.Binary{App: r.rel.App, Platform: release.IOS, Version: r.data.Version, BuildNumber: r.data.BuildNumber,
		Commit: r.rel.Commit, Fingerprint: fp, ReleaseID: r.rel.ID, CreatedAt: r.x.now()}, nil
}

func (r *iosRun) appStoreVersion(ctx context.Context) error {
	// Finds the version first; creates it (release type MANUAL, so the
	// reconciler decides when it goes live) only when missing.
	v, created, err := r.x.ASC.FindOrCreateAppStoreVersion(ctx, r.data.AppID, appstore.PlatformIOS, r.data.Version)
	if errors.Is(err, appstore.ErrConflict) {
		// Another version is in flight (in review, or approved and not
		// released): only one can be edited at a time. It ends on its own.
		return r.wait(ctx, "app_store_version", 0, fmt.Sprintf("App Store version %s cannot be created yet: %v", r.data.Version, err))
	}
	if err := ascFailure("find or create App Store version "+r.data.Version, err); err != nil {
		return err
	}
	switch v.AppVersionState {
	case appstore.VersionReadyForDistribution, appstore.VersionProcessingForDistribution, appstore.VersionReplacedWithNewVersion,
		appstore.VersionPendingAppleRelease:
		return failLane("App Store version %s is already %s; tag a new version", r.data.Version, v.AppVersionState)
	}
	if v.ReleaseType != appstore.ReleaseManual {
		// FindOrCreateAppStoreVersion makes an editable version MANUAL; one
		// it could not change would go live on approval without the
		// reconciler.
		return failLane("App Store version %s has release type %s and is %s, so it cannot be made MANUAL; releasepilot must decide when it goes live",
			r.data.Version, v.ReleaseType, v.AppVersionState)
	}
	r.data.VersionID = v.ID
	if err := r.reach(ctx, iosStepVersion); err != nil {
		return err
	}
	return r.progress(ctx, "ios.app_store_version", map[string]any{"version_id": v.ID, "created": created, "state": string(v.AppVersionState)})
}

func (r *iosRun) attachBuild(ctx context.Context) error {
	// AttachBuild reads the attached build first and sends nothing if it is ours.
	err := r.x.ASC.AttachBuild(ctx, r.data.VersionID, r.data.BuildID)
	if err := ascFailure("attach build "+r.data.label()+" to App Store version "+r.data.Version, err); err != nil {
		return err
	}
	return r.reach(ctx, iosStepAttached)
}

func (r *iosRun) submitForReview(ctx context.Context) error {
	if r.data.Phased {
		// The phased release must exist before review: a version approved
		// without one goes to everyone at once when released, and Apple
		// allows setting it up only until the version is released.
		// CreatePhasedRelease reads first, so this also verifies it.
		pr, err := r.x.ASC.CreatePhasedRelease(ctx, r.data.VersionID, appstore.PhasedInactive)
		if err := ascFailure("set up the phased release of App Store version "+r.data.Version, err); err != nil {
			return err
		}
		if pr.State != appstore.PhasedInactive {
			return failLane("the phased release of App Store version %s is already %s before review", r.data.Version, pr.State)
		}
	}
	// SubmitForReview reads the version and the app's open submissions
	// first and reuses the one holding this version.
	sub, err := r.x.ASC.SubmitForReview(ctx, r.data.AppID, appstore.PlatformIOS, r.data.VersionID)
	if errors.Is(err, appstore.ErrSubmissionInFlight) {
		return r.wait(ctx, "review_submit", 0, fmt.Sprintf("App Store version %s waits to be submitted: another submission of the app is in review", r.data.Version))
	}
	if err := ascFailure("submit App Store version "+r.data.Version+" for review", err); err != nil {
		return err
	}
	r.data.ReviewSubmissionID = sub.ID
	if err := r.reach(ctx, iosStepSubmitted); err != nil {
		return err
	}
	return r.progress(ctx, "ios.app_store_submitted", map[string]any{"version_id": r.data.VersionID, "submission_id": sub.ID, "state": string(sub.State)})
}

func (r *iosRun) awaitAppReview(ctx context.Context) error {
	v, err := r.x.ASC.AppStoreVersion(ctx, r.data.VersionID)
	if err := ascFailure("read App Store version "+r.data.Version, err); err != nil {
		return err
	}
	switch v.AppVersionState {
	case appstore.VersionReadyForDistribution, appstore.VersionPendingAppleRelease, appstore.VersionProcessingForDistribution:
		// Approved and released (or about to be) by App Store Connect, not
		// by the reconciler: the release type was changed after the lane
		// set it to MANUAL. With our phased release Apple starts at day 1
		// and the reconciler can still pause it; without one everyone gets
		// it at once, and the lane must not report that as its success.
		if !r.data.Phased {
			return failLane("App Store version %s is %s: App Store Connect released it on approval (release type %s), not releasepilot; it reaches everyone at once",
				r.data.Version, v.AppVersionState, v.ReleaseType)
		}
		_, err := r.x.ASC.PhasedRelease(ctx, r.data.VersionID)
		if errors.Is(err, appstore.ErrNotFound) {
			return failLane("App Store version %s is %s without a phased release: App Store Connect released it on approval (release type %s), so it reaches everyone at once",
				r.data.Version, v.AppVersionState, v.ReleaseType)
		}
		if err := ascFailure("read the phased release of "+r.data.Version, err); err != nil {
			return err
		}
		fallthrough
	case appstore.VersionPendingDeveloperRelease, appstore.VersionAccepted:
		if err := r.reach(ctx, iosStepApproved); err != nil {
			return err
		}
		return r.progress(ctx, "ios.app_store_approved", map[string]any{"version_id": v.ID, "state": string(v.AppVersionState)})
	case appstore.VersionRejected, appstore.VersionMetadataRejected, appstore.VersionDeveloperRejected, appstore.AppVersionState("INVALID_BINARY"):
		return failLane("App Review: App Store version %s with build %s is %s; see the Resolution Center in App Store Connect", r.data.Version, r.data.label(), v.AppVersionState)
	}
	return r.wait(ctx, "app_review", 0, fmt.Sprintf("App Store version %s is %s", r.data.Version, v.AppVersionState))
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
	return LaneReady(ctx, r.x.Store, r.l.ID, &bin, r.x.now(), detail)
}

// wait snoozes the job until the next poll, or fails the lane once it has
// waited longer than limit (0: no limit; a person can cancel the lane).
func (r *iosRun) wait(ctx context.Context, what string, limit time.Duration, reason string) error {
	now, d := r.x.now(), &r.data
	if d.Waiting != what || d.WaitingSince.IsZero() {
		d.Waiting, d.WaitingSince, d.Polls = what, now, 0
		if err := r.progress(ctx, "ios.waiting", map[string]any{"waiting": what, "reason": reason}); err != nil {
			return err
		}
	}
	if limit > 0 && now.Sub(d.WaitingSince) >= limit {
		return failLane("%s after %s", reason, limit)
	}
	after := r.x.pollDelay(r.app.IOS.PollInterval.D(), d.Polls)
	d.Polls++
	if err := r.save(ctx); err != nil {
		return err
	}
	return &laneWait{after: after, reason: reason}
}

// pollDelay is the wait before poll number polls+1: the configured interval
// growing ×1.5 per poll up to MaxPoll, and longer while the hourly budget
// runs low (the window rolls, so waiting frees calls).
func (x *IOS) pollDelay(first time.Duration, polls int) time.Duration {
	if first <= 0 {
		first = 30 * time.Second
	}
	maxPoll := x.MaxPoll
	if maxPoll <= 0 {
		maxPoll = 10 * time.Minute
	}
	d := first
	for i := 0; i < polls && d < maxPoll; i++ {
		d = d * 3 / 2
	}
	d = min(d, maxPoll)
	if rl := x.ASC.RateLimit(); rl.Known && rl.Limit > 0 {
		switch {
		case rl.Remaining*20 <= rl.Limit: // 5 % or less left
			d = max(d, 2*maxPoll)
		case rl.Remaining*5 <= rl.Limit: // 20 % or less left
			d = max(2*d, maxPoll)
		}
	}
	return d
}

// rateLimitWait is how long to wait once the hourly budget is spent: Apple
// sends no time, and the window rolls over an hour.
const rateLimitWait = 15 * time.Minute

// iosBudgetWait is a wait for App Store Connect's hourly budget to return.
type iosBudgetWait struct {
	after  time.Duration
	reason string
}

func (e *iosBudgetWait) Error() string { return e.reason }

// ascFailure sorts an App Store Connect error: an exhausted budget waits,
// outages are retried, refusals fail the lane with the reason.
func ascFailure(step string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, appstore.ErrRateLimited) {
		after := rateLimitWait
		var ae *appstore.APIError
		if errors.As(err, &ae) && ae.RetryAfter > after {
			after = ae.RetryAfter
		}
		return &iosBudgetWait{after: after, reason: fmt.Sprintf("%s: App Store Connect's hourly request budget is spent; trying again in %s", step, after)}
	}
	if appstore.Temporary(err) {
		return fmt.Errorf("%s: %w", step, err)
	}
	if errors.Is(err, appstore.ErrAmbiguous) {
		return &laneFailure{reason: fmt.Sprintf("%s: %v", step, err)}
	}
	var ve *appstore.ValidationError
	var ae *appstore.APIError
	if errors.As(err, &ve) || (errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500) {
		return &laneFailure{reason: fmt.Sprintf("%s: %v", step, err)}
	}
	return fmt.Errorf("%s: %w", step, err)
}

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
			if !Resuming(l) {
				return fmt.Errorf("the phased release of %s was paused outside this rollout; resume the lane to continue it", data.Version)
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
			return fmt.Errorf("the phased release of %s was paused outside this rollout; resume the lane to continue it, or complete it by command", data.Version)
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

// observed is a phased-release read made by Observe for the Execute of the
// same reconcile pass.
type observed struct {
	at  time.Time
	pr  *appstore.PhasedRelease
	err error // nil or an ErrNotFound
}

// observedFresh is how long an Observe read stands in for Execute's.
const observedFresh = 10 * time.Second

func (x *IOS) takeObserved(laneID string) (observed, bool) {
	x.obsMu.Lock()
	defer x.obsMu.Unlock()
	o, ok := x.observed[laneID]
	delete(x.observed, laneID)
	if !ok || x.now().Sub(o.at) > observedFresh || x.now().Before(o.at) {
		return observed{}, false
	}
	return o, true
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

// PhasedDayMetric is the observation that carries Apple's phased-release
// day (1–7; 0 before it starts) of a rolling iOS App Store lane.
const PhasedDayMetric = "apple_phased_day"

// Observe reports Apple's phased-release day as PhasedDayMetric for a
// rolling phased App Store lane, with one read of App Store Connect that
// the pass's Execute reuses. Other lanes cost no call and report nothing:
// there is no iOS health source yet, and iOS plans have no gates.
func (x *IOS) Observe(ctx context.Context, l release.Lane) (release.Observations, error) {
	obs := release.Observations{}
	if x.ASC == nil || (l.Status.State != release.StateRolling && l.Status.State != release.StateWaiting) {
		return obs, nil
	}
	var data iosLaneData
	if err := x.Store.LaneData(ctx, l.ID, &data); err != nil {
		return obs, err
	}
	if !data.AppStore || !data.Phased || data.VersionID == "" || !data.reached(iosStepApproved) {
		return obs, nil
	}
	pr, err := x.ASC.PhasedRelease(ctx, data.VersionID)
	if err != nil && !errors.Is(err, appstore.ErrNotFound) {
		return obs, fmt.Errorf("read the phased release of %s: %w", data.Version, err)
	}
	x.obsMu.Lock()
	if x.observed == nil {
		x.observed = map[string]observed{}
	}
	x.observed[l.ID] = observed{at: x.now(), pr: pr, err: err}
	x.obsMu.Unlock()
	day := 0
	if pr != nil && pr.State != appstore.PhasedInactive {
		day = pr.CurrentDayNumber
		if pr.State == appstore.PhasedComplete {
			day = 7
		}
	}
	obs.Metrics = map[string]release.Observation{PhasedDayMetric: {Value: float64(day), Samples: 1, Fresh: true}}
	return obs, nil
}

// IOSWaker wakes ios_lane jobs that wait on an App Store Connect resource,
// so an event pushed by App Store Connect's webhook need not wait for the
// next poll.
type IOSWaker struct {
	Store *store.Store
	// Client returns the River client; it is read at call time because the
	// client is built after the routes are set up.
	Client func() *river.Client[*sql.Tx]
	Log    *slog.Logger
}

// Wake makes every snoozed or retrying ios_lane job whose lane references
// one of ids (build upload, build, beta detail, version or review
// submission) available now; for BUILD_UPLOAD_STATE_UPDATED also the lanes
// waiting for CI's build to appear, which know no id yet. It returns the
// lanes woken.
func (w *IOSWaker) Wake(ctx context.Context, eventType string, ids ...string) ([]string, error) {
	var client *river.Client[*sql.Tx]
	if w.Client != nil {
		client = w.Client()
	}
	if client == nil {
		return nil, errors.New("jobs are not running")
	}
	params := river.NewJobListParams().Kinds(IOSLaneArgs{}.Kind()).
		States(rivertype.JobStateScheduled, rivertype.JobStateRetryable).First(1000)
	res, err := client.JobList(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("list ios_lane jobs: %w", err)
	}
	var woken []string
	for _, j := range res.Jobs {
		var a IOSLaneArgs
		if json.Unmarshal(j.EncodedArgs, &a) != nil || a.LaneID == "" {
			continue
		}
		var data iosLaneData
		if err := w.Store.LaneData(ctx, a.LaneID, &data); err != nil {
			continue
		}
		pickup := eventType == "BUILD_UPLOAD_STATE_UPDATED" && data.Waiting == "pickup"
		if !pickup && !slices.ContainsFunc(ids, data.references) {
			continue
		}
		if _, err := client.JobRetry(ctx, j.ID); err != nil {
			return woken, fmt.Errorf("wake job %d of lane %s: %w", j.ID, a.LaneID, err)
		}
		woken = append(woken, a.LaneID)
		if w.Log != nil {
			w.Log.Info("woke ios lane job", "lane", a.LaneID, "job", j.ID)
		}
	}
	return woken, nil
}

// IPAVersion reads CFBundleShortVersionString and CFBundleVersion from an
// IPA's Payload/<name>.app/Info.plist, in XML or binary property list form.
func IPAVersion(r io.ReaderAt, size int64) (version, build string, err error) {
	return IPAVersionContext(context.Background(), r, size)
}

// IPAVersionContext is IPAVersion that stops when ctx is done.
func IPAVersionContext(ctx context.Context, r io.ReaderAt, size int64) (version, build string, err error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return "", "", fmt.Errorf("not an IPA (zip): %w", err)
	}
	var plist *zip.File
	for _, f := range zr.File {
		dir, file := path.Split(f.Name)
		if file == "Info.plist" && strings.HasPrefix(dir, "Payload/") && strings.Count(dir, "/") == 2 && strings.HasSuffix(dir, ".app/") {
			plist = f
			break
		}
	}
	if plist == nil {
		return "", "", errors.New("not an IPA: no Payload/*.app/Info.plist")
	}
	if plist.UncompressedSize64 > 4<<20 {
		return "", "", fmt.Errorf("%s is %d bytes: too large for an Info.plist", plist.Name, plist.UncompressedSize64)
	}
	rc, err := plist.Open()
	if err != nil {
		return "", "", fmt.Errorf("open %s: %w", plist.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4<<20))
	if err != nil {
		return "", "", fmt.Errorf("read %s: %w", plist.Name, err)
	}
	var kv map[string]string
	if bytes.HasPrefix(b, []byte("bplist00")) {
		kv, err = binaryPlistStrings(ctx, b, "CFBundleShortVersionString", "CFBundleVersion")
	} else {
		kv, err = xmlPlistStrings(b)
	}
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", plist.Name, err)
	}
	version, build = kv["CFBundleShortVersionString"], kv["CFBundleVersion"]
	switch {
	case version == "":
		return "", "", fmt.Errorf("%s has no CFBundleShortVersionString", plist.Name)
	case !buildNumberRE.MatchString(build):
		return "", "", fmt.Errorf("%s: CFBundleVersion %q is not one to three numbers separated by dots", plist.Name, build)
	}
	return version, build, nil
}

// xmlPlistStrings returns the string values of an XML property list's
// top-level dictionary.
func xmlPlistStrings(b []byte) (map[string]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	out := map[string]string{}
	depth, key := 0, ""
	var inKey, inString bool
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a property list: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local != "plist" || depth == 2 && t.Name.Local != "dict" {
				return nil, errors.New("not a property list with a dictionary at the top")
			}
			inKey, inString = depth == 3 && t.Name.Local == "key", depth == 3 && t.Name.Local == "string"
			text.Reset()
		case xml.CharData:
			if inKey || inString {
				text.Write(t)
			}
		case xml.EndElement:
			switch {
			case inKey:
				key = text.String()
			case inString && key != "":
				out[key] = strings.TrimSpace(text.String())
				key = ""
			case depth == 3:
				key = ""
			}
			inKey, inString = false, false
			depth--
		}
	}
	return out, nil
}

// Limits of binaryPlistStrings: keys longer than maxPlistKey bytes are not
// decoded (Info.plist keys are short ASCII names), and it gives up once it
// has decoded maxPlistDecoded bytes of strings.
const (
	maxPlistKey     = 128
	maxPlistDecoded = 1 << 20
)

// binaryPlistStrings returns the string values of a binary property list's
// top-level dictionary (the format Xcode writes into IPAs); with keys, only
// those. Each string object is decoded once however many entries refer to
// it, keys only when they are short ASCII, and no more than
// maxPlistDecoded bytes in all, so a hostile file cannot make it quadratic;
// it checks ctx as it goes.
func binaryPlistStrings(ctx context.Context, b []byte, keys ...string) (map[string]string, error) {
	bad := errors.New("malformed binary property list")
	if len(b) < 8+32 {
		return nil, bad
	}
	t := b[len(b)-32:]
	offSize, refSize := int(t[6]), int(t[7])
	numObj, top, table := binary.BigEndian.Uint64(t[8:]), binary.BigEndian.Uint64(t[16:]), binary.BigEndian.Uint64(t[24:])
	end := uint64(len(b) - 32)
	if offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8 || numObj == 0 || numObj > 1<<20 || top >= numObj ||
		table < 8 || table > end || numObj*uint64(offSize) > end-table {
		return nil, bad
	}
	be := func(p []byte) uint64 {
		var n uint64
		for _, c := range p {
			n = n<<8 | uint64(c)
		}
		return n
	}
	offset := func(i uint64) (uint64, bool) {
		if i >= numObj {
			return 0, false
		}
		at := table + i*uint64(offSize)
		o := be(b[at : at+uint64(offSize)])
		return o, o >= 8 && o < table
	}
	// header returns an object's type nibble, count and where its data starts.
	header := func(o uint64) (kind byte, n, data uint64, ok bool) {
		m := b[o]
		kind, n, data = m>>4, uint64(m&0xF), o+1
		if n == 0xF {
			if data >= table || b[data]>>4 != 0x1 {
				return 0, 0, 0, false
			}
			w := uint64(1) << (b[data] & 0xF)
			if w > 8 || data+1+w > table {
				return 0, 0, 0, false
			}
			n, data = be(b[data+1:data+1+w]), data+1+w
		}
		return kind, n, data, true
	}
	type decoded struct {
		s  string
		ok bool
	}
	cache := map[uint64]decoded{}
	var total uint64
	errTooMuch := fmt.Errorf("binary property list: more than %d bytes of strings", maxPlistDecoded)
	// str decodes string object i, at most once; asciiMax > 0 accepts only
	// ASCII strings that short.
	str := func(i uint64, asciiMax uint64) (string, bool, error) {
		if d, seen := cache[i]; seen {
			return d.s, d.ok, nil
		}
		o, ok := offset(i)
		if !ok {
			cache[i] = decoded{}
			return "", false, nil
		}
		kind, n, data, ok := header(o)
		var d decoded
		switch {
		case !ok:
		case asciiMax > 0 && (kind != 0x5 || n > asciiMax):
			return "", false, nil // not cached: the same object may be a wanted value
		case kind == 0x5 && n <= table-data: // ASCII
			if total += n; total > maxPlistDecoded {
				return "", false, errTooMuch
			}
			d = decoded{string(b[data : data+n]), true}
		case kind == 0x6 && n <= (table-data)/2: // UTF-16BE
			if total += 2 * n; total > maxPlistDecoded {
				return "", false, errTooMuch
			}
			u := make([]uint16, n)
			for k := range u {
				u[k] = binary.BigEndian.Uint16(b[data+2*uint64(k):])
			}
			d = decoded{string(utf16.Decode(u)), true}
		}
		cache[i] = d
		return d.s, d.ok, nil
	}
	o, ok := offset(top)
	if !ok {
		return nil, bad
	}
	kind, n, data, ok := header(o)
	if !ok || kind != 0xD || n > (table-data)/uint64(2*refSize) {
		return nil, errors.New("binary property list: the top object is not a dictionary")
	}
	out := map[string]string{}
	for k := uint64(0); k < n; k++ {
		if k%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		kp := data + k*uint64(refSize)
		vp := data + (n+k)*uint64(refSize)
		key, ok, err := str(be(b[kp:kp+uint64(refSize)]), maxPlistKey)
		if err != nil {
			return nil, err
		}
		if !ok || (len(keys) > 0 && !slices.Contains(keys, key)) {
			continue
		}
		v, ok, err := str(be(b[vp:vp+uint64(refSize)]), 0)
		if err != nil {
			return nil, err
		}
		if ok {
			out[key] = v
		}
	}
	return out, nil
}
