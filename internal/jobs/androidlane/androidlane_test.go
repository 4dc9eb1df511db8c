package androidlane_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/androidlane"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
	"github.com/swapjoy/releasepilot/playstore/playstoretest/wirecheck"
)

// -update rewrites the golden files. Registered here unless another test
// file of the package already did (package variables initialise first).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata")
	}
}

func androidUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const androidPkg = "com.acme.mobile"

// fakeBundleVersionCode reads the versionCode of a playstoretest.FakeBundle
// (the fake's stand-in for the manifest): the number its first line ends
// with, checked against FakeBundle itself.
func fakeBundleVersionCode(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, min(size, 64))
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	line, _, _ := bytes.Cut(buf, []byte("\n"))
	vc, err := strconv.ParseInt(string(line[bytes.LastIndexByte(line, '=')+1:]), 10, 64)
	if err != nil || !bytes.HasPrefix(buf, playstoretest.FakeBundle(vc, 0)) {
		return 0, errors.New("not a fake bundle")
	}
	return vc, nil
}

type androidBundle struct {
	fake    *playstoretest.Server
	st      *store.Store
	play    *playstore.Client
	android *androidlane.Android
	worker  *androidlane.Worker
	ro      *jobs.Rollouts
	assets  *lanetest.Assets
	app     config.App
	rel     release.Release
	lane    release.Lane
	now     time.Time
}

var androidStart = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC) // 10:00 in Los Angeles

func androidPlan() release.Plan {
	return release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, []release.GateRule{
		{Metric: gate.CrashRate, Max: 0.01, MinSamples: 100},
		{Metric: gate.ANRRate, Max: 0.005, MinSamples: 100},
	})
}

// setupAndroid builds a fake Play with 1.3.0 (41) completed on production,
// a release 1.4.0 whose GitHub release holds an AAB with versionCode 42, and
// its pending Android lane (androidPlan unless a plan is given).
func setupAndroid(t testing.TB, e store.Engine, change func(app *config.App), plan ...release.Plan) *androidBundle {
	t.Helper()
	ctx := context.Background()
	b := &androidBundle{now: androidStart}
	b.fake = playstoretest.New(androidStart)
	srv := httptest.NewServer(wirecheck.Handler(t, b.fake))
	t.Cleanup(srv.Close)
	b.fake.AddApp(androidPkg)
	b.fake.ConsoleUpdate(androidPkg, playstore.TrackProduction, playstoretest.Release{Name: "1.3.0 (41)", VersionCodes: []int64{41}, Status: playstoretest.StatusCompleted})
	b.st = store.New(storetest.Open(t, e))
	key, err := b.fake.ServiceAccountJSON(srv.URL, "releasepilot@acme.iam.gserviceaccount.com")
	require.NoError(t, err)
	b.play, err = playstore.New(ctx, playstore.Config{CredentialsJSON: key, Endpoint: srv.URL + "/", ReportingEndpoint: srv.URL + "/",
		Ledger: b.st.VersionCodes(), Retry: playstore.RetryPolicy{MaxAttempts: 2, MaxEdits: 3},
		Sleep: func(context.Context, time.Duration) error { return nil }})
	require.NoError(t, err)

	b.app = config.App{Name: "acme", Repository: "acme/mobile", Android: config.Android{Enabled: true, PackageName: androidPkg,
		Stages: release.DefaultStages, ReleaseNotesLanguage: "en-US", Track: "production", AABAsset: "*.aab", InAppUpdatePriority: 2}}
	if change != nil {
		change(&b.app)
	}
	b.assets = lanetest.NewAssets("acme/mobile", t.TempDir())
	b.putAAB("v1.4.0", playstoretest.FakeBundle(42, 4096))
	clock := func() time.Time { return b.now }
	b.android = &androidlane.Android{Store: b.st, Play: b.play, Apps: map[string]config.App{"acme": b.app}, Assets: b.assets,
		Vitals: &gate.PlayVitals{Reader: b.play, MaxAge: -1, Now: clock}, BundleVersionCode: fakeBundleVersionCode, Now: clock}
	b.worker = &androidlane.Worker{Android: b.android}
	b.ro = &jobs.Rollouts{Store: b.st, Executors: jobs.Executors{{Kind: release.KindStore, Platform: release.Android}: b.android}, Now: clock}

	require.NoError(t, b.st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, b.now))
	b.rel, _, err = b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "c0ffee1", CreatedAt: b.now,
		Notes: "Changes since v1.3.0:\n- Faster checkout (abc1234)\n- Fix crash on login (def5678)"})
	require.NoError(t, err)
	require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.Android, Commit: "c0ffee1",
		Algorithm: nativecheck.Algorithm, Hash: "fp-android-1", Data: []byte(`{}`), CreatedAt: b.now}))
	p := androidPlan()
	if len(plan) > 0 {
		p = plan[0]
	}
	b.lane, err = b.st.CreateLane(ctx, release.Lane{ReleaseID: b.rel.ID, Platform: release.Android, Kind: release.KindStore, Plan: p}, b.now)
	require.NoError(t, err)
	return b
}

// gatedAfterSoak runs the lane job and a reconcile pass (10 %), then,
// an hour (the soak) later, a pass that reads the gates; it returns the
// lane's status after it.
func (b *androidBundle) gatedAfterSoak(t *testing.T) release.Status {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, b.work(t))
	require.NoError(t, b.ro.Pass(ctx))
	b.advance(time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	return b.status(t)
}

// putAAB makes the GitHub release of tag hold the AAB data.
func (b *androidBundle) putAAB(tag string, data []byte) {
	b.assets.Put(tag, "*.aab", "app-release.aab", data)
}

func (b *androidBundle) advance(d time.Duration) {
	b.now = b.now.Add(d)
	b.fake.Advance(d)
}

func (b *androidBundle) work(t testing.TB) error {
	t.Helper()
	return b.worker.Work(context.Background(), &river.Job[lane.AndroidArgs]{
		JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 25, Kind: "android_lane"},
		Args:   lane.AndroidArgs{LaneID: b.lane.ID}})
}

func (b *androidBundle) status(t *testing.T) release.Status {
	t.Helper()
	l, err := b.st.GetLane(context.Background(), b.lane.ID)
	require.NoError(t, err)
	return l.Status
}

