package jobs

import (
	"archive/zip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/riverqueue/river"
	"google.golang.org/api/googleapi"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/playstore"
)

// Android drives Google Play for Android store lanes. Its lane job puts the
// release's bundle in the app and on the internal track, records the binary
// and hands the lane to the reconciler; as the lanes' Executor it moves the
// staged rollout on the configured track (production by default).
//
// Everything it remembers between runs is in the lane's data (the
// versionCode above all); everything it changes on Play is read first, so a
// re-run after a crash changes nothing twice.
type Android struct {
	Store *store.Store
	Play  *playstore.Client
	// Apps is the configuration by app name.
	Apps map[string]config.App
	// Assets fetches android.aab_asset from the tag's GitHub release.
	Assets Assets
	// Vitals observes crash and ANR rates for the gates; nil: no vitals, so
	// every gate holds.
	Vitals *gate.PlayVitals
	// BundleVersionCode reads the versionCode an AAB declares; nil means
	// ManifestVersionCode. Tests of fakes swap it.
	BundleVersionCode func(r io.ReaderAt, size int64) (int64, error)
	// PickupTimeout bounds how long a lane without android.aab_asset waits
	// for CI to upload the bundle: default 6 hours.
	PickupTimeout time.Duration
	// PickupPoll is how often it looks again: default 2 minutes.
	PickupPoll time.Duration
	Now        func() time.Time
	Log        *slog.Logger
}

// MaxPlayNotes is Play's limit on "What's new" per language, in characters.
const MaxPlayNotes = 500

// androidLaneData is an Android lane's memory between job runs and
// reconcile passes, stored as the lane's data.
type androidLaneData struct {
	// Package and Track are fixed when the lane starts, so a config change
	// cannot move a rollout in flight to another app or track.
	Package string `json:"package"`
	Track   string `json:"track"`
	// VersionCode is the bundle this lane ships; once set it never changes.
	VersionCode int64 `json:"version_code,omitempty"`
	// Asset names the GitHub release asset it came from ("" when CI
	// uploaded it and the lane picked it up).
	Asset string `json:"asset,omitempty"`
	// Uploaded: the bundle is in the app. Internal: it is on the internal
	// track as completed (or the lane skips that track).
	Uploaded bool `json:"uploaded,omitempty"`
	Internal bool `json:"internal,omitempty"`
	// WaitingSince is when the lane began to wait for CI's bundle.
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	// StartedAt is when the rollout on Track began; StageAt and StagePercent
	// say when the current percentage took effect, so a gate only trusts
	// vitals that reach past it.
	StartedAt    time.Time `json:"started_at,omitzero"`
	StageAt      time.Time `json:"stage_at,omitzero"`
	StagePercent int       `json:"stage_percent,omitempty"`
}

func (a *Android) now() time.Time {
	if a.Now == nil {
		return time.Now().UTC()
	}
	return a.Now().UTC()
}

func (a *Android) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// playFailure sorts a Play error: Play's answers that say the request or the
// track is wrong fail the lane; everything else (5xx, quota, network, the
// database behind the versionCode ledger) is retried.
func playFailure(step string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if playstore.IsTemporary(err) {
		return fmt.Errorf("%s: %w", step, err)
	}
	// Google's token endpoint refusing the service account (revoked or
	// deleted key, wrong project) needs a person, not a retry.
	if playstore.CredentialsRefused(err) {
		return &laneFailure{reason: step + ": Google refused the service account's credentials; check playstore.service_account"}
	}
	for _, kind := range []error{playstore.ErrConflict, playstore.ErrState, playstore.ErrInvalid, playstore.ErrNotFound, playstore.ErrVersionCodeReused} {
		if errors.Is(err, kind) {
			return &laneFailure{reason: fmt.Sprintf("%s: %v", step, err)}
		}
	}
	if code := httpStatus(err); code >= 400 && code < 500 {
		return &laneFailure{reason: fmt.Sprintf("%s: %v", step, err)}
	}
	return fmt.Errorf("%s: %w", step, err)
}

// httpStatus is the HTTP status of a Google API error, 0 if none.
func httpStatus(err error) int {
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code
	}
	return 0
}

