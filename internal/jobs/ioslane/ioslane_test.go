package ioslane_test

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/appstore/appstoretest/specvalidate"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/ioslane"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const (
	iosBundleID = "com.acme.mobile"
	iosKeyID    = "2X9R4HXF34"
)

var iosStart = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)

// iosClock is the one clock of a test: the fake, the token source, the lane
// and the reconciler all read it.
type iosClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *iosClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *iosClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type iosOpts struct {
	version   string // release version (default "1.4.0+45")
	polls     int    // processing reads until the build is done (default 10)
	result    appstore.ProcessingState
	noBuild   bool // seed no build (upload tests)
	appStore  bool
	phased    bool
	external  bool
	options   func(*appstoretest.Options)
	configure func(*config.App)
	noNotes   bool               // the release has no notes
	gates     []release.GateRule // the phased plan's gate rules
}

type iosBundle struct {
	clock   *iosClock
	fake    *appstoretest.Fake
	tokens  *appstore.TokenSource
	asc     *appstore.Client
	st      *store.Store
	ios     *ioslane.IOS
	worker  *ioslane.Worker
	ro      *jobs.Rollouts
	app     config.App
	rel     release.Release
	lane    release.Lane
	appID   string
	buildID string
	assets  *lanetest.Assets
}

// setupIOS builds a fake App Store Connect with the app, its live version
// 1.3.0, an internal group "Team" and an external group "Public Beta", a
// build 1.4.0 (45) still processing, and a pending iOS lane of release
// v1.4.0+45 whose plan matches the configuration (see lanePlan).
func setupIOS(t testing.TB, e store.Engine, o iosOpts) *iosBundle {
	t.Helper()
	ctx := context.Background()
	b := &iosBundle{clock: &iosClock{t: iosStart}}
	opts := appstoretest.Options{Now: b.clock.Now, ProcessingPolls: 1}
	if o.options != nil {
		o.options(&opts)
	}
	b.fake = appstoretest.New(opts)
	// Every request the lane sends and every answer it reads is checked
	// against Apple's OpenAPI description.
	srv := httptest.NewServer(specvalidate.Handler(t, b.fake))
	t.Cleanup(srv.Close)
	key, _, err := b.fake.NewKey(iosKeyID, "57246542-96fe-1a63-e053-0824d011072a")
	require.NoError(t, err)
	b.tokens = &appstore.TokenSource{Key: key, Now: b.clock.Now}
	b.asc = &appstore.Client{BaseURL: srv.URL, Tokens: b.tokens, Sleep: func(context.Context, time.Duration) error { return nil }}

	b.appID = b.fake.AddApp(appstoretest.App{BundleID: iosBundleID, Name: "Acme", SKU: "ACME"})
	b.fake.CompleteBetaAppInfo(b.appID)
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.3.0", appstore.VersionReadyForDistribution)
	b.fake.AddBetaGroup(b.appID, "Team", true)
	b.fake.AddBetaGroup(b.appID, "Public Beta", false)
	if o.polls == 0 {
		o.polls = 10
	}
	if !o.noBuild {
		b.buildID = b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "45", Polls: o.polls, Result: o.result,
			UploadedDate: iosStart.Add(-5 * time.Minute)})
	}

	b.app = config.App{Name: "acme", Repository: "acme/mobile", IOS: config.IOS{Enabled: true, BundleID: iosBundleID,
		InternalGroups: []string{"Team"}, ProcessingTimeout: config.Duration(2 * time.Hour), PollInterval: config.Duration(30 * time.Second),
		BuildSource: "pickup", Locale: "en-US", AppStore: o.appStore, PhasedRelease: o.phased}}
	if o.external {
		b.app.IOS.ExternalGroups = []string{"Public Beta"}
	}
	if o.configure != nil {
		o.configure(&b.app)
	}
	b.assets = lanetest.NewAssets("acme/mobile", t.TempDir())
	b.st = store.New(storetest.Open(t, e))
	b.ios = &ioslane.IOS{Store: b.st, ASC: b.asc, Apps: map[string]config.App{"acme": b.app}, Assets: b.assets, Now: b.clock.Now}
	b.worker = &ioslane.Worker{IOS: b.ios}
	b.ro = &jobs.Rollouts{Store: b.st, Executors: jobs.Executors{{Kind: release.KindStore, Platform: release.IOS}: b.ios}, Now: b.clock.Now}

	version := o.version
	if version == "" {
		version = "1.4.0+45"
	}
	require.NoError(t, b.st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, iosStart))
	notes := "Changes since v1.3.0:\n- Faster checkout (abc1234)\n- Fix crash on login (def5678)"
	if o.noNotes {
		notes = ""
	}
	b.rel, _, err = b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v" + version, Version: version, Commit: "c0ffee1", CreatedAt: iosStart,
		Notes: notes})
	require.NoError(t, err)
	require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: "c0ffee1",
		Algorithm: nativecheck.Algorithm, Hash: "fp-ios-1", Data: []byte(`{}`), CreatedAt: iosStart}))
	plan := release.Plan{Steps: []release.Step{{SetPercent: release.Pct(100)}}}
	if o.appStore && o.phased {
		plan = release.StagedPlan(release.ApplePhasedStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, o.gates)
	}
	b.lane, err = b.st.CreateLane(ctx, release.Lane{ReleaseID: b.rel.ID, Platform: release.IOS, Kind: release.KindStore, Plan: plan}, iosStart)
	require.NoError(t, err)
	return b
}

// putIPA makes the GitHub release of tag hold the IPA data.
func (b *iosBundle) putIPA(tag string, data []byte) {
	b.assets.Put(tag, "*.ipa", "Acme.ipa", data)
}

// work runs the lane job once, as River would.
func (b *iosBundle) work(ctx context.Context) error {
	return b.worker.Work(ctx, &river.Job[lane.IOSArgs]{
		JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 25, Kind: "ios_lane"},
		Args:   lane.IOSArgs{LaneID: b.lane.ID}})
}

// runLane runs the lane job until it finishes or is cancelled: a snooze
// advances the clock by the snooze and runs it again; an error (River would
// retry) runs it again at once. each, if set, sees every run's outcome.
// It returns the number of runs and the last outcome.
func (b *iosBundle) runLane(t testing.TB, each func(run int, err error)) (int, error) {
	t.Helper()
	for run := 1; run <= 200; run++ {
		err := b.work(context.Background())
		if each != nil {
			each(run, err)
		}
		var snooze *river.JobSnoozeError
		var cancel *river.JobCancelError
		switch {
		case err == nil, errors.As(err, &cancel):
			return run, err
		case errors.As(err, &snooze):
			b.clock.Advance(snooze.Duration)
		}
	}
	t.Fatal("the lane job did not finish in 200 runs")
	return 0, nil
}

func (b *iosBundle) status(t testing.TB) release.Status {
	t.Helper()
	l, err := b.st.GetLane(context.Background(), b.lane.ID)
	require.NoError(t, err)
	return l.Status
}

func (b *iosBundle) events(t testing.TB) []release.Event {
	t.Helper()
	evs, err := b.st.Events(context.Background(), b.rel.ID, 0, 1000)
	require.NoError(t, err)
	return evs
}

func (b *iosBundle) eventKinds(t testing.TB) []string {
	var kinds []string
	for _, e := range b.events(t) {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

func (b *iosBundle) laneData(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, b.st.LaneData(context.Background(), b.lane.ID, &m))
	return m
}

// reconcile runs one reconcile pass at the test clock.
func (b *iosBundle) reconcile(t testing.TB) {
	t.Helper()
	require.NoError(t, b.ro.Pass(context.Background()))
}

// -update rewrites the golden files (the flag moved here with the tests
// when the iOS lane got its own package).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata")
	}
}

func iosUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// golden compares v (as indented JSON) with testdata/ios/name.
func iosGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	p := filepath.Join("testdata", "ios", name)
	if iosUpdating() {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test -run %s -update to create %s", t.Name(), p)
	require.Equal(t, string(want), string(got))
}

// TestIOSLaneTestFlight follows a release from its tag to "in TestFlight for
// the configured groups": processing takes 10 reads, Beta App Review
// approves after two hours, and the reconciler then completes the lane
// without another App Store Connect call. It pins the calls one release
// costs (BENCHMARKS.md quotes it) and every mutation.
func TestIOSLaneTestFlight(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setupIOS(t, e, iosOpts{external: true, options: func(o *appstoretest.Options) { o.BetaReviewTime = time.Minute }})
			runs, err := b.runLane(t, nil)
			require.NoError(t, err)

			st := b.status(t)
			require.Equal(t, release.StateRolling, st.State)
			require.Contains(t, st.Reason, "build 1.4.0 (45) is in TestFlight")
			bs, ok := b.fake.Build(b.buildID)
			require.True(t, ok)
			require.Equal(t, appstore.ProcessingStateValid, bs.ProcessingState)
			require.NotNil(t, bs.UsesNonExemptEncryption)
			require.False(t, *bs.UsesNonExemptEncryption)
			require.Len(t, bs.Groups, 2)
			require.Equal(t, appstore.BetaReviewApproved, bs.BetaReview)
			require.Equal(t, b.rel.Notes, bs.WhatsNew["en-US"])

			bins, err := b.st.Binaries(context.Background(), "acme", release.IOS)
			require.NoError(t, err)
			require.Len(t, bins, 1)
			require.Equal(t, release.Binary{App: "acme", Platform: release.IOS, Version: "1.4.0", BuildNumber: "45", Commit: "c0ffee1",
				Fingerprint: "fp-ios-1", ReleaseID: b.rel.ID, CreatedAt: bins[0].CreatedAt}, bins[0])

			calls := b.asc.Calls()
			t.Logf("one TestFlight release (10-poll processing, internal + external group): %d App Store Connect calls, %d lane job runs", calls, runs)
			// 1 app + 10 processing reads (the pickup's FindBuild is the
			// first) + 2 export compliance + 2 What to Test + 1 group list
			// (ids kept in the lane's data) + 2 internal link + 2 Beta App
			// Review information reads + 2 beta submit + 3 review reads (at
			// 0 s, 30 s, 75 s: approved after a minute) + 2 external link.
			require.EqualValues(t, 27, calls)
			require.Equal(t, 12, runs) // 9 processing snoozes, 2 review snoozes, the last run

			// The reconciler completes the lane: TestFlight needs no call.
			b.reconcile(t)
			require.Equal(t, release.StateCompleted, b.status(t).State)
			require.Equal(t, calls, b.asc.Calls())

			iosGolden(t, "testflight.json", map[string]any{"mutations": b.fake.MutationCounts(), "events": b.eventKinds(t)})
		})
	}
}

// TestIOSLaneCallCount is the figure BENCHMARKS.md quotes: a TestFlight
// release to an internal group, picked up by version and build number,
// with a 10-read processing wait.
func TestIOSLaneCallCount(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{})
	runs, err := b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State)
	// 1 app + 10 processing reads + 2 export compliance (read, PATCH) + 2
	// What to Test (read, POST) + 1 group list + 2 group link (read, POST).
	t.Logf("TestFlight release, internal group, 10-read processing wait: %d App Store Connect calls (%d mutations), %d lane job runs",
		b.asc.Calls(), sum(b.fake.MutationCounts()), runs)
	require.EqualValues(t, 18, b.asc.Calls())
	require.Equal(t, 10, runs)
	require.Equal(t, map[string]int{"PATCH /v1/builds/{id}": 1, "POST /v1/betaBuildLocalizations": 1,
		"POST /v1/builds/{id}/relationships/betaGroups": 1}, nonZero(b.fake.MutationCounts()))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// TestIOSLaneAppStorePhased goes on from TestFlight through App Review to
// an active phased release, then pauses, resumes and completes it by
// command. App Review approves a day after submission.
func TestIOSLaneAppStorePhased(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupIOS(t, e, iosOpts{appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = 24 * time.Hour }})
			_, err := b.runLane(t, nil)
			require.NoError(t, err)
			st := b.status(t)
			require.Equal(t, release.StateRolling, st.State, st.Reason)
			require.Contains(t, st.Reason, "approved for the App Store; the phased release starts")
			vid, _ := b.laneData(t)["version_id"].(string)
			require.NotEmpty(t, vid)
			state, attached, ok := b.fake.Version(vid)
			require.True(t, ok)
			require.Equal(t, appstore.VersionPendingDeveloperRelease, state)
			require.Equal(t, b.buildID, attached)
			pr, ok := b.fake.PhasedRelease(vid)
			require.True(t, ok, "the phased release is set up before review")
			require.Equal(t, appstore.PhasedInactive, pr.State, "and waits for the reconciler to release the version")

			// The first reconcile pass releases the version with a phased release: day 1.
			b.reconcile(t)
			st = b.status(t)
			require.Equal(t, release.StateRolling, st.State)
			require.Equal(t, 1, st.Percent)
			state, _, _ = b.fake.Version(vid)
			require.Equal(t, appstore.VersionReadyForDistribution, state)
			pr, ok = b.fake.PhasedRelease(vid)
			require.True(t, ok)
			require.Equal(t, appstore.PhasedActive, pr.State)
			// A duplicate pass changes nothing.
			before := b.fake.MutationCounts()
			b.reconcile(t)
			require.Equal(t, before, b.fake.MutationCounts())

			// Pause (halt), resume, complete.
			_, err = b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "alice", "crash spike")
			require.NoError(t, err)
			pr, _ = b.fake.PhasedRelease(vid)
			require.Equal(t, appstore.PhasedPaused, pr.State)
			require.Equal(t, release.StateHalted, b.status(t).State)
			_, err = b.ro.Command(ctx, b.lane.ID, release.CmdResume, "alice", "fixed server side")
			require.NoError(t, err)
			pr, _ = b.fake.PhasedRelease(vid)
			require.Equal(t, appstore.PhasedActive, pr.State)

			// A day later the reconciler advances the plan; Apple's day moves on its own.
			b.clock.Advance(25 * time.Hour)
			b.reconcile(t)
			require.Equal(t, 2, b.status(t).Percent)
			pr, _ = b.fake.PhasedRelease(vid)
			require.Equal(t, appstore.PhasedActive, pr.State)

			_, err = b.ro.Command(ctx, b.lane.ID, release.CmdComplete, "alice", "all good")
			require.NoError(t, err)
			pr, _ = b.fake.PhasedRelease(vid)
			require.Equal(t, appstore.PhasedComplete, pr.State)
			require.Equal(t, release.StateCompleted, b.status(t).State)

			iosGolden(t, "app_store_phased.json", map[string]any{"mutations": nonZero(b.fake.MutationCounts()), "events": b.eventKinds(t)})
		})
	}
}