// calls counts the Play API requests the fake has seen.
func (b *androidBundle) calls() int { return len(b.fake.Exchanges()) }

// healthy scripts good vitals for versionCode 42, processed up to 1 Dec.
func (b *androidBundle) vitals(crash, anr float64, users int64) {
	var crashPts, anrPts []playstoretest.VitalsPoint
	for d := 25; d <= 30; d++ {
		day := time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC)
		crashPts = append(crashPts, playstoretest.VitalsPoint{Day: day, VersionCode: 42, Rate: crash, DistinctUsers: users})
		anrPts = append(anrPts, playstoretest.VitalsPoint{Day: day, VersionCode: 42, Rate: anr, DistinctUsers: users})
	}
	fresh := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b.fake.SetVitals(androidPkg, playstoretest.CrashRateMetricSet, playstoretest.VitalsSeries{FreshUntil: fresh, Points: crashPts})
	b.fake.SetVitals(androidPkg, playstoretest.AnrRateMetricSet, playstoretest.VitalsSeries{FreshUntil: fresh, Points: anrPts})
}

func androidGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "android", name)
	if androidUpdating() {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create %s", path)
	require.Equal(t, string(want), string(got), "%s differs (run with -update if the change is intended)", path)
}

func TestAndroidLaneStagedRollout(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			testStagedRollout(t, e)
		})
	}
}

func testStagedRollout(t *testing.T, e store.Engine) {
	ctx := context.Background()
	b := setupAndroid(t, e, nil)
	b.vitals(0.002, 0.001, 5000)

	// The lane job: upload, internal track, ready.
	before := b.calls()
	require.NoError(t, b.work(t))
	laneCalls := b.calls() - before
	require.Equal(t, []int64{41, 42}, b.fake.Bundles(androidPkg))
	androidGolden(t, "internal.json", b.fake.TrackJSON(androidPkg, playstore.TrackInternal))
	androidGolden(t, "production_start.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
	st := b.status(t)
	require.Equal(t, release.StateRolling, st.State)
	require.Equal(t, 0, st.StepIndex)
	require.Contains(t, st.Reason, "versionCode 42 is on the internal track")
	bins, err := b.st.Binaries(ctx, "acme", release.Android)
	require.NoError(t, err)
	require.Len(t, bins, 1)
	require.Equal(t, release.Binary{App: "acme", Platform: release.Android, Version: "1.4.0", BuildNumber: "42", Commit: "c0ffee1",
		Fingerprint: "fp-android-1", ReleaseID: b.rel.ID, CreatedAt: b.now}, bins[0])
	seen, err := b.st.VersionCodes().Seen(ctx, androidPkg, 42)
	require.NoError(t, err)
	require.True(t, seen, "the upload went through the SQL ledger")

	// A re-run of the job does nothing.
	before = b.calls()
	require.NoError(t, b.work(t))
	require.Equal(t, before, b.calls())

	type mark struct {
		name string
		at   int
	}
	marks := []mark{{"android_lane job", 0}}
	step := func(label, file string, do func()) int {
		t.Helper()
		before := b.calls()
		marks = append(marks, mark{label, before})
		do()
		n := b.calls() - before
		androidGolden(t, file, b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
		return n
	}
	pass := func() { require.NoError(t, b.ro.Pass(ctx)) }
	command := func(cmd release.Command, reason string) func() {
		return func() {
			_, err := b.ro.Command(ctx, b.lane.ID, cmd, "token:alice", reason)
			require.NoError(t, err)
		}
	}

	c10 := step("reconcile: 10%", "production_10.json", pass)
	require.Equal(t, 10, b.status(t).Percent)

	// Soaking: the lane is not due, nothing is read.
	b.advance(30 * time.Minute)
	require.Zero(t, step("reconcile while soaking", "production_10.json", pass))

	b.advance(30 * time.Minute)
	c25 := step("reconcile: gate, 25%", "production_25.json", pass)
	require.Equal(t, 25, b.status(t).Percent)

	cHalt := step("command: halt", "production_25_halted.json", command(release.CmdHalt, "checkout errors"))
	st = b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	b.advance(2 * time.Hour)
	require.Zero(t, step("reconcile while halted", "production_25_halted.json", pass), "a halted lane is left alone")

	cResume := step("command: resume", "production_25.json", command(release.CmdResume, "fixed server side"))
	require.Equal(t, release.StateRolling, b.status(t).State)

	// The soak of the 25 % stage is over; the gate reads vitals that reach
	// past the resume, and the rollout moves on.
	b.advance(time.Minute)
	c50 := step("reconcile: gate, 50%", "production_50.json", pass)
	require.Equal(t, 50, b.status(t).Percent)

	b.advance(time.Hour)
	c100 := step("reconcile: gate, complete", "production_100.json", pass)
	st = b.status(t)
	require.Equal(t, release.StateCompleted, st.State)
	require.Equal(t, 100, st.Percent)

	b.advance(time.Hour)
	require.Zero(t, step("reconcile when completed", "production_100.json", pass))
	require.Zero(t, b.fake.OpenEdits(androidPkg), "every edit was committed or deleted")

	// Play calls per step through the lane: 4 per track change (insert,
	// get, update, commit), plus 4 for vitals when a gate is due.
	require.Equal(t, 4, c10, "first stage: PutRelease")
	require.Equal(t, 8, c25, "vitals (4) + SetFraction (4)")
	require.Equal(t, 4, cHalt)
	require.Equal(t, 4, cResume)
	require.Equal(t, 8, c50)
	require.Equal(t, 8, c100, "vitals (4) + Complete (4)")
	t.Logf("Play calls: lane job %d, 10%% %d, 25%% %d, halt %d, resume %d, 50%% %d, 100%% %d", laneCalls, c10, c25, cHalt, cResume, c50, c100)

	// Every request the lane sent, step by step, with the exact track
	// bodies it wrote.
	var out strings.Builder
	for i, ex := range b.fake.Exchanges() {
		for _, m := range marks {
			if m.at == i {
				fmt.Fprintf(&out, "## %s\n", m.name)
			}
		}
		fmt.Fprintf(&out, "%s %s", ex.HTTPMethod, ex.Path)
		if ex.Query != "" {
			fmt.Fprintf(&out, "?%s", ex.Query)
		}
		fmt.Fprintf(&out, " -> %d\n", ex.Status)
		if ex.Method == playstoretest.MethodTracksUpdate {
			fmt.Fprintf(&out, "  %s\n", bytes.TrimSpace(ex.RequestBody))
		}
	}
	for _, m := range marks {
		if m.at == len(b.fake.Exchanges()) {
			fmt.Fprintf(&out, "## %s\n", m.name)
		}
	}
	androidGolden(t, "requests.txt", []byte(out.String()))

	evs, err := b.st.Events(ctx, b.rel.ID, 0, 100)
	require.NoError(t, err)
	var kinds []string
	for _, ev := range evs {
		if ev.Kind != "rollout.hold" {
			kinds = append(kinds, ev.Kind)
		}
	}
	require.Equal(t, []string{"android.bundle_uploaded", "android.internal_track", "lane.ready", "rollout.advance", "rollout.advance",
		"command.halt", "command.applied", "command.resume", "command.applied", "rollout.advance", "rollout.complete"}, kinds)
}

func TestAndroidLaneRefusesToDisturbAnotherRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAndroid(t, store.SQLite, nil)
	require.NoError(t, b.work(t))
	// Someone started 41.1 by hand in the Console meanwhile.
	b.fake.ConsoleUpdate(androidPkg, playstore.TrackProduction,
		playstoretest.Release{Name: "1.3.0 (40)", VersionCodes: []int64{40}, Status: playstoretest.StatusCompleted},
		playstoretest.Release{Name: "1.3.1 (41)", VersionCodes: []int64{41}, Status: playstoretest.StatusInProgress, UserFraction: 0.2})
	other := b.fake.TrackJSON(androidPkg, playstore.TrackProduction)
	commits := b.fake.Commits(androidPkg)

	err := b.ro.Pass(ctx)
	require.Error(t, err)
	st := b.status(t)
	require.Equal(t, 0, st.Percent)
	require.Equal(t, b.now.Add(time.Minute), st.NextEligibleAt, "looked at again in a minute")
	require.Contains(t, st.Reason, "advance to 10% failed")
	require.Contains(t, st.Reason, "release [41] (status inProgress at 20%) is in the way of versionCode 42")
	require.Contains(t, st.Reason, "it was left untouched")
	require.Equal(t, string(other), string(b.fake.TrackJSON(androidPkg, playstore.TrackProduction)), "the other release is untouched")
	require.Equal(t, commits, b.fake.Commits(androidPkg))

	// A person's resume or advance is refused the same way.
	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdAdvance, "token:alice", "push it")
	require.ErrorIs(t, err, playstore.ErrConflict)
	require.Equal(t, string(other), string(b.fake.TrackJSON(androidPkg, playstore.TrackProduction)))

	// Once its owner completes it, ours starts.
	b.fake.ConsoleUpdate(androidPkg, playstore.TrackProduction,
		playstoretest.Release{Name: "1.3.1 (41)", VersionCodes: []int64{41}, Status: playstoretest.StatusCompleted})
	b.advance(time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 10, b.status(t).Percent)
	rels := b.fake.Track(androidPkg, playstore.TrackProduction)
	require.Len(t, rels, 2)
	require.Equal(t, []int64{41}, rels[0].VersionCodes, "the completed release stays until ours completes")
	require.Equal(t, playstoretest.StatusCompleted, rels[0].Status)
}