// AndroidLaneWorker runs android_lane jobs.
type AndroidLaneWorker struct {
	river.WorkerDefaults[AndroidLaneArgs]
	Android *Android
}

// Timeout leaves room for a large AAB upload.
func (w *AndroidLaneWorker) Timeout(*river.Job[AndroidLaneArgs]) time.Duration {
	return 30 * time.Minute
}

// NextRetry backs off from 30 s, doubling up to 15 minutes: Play's outages
// and quota windows are short, and a release should not sit for hours.
func (w *AndroidLaneWorker) NextRetry(job *river.Job[AndroidLaneArgs]) time.Time {
	return laneRetryAt(job.JobRow)
}

// Work runs the lane until it is handed to the reconciler. Play refusals
// and bad inputs fail the lane with the reason and cancel the job; outages
// return the error so River retries; waiting for CI's bundle snoozes.
func (w *AndroidLaneWorker) Work(ctx context.Context, job *river.Job[AndroidLaneArgs]) error {
	a := w.Android
	return laneAttempt(ctx, a.Store, a.log(), "android", job.Args.LaneID, job.JobRow, a.now(), a.runLane(ctx, job.Args.LaneID))
}

// runLane is one run of the lane job: bundle, internal track, ready.
func (a *Android) runLane(ctx context.Context, laneID string) error {
	noClient := ""
	if a.Play == nil {
		noClient = "no Google Play client: set playstore.service_account"
	}
	run, err := loadStoreLane(ctx, a.Store, a.Apps, laneID, release.Android, "an Android store lane", noClient)
	if run == nil || err != nil {
		return err
	}
	l, rel, app := run.lane, run.rel, run.app
	var data androidLaneData
	if err := a.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	if data.Package == "" {
		if app.Android.PackageName == "" {
			return failLane("apps %s android.package_name is empty", app.Name)
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
			err = a.pickUp(ctx, l, rel, &data)
		}
		if err != nil {
			return err
		}
	}

	if !data.Internal {
		if data.Asset != "" {
			// A picked-up bundle was checked against the same floor.
			if err := a.checkNewer(ctx, rel, data); err != nil {
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
			if err := LaneProgress(ctx, a.Store, l, "android.internal_track", map[string]any{"version_code": data.VersionCode, "changed": res.Changed, "calls": res.Calls}, a.now()); err != nil {
				return err
			}
		}
		data.Internal = true
		if err := a.Store.SetLaneData(ctx, l.ID, data, a.now()); err != nil {
			return err
		}
	}

	fp, err := LaneFingerprint(ctx, a.Store, rel.App, release.Android, rel.Commit)
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
	return LaneReady(ctx, a.Store, l.ID, &bin, now, fmt.Sprintf("versionCode %d is %s; the %s rollout starts at the first stage", data.VersionCode, where, data.Track))
}

// uploadAsset uploads the release's AAB from GitHub. The versionCode comes
// from the AAB's own manifest, read before anything is sent, and is kept in
// the lane's data at once: a retry uploads that versionCode or nothing, and
// UploadBundle skips the bytes when Play already has it.
func (a *Android) uploadAsset(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *androidLaneData) error {
	if a.Assets == nil {
		return failLane("android.aab_asset is %q but no GitHub asset reader is configured", app.Android.AABAsset)
	}
	f, name, err := a.Assets.FetchAsset(ctx, app.Repository, rel.Tag, app.Android.AABAsset)
	if errors.Is(err, fs.ErrNotExist) {
		return a.wait(ctx, l, data, fmt.Sprintf("waiting for the asset %q on the GitHub release %s", app.Android.AABAsset, rel.Tag))
	}
	if err != nil {
		return fmt.Errorf("fetch %s from the GitHub release %s: %w", app.Android.AABAsset, rel.Tag, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	read := a.BundleVersionCode
	if read == nil {
		read = ManifestVersionCode
	}
	vc, err := read(f, fi.Size())
	if err != nil {
		return failLane("asset %s of %s: %v", name, rel.Tag, err)
	}
	switch {
	case data.VersionCode == 0:
		data.VersionCode, data.Asset, data.WaitingSince = vc, name, time.Time{}
		if err := a.Store.SetLaneData(ctx, l.ID, *data, a.now()); err != nil {
			return err
		}
	case data.VersionCode != vc:
		return failLane("asset %s of %s now declares versionCode %d, but this lane already chose versionCode %d; tag a new release for a new build", name, rel.Tag, vc, data.VersionCode)
	}
	// UploadBundle lists the app's bundles first and sends nothing when
	// Play already has vc; it records vc in the ledger before any byte leaves.
	res, err := a.Play.UploadBundle(ctx, data.Package, playstore.Bundle{VersionCode: vc, Content: f, Size: fi.Size()})
	if err := playFailure(fmt.Sprintf("upload %s (versionCode %d)", name, vc), err); err != nil {
		return err
	}
	data.Uploaded = true
	if err := a.Store.SetLaneData(ctx, l.ID, *data, a.now()); err != nil {
		return err
	}
	return LaneProgress(ctx, a.Store, l, "android.bundle_uploaded", map[string]any{"version_code": vc, "asset": name, "skipped": res.Skipped, "sha256": res.SHA256, "calls": res.Calls}, a.now())
}

// pickUp finds the bundle CI uploaded for this release: the newest one in
// the app, which must be newer than everything releasepilot ever sent (so it
// is not one of ours), every binary it recorded, and every release on the
// rollout track. Until one appears the lane waits.
func (a *Android) pickUp(ctx context.Context, l release.Lane, rel release.Release, data *androidLaneData) error {
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
		return a.wait(ctx, l, data, fmt.Sprintf("waiting for CI to upload a bundle newer than versionCode %d", floor))
	}
	data.VersionCode, data.Uploaded, data.WaitingSince = newest, true, time.Time{}
	if err := a.Store.SetLaneData(ctx, l.ID, *data, a.now()); err != nil {
		return err
	}
	return LaneProgress(ctx, a.Store, l, "android.bundle_picked_up", map[string]any{"version_code": newest}, a.now())
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
		return failLane("versionCode %d is not newer than versionCode %d, already on the %s track or shipped before; build %s with a higher versionCode",
			data.VersionCode, live, data.Track, rel.Version)
	}
	return nil
}

// wait snoozes the lane job, or fails the lane once it waited too long.
func (a *Android) wait(ctx context.Context, l release.Lane, data *androidLaneData, reason string) error {
	now := a.now()
	if data.WaitingSince.IsZero() {
		data.WaitingSince = now
		if err := a.Store.SetLaneData(ctx, l.ID, *data, now); err != nil {
			return err
		}
		if err := LaneProgress(ctx, a.Store, l, "android.waiting", map[string]any{"reason": reason}, now); err != nil {
			return err
		}
	}
	limit := a.PickupTimeout
	if limit <= 0 {
		limit = 6 * time.Hour
	}
	if now.Sub(data.WaitingSince) >= limit {
		return failLane("%s: nothing came within %s", reason, limit)
	}
	poll := a.PickupPoll
	if poll <= 0 {
		poll = 2 * time.Minute
	}
	return &laneWait{after: poll, reason: reason}
}

// playRelease is this lane's release as Play shows it.
func (a *Android) playRelease(rel release.Release, app config.App, vc int64, status playstore.Status, fraction float64) playstore.Release {
	r := playstore.Release{Name: fmt.Sprintf("%s (%d)", rel.Version, vc), VersionCodes: []int64{vc}, Status: status,
		UserFraction: fraction, InAppUpdatePriority: app.Android.InAppUpdatePriority}
	if notes := PlayNotes(rel.Notes); notes != "" {
		lang := app.Android.ReleaseNotesLanguage
		if lang == "" {
			lang = "en-US"
		}
		r.ReleaseNotes = []playstore.ReleaseNote{{Language: lang, Text: notes}}
	}
	return r
}

// PlayNotes fits release notes into Play's 500 characters per language.
// Play counts UTF-16 code units; a cut ends at a whole line when one ends
// in the last fifth of the room, else at a whole character, and says so
// with "…".
func PlayNotes(notes string) string {
	notes = strings.TrimSpace(notes)
	if utf16Len(notes) <= MaxPlayNotes {
		return notes
	}
	room := MaxPlayNotes - 1 // for "…"
	cut, n := 0, 0
	for i, r := range notes {
		w := utf16.RuneLen(r)
		if w < 0 {
			w = 1
		}
		if n+w > room {
			break
		}
		n += w
		cut = i + len(string(r))
	}
	out := notes[:cut]
	if nl := strings.LastIndexByte(out, '\n'); nl >= 0 && utf16Len(out[:nl]) >= room*4/5 {
		out = out[:nl]
	}
	return strings.TrimRight(out, " \t\r\n") + "…"
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if w := utf16.RuneLen(r); w > 0 {
			n += w
		} else {
			n++
		}
	}
	return n
}