// TestIOSLaneAppStoreWithoutPhasedRelease releases to everyone at once.
func TestIOSLaneAppStoreWithoutPhasedRelease(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{appStore: true, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	b.reconcile(t)
	require.Equal(t, release.StateCompleted, b.status(t).State)
	vid, _ := b.laneData(t)["version_id"].(string)
	state, _, _ := b.fake.Version(vid)
	require.Equal(t, appstore.VersionReadyForDistribution, state)
	_, ok := b.fake.PhasedRelease(vid)
	require.False(t, ok)
	require.Equal(t, 0, b.fake.Mutations("POST /v1/appStoreVersionPhasedReleases"))
}

// makeIPA builds an IPA whose Info.plist is plist (XML or binary).
func makeIPA(t testing.TB, plist []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string][]byte{"Payload/Acme.app/Info.plist": plist, "Payload/Acme.app/Acme": bytes.Repeat([]byte{0xCF}, 64<<10)} {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func xmlPlist(version, build string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CFBundleIdentifier</key>
	<string>com.acme.mobile</string>
	<key>UIDeviceFamily</key>
	<array><integer>1</integer></array>
	<key>CFBundleShortVersionString</key>
	<string>` + version + `</string>
	<key>CFBundleVersion</key>
	<string>` + build + `</string>
</dict>
</plist>`)
}

// binaryPlist writes a bplist00 with one dictionary of ASCII strings (and
// one UTF-16 value), the way Xcode stores Info.plist in an IPA.
func binaryPlist(kv [][2]string) []byte {
	var objs [][]byte
	head := func(kind byte, n int) []byte {
		if n < 15 {
			return []byte{kind<<4 | byte(n)}
		}
		return []byte{kind<<4 | 0xF, 0x10, byte(n)}
	}
	str := func(s string) []byte {
		if strings.IndexFunc(s, func(r rune) bool { return r > 127 }) >= 0 {
			u := []rune(s)
			out := head(0x6, len(u))
			for _, r := range u {
				out = append(out, byte(r>>8), byte(r))
			}
			return out
		}
		return append(head(0x5, len(s)), s...)
	}
	n := len(kv)
	dict := []byte{0xD0 | byte(n)}
	for i := range kv {
		dict = append(dict, byte(1+i))
	}
	for i := range kv {
		dict = append(dict, byte(1+n+i))
	}
	objs = append(objs, dict)
	for _, p := range kv {
		objs = append(objs, str(p[0]))
	}
	for _, p := range kv {
		objs = append(objs, str(p[1]))
	}
	out := []byte("bplist00")
	var offsets []byte
	for _, o := range objs {
		offsets = append(offsets, byte(len(out)))
		out = append(out, o...)
	}
	table := len(out)
	out = append(out, offsets...)
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 1, 1
	trailer[15] = byte(len(objs))
	trailer[23] = 0
	trailer[31] = byte(table)
	return append(out, trailer...)
}

func TestIPAVersion(t *testing.T) {
	t.Parallel()
	for name, plist := range map[string][]byte{
		"xml":    xmlPlist("1.4.0", "45"),
		"binary": binaryPlist([][2]string{{"CFBundleName", "Acmé"}, {"CFBundleShortVersionString", "1.4.0"}, {"CFBundleVersion", "45"}}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ipa := makeIPA(t, plist)
			v, b, err := ioslane.IPAVersion(bytes.NewReader(ipa), int64(len(ipa)))
			require.NoError(t, err)
			require.Equal(t, "1.4.0", v)
			require.Equal(t, "45", b)
		})
	}
	bad := makeIPA(t, xmlPlist("1.4.0", "45; rm -rf"))
	_, _, err := ioslane.IPAVersion(bytes.NewReader(bad), int64(len(bad)))
	require.ErrorContains(t, err, `CFBundleVersion "45; rm -rf" is not`)
	_, _, err = ioslane.IPAVersion(bytes.NewReader([]byte("nope")), 4)
	require.ErrorContains(t, err, "not an IPA")
	trunc := binaryPlist([][2]string{{"CFBundleVersion", "45"}})
	trunc = trunc[:len(trunc)-5]
	ipa := makeIPA(t, trunc)
	_, _, err = ioslane.IPAVersion(bytes.NewReader(ipa), int64(len(ipa)))
	require.Error(t, err)
}

// TestIOSLaneUpload uploads the release's IPA from GitHub once, follows the
// upload to its build, and distributes it; a re-run after the upload sends
// no byte again.
func TestIOSLaneUpload(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{version: "1.4.0", noBuild: true, configure: func(a *config.App) {
		a.IOS.BuildSource, a.IOS.IPAAsset = "upload", "*.ipa"
	}})
	// No asset yet: the lane waits for it.
	err := b.work(context.Background())
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	require.EqualValues(t, 0, b.asc.UploadParts())
	b.putIPA("v1.4.0", makeIPA(t, xmlPlist("1.4.0", "46")))

	var uploads []int64
	_, err = b.runLane(t, func(int, error) { uploads = append(uploads, b.asc.UploadParts()) })
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State)
	d := b.laneData(t)
	require.Equal(t, "46", d["build_number"])
	require.NotEmpty(t, d["upload_id"])
	require.Equal(t, 1, b.fake.Mutations("POST /v1/buildUploads"))
	require.Equal(t, 1, b.fake.Mutations("POST /v1/buildUploadFiles"))
	require.Equal(t, 1, b.fake.Mutations("PATCH /v1/buildUploadFiles/{id}"))
	require.Equal(t, uploads[0], uploads[len(uploads)-1], "parts are sent in the first run only")
	require.Contains(t, b.eventKinds(t), "ios.uploaded")
	bins, err := b.st.Binaries(context.Background(), "acme", release.IOS)
	require.NoError(t, err)
	require.Equal(t, "46", bins[0].BuildNumber)
}

func TestIOSLaneUploadRefused(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{version: "1.4.0", noBuild: true, configure: func(a *config.App) {
		a.IOS.BuildSource, a.IOS.IPAAsset = "upload", "*.ipa"
	}, options: func(o *appstoretest.Options) { o.UploadProcessingPolls = 3 }})
	b.putIPA("v1.4.0", makeIPA(t, xmlPlist("1.4.0", "46")))
	err := b.work(context.Background())
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	uploadID, _ := b.laneData(t)["upload_id"].(string)
	require.NoError(t, b.fake.FailUpload(uploadID, "90062", "This bundle is invalid. The value for key CFBundleShortVersionString must be higher."))
	_, err = b.runLane(t, nil)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	st := b.status(t)
	require.Equal(t, release.StateFailed, st.State)
	require.Equal(t, "App Store Connect refused the upload of 1.4.0 (46): 90062: This bundle is invalid. The value for key CFBundleShortVersionString must be higher.", st.Reason)
}

// TestIOSLaneUploadWrongVersion refuses an IPA of another version before
// anything is sent.
func TestIOSLaneUploadWrongVersion(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{noBuild: true, configure: func(a *config.App) {
		a.IOS.BuildSource, a.IOS.IPAAsset = "upload", "*.ipa"
	}})
	b.putIPA("v1.4.0+45", makeIPA(t, xmlPlist("1.4.0", "47")))
	_, err := b.runLane(t, nil)
	require.Error(t, err)
	require.Equal(t, "asset Acme.ipa of v1.4.0+45 is build 47, but this lane ships build 45; tag a new release for a new build", b.status(t).Reason)
	require.Empty(t, nonZero(b.fake.MutationCounts()))
}

// TestIOSLanePicksUpNewestBuild: a tag without a build number takes the
// newest build of its version once CI's upload appears.
func TestIOSLanePicksUpNewestBuild(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{version: "1.4.0", noBuild: true})
	err := b.work(context.Background())
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	require.Equal(t, 30*time.Second, snooze.Duration)
	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "50", Polls: 1, UploadedDate: iosStart})
	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "51", Polls: 1, UploadedDate: iosStart.Add(time.Second)})
	_, err = b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, "51", b.laneData(t)["build_number"])
	require.Contains(t, b.status(t).Reason, "1.4.0 (51)")
}

func iosFailed(t *testing.T, b *iosBundle, err error, reason string) {
	t.Helper()
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	st := b.status(t)
	require.Equal(t, release.StateFailed, st.State)
	require.Equal(t, reason, st.Reason)
	evs := b.events(t)
	last := evs[len(evs)-1]
	require.Equal(t, "lane.failed", last.Kind)
	require.Equal(t, reason, last.Details["reason"])
	// A River retry of a failed lane does nothing.
	calls := b.asc.Calls()
	require.NoError(t, b.work(context.Background()))
	require.Equal(t, calls, b.asc.Calls())
}

func TestIOSLaneBuildInvalid(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 3, result: appstore.ProcessingStateInvalid})
	_, err := b.runLane(t, nil)
	iosFailed(t, b, err, "build 1.4.0 (45) ended INVALID in App Store Connect processing; upload a fixed build under a new build number")
	require.Empty(t, nonZero(b.fake.MutationCounts()))
}

// TestIOSLaneProcessingTimeout: polls slow down (30 s ×1.5 up to 10
// minutes) and the lane fails once processing outlasts ios.processing_timeout.
func TestIOSLaneProcessingTimeout(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 100000})
	var delays []time.Duration
	_, err := b.runLane(t, func(_ int, err error) {
		var s *river.JobSnoozeError
		if errors.As(err, &s) {
			delays = append(delays, s.Duration)
		}
	})
	iosFailed(t, b, err, "build 1.4.0 (45) still PROCESSING after 2h0m0s")
	require.Equal(t, []time.Duration{30 * time.Second, 45 * time.Second, 67500 * time.Millisecond}, delays[:3])
	require.Equal(t, 10*time.Minute, delays[len(delays)-1])
	require.Less(t, len(delays), 25, "about 2 hours of polls")
	require.Empty(t, nonZero(b.fake.MutationCounts()))
}

func TestIOSLaneBetaReviewRejected(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, external: true})
	_, err := b.runLane(t, func(run int, err error) {
		if d := b.laneData(t); d["waiting"] == "beta_review" && d["polls"] == float64(2) {
			require.NoError(t, b.fake.SetBetaReview(b.buildID, appstore.BetaReviewRejected))
		}
	})
	iosFailed(t, b, err, "Beta App Review rejected build 1.4.0 (45); see App Store Connect for the reviewer's notes, fix and tag a new build")
	require.Equal(t, 1, b.fake.Mutations("POST /v1/betaAppReviewSubmissions"))
	require.Equal(t, 1, b.fake.Mutations("POST /v1/builds/{id}/relationships/betaGroups"), "the external group is never added")
	bs, _ := b.fake.Build(b.buildID)
	require.Len(t, bs.Groups, 1)
	bins, err := b.st.Binaries(context.Background(), "acme", release.IOS)
	require.NoError(t, err)
	require.Empty(t, bins)
}

func TestIOSLaneAppReviewRejected(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true})
	_, err := b.runLane(t, func(run int, err error) {
		if d := b.laneData(t); d["waiting"] == "app_review" && d["polls"] == float64(3) {
			require.NoError(t, b.fake.SetVersionState(d["version_id"].(string), appstore.VersionRejected))
		}
	})
	iosFailed(t, b, err, "App Review: App Store version 1.4.0 with build 1.4.0 (45) is REJECTED; see the Resolution Center in App Store Connect")
	require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissions"))
}

func TestIOSLaneUnknownGroup(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, configure: func(a *config.App) { a.IOS.InternalGroups = []string{"Team", "QA"} }})
	_, err := b.runLane(t, nil)
	iosFailed(t, b, err, `ios.internal_groups: beta group "QA" does not exist in App Store Connect app `+b.appID+` (it has "Public Beta", "Team")`)
	require.Equal(t, 0, b.fake.Mutations("POST /v1/builds/{id}/relationships/betaGroups"))
}

// TestIOSLaneRateLimitExhausted: the hourly budget runs out mid-wait; the
// lane snoozes, says why, and goes on once the window rolls.
func TestIOSLaneRateLimitExhausted(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 4, external: true, options: func(o *appstoretest.Options) { o.BetaReviewTime = time.Minute }})
	limited := 0
	_, err := b.runLane(t, func(run int, err error) {
		if run == 2 {
			b.fake.SetRemaining(iosKeyID, 0)
		}
		var s *river.JobSnoozeError
		if errors.As(err, &s) && s.Duration >= 15*time.Minute {
			limited++
		}
	})
	require.NoError(t, err)
	require.Positive(t, limited)
	require.Equal(t, release.StateRolling, b.status(t).State)
	require.Contains(t, b.eventKinds(t), "ios.rate_limited")
	for _, e := range b.events(t) {
		if e.Kind == "ios.rate_limited" {
			require.Contains(t, e.Details["reason"], "App Store Connect's hourly request budget is spent; trying again in 15m0s")
		}
	}
	requireCleanMutations(t, b)
}

// requireCleanMutations: each mutation of the TestFlight flow happened once.
func requireCleanMutations(t *testing.T, b *iosBundle) {
	t.Helper()
	want := map[string]int{"PATCH /v1/builds/{id}": 1, "POST /v1/betaBuildLocalizations": 1,
		"POST /v1/builds/{id}/relationships/betaGroups": 1}
	if len(b.app.IOS.ExternalGroups) > 0 {
		want["POST /v1/builds/{id}/relationships/betaGroups"] = 2
		want["POST /v1/betaAppReviewSubmissions"] = 1
	}
	require.Equal(t, want, nonZero(b.fake.MutationCounts()))
}

// TestIOSLaneServerErrors: bursts of 5xx longer than the client's retries
// fail single runs, which River retries; nothing is sent twice.
func TestIOSLaneServerErrors(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 2, external: true, options: func(o *appstoretest.Options) { o.BetaReviewTime = time.Minute }})
	for _, prefix := range []string{"/v1/builds", "/v1/betaBuildLocalizations", "/v1/betaAppReviewSubmissions", "/v1/betaGroups"} {
		b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultStatus, Status: 503, PathPrefix: prefix, Times: 7})
	}
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultStatus, Status: 500, Method: "POST", PathPrefix: "/v1/betaAppReviewSubmissions", Times: 1})
	failed := 0
	_, err := b.runLane(t, func(_ int, err error) {
		var s *river.JobSnoozeError
		if err != nil && !errors.As(err, &s) {
			failed++
			require.NotContains(t, err.Error(), "eyJ", "no token in errors")
		}
	})
	require.NoError(t, err)
	require.Positive(t, failed)
	require.Positive(t, b.fake.FaultsHit())
	require.Equal(t, release.StateRolling, b.status(t).State)
	requireCleanMutations(t, b)
}

// TestIOSLaneTokenExpiresMidWait: processing outlasts several 20-minute
// tokens; the client mints new ones and App Store Connect never refuses.
func TestIOSLaneTokenExpiresMidWait(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 14})
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State)
	require.Greater(t, b.tokens.Minted(), 2)
	requireCleanMutations(t, b)
}

// TestIOSLaneCrashBetweenSteps runs every job run twice: the second time
// with the lane data as it was before the first, as if the first run had
// crashed after its App Store Connect calls and before it recorded them.
// The re-runs read App Store Connect and send no mutation again.
func TestIOSLaneCrashBetweenSteps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		appStore, upload bool
	}{{"testflight", false, false}, {"app_store", true, false}, {"upload", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			opts := iosOpts{polls: 3, external: true, appStore: tc.appStore, phased: tc.appStore, noBuild: tc.upload, options: func(o *appstoretest.Options) {
				o.BetaReviewTime, o.AppReviewTime, o.UploadProcessingPolls = time.Minute, time.Hour, 2
			}}
			if tc.upload {
				opts.configure = func(a *config.App) { a.IOS.BuildSource, a.IOS.IPAAsset = "upload", "*.ipa" }
			}
			setup := func() *iosBundle {
				b := setupIOS(t, store.SQLite, opts)
				b.putIPA("v1.4.0+45", makeIPA(t, xmlPlist("1.4.0", "45")))
				return b
			}
			clean := setup()
			_, err := clean.runLane(t, nil)
			require.NoError(t, err)

			b := setup()
			for run := 0; run < 100; run++ {
				var before json.RawMessage
				require.NoError(t, b.st.LaneData(ctx, b.lane.ID, &before))
				err := b.work(ctx)
				if b.status(t).State == release.StatePending {
					require.NoError(t, b.st.SetLaneData(ctx, b.lane.ID, before, b.clock.Now()))
					err = b.work(ctx)
				}
				var s *river.JobSnoozeError
				if errors.As(err, &s) {
					b.clock.Advance(s.Duration)
					continue
				}
				require.NoError(t, err)
				break
			}
			require.Equal(t, release.StateRolling, b.status(t).State, b.status(t).Reason)
			require.Equal(t, nonZero(clean.fake.MutationCounts()), nonZero(b.fake.MutationCounts()))
			require.Equal(t, clean.asc.UploadParts(), b.asc.UploadParts(), "no part is sent twice")
			if tc.upload {
				require.Positive(t, clean.asc.UploadParts())
			}
		})
	}
}

// TestIOSLaneCrashAfterMutation cancels the job right after App Store
// Connect accepted the beta review submission, before the lane recorded
// it; the next run finds the submission and does not submit again.
func TestIOSLaneCrashAfterMutation(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, external: true, options: func(o *appstoretest.Options) { o.BetaReviewTime = time.Minute }})
	ctx, cancel := context.WithCancel(context.Background())
	b.asc.OnRequest = func(method, path string, status int) {
		if method == "POST" && path == "/v1/betaAppReviewSubmissions" && status == 201 {
			cancel()
		}
	}
	err := b.work(ctx)
	require.ErrorIs(t, err, context.Canceled)
	b.asc.OnRequest = nil
	require.Equal(t, 1, b.fake.Mutations("POST /v1/betaAppReviewSubmissions"))
	require.NotContains(t, b.eventKinds(t), "ios.beta_review_submitted")

	_, err = b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State)
	requireCleanMutations(t, b)
}

// TestIOSExecutorTestFlightOnly: TestFlight lanes need no App Store Connect
// call to complete or halt.
func TestIOSExecutorTestFlightOnly(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1})
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	calls := b.asc.Calls()
	l, err := b.st.GetLane(context.Background(), b.lane.ID)
	require.NoError(t, err)
	for _, a := range []release.Action{release.ActionHalt, release.ActionComplete} {
		require.NoError(t, b.ios.Execute(context.Background(), l, release.Decision{Action: a, Percent: 100}))
	}
	require.Equal(t, calls, b.asc.Calls())
	obs, err := b.ios.Observe(context.Background(), l)
	require.NoError(t, err)
	require.Empty(t, obs.Metrics)
}

// TestIOSWakerRetriesSnoozedJob: an App Store Connect event about the build
// a snoozed lane job waits on makes that job available at once; other jobs
// stay scheduled.
func TestIOSWakerRetriesSnoozedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{})
	// The first run finds the build processing and snoozes.
	var s *river.JobSnoozeError
	require.ErrorAs(t, b.work(ctx), &s)

	rel2, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.5.0", Version: "1.5.0", CreatedAt: iosStart})
	require.NoError(t, err)
	other, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: rel2.ID, Platform: release.IOS, Kind: release.KindStore, Plan: b.lane.Plan}, iosStart)
	require.NoError(t, err)
	require.NoError(t, b.st.SetLaneData(ctx, other.ID, map[string]any{"build_id": "someone-else"}, iosStart))

	db := b.st.DB
	runner, err := jobs.New(jobs.Config{DB: db, Register: []func(*river.Workers){func(w *river.Workers) { river.AddWorker(w, b.worker) }}})
	require.NoError(t, err)
	later := time.Now().Add(time.Hour)
	ins := func(laneID string) int64 {
		res, err := runner.Client.Insert(ctx, lane.IOSArgs{LaneID: laneID}, &river.InsertOpts{ScheduledAt: later})
		require.NoError(t, err)
		require.Equal(t, rivertype.JobStateScheduled, res.Job.State)
		return res.Job.ID
	}
	rel3, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.6.0", Version: "1.6.0", CreatedAt: iosStart})
	require.NoError(t, err)
	pickup, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: rel3.ID, Platform: release.IOS, Kind: release.KindStore, Plan: b.lane.Plan}, iosStart)
	require.NoError(t, err)
	require.NoError(t, b.st.SetLaneData(ctx, pickup.ID, map[string]any{"version": "1.6.0", "waiting": "pickup"}, iosStart))
	mine, theirs, waiting := ins(b.lane.ID), ins(other.ID), ins(pickup.ID)

	waker := &ioslane.Waker{Store: b.st, Client: func() *river.Client[*sql.Tx] { return runner.Client }}
	woken, err := waker.Wake(ctx, "APP_STORE_VERSION_APP_VERSION_STATE_UPDATED", "unrelated-id")
	require.NoError(t, err)
	require.Empty(t, woken)
	woken, err = waker.Wake(ctx, "BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED", b.buildID)
	require.NoError(t, err)
	require.Equal(t, []string{b.lane.ID}, woken)
	j, err := runner.Client.JobGet(ctx, mine)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateAvailable, j.State)
	j, err = runner.Client.JobGet(ctx, theirs)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateScheduled, j.State)

	// Any build upload may be the one a pickup lane waits for.
	j, err = runner.Client.JobGet(ctx, waiting)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateScheduled, j.State)
	woken, err = waker.Wake(ctx, "BUILD_UPLOAD_STATE_UPDATED", "upload-of-ci")
	require.NoError(t, err)
	require.Equal(t, []string{pickup.ID}, woken)
}

// TestIOSLaneGroupRefused: App Store Connect refuses the internal group
// link although the build is ready for testing; the lane fails with
// Apple's answer and the build's TestFlight state.
func TestIOSLaneGroupRefused(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1})
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultStatus, Status: 422, Method: "POST", PathPrefix: "/v1/builds/"})
	_, err := b.runLane(t, nil)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	st := b.status(t)
	require.Equal(t, release.StateFailed, st.State)
	require.True(t, strings.HasPrefix(st.Reason, "add 1.4.0 (45) to the internal groups: "), st.Reason)
	require.True(t, strings.HasSuffix(st.Reason, "(TestFlight state READY_FOR_BETA_TESTING)"), st.Reason)
	require.Equal(t, 0, b.fake.Mutations("POST /v1/builds/{id}/relationships/betaGroups"))
}

// TestIOSLaneCancelledWhilePending: a cancel while the lane job still works
// changes nothing on App Store Connect, and the job's next run stops.
func TestIOSLaneCancelledWhilePending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{appStore: true, phased: true})
	var s *river.JobSnoozeError
	require.ErrorAs(t, b.work(ctx), &s)
	_, err := b.ro.Command(ctx, b.lane.ID, release.CmdCancel, "alice", "wrong build")
	require.NoError(t, err)
	require.Equal(t, release.StateCancelled, b.status(t).State)
	calls := b.asc.Calls()
	require.NoError(t, b.work(ctx))
	require.Equal(t, calls, b.asc.Calls())
	require.Empty(t, nonZero(b.fake.MutationCounts()))
}

// TestIOSLanePollsSlowDownOnLowBudget: with under 5 % of the hourly budget
// left, the next poll waits twice the longest interval.
func TestIOSLanePollsSlowDownOnLowBudget(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{})
	var s *river.JobSnoozeError
	require.ErrorAs(t, b.work(context.Background()), &s)
	require.Equal(t, 30*time.Second, s.Duration)
	b.fake.SetRemaining(iosKeyID, 150) // of 3600
	b.clock.Advance(s.Duration)
	require.ErrorAs(t, b.work(context.Background()), &s)
	require.Equal(t, 20*time.Minute, s.Duration)
	b.fake.SetRemaining(iosKeyID, 600)
	b.clock.Advance(s.Duration)
	require.ErrorAs(t, b.work(context.Background()), &s)
	require.Equal(t, 10*time.Minute, s.Duration, "under 20 %: at least the longest interval")
}

// TestIOSLaneBetaReviewBusy: another build of the version is in Beta App
// Review, so App Store Connect refuses the submission (409); the lane waits
// and submits once the other review is over.
func TestIOSLaneBetaReviewBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, external: true})
	older := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "44", Polls: 1, UploadedDate: iosStart.Add(-time.Hour)})
	_, err := b.asc.Build(ctx, older) // processed
	require.NoError(t, err)
	_, err = b.asc.SetUsesNonExemptEncryption(ctx, older, false)
	require.NoError(t, err)
	_, err = b.asc.SubmitForBetaReview(ctx, older)
	require.NoError(t, err)
	submissions := b.fake.Mutations("POST /v1/betaAppReviewSubmissions")

	_, err = b.runLane(t, func(run int, err error) {
		d := b.laneData(t)
		switch {
		case d["waiting"] == "beta_submit" && d["polls"] == float64(2):
			require.NoError(t, b.fake.SetBetaReview(older, appstore.BetaReviewApproved))
		case d["waiting"] == "beta_review":
			require.NoError(t, b.fake.SetBetaReview(b.buildID, appstore.BetaReviewApproved))
		}
	})
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State)
	require.Equal(t, submissions+1, b.fake.Mutations("POST /v1/betaAppReviewSubmissions"))
	var waited bool
	for _, e := range b.events(t) {
		if e.Kind == "ios.waiting" && e.Details["waiting"] == "beta_submit" {
			waited = true
			require.Contains(t, e.Details["reason"], "build 1.4.0 (45) waits to be submitted to Beta App Review")
		}
	}
	require.True(t, waited)
}

// TestIOSLaneOtherVersionInFlight: another version of the app is in App
// Review, so App Store Connect refuses to create the lane's version (409);
// the lane waits, says why, and goes on once the other version is out.
func TestIOSLaneOtherVersionInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
	hotfix := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.3.1", BuildNumber: "44", Polls: 1, UploadedDate: iosStart.Add(-time.Hour)})
	v, _, err := b.asc.FindOrCreateAppStoreVersion(ctx, b.appID, appstore.PlatformIOS, "1.3.1")
	require.NoError(t, err)
	// Apple refuses to submit a version whose build has no export
	// compliance answer, so the hotfix answers it first.
	_, err = b.asc.SetUsesNonExemptEncryption(ctx, hotfix, false)
	require.NoError(t, err)
	require.NoError(t, b.asc.AttachBuild(ctx, v.ID, hotfix))
	_, err = b.asc.SetWhatsNew(ctx, v.ID, nil, "Hotfix.")
	require.NoError(t, err)
	_, err = b.asc.SubmitForReview(ctx, b.appID, appstore.PlatformIOS, v.ID)
	require.NoError(t, err)

	_, err = b.runLane(t, func(run int, err error) {
		if d := b.laneData(t); d["waiting"] == "app_store_version" && d["polls"] == float64(2) {
			require.NoError(t, b.fake.SetVersionState(v.ID, appstore.VersionReadyForDistribution))
		}
	})
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State, b.status(t).Reason)
	require.Equal(t, 2, b.fake.Mutations("POST /v1/appStoreVersions"))
	var reason string
	for _, e := range b.events(t) {
		if e.Kind == "ios.waiting" && e.Details["waiting"] == "app_store_version" {
			reason, _ = e.Details["reason"].(string)
		}
	}
	require.Contains(t, reason, "App Store version 1.4.0 cannot be created yet:")
	require.Contains(t, reason, "version 1.3.1 is WAITING_FOR_REVIEW")
}

// TestIOSScheduledAdvanceDoesNotUndoAPause: someone pauses the phased
// release in App Store Connect (or a halt races a tick); the next scheduled
// advance must leave it paused and say why, and only a resume continues it.
func TestIOSScheduledAdvanceDoesNotUndoAPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = 24 * time.Hour }})
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	b.reconcile(t) // day 1: phased release ACTIVE
	vid, _ := b.laneData(t)["version_id"].(string)
	_, err = b.asc.PausePhasedRelease(ctx, vid)
	require.NoError(t, err)

	b.clock.Advance(25 * time.Hour)
	require.NoError(t, b.ro.Pass(ctx), "the lane follows App Store Connect instead of failing the step")
	pr, _ := b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedPaused, pr.State, "a scheduled advance does not resume a pause")
	st := b.status(t)
	require.Equal(t, release.StatePaused, st.State, "paused, as App Store Connect says")
	require.Equal(t, 1, st.Percent)
	require.Contains(t, st.Reason, "was paused outside this rollout; resume the lane to continue it")
	b.clock.Advance(25 * time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, st.Version, b.status(t).Version, "a paused lane is left alone: no failure every pass")

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdResume, "alice", "fine")
	require.NoError(t, err)
	pr, _ = b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedActive, pr.State, "a person's resume continues it")
}

// approvedPhased runs a phased App Store lane (review approves after an
// hour) until it is handed to the reconciler, and returns the version id.
func approvedPhased(t *testing.T, b *iosBundle) string {
	t.Helper()
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State, b.status(t).Reason)
	vid, _ := b.laneData(t)["version_id"].(string)
	require.NotEmpty(t, vid)
	return vid
}

// TestIOSLaneExistingVersionAfterApproval: version 1.4.0 was made in App
// Store Connect with the default release type AFTER_APPROVAL (or
// SCHEDULED). The lane makes it MANUAL, sets up the phased release before
// it submits, and approval leaves it for the reconciler to release.
func TestIOSLaneExistingVersionAfterApproval(t *testing.T) {
	t.Parallel()
	for _, rt := range []appstore.ReleaseType{appstore.ReleaseAfterApproval, appstore.ReleaseScheduled} {
		t.Run(string(rt), func(t *testing.T) {
			t.Parallel()
			b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
			vid := b.fake.AddVersion(appstoretest.AppStoreVersion{AppID: b.appID, VersionString: "1.4.0", ReleaseType: rt})
			var phasedAtSubmit *appstore.PhasedRelease
			b.asc.OnRequest = func(method, path string, status int) {
				if method == "PATCH" && strings.HasPrefix(path, "/v1/reviewSubmissions/") && phasedAtSubmit == nil {
					if pr, ok := b.fake.PhasedRelease(vid); ok {
						phasedAtSubmit = &pr
					} else {
						phasedAtSubmit = &appstore.PhasedRelease{}
					}
				}
			}
			require.Equal(t, vid, approvedPhased(t, b))
			require.Equal(t, appstore.ReleaseManual, b.fake.ReleaseType(vid))
			require.Equal(t, 1, b.fake.Mutations("PATCH /v1/appStoreVersions/{id}"))
			require.Equal(t, 0, b.fake.Mutations("POST /v1/appStoreVersions"))
			require.NotNil(t, phasedAtSubmit)
			require.Equal(t, appstore.PhasedInactive, phasedAtSubmit.State, "the phased release exists before submitted: true")
			state, _, _ := b.fake.Version(vid)
			require.Equal(t, appstore.VersionPendingDeveloperRelease, state, "approval does not release it")
			require.Equal(t, 0, b.status(t).Percent)

			b.reconcile(t)
			pr, _ := b.fake.PhasedRelease(vid)
			require.Equal(t, appstore.PhasedActive, pr.State)
			require.Equal(t, 1, pr.CurrentDayNumber)
			require.Equal(t, 1, b.status(t).Percent)
		})
	}
}

// TestIOSLaneReleasedOnApprovalFails: someone sets the version back to
// AFTER_APPROVAL while it is in review. Approval then releases it without
// the reconciler; with no phased release of ours that is everyone at once,
// and the lane fails saying so instead of reporting success.
func TestIOSLaneReleasedOnApprovalFails(t *testing.T) {
	t.Parallel()
	for _, phased := range []bool{false, true} {
		t.Run(fmt.Sprint("phased=", phased), func(t *testing.T) {
			t.Parallel()
			b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: phased, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
			_, err := b.runLane(t, func(run int, err error) {
				if d := b.laneData(t); d["waiting"] == "app_review" && d["polls"] == float64(1) {
					vid := d["version_id"].(string)
					require.NoError(t, b.fake.SetReleaseType(vid, appstore.ReleaseAfterApproval))
					b.fake.DeletePhasedRelease(vid)
				}
			})
			want := "App Store version 1.4.0 is READY_FOR_DISTRIBUTION: App Store Connect released it on approval (release type AFTER_APPROVAL), not releasepilot; it reaches everyone at once"
			if phased {
				want = "App Store version 1.4.0 is READY_FOR_DISTRIBUTION without a phased release: App Store Connect released it on approval (release type AFTER_APPROVAL), so it reaches everyone at once"
			}
			iosFailed(t, b, err, want)
		})
	}
}

// TestIOSScheduledCompleteKeepsAPause: someone paused the phased release;
// the plan's complete (no command) must not release to everyone, nor may
// a person's advance; only a person's complete does.
func TestIOSScheduledCompleteKeepsAPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
	vid := approvedPhased(t, b)
	b.reconcile(t) // day 1
	b.clock.Advance(6*24*time.Hour + time.Hour)
	_, err := b.asc.PausePhasedRelease(ctx, vid) // on day 7, in App Store Connect
	require.NoError(t, err)
	l, err := b.st.GetLane(ctx, b.lane.ID)
	require.NoError(t, err)
	err = b.ios.Execute(ctx, l, release.Decision{Action: release.ActionComplete, Percent: 100})
	require.ErrorContains(t, err, "was paused outside this rollout")
	err = b.ios.Execute(ctx, l, release.Decision{Action: release.ActionComplete, Percent: 100, Command: release.CmdAdvance})
	require.ErrorContains(t, err, "only a complete command releases it to everyone")
	pr, _ := b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedPaused, pr.State)
	require.NoError(t, b.ios.Execute(ctx, l, release.Decision{Action: release.ActionComplete, Percent: 100, Command: release.CmdComplete}))
	pr, _ = b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedComplete, pr.State)
}

// TestIOSPlanFollowsApplesDaysAfterAPause: a three-day pause stops Apple's
// day counter. The plan's own clock reaches its last step first; the
// scheduled complete then holds, saying which day Apple is on, and sends
// nothing until Apple's day 7. Each hourly pass costs one read.
func TestIOSPlanFollowsApplesDaysAfterAPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
	vid := approvedPhased(t, b)
	b.reconcile(t) // day 1
	var reasons []string
	var maxCallsPerPass int64
	for hour := 1; hour < 14*24 && b.status(t).State != release.StateCompleted; hour++ {
		b.clock.Advance(time.Hour)
		switch hour {
		case 30:
			_, err := b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "alice", "crash spike")
			require.NoError(t, err)
		case 30 + 72:
			_, err := b.ro.Command(ctx, b.lane.ID, release.CmdResume, "alice", "fixed")
			require.NoError(t, err)
		}
		before, _ := b.fake.PhasedRelease(vid)
		calls, mutations := b.asc.Calls(), sum(b.fake.MutationCounts())
		_ = b.ro.Pass(ctx)
		if sum(b.fake.MutationCounts()) == mutations {
			maxCallsPerPass = max(maxCallsPerPass, b.asc.Calls()-calls)
		}
		after, _ := b.fake.PhasedRelease(vid)
		if after.State == appstore.PhasedComplete && before.State != appstore.PhasedComplete {
			require.GreaterOrEqual(t, before.CurrentDayNumber, 7, "completed on Apple's day %d (hour %d)", before.CurrentDayNumber, hour)
		}
		if r := b.status(t).Reason; strings.Contains(r, "completes on its own") && !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
		if b.status(t).State == release.StateRolling && hour > 30+72 {
			l, err := b.st.GetLane(ctx, b.lane.ID)
			require.NoError(t, err)
			obs, err := b.ios.Observe(ctx, l)
			require.NoError(t, err)
			require.Equal(t, float64(after.CurrentDayNumber), obs.Metrics[ioslane.PhasedDayMetric].Value)
		}
	}
	require.Equal(t, release.StateCompleted, b.status(t).State)
	pr, _ := b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedComplete, pr.State)
	require.NotEmpty(t, reasons, "the plan's complete held for Apple's day 7")
	require.Regexp(t, `complete to 100% failed: Apple's phased release of 1\.4\.0 is on day [1-6]; it completes on its own on day 7$`, reasons[0])
	require.Equal(t, int64(1), maxCallsPerPass, "a pass that changes nothing reads once")
	// Pause and resume, and at most the complete of day 7: Apple moves the days.
	require.GreaterOrEqual(t, b.fake.Mutations("PATCH /v1/appStoreVersionPhasedReleases/{id}"), 2)
	require.LessOrEqual(t, b.fake.Mutations("PATCH /v1/appStoreVersionPhasedReleases/{id}"), 3)
}

// TestIOSHaltWhileProcessingForDistribution: right after the release
// request Apple is PROCESSING_FOR_DISTRIBUTION and the phased release is
// still INACTIVE, so it cannot be paused, and it starts on its own soon.
// A halt then must fail (to be retried), not be recorded as done; once the
// phased release has started the retried halt pauses it.
func TestIOSHaltWhileProcessingForDistribution(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true, options: func(o *appstoretest.Options) {
		o.AppReviewTime, o.DistributionTime = time.Hour, 30*time.Minute
	}})
	vid := approvedPhased(t, b)
	b.reconcile(t) // release requested: day 1 once Apple has processed it
	state, _, _ := b.fake.Version(vid)
	require.Equal(t, appstore.VersionProcessingForDistribution, state)

	_, err := b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "alice", "crash spike")
	require.ErrorContains(t, err, "pause pending: the phased release has not started yet")
	require.NotEqual(t, release.StateHalted, b.status(t).State, "the halt is not recorded before it took effect")
	require.Equal(t, release.CmdHalt, b.status(t).PendingCommand, "it stays pending: the lane shows it and nothing scheduled moves it")
	pr, _ := b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedInactive, pr.State)

	// Retried (by its job, and by every reconcile pass) until Apple has
	// started it.
	b.clock.Advance(31 * time.Minute)
	b.reconcile(t)
	require.Equal(t, release.StateHalted, b.status(t).State)
	require.Empty(t, b.status(t).PendingCommand)
	pr, _ = b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedPaused, pr.State, "the rollout Apple started is paused")

	// A halt before the version is released has nothing to stop.
	b2 := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
	vid2 := approvedPhased(t, b2)
	_, err = b2.ro.Command(ctx, b2.lane.ID, release.CmdHalt, "alice", "not yet")
	require.NoError(t, err)
	state, _, _ = b2.fake.Version(vid2)
	require.Equal(t, appstore.VersionPendingDeveloperRelease, state)
}