func TestAndroidExecuteTwiceChangesNothingTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAndroid(t, store.SQLite, nil)
	b.vitals(0.002, 0.001, 5000)
	require.NoError(t, b.work(t))

	// A crash between the remote change and the recorded status: the
	// executor ran, the status did not move; the next pass decides the
	// same step and executes it again.
	// calls is what the re-run costs: insert, get, delete the edit (3), plus
	// 4 for vitals when the pass reaches a gate.
	exec := func(want release.Action, calls int) {
		t.Helper()
		l, err := b.st.GetLane(ctx, b.lane.ID)
		require.NoError(t, err)
		d, err := release.Reconcile(l.Plan, l.Status, b.observe(t, l), b.now)
		require.NoError(t, err)
		require.Equal(t, want, d.Action)
		require.NoError(t, b.android.Execute(ctx, l, d))
		commits := b.fake.Commits(androidPkg)
		track := b.fake.TrackJSON(androidPkg, playstore.TrackProduction)
		before := b.calls()
		require.NoError(t, b.ro.Pass(ctx))
		require.Equal(t, calls, b.calls()-before, "Play calls of the re-run")
		require.Equal(t, commits, b.fake.Commits(androidPkg), "the re-run committed nothing")
		require.Equal(t, string(track), string(b.fake.TrackJSON(androidPkg, playstore.TrackProduction)))
	}
	exec(release.ActionAdvance, 3) // 10 %
	require.Equal(t, 10, b.status(t).Percent)
	b.advance(time.Hour)
	exec(release.ActionAdvance, 7) // 25 %
	require.Equal(t, 25, b.status(t).Percent)

	// Halt and resume commands retried after a crash.
	for _, cmd := range []release.Command{release.CmdHalt, release.CmdResume} {
		l, err := b.st.GetLane(ctx, b.lane.ID)
		require.NoError(t, err)
		d, err := release.ApplyCommand(l.Plan, l.Status, cmd, "ops", b.now)
		require.NoError(t, err)
		require.NoError(t, b.android.Execute(ctx, l, d))
		commits := b.fake.Commits(androidPkg)
		_, err = b.ro.Command(ctx, b.lane.ID, cmd, "token:alice", "ops")
		require.NoError(t, err)
		require.Equal(t, commits, b.fake.Commits(androidPkg), "%s re-run committed nothing", cmd)
	}
	androidGolden(t, "production_25.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))

	// A commit that fails after Play applied it: the client reads the
	// track again and finds it done; the status is recorded once.
	b.advance(time.Hour)
	b.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultAfterApply, Times: 1})
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 50, b.status(t).Percent)
	androidGolden(t, "production_50.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))

	// Complete twice.
	b.advance(time.Hour)
	exec(release.ActionComplete, 7)
	require.Equal(t, release.StateCompleted, b.status(t).State)
	androidGolden(t, "production_100.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
}

// A lane job that died after Play committed each of its steps, before it
// recorded them, does none of them again.
func TestAndroidLaneCrashAfterEachStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAndroid(t, store.SQLite, nil)
	require.NoError(t, b.work(t))
	commits, uploads := b.fake.Commits(androidPkg), b.fake.Calls(playstoretest.MethodBundlesUpload)
	internal := b.fake.TrackJSON(androidPkg, playstore.TrackInternal)

	// Forget everything after the versionCode was chosen, as if the process
	// died right after each commit.
	var data map[string]any
	require.NoError(t, b.st.LaneData(ctx, b.lane.ID, &data))
	require.EqualValues(t, 42, data["version_code"])
	delete(data, "uploaded")
	delete(data, "internal")
	require.NoError(t, b.st.SetLaneData(ctx, b.lane.ID, data, b.now))
	l, err := b.st.GetLane(ctx, b.lane.ID)
	require.NoError(t, err)
	pending := l.Status
	pending.State, pending.Reason = release.StatePending, ""
	_, err = b.st.UpdateStatus(ctx, b.lane.ID, pending)
	require.NoError(t, err)

	require.NoError(t, b.work(t))
	require.Equal(t, commits, b.fake.Commits(androidPkg), "nothing committed again")
	require.Equal(t, uploads, b.fake.Calls(playstoretest.MethodBundlesUpload), "nothing uploaded again")
	require.Equal(t, string(internal), string(b.fake.TrackJSON(androidPkg, playstore.TrackInternal)))
	require.Equal(t, release.StateRolling, b.status(t).State)
	bins, err := b.st.Binaries(ctx, "acme", release.Android)
	require.NoError(t, err)
	require.Len(t, bins, 1, "the binary is recorded once")
	require.Zero(t, b.fake.OpenEdits(androidPkg))
}