// Execute makes the lane's release on its track match the decision. Each
// Play operation reads the track inside its edit and commits nothing when
// the release is already as wanted, so a repeated decision is a no-op:
//   - advance: the first stage puts the release on the track inProgress at
//     the fraction; later stages raise the fraction; a halted or paused lane
//     (a resume) serves the halted release again;
//   - halt, rollback: status halted, fraction kept;
//   - complete: status completed.
//
// Another release in progress or halted on the track is never dropped or
// halted: the operation fails with Play's conflict, which the reconciler
// records as the reason. A release halted on Play behind releasepilot's back
// is not resumed by a scheduled advance either.
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
		if err != nil {
			return err
		}
	case release.ActionComplete:
		res, err = a.Play.Complete(ctx, pkg, track, vc)
		if errors.Is(err, playstore.ErrNotFound) && l.Status.Percent == 0 {
			var rel release.Release
			var app config.App
			if rel, app, err = a.releaseOf(ctx, l); err != nil {
				return err
			}
			res, err = a.Play.PutRelease(ctx, pkg, track, a.playRelease(rel, app, vc, playstore.StatusCompleted, 0))
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

// Observe reads Play's crash and ANR rates of the lane's versionCode, only
// when this pass can reach a gate (no soak, approval or percentage step
// before it): other passes cost no Play calls. Without vitals (or before the
// rollout began) it reports nothing, and gates hold.
func (a *Android) Observe(ctx context.Context, l release.Lane) (release.Observations, error) {
	if a.Vitals == nil || l.Status.Percent == 0 || !gateDue(l.Plan, l.Status, a.now()) {
		return release.Observations{}, nil
	}
	var data androidLaneData
	if err := a.Store.LaneData(ctx, l.ID, &data); err != nil {
		return release.Observations{}, err
	}
	if data.VersionCode == 0 {
		return release.Observations{}, nil
	}
	since, stage := data.StartedAt, data.StageAt
	if since.IsZero() {
		since = l.Status.StepStartedAt
	}
	if stage.IsZero() {
		stage = since
	}
	return a.Vitals.Observe(ctx, data.Package, data.VersionCode, since, stage)
}

// gateDue reports whether a reconcile pass at now would reach a gate: one
// comes before the next percentage step, and no unfinished soak or approval
// stands before it.
func gateDue(p release.Plan, st release.Status, now time.Time) bool {
	for i := st.StepIndex; i >= 0 && i < len(p.Steps); i++ {
		s := p.Steps[i]
		switch {
		case s.Gate != nil:
			return true
		case s.SetPercent != nil, s.Approval != nil:
			return false
		case s.Wait != nil:
			start := now // a later wait starts when it is reached
			if i == st.StepIndex && !st.StepStartedAt.IsZero() {
				start = st.StepStartedAt
			}
			if now.Before(start.Add(time.Duration(s.Wait.Soak))) {
				return false
			}
		}
	}
	return false
}

// ManifestVersionCode reads android:versionCode from an Android App
// Bundle: base/manifest/AndroidManifest.xml, which bundletool stores as an
// aapt2 XmlNode protocol buffer (frameworks/base/tools/aapt2/Resources.proto).
// It reads the attribute's text value, else its compiled integer.
func ManifestVersionCode(r io.ReaderAt, size int64) (int64, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return 0, fmt.Errorf("not an Android App Bundle (zip): %w", err)
	}
	const path = "base/manifest/AndroidManifest.xml"
	var mf *zip.File
	for _, f := range zr.File {
		if f.Name == path {
			mf = f
			break
		}
	}
	if mf == nil {
		return 0, fmt.Errorf("not an Android App Bundle: no %s", path)
	}
	if mf.UncompressedSize64 > 16<<20 {
		return 0, fmt.Errorf("%s is %d bytes: too large for a manifest", path, mf.UncompressedSize64)
	}
	rc, err := mf.Open()
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	// XmlNode.element (1) → XmlElement.attribute (4).
	elem, err := protoField(b, 1)
	if err != nil || elem == nil {
		return 0, fmt.Errorf("%s: no root element in the protocol buffer manifest", path)
	}
	if name, _ := protoField(elem, 3); string(name) != "manifest" {
		return 0, fmt.Errorf("%s: root element is %q, not manifest", path, name)
	}
	var found bool
	var vc int64
	err = protoEach(elem, 4, func(attr []byte) error {
		if found {
			return nil
		}
		ns, _ := protoField(attr, 1)
		name, _ := protoField(attr, 2)
		resID, _ := protoVarint(attr, 5)
		if !(resID == versionCodeResID || (string(name) == "versionCode" && string(ns) == androidNS)) {
			return nil
		}
		found = true
		if v, _ := protoField(attr, 3); len(v) > 0 {
			n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 0, 64)
			if err != nil {
				return fmt.Errorf("android:versionCode %q is not a number", v)
			}
			vc = n
			return nil
		}
		// compiled_item (6) → prim (7) → int_decimal_value (6) or int_hexadecimal_value (7).
		item, _ := protoField(attr, 6)
		prim, _ := protoField(item, 7)
		if n, ok := protoVarint(prim, 6); ok {
			vc = int64(int32(n))
		} else if n, ok := protoVarint(prim, 7); ok {
			vc = int64(uint32(n))
		}
		return nil
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s: %w", path, err)
	case !found:
		return 0, fmt.Errorf("%s: no android:versionCode", path)
	case vc <= 0 || vc > math.MaxInt32:
		return 0, fmt.Errorf("%s: android:versionCode %d is not a positive 32-bit number", path, vc)
	}
	return vc, nil
}