// TestIOSLaneAnswerLost: App Store Connect applies one of the lane's
// mutations and the answer is lost (a 5xx after the fact, or a dropped
// connection). The lane retries, reads what happened, and ends as a clean
// run does, without sending the mutation twice.
func TestIOSLaneAnswerLost(t *testing.T) {
	t.Parallel()
	opts := iosOpts{polls: 1, external: true, appStore: true, phased: true, options: func(o *appstoretest.Options) {
		o.BetaReviewTime, o.AppReviewTime = time.Minute, time.Hour
	}}
	clean := setupIOS(t, store.SQLite, opts)
	_, err := clean.runLane(t, nil)
	require.NoError(t, err)
	want := nonZero(clean.fake.MutationCounts())
	for _, tc := range []struct{ name, method, prefix string }{
		{"submit for review", "PATCH", "/v1/reviewSubmissions/"},
		{"beta review submission", "POST", "/v1/betaAppReviewSubmissions"},
		{"group link", "POST", "/v1/builds/"},
		{"phased release", "POST", "/v1/appStoreVersionPhasedReleases"},
		{"review item", "POST", "/v1/reviewSubmissionItems"},
		{"version", "POST", "/v1/appStoreVersions"},
	} {
		for _, kind := range []appstoretest.FaultKind{appstoretest.FaultAnswerLost, appstoretest.FaultConnectionLost} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, kind), func(t *testing.T) {
				t.Parallel()
				b := setupIOS(t, store.SQLite, opts)
				b.fake.Inject(appstoretest.Fault{Kind: kind, Method: tc.method, PathPrefix: tc.prefix})
				_, err := b.runLane(t, nil)
				require.NoError(t, err)
				require.Equal(t, 1, b.fake.FaultsHit(), "the fault hit")
				require.Equal(t, release.StateRolling, b.status(t).State, b.status(t).Reason)
				got := nonZero(b.fake.MutationCounts())
				if tc.name == "group link" {
					// Linking a build to a group is idempotent (adding a
					// member twice changes nothing), so the client repeats
					// it in the same call: one extra request, same state.
					got["POST /v1/builds/{id}/relationships/betaGroups"]--
					bs, _ := b.fake.Build(b.buildID)
					require.Len(t, bs.Groups, 2)
				}
				require.Equal(t, want, got)
			})
		}
	}
}