func (b *androidBundle) observe(t *testing.T, l release.Lane) release.Observations {
	t.Helper()
	obs, err := b.android.Observe(context.Background(), l)
	require.NoError(t, err)
	return obs
}

func TestAndroidGates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("no data holds", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		require.NoError(t, b.work(t))
		require.NoError(t, b.ro.Pass(ctx))
		b.advance(time.Hour)
		for range 3 {
			require.NoError(t, b.ro.Pass(ctx))
			b.advance(time.Minute)
		}
		st := b.status(t)
		require.Equal(t, release.StateWaiting, st.State)
		require.Equal(t, "gate crash_rate: no fresh data yet", st.Reason)
		require.Equal(t, 10, st.Percent)
		androidGolden(t, "production_10.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
	})

	t.Run("stale data holds", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		// Processed only up to the start of the rollout's day.
		b.fake.SetVitals(androidPkg, playstoretest.CrashRateMetricSet, playstoretest.VitalsSeries{FreshUntil: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
			Points: []playstoretest.VitalsPoint{{Day: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), VersionCode: 42, Rate: 0.001, DistinctUsers: 9000}}})
		st := b.gatedAfterSoak(t)
		require.Equal(t, release.StateWaiting, st.State)
		require.Equal(t, "gate crash_rate: no fresh data yet", st.Reason)
		require.Equal(t, 10, st.Percent)
	})

	t.Run("too few users holds", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.vitals(0.002, 0.001, 10)
		st := b.gatedAfterSoak(t)
		require.Equal(t, release.StateWaiting, st.State)
		// 26–30 Nov, 10 users a day: the stage began on 25 Nov, a day that
		// counts for nobody, and daily distinct users are not added up
		// (five days of 10 users are not 50 users).
		require.Equal(t, "gate crash_rate: 10 samples, need 100", st.Reason)
	})

	t.Run("bad vitals halt", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.vitals(0.002, 0.02, 5000)
		st := b.gatedAfterSoak(t)
		require.Equal(t, release.StateHalted, st.State)
		require.Equal(t, "gate anr_rate failed: 0.02 is above 0.005", st.Reason)
		androidGolden(t, "production_10_halted.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
	})
}

func TestAndroidLanePickUpCIBundle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAndroid(t, store.SQLite, func(app *config.App) { app.Android.AABAsset = "" })
	b.android.PickupTimeout = time.Hour
	// CI has not uploaded 1.4.0 yet: the newest bundle is the live one.
	b.fake.SeedBundles(androidPkg, 41)
	err := b.work(t)
	var snooze *rivertype.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	require.Equal(t, 2*time.Minute, snooze.Duration)
	require.Equal(t, release.StatePending, b.status(t).State)

	// CI uploads versionCode 43 and puts it on internal itself.
	b.advance(10 * time.Minute)
	b.fake.ConsoleUpdate(androidPkg, playstore.TrackInternal, playstoretest.Release{Name: "1.4.0 (43)", VersionCodes: []int64{43}, Status: playstoretest.StatusCompleted})
	commits := b.fake.Commits(androidPkg)
	require.NoError(t, b.work(t))
	require.Equal(t, commits, b.fake.Commits(androidPkg), "already on internal: nothing to commit")
	require.Zero(t, b.assets.Fetches(), "nothing is fetched from GitHub")
	bin, err := b.st.LatestBinary(ctx, "acme", release.Android)
	require.NoError(t, err)
	require.Equal(t, "43", bin.BuildNumber)
	require.Equal(t, release.StateRolling, b.status(t).State)

	require.NoError(t, b.ro.Pass(ctx))
	r, ok := androidRelease(b.fake.Track(androidPkg, playstore.TrackProduction), 43)
	// Waiting: NextVersionCode (3) + the track's releases (1); picking up:
	// the same, + PutRelease on internal finding it there (3); 10 %: 4.
	require.Equal(t, 4+7+4, b.calls())
	require.True(t, ok)
	require.Equal(t, playstoretest.StatusInProgress, r.Status)
	require.Equal(t, 0.1, r.UserFraction)
}

func TestAndroidLanePickUpGivesUp(t *testing.T) {
	t.Parallel()
	b := setupAndroid(t, store.SQLite, func(app *config.App) { app.Android.AABAsset = "" })
	b.android.PickupTimeout = time.Hour
	var snooze *rivertype.JobSnoozeError
	require.ErrorAs(t, b.work(t), &snooze)
	st := b.status(t)
	require.Equal(t, release.StatePending, st.State)
	require.Equal(t, "waiting for CI to upload a bundle newer than versionCode 41 (since 2026-11-25T18:00:00Z; the lane fails if this lasts 1h0m0s)", st.Reason)
	b.advance(time.Hour)
	err := b.work(t)
	var cancel *rivertype.JobCancelError
	require.ErrorAs(t, err, &cancel)
	st = b.status(t)
	require.Equal(t, release.StateFailed, st.State)
	require.Equal(t, "waiting for CI to upload a bundle newer than versionCode 41: nothing came within 1h0m0s", st.Reason)
}