const (
	androidNS        = "http://schemas.android.com/apk/res/android"
	versionCodeResID = 0x0101021b
)

// protoEach calls fn with every length-delimited field num of a message.
func protoEach(msg []byte, num uint64, fn func([]byte) error) error {
	return protoWalk(msg, func(n, wire uint64, v []byte, _ uint64) error {
		if n == num && wire == 2 {
			return fn(v)
		}
		return nil
	})
}

// protoField returns the last length-delimited field num (nil if absent).
func protoField(msg []byte, num uint64) ([]byte, error) {
	var out []byte
	err := protoEach(msg, num, func(v []byte) error { out = v; return nil })
	return out, err
}

// protoVarint returns the last varint field num.
func protoVarint(msg []byte, num uint64) (uint64, bool) {
	var out uint64
	ok := false
	_ = protoWalk(msg, func(n, wire uint64, _ []byte, x uint64) error {
		if n == num && wire == 0 {
			out, ok = x, true
		}
		return nil
	})
	return out, ok
}

// protoWalk decodes the fields of one protocol buffer message.
func protoWalk(msg []byte, fn func(num, wire uint64, v []byte, x uint64) error) error {
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return errors.New("malformed protocol buffer (tag)")
		}
		msg = msg[n:]
		num, wire := tag>>3, tag&7
		switch wire {
		case 0:
			x, n := binary.Uvarint(msg)
			if n <= 0 {
				return errors.New("malformed protocol buffer (varint)")
			}
			msg = msg[n:]
			if err := fn(num, wire, nil, x); err != nil {
				return err
			}
		case 1:
			if len(msg) < 8 {
				return errors.New("malformed protocol buffer (fixed64)")
			}
			msg = msg[8:]
		case 5:
			if len(msg) < 4 {
				return errors.New("malformed protocol buffer (fixed32)")
			}
			msg = msg[4:]
		case 2:
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return errors.New("malformed protocol buffer (length)")
			}
			v := msg[n : n+int(l)]
			msg = msg[n+int(l):]
			if err := fn(num, wire, v, 0); err != nil {
				return err
			}
		default:
			return fmt.Errorf("malformed protocol buffer (wire type %d)", wire)
		}
	}
	return nil
}