// TestIOSLaneExportComplianceMismatch: the build already declares
// usesNonExemptEncryption (its Info.plist), differently from the config.
// The lane does not overwrite the answer: it fails naming both.
func TestIOSLaneExportComplianceMismatch(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{noBuild: true})
	uses := true
	b.buildID = b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "45", Polls: 1, UsesNonExemptEncryption: &uses})
	_, err := b.runLane(t, nil)
	iosFailed(t, b, err, "ios.uses_non_exempt_encryption is false, but build 1.4.0 (45) already declares usesNonExemptEncryption=true "+
		"(its Info.plist's ITSAppUsesNonExemptEncryption, or an answer in App Store Connect); make them agree and tag a new build")
	require.Equal(t, 0, b.fake.Mutations("PATCH /v1/builds/{id}"))
	bs, _ := b.fake.Build(b.buildID)
	require.True(t, *bs.UsesNonExemptEncryption)
}

// TestIOSLaneAmbiguousBuild: two unexpired builds carry the tag's build
// number; asking again cannot help, so the lane fails at once.
func TestIOSLaneAmbiguousBuild(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1})
	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "45", Polls: 1})
	_, err := b.runLane(t, nil)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	st := b.status(t)
	require.Equal(t, release.StateFailed, st.State)
	require.Contains(t, st.Reason, "more than one unexpired build 45 (1.4.0)")
}