func androidRelease(rels []playstoretest.Release, vc int64) (playstoretest.Release, bool) {
	for _, r := range rels {
		for _, v := range r.VersionCodes {
			if v == vc {
				return r, true
			}
		}
	}
	return playstoretest.Release{}, false
}

func TestAndroidLaneFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a versionCode Play already has fails the lane", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.fake.SeedBundles(androidPkg, 41, 44)
		err := b.work(t)
		var cancel *rivertype.JobCancelError
		require.ErrorAs(t, err, &cancel)
		st := b.status(t)
		require.Equal(t, release.StateFailed, st.State)
		require.Equal(t, "upload app-release.aab (versionCode 42): playstore: com.acme.mobile versionCode 42: Play already has versionCode 44; build again with versionCode 45 or higher", st.Reason)
		require.Equal(t, []int64{41, 44}, b.fake.Bundles(androidPkg))
	})

	t.Run("an old bundle already in the app fails the lane", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.putAAB("v1.4.0", playstoretest.FakeBundle(41, 4096))
		b.fake.SeedBundles(androidPkg, 41)
		var cancel *rivertype.JobCancelError
		require.ErrorAs(t, b.work(t), &cancel)
		st := b.status(t)
		require.Equal(t, release.StateFailed, st.State)
		require.Equal(t, "versionCode 41 is not newer than versionCode 41, already on the production track or shipped before; build 1.4.0 with a higher versionCode", st.Reason)
		require.Empty(t, b.fake.Track(androidPkg, playstore.TrackInternal), "the internal track was not touched")
	})

	t.Run("outages retry without repeating the upload", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		// Every tracks.update of this run of the internal step fails (the
		// client tries twice).
		b.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodTracksUpdate, Kind: playstoretest.FaultUnavailable, Times: 2})
		err := b.work(t)
		require.Error(t, err)
		var cancel *rivertype.JobCancelError
		require.False(t, errors.As(err, &cancel), "a temporary error is retried: %v", err)
		require.True(t, playstore.IsTemporary(err))
		require.Equal(t, release.StatePending, b.status(t).State)
		require.Equal(t, 1, b.fake.Calls(playstoretest.MethodBundlesUpload))

		require.NoError(t, b.work(t))
		require.Equal(t, 1, b.fake.Calls(playstoretest.MethodBundlesUpload), "the bundle was not sent again")
		require.Equal(t, 1, b.assets.Fetches(), "nor fetched again")
		require.Equal(t, release.StateRolling, b.status(t).State)
		androidGolden(t, "internal.json", b.fake.TrackJSON(androidPkg, playstore.TrackInternal))
	})

	t.Run("a failed upload is sent again on the retry", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodBundlesUpload, Kind: playstoretest.FaultInternal, Times: 1})
		err := b.work(t)
		require.True(t, playstore.IsTemporary(err), "a 5xx is retried: %v", err)
		require.Equal(t, release.StatePending, b.status(t).State)
		// River's retry: that edit never committed, so Play discarded it with
		// the bundle, and versionCode 42 goes again.
		require.NoError(t, b.work(t))
		require.Equal(t, release.StateRolling, b.status(t).State)
		require.Equal(t, []int64{41, 42}, b.fake.Bundles(androidPkg))
		require.Equal(t, 2, b.fake.Calls(playstoretest.MethodBundlesUpload))
		androidGolden(t, "internal.json", b.fake.TrackJSON(androidPkg, playstore.TrackInternal))
	})

	t.Run("a commit that failed before Play applied it is redone at once", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultInternal, Times: 1})
		require.NoError(t, b.work(t))
		require.Equal(t, release.StateRolling, b.status(t).State)
		require.Equal(t, []int64{41, 42}, b.fake.Bundles(androidPkg))
		require.Equal(t, 2, b.fake.Calls(playstoretest.MethodBundlesUpload))
		st, err := b.st.VersionCodes().State(ctx, androidPkg, 42)
		require.NoError(t, err)
		require.Equal(t, playstore.VersionCodeCommitted, st)
	})

	t.Run("a commit whose outcome is unknown fails the lane", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultInternal, Times: 1})
		b.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsDelete, Kind: playstoretest.FaultInternal, Times: 2})
		var cancel *rivertype.JobCancelError
		require.ErrorAs(t, b.work(t), &cancel)
		st := b.status(t)
		require.Equal(t, release.StateFailed, st.State)
		require.Contains(t, st.Reason, "versionCode 42: it was sent to Play in an edit whose commit outcome is unknown, so Play may hold it; build again with versionCode 43 or higher")
		require.Equal(t, []int64{41}, b.fake.Bundles(androidPkg))
		require.Equal(t, 1, b.fake.Calls(playstoretest.MethodBundlesUpload), "sent once, never again")
	})

	t.Run("the last attempt fails the lane", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodBundlesList, Kind: playstoretest.FaultInternal, Times: 100})
		err := b.worker.Work(ctx, &river.Job[lane.AndroidArgs]{JobRow: &rivertype.JobRow{Attempt: 5, MaxAttempts: 5}, Args: lane.AndroidArgs{LaneID: b.lane.ID}})
		require.Error(t, err)
		st := b.status(t)
		require.Equal(t, release.StateFailed, st.State)
		require.True(t, strings.HasPrefix(st.Reason, "gave up after 5 attempts: upload app-release.aab (versionCode 42): "), st.Reason)
	})

	t.Run("a missing asset waits", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		b.assets.Delete("v1.4.0", "*.aab")
		var snooze *rivertype.JobSnoozeError
		require.ErrorAs(t, b.work(t), &snooze)
		require.Equal(t, release.StatePending, b.status(t).State)
		b.putAAB("v1.4.0", playstoretest.FakeBundle(42, 100))
		require.NoError(t, b.work(t))
		require.Equal(t, release.StateRolling, b.status(t).State)
	})

	t.Run("no package name", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, func(app *config.App) { app.Android.PackageName = "" })
		var cancel *rivertype.JobCancelError
		require.ErrorAs(t, b.work(t), &cancel)
		require.Equal(t, "apps acme android.package_name is empty", b.status(t).Reason)
	})

	t.Run("a lane of another platform is left alone", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		ios, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: b.rel.ID, Platform: release.IOS, Kind: release.KindStore, Plan: androidPlan()}, b.now)
		require.NoError(t, err)
		err = b.worker.Work(ctx, &river.Job[lane.AndroidArgs]{Args: lane.AndroidArgs{LaneID: ios.ID}})
		var cancel *rivertype.JobCancelError
		require.ErrorAs(t, err, &cancel)
		require.ErrorContains(t, err, "is a store lane on ios, not an Android store lane")
		got, err := b.st.GetLane(ctx, ios.ID)
		require.NoError(t, err)
		require.Equal(t, release.StatePending, got.Status.State)
		require.Empty(t, b.fake.Exchanges())
	})

	t.Run("unknown lane", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		err := b.worker.Work(ctx, &river.Job[lane.AndroidArgs]{Args: lane.AndroidArgs{LaneID: "lane_nope"}})
		var cancel *rivertype.JobCancelError
		require.ErrorAs(t, err, &cancel)
	})
}