// TestIOSLanePickupSkipsABuildAnotherLaneChose: two releases of 1.4.0
// pick up builds; the second must not take the build the first chose,
// even before the first recorded a binary.
func TestIOSLanePickupSkipsABuildAnotherLaneChose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupIOS(t, store.SQLite, iosOpts{version: "1.4.0", noBuild: true})
	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "50", Polls: 5, UploadedDate: iosStart})
	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.4.0", BuildNumber: "51", Polls: 5, UploadedDate: iosStart.Add(time.Second)})
	var s *river.JobSnoozeError
	require.ErrorAs(t, b.work(ctx), &s) // chose 51, waits for processing
	require.Equal(t, "51", b.laneData(t)["build_number"])

	rel2, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0-rc.2", Version: "1.4.0-rc.2", Commit: "c0ffee2", CreatedAt: iosStart})
	require.NoError(t, err)
	lane2, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: rel2.ID, Platform: release.IOS, Kind: release.KindStore, Plan: b.lane.Plan}, iosStart)
	require.NoError(t, err)
	err = b.worker.Work(ctx, &river.Job[lane.IOSArgs]{JobRow: &rivertype.JobRow{ID: 2, Attempt: 1, MaxAttempts: 25, Kind: "ios_lane"},
		Args: lane.IOSArgs{LaneID: lane2.ID}})
	require.ErrorAs(t, err, &s)
	var d2 map[string]any
	require.NoError(t, b.st.LaneData(ctx, lane2.ID, &d2))
	require.Equal(t, "50", d2["build_number"], "the build another lane chose is not taken")
}

// hostilePlist is a binary plist whose top dictionary has n entries that
// all share one key object and one value object: a UTF-16 string of m
// characters.
func hostilePlist(key string, n, m int) []byte {
	out := []byte("bplist00")
	var offs []int
	offs = append(offs, len(out))
	out = append(out, 0xDF, 0x12, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	for i := 0; i < n; i++ {
		out = append(out, 1)
	}
	for i := 0; i < n; i++ {
		out = append(out, 2)
	}
	offs = append(offs, len(out))
	out = append(out, 0x50|byte(len(key)))
	out = append(out, key...)
	offs = append(offs, len(out))
	out = append(out, 0x6F, 0x12, byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
	for i := 0; i < m; i++ {
		out = append(out, 0, 'x')
	}
	table := len(out)
	for _, o := range offs {
		out = append(out, byte(o>>24), byte(o>>16), byte(o>>8), byte(o))
	}
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 4, 1
	trailer[15] = byte(len(offs))
	trailer[28], trailer[29], trailer[30], trailer[31] = byte(table>>24), byte(table>>16), byte(table>>8), byte(table)
	return append(out, trailer...)
}

// TestIPAVersionHostilePlist: an Info.plist whose entries all point at one
// huge string must not be decoded once per entry (quadratic), and reading
// stops when the context is done.
func TestIPAVersionHostilePlist(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"K", "CFBundleVersion"} {
		ipa := makeIPA(t, hostilePlist(key, 200000, 400000))
		done := make(chan error, 1)
		go func() {
			_, _, err := ioslane.IPAVersionContext(context.Background(), bytes.NewReader(ipa), int64(len(ipa)))
			done <- err
		}()
		select {
		case err := <-done:
			require.Error(t, err) // no usable version in it, but an answer
		case <-time.After(10 * time.Second):
			t.Fatalf("key %s: IPAVersion still decoding after 10 s", key)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ipa := makeIPA(t, hostilePlist("K", 5000, 10))
	_, _, err := ioslane.IPAVersionContext(ctx, bytes.NewReader(ipa), int64(len(ipa)))
	require.ErrorIs(t, err, context.Canceled)
}

// TestIPAVersionReadsFakeIPA: the sandbox's made-up IPAs carry the version
// and build number the iOS lane reads before it uploads them.
func TestIPAVersionReadsFakeIPA(t *testing.T) {
	t.Parallel()
	ipa, err := appstoretest.FakeIPA("com.acme.mobile", "2.3.4", "57", 1<<10)
	require.NoError(t, err)
	version, build, err := ioslane.IPAVersion(bytes.NewReader(ipa), int64(len(ipa)))
	require.NoError(t, err)
	require.Equal(t, "2.3.4", version)
	require.Equal(t, "57", build)
}