func TestAndroidExecutor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ready := func(t *testing.T, change func(app *config.App)) *androidBundle {
		b := setupAndroid(t, store.SQLite, change)
		b.vitals(0.002, 0.001, 5000)
		require.NoError(t, b.work(t))
		return b
	}

	t.Run("a release halted in the Console is not resumed by a scheduled advance", func(t *testing.T) {
		t.Parallel()
		b := ready(t, nil)
		require.NoError(t, b.ro.Pass(ctx))
		b.fake.ConsoleUpdate(androidPkg, playstore.TrackProduction,
			playstoretest.Release{Name: "1.3.0 (41)", VersionCodes: []int64{41}, Status: playstoretest.StatusCompleted},
			playstoretest.Release{Name: "1.4.0 (42)", VersionCodes: []int64{42}, Status: playstoretest.StatusHalted, UserFraction: 0.1})
		halted := b.fake.TrackJSON(androidPkg, playstore.TrackProduction)
		b.advance(time.Hour)
		require.NoError(t, b.ro.Pass(ctx), "the lane follows Play instead of failing the step every pass")
		st := b.status(t)
		require.Equal(t, release.StateHalted, st.State, "halted stays halted")
		require.Equal(t, "Play shows versionCode 42 halted on the production track; resume the lane to continue", st.Reason)
		require.Equal(t, 10, st.Percent)
		require.Equal(t, string(halted), string(b.fake.TrackJSON(androidPkg, playstore.TrackProduction)))
		for range 3 {
			b.advance(time.Hour)
			require.NoError(t, b.ro.Pass(ctx))
		}
		var stops, failures int
		evs, err := b.st.Events(ctx, b.lane.ReleaseID, 0, 500)
		require.NoError(t, err)
		for _, e := range evs {
			switch e.Kind {
			case "rollout.stopped_remotely":
				stops++
			case "rollout.action_failed":
				failures++
			}
		}
		require.Equal(t, 1, stops, "recorded once")
		require.Zero(t, failures, "no rollout.action_failed every minute")

		// The lane is halted, so a resume is accepted and serves it again.
		_, err = b.ro.Command(ctx, b.lane.ID, release.CmdResume, "token:alice", "checked the crash")
		require.NoError(t, err)
		r, ok := androidRelease(b.fake.Track(androidPkg, playstore.TrackProduction), 42)
		require.True(t, ok)
		require.Equal(t, playstoretest.StatusInProgress, r.Status)
		require.Equal(t, 0.1, r.UserFraction)
	})

	t.Run("a release halted in the Console at 50 % is not completed by the scheduled 100 %", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil, release.StagedPlan([]int{50, 100}, release.Wait{Soak: release.Duration(time.Hour)}, nil))
		require.NoError(t, b.work(t))
		require.NoError(t, b.ro.Pass(ctx))
		require.Equal(t, 50, b.status(t).Percent)
		b.fake.ConsoleUpdate(androidPkg, playstore.TrackProduction,
			playstoretest.Release{Name: "1.3.0 (41)", VersionCodes: []int64{41}, Status: playstoretest.StatusCompleted},
			playstoretest.Release{Name: "1.4.0 (42)", VersionCodes: []int64{42}, Status: playstoretest.StatusHalted, UserFraction: 0.5})
		halted := b.fake.TrackJSON(androidPkg, playstore.TrackProduction)
		commits := b.fake.Commits(androidPkg)

		b.advance(2 * time.Hour) // the soak is over: the plan's next step is 100 %
		before := b.calls()
		require.NoError(t, b.ro.Pass(ctx), "the lane follows Play instead of failing the step every pass")
		require.Equal(t, 3, b.calls()-before, "insert, get track, delete edit: no extra call to see the halt")
		st := b.status(t)
		require.Equal(t, release.StateHalted, st.State, "the lane records what Play shows")
		require.Equal(t, 50, st.Percent)
		require.Equal(t, "Play shows versionCode 42 halted on the production track; resume the lane to continue", st.Reason)
		require.Equal(t, string(halted), string(b.fake.TrackJSON(androidPkg, playstore.TrackProduction)), "still halted at 50 %")
		require.Equal(t, commits, b.fake.Commits(androidPkg), "nothing committed")

		b.advance(time.Hour)
		before = b.calls()
		require.NoError(t, b.ro.Pass(ctx))
		require.Equal(t, before, b.calls(), "a halted lane is left alone")

		// A person's complete serves it to everyone.
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdComplete, "token:alice", "the crash was a false alarm")
		require.NoError(t, err)
		require.Equal(t, release.StateCompleted, b.status(t).State)
		track := b.fake.Track(androidPkg, playstore.TrackProduction)
		require.Len(t, track, 1, "the older completed release left the track")
		require.Equal(t, playstoretest.StatusCompleted, track[0].Status)
		require.Equal(t, []int64{42}, track[0].VersionCodes)
	})

	t.Run("a person's complete serves a release Play shows halted", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil, release.StagedPlan([]int{50, 100}, release.Wait{Soak: release.Duration(time.Hour)}, nil))
		require.NoError(t, b.work(t))
		require.NoError(t, b.ro.Pass(ctx))
		// Halted in the console; the lane has not looked since.
		b.fake.ConsoleUpdate(androidPkg, playstore.TrackProduction,
			playstoretest.Release{Name: "1.3.0 (41)", VersionCodes: []int64{41}, Status: playstoretest.StatusCompleted},
			playstoretest.Release{Name: "1.4.0 (42)", VersionCodes: []int64{42}, Status: playstoretest.StatusHalted, UserFraction: 0.5})
		require.Equal(t, 50, b.status(t).Percent)
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdComplete, "token:alice", "everyone now")
		require.NoError(t, err)
		require.Equal(t, release.StateCompleted, b.status(t).State)
		r, ok := androidRelease(b.fake.Track(androidPkg, playstore.TrackProduction), 42)
		require.True(t, ok)
		require.Equal(t, playstoretest.StatusCompleted, r.Status)
	})

	t.Run("resume where Play halted when a step raced the halt", func(t *testing.T) {
		t.Parallel()
		b := ready(t, nil)
		require.NoError(t, b.ro.Pass(ctx))
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "token:alice", "stop")
		require.NoError(t, err)
		// The reconciler's 25 % went out just before the halt; its status
		// was never recorded.
		b.fake.ConsoleUpdate(androidPkg, playstore.TrackProduction,
			playstoretest.Release{Name: "1.3.0 (41)", VersionCodes: []int64{41}, Status: playstoretest.StatusCompleted},
			playstoretest.Release{Name: "1.4.0 (42)", VersionCodes: []int64{42}, Status: playstoretest.StatusHalted, UserFraction: 0.25})
		_, err = b.ro.Command(ctx, b.lane.ID, release.CmdResume, "token:alice", "go on")
		require.NoError(t, err)
		r, ok := androidRelease(b.fake.Track(androidPkg, playstore.TrackProduction), 42)
		require.True(t, ok)
		require.Equal(t, playstoretest.StatusInProgress, r.Status)
		require.Equal(t, 0.25, r.UserFraction, "never shrunk")
		require.Equal(t, release.StateRolling, b.status(t).State)
	})

	t.Run("rollback halts", func(t *testing.T) {
		t.Parallel()
		b := ready(t, nil)
		require.NoError(t, b.ro.Pass(ctx))
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdRollback, "token:alice", "bad build")
		require.NoError(t, err)
		require.Equal(t, release.StateHalted, b.status(t).State)
		androidGolden(t, "production_10_halted.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
	})

	t.Run("complete before the first stage", func(t *testing.T) {
		t.Parallel()
		b := ready(t, nil)
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdComplete, "token:alice", "hotfix for everyone")
		require.NoError(t, err)
		require.Equal(t, release.StateCompleted, b.status(t).State)
		androidGolden(t, "production_100.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
	})

	t.Run("cancel before the first stage leaves Play alone", func(t *testing.T) {
		t.Parallel()
		b := ready(t, nil)
		commits := b.fake.Commits(androidPkg)
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdCancel, "token:alice", "wrong tag")
		require.NoError(t, err)
		require.Equal(t, release.StateCancelled, b.status(t).State)
		require.Equal(t, commits, b.fake.Commits(androidPkg))
		androidGolden(t, "production_start.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
	})

	t.Run("an approval comes first", func(t *testing.T) {
		t.Parallel()
		plan := androidPlan()
		plan.Steps = append([]release.Step{{Approval: &release.Approval{Reason: "start the production rollout"}}}, plan.Steps...)
		b := setupAndroid(t, store.SQLite, nil, plan)
		require.NoError(t, b.work(t))
		before := b.calls()
		require.NoError(t, b.ro.Pass(ctx))
		require.Equal(t, before, b.calls(), "waiting for approval costs no Play call")
		st := b.status(t)
		require.Equal(t, release.StateWaiting, st.State)
		require.Equal(t, "waiting for approval: start the production rollout", st.Reason)
		androidGolden(t, "production_start.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdApprove, "token:alice", "go")
		require.NoError(t, err)
		require.NoError(t, b.ro.Pass(ctx))
		androidGolden(t, "production_10.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
	})

	t.Run("a lane without a bundle cannot execute", func(t *testing.T) {
		t.Parallel()
		b := setupAndroid(t, store.SQLite, nil)
		l, err := b.st.GetLane(ctx, b.lane.ID)
		require.NoError(t, err)
		err = b.android.Execute(ctx, l, release.Decision{Action: release.ActionAdvance, Percent: 10})
		require.ErrorContains(t, err, "has no versionCode on Play yet: its android_lane job has not finished")
	})
}

func TestAndroidSkipInternal(t *testing.T) {
	t.Parallel()
	b := setupAndroid(t, store.SQLite, func(app *config.App) { app.Android.SkipInternal = true })
	require.NoError(t, b.work(t))
	require.Empty(t, b.fake.Track(androidPkg, playstore.TrackInternal))
	require.Contains(t, b.status(t).Reason, "versionCode 42 is in the app")
	require.NoError(t, b.ro.Pass(context.Background()))
	androidGolden(t, "production_10.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
}

func TestPlayNotes(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", androidlane.PlayNotes("  short\n"))
	long := strings.Repeat("- a change that matters (abc1234)\n", 40)
	got := androidlane.PlayNotes(long)
	require.LessOrEqual(t, len([]rune(got)), androidlane.MaxPlayNotes)
	require.True(t, strings.HasSuffix(got, ")…"), "cut at a whole line: %q", got[len(got)-20:])
	// Characters outside the BMP count twice, as Play counts them.
	emoji := strings.Repeat("🚀", 300)
	got = androidlane.PlayNotes(emoji)
	require.Equal(t, 249, len([]rune(got))-1)
	require.True(t, strings.HasSuffix(got, "🚀…"))
	exact := strings.Repeat("x", androidlane.MaxPlayNotes)
	require.Equal(t, exact, androidlane.PlayNotes(exact))
}

// aab builds an Android App Bundle whose manifest is the protocol buffer
// bundletool writes, with android:versionCode as text and compiled value.
func protoAAB(t *testing.T, text string, compiled int64, withManifest bool) []byte {
	t.Helper()
	str := func(num int, s string) []byte { return pbField(num, []byte(s)) }
	attr := func(name, value string, resID uint64, item []byte) []byte {
		var a []byte
		a = append(a, str(1, "http://schemas.android.com/apk/res/android")...)
		a = append(a, str(2, name)...)
		if value != "" {
			a = append(a, str(3, value)...)
		}
		a = append(a, pbVarint(5, resID)...)
		if item != nil {
			a = append(a, pbField(6, item)...)
		}
		return a
	}
	var elem []byte
	elem = append(elem, pbField(1, append(str(1, "android"), str(2, "http://schemas.android.com/apk/res/android")...))...)
	elem = append(elem, str(3, "manifest")...)
	elem = append(elem, pbField(4, attr("versionName", "1.4.0", 0x0101021c, nil))...)
	prim := pbField(7, pbVarint(6, uint64(compiled)))
	elem = append(elem, pbField(4, attr("versionCode", text, 0x0101021b, prim))...)
	elem = append(elem, pbField(4, []byte(str(2, "package")))...)
	elem = append(elem, pbField(5, pbField(1, str(3, "application")))...)
	node := pbField(1, elem)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("BundleConfig.pb")
	require.NoError(t, err)
	_, _ = w.Write([]byte{0x0a, 0x00})
	if withManifest {
		w, err = zw.Create("base/manifest/AndroidManifest.xml")
		require.NoError(t, err)
		_, err = w.Write(node)
		require.NoError(t, err)
	}
	w, err = zw.Create("base/dex/classes.dex")
	require.NoError(t, err)
	_, _ = w.Write(bytes.Repeat([]byte{0xde}, 1000))
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func pbField(num int, v []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(num)<<3|2)
	out = binary.AppendUvarint(out, uint64(len(v)))
	return append(out, v...)
}

func pbVarint(num int, v uint64) []byte {
	out := binary.AppendUvarint(nil, uint64(num)<<3)
	return binary.AppendUvarint(out, v)
}

func TestManifestVersionCode(t *testing.T) {
	t.Parallel()
	read := func(b []byte) (int64, error) {
		return androidlane.ManifestVersionCode(bytes.NewReader(b), int64(len(b)))
	}

	vc, err := read(protoAAB(t, "42", 42, true))
	require.NoError(t, err)
	require.EqualValues(t, 42, vc)

	vc, err = read(protoAAB(t, "", 2_100_000_000, true))
	require.NoError(t, err)
	require.EqualValues(t, 2_100_000_000, vc, "the compiled value when there is no text")

	_, err = read(protoAAB(t, "forty-two", 0, true))
	require.ErrorContains(t, err, `android:versionCode "forty-two" is not a number`)
	_, err = read(protoAAB(t, "0", 0, true))
	require.ErrorContains(t, err, "android:versionCode 0 is not a positive 32-bit number")
	_, err = read(protoAAB(t, "42", 42, false))
	require.ErrorContains(t, err, "no base/manifest/AndroidManifest.xml")
	_, err = read(playstoretest.FakeBundle(42, 100))
	require.ErrorContains(t, err, "not an Android App Bundle (zip)")

	// A truncated protocol buffer is an error, not a guess.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("base/manifest/AndroidManifest.xml")
	_, _ = w.Write([]byte{0x0a, 0x40, 0x1a})
	require.NoError(t, zw.Close())
	_, err = read(buf.Bytes())
	require.ErrorContains(t, err, "no root element")
}

// BenchmarkAndroidLaneStep halts and resumes a rollout at 10 % through
// Rollouts.Command: two Play track changes per iteration, each through the
// executor, the Play client, the fake over loopback and the store.
func BenchmarkAndroidLaneStep(bm *testing.B) {
	ctx := context.Background()
	b := setupAndroid(bm, store.SQLite, nil)
	require.NoError(bm, b.work(bm))
	require.NoError(bm, b.ro.Pass(ctx))
	before := b.calls()
	bm.ResetTimer()
	for range bm.N {
		for _, cmd := range []release.Command{release.CmdHalt, release.CmdResume} {
			if _, err := b.ro.Command(ctx, b.lane.ID, cmd, "bench", "bench"); err != nil {
				bm.Fatal(err)
			}
		}
	}
	bm.StopTimer()
	bm.ReportMetric(float64(b.calls()-before)/float64(2*bm.N), "calls/step")
	bm.ReportMetric(float64(bm.Elapsed().Microseconds())/float64(2*bm.N), "µs/step")
}

// TestAndroidCancelBeforeTheUpload: a lane cancelled before its job put
// anything on Play is cancelled without a Play call (there is nothing to
// halt), instead of failing the cancel until the job has run.
func TestAndroidCancelBeforeTheUpload(t *testing.T) {
	t.Parallel()
	b := setupAndroid(t, store.SQLite, nil)
	before := b.calls()
	_, err := b.ro.Command(context.Background(), b.lane.ID, release.CmdCancel, "token:alice", "wrong tag")
	require.NoError(t, err)
	require.Equal(t, release.StateCancelled, b.status(t).State)
	require.Equal(t, before, b.calls())
}

// TestAndroidHaltRefusedForGood: Play will not halt the first release of a
// track. A halt command is rejected with Play's reason at once, instead of
// staying pending and asking Play again every pass.
func TestAndroidHaltRefusedForGood(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAndroid(t, store.SQLite, func(app *config.App) { app.Android.Track = "beta" })
	b.vitals(0.002, 0.001, 5000)
	require.NoError(t, b.work(t))
	_, err := b.ro.Command(ctx, b.lane.ID, release.CmdComplete, "token:alice", "everyone")
	require.NoError(t, err)
	require.Equal(t, release.StateCompleted, b.status(t).State)

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "token:alice", "stop")
	var ce *jobs.CommandError
	require.ErrorAs(t, err, &ce)
	require.ErrorContains(t, err, "first release on a track cannot be halted")
	st := b.status(t)
	require.Equal(t, release.StateCompleted, st.State)
	require.Empty(t, st.PendingCommand, "rejected, not left pending")
	calls := b.calls()
	b.advance(time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, calls, b.calls(), "Play is not asked again")
}
