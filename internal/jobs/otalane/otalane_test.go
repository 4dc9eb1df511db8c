package otalane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/jobs/otalane"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/nativechecktest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

type otaBundle struct {
	st     *store.Store
	cp     *codepush.Service
	ota    *otalane.OTA
	ro     *jobs.Rollouts
	assets *lanetest.Assets
	now    time.Time
	repo   nativechecktest.Repo
	prod   string // Production deployment key
}

var otaGates = []release.GateRule{{Metric: gate.OTAFailureRate, Max: 0.05, MinSamples: 10}}

func setupOTA(t *testing.T) *otaBundle {
	t.Helper()
	b := newOTABundle(t, gate.OTAApp{App: "acme", Platform: release.IOS},
		config.OTA{Enabled: true, Stages: release.DefaultStages, AppName: "acme", BundleAsset: "bundle-{platform}.zip"})
	// Two binaries share the native code of 1.4.0; 1.3.0 is older native code.
	base := map[string]string{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v1\n"}
	b.commit(t, "c130", map[string]string{"ios/Podfile": "platform :ios, '14.0'\n", "src/App.tsx": "v0\n"})
	b.commit(t, "c140", base)
	b.commit(t, "c141", with(base, "src/App.tsx", "v141\n"))
	for _, bin := range [][3]string{{"1.3.0", "30", "c130"}, {"1.4.0", "40", "c140"}, {"1.4.1", "41", "c141"}} {
		b.binary(t, bin[0], bin[1], bin[2])
	}
	return b
}

// newOTABundle is an OTA lane executor for the app acme configured with
// ota, over a fresh store and a CodePush service whose app acme-ios is
// gated by native (as acme-ios); nothing is committed or recorded yet.
func newOTABundle(t *testing.T, native gate.OTAApp, ota config.OTA) *otaBundle {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	b := &otaBundle{st: st, now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), repo: nativechecktest.Repo{},
		assets: lanetest.NewAssets("acme/mobile", t.TempDir())}
	clock := func() time.Time { return b.now }
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, b.now))
	gated := &gate.NativeGate{Store: st, Apps: map[string]gate.OTAApp{"acme-ios": native}}
	cp, err := codepush.New(ctx, codepush.Config{Store: store.NewCodePush(db), Blobs: codepush.DirBlobs{Dir: t.TempDir()}, Gate: gated, Now: clock})
	require.NoError(t, err)
	app, err := cp.CreateApp(ctx, "acme-ios", false)
	require.NoError(t, err)
	b.cp, b.prod = cp, app.Deployments[1].Key
	apps := map[string]config.App{"acme": {Name: "acme", Repository: "acme/mobile", OTA: ota}}
	b.ota = &otalane.OTA{Store: st, CodePush: cp, Apps: apps, Assets: b.assets, Now: clock}
	b.ro = &jobs.Rollouts{Store: st, Executors: jobs.Executors{{Kind: release.KindOTA, Platform: release.IOS}: b.ota}, Now: clock}
	return b
}

func with(files map[string]string, path, content string) map[string]string {
	out := maps.Clone(files)
	out[path] = content
	return out
}

func (b *otaBundle) commit(t *testing.T, sha string, files map[string]string) {
	t.Helper()
	b.repo[sha] = files
	fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(context.Background(), b.repo, sha)
	require.NoError(t, err)
	fp := fps[nativecheck.IOS]
	data, err := json.Marshal(fp)
	require.NoError(t, err)
	require.NoError(t, b.st.SaveFingerprint(context.Background(), store.Fingerprint{App: "acme", Platform: release.IOS, Commit: sha,
		Algorithm: fp.Algorithm, Hash: fp.Hash, Data: data, CreatedAt: b.now}))
}

// binary records an iOS binary built from commit, with its fingerprint.
func (b *otaBundle) binary(t *testing.T, version, build, commit string) {
	t.Helper()
	ctx := context.Background()
	fp, err := b.st.GetFingerprint(ctx, "acme", release.IOS, commit, nativecheck.Algorithm)
	require.NoError(t, err)
	_, err = b.st.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: version, BuildNumber: build, Commit: commit, Fingerprint: fp.Hash, CreatedAt: b.now})
	require.NoError(t, err)
}

// lane plans an OTA lane for a JS-only tag, as plan_release would.
func (b *otaBundle) lane(t *testing.T, tag, commit, bundle string) release.Lane {
	t.Helper()
	ctx := context.Background()
	b.commit(t, commit, map[string]string{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": bundle})
	b.assets.Put(tag, "bundle-ios.zip", "bundle-ios.zip", []byte(bundle))
	r, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: tag, Version: tag[1:], Commit: commit, CreatedAt: b.now})
	require.NoError(t, err)
	l, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindOTA,
		Plan: release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, otaGates)}, b.now)
	require.NoError(t, err)
	return l
}

// rolling plans an OTA lane (see lane), runs its job and one reconcile
// pass: the release is in Production at the first stage.
func (b *otaBundle) rolling(t *testing.T, tag, commit, bundle string) release.Lane {
	t.Helper()
	ctx := context.Background()
	l := b.lane(t, tag, commit, bundle)
	require.NoError(t, b.work(ctx, l))
	require.NoError(t, b.ro.Pass(ctx))
	return l
}

func (b *otaBundle) work(ctx context.Context, l release.Lane) error {
	w := &otalane.Worker{OTA: b.ota}
	return w.Work(ctx, &river.Job[lane.OTAArgs]{Args: lane.OTAArgs{LaneID: l.ID}})
}

func (b *otaBundle) history(t *testing.T, dep string) []codepush.Release {
	t.Helper()
	h, err := b.cp.History(context.Background(), "acme-ios", dep)
	require.NoError(t, err)
	return h
}

func (b *otaBundle) laneStatus(t *testing.T, l release.Lane) release.Status {
	t.Helper()
	got, err := b.st.GetLane(context.Background(), l.ID)
	require.NoError(t, err)
	return got.Status
}

// report makes devices on 1.4.0 report installs and client-side rollbacks
// of a Production label.
func (b *otaBundle) report(t *testing.T, label string, installed, failed int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < installed+failed; i++ {
		status := codepush.StatusSucceeded
		if i >= installed {
			status = codepush.StatusFailed
		}
		require.NoError(t, b.cp.ReportDeploy(ctx, codepush.DeployReport{DeploymentKey: b.prod, AppVersion: "1.4.0", Label: label,
			Status: status, ClientUniqueID: fmt.Sprintf("device-%d-%d-%d", installed, failed, i)})) // each call reports new devices: a device counts once
	}
}

// offered counts the devices of 100 on 1.4.0 that an update check offers label.
func (b *otaBundle) offered(t *testing.T, label string) int {
	t.Helper()
	n := 0
	for i := 0; i < 100; i++ {
		info, err := b.cp.CheckUpdate(codepush.UpdateRequest{DeploymentKey: b.prod, AppVersion: "1.4.0", ClientUniqueID: fmt.Sprintf("device-%d", i)})
		require.NoError(t, err)
		if info.IsAvailable && info.Label == label {
			n++
		}
	}
	return n
}

func TestOTALaneStagesPromotesAndRollsOutThroughTheReconciler(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	l := b.lane(t, "v1.4.2", "c142", "bundle 1.4.2\n")

	require.NoError(t, b.work(ctx, l))
	staging, prod := b.history(t, codepush.Staging), b.history(t, codepush.Production)
	require.Len(t, staging, 1)
	require.Equal(t, "1.4.0 || 1.4.1", staging[0].AppVersion, "exactly the binaries that share the fingerprint")
	require.Equal(t, "c142", staging[0].Commit)
	require.Equal(t, "releasepilot", staging[0].ReleasedBy)
	require.Len(t, prod, 1)
	require.Equal(t, codepush.MethodPromote, prod[0].Method)
	require.Equal(t, "v1", prod[0].OriginalLabel)
	require.Equal(t, 10, prod[0].Rollout, "promoted at the first stage")
	st := b.laneStatus(t, l)
	require.Equal(t, release.StateRolling, st.State)
	require.Contains(t, st.Reason, "acme-ios v1 on Production at 10% for binaries 1.4.0 || 1.4.1")

	// A second run (a retried job) changes nothing.
	require.NoError(t, b.work(ctx, l))
	require.Len(t, b.history(t, codepush.Staging), 1)
	require.Len(t, b.history(t, codepush.Production), 1)
	require.Equal(t, 1, b.assets.Fetches())

	// The reconciler's first step is the 10 % the lane already set.
	require.NoError(t, b.ro.Pass(ctx))
	st = b.laneStatus(t, l)
	require.Equal(t, 10, st.Percent)
	require.Equal(t, 10, b.history(t, codepush.Production)[0].Rollout)
	n := b.offered(t, "v1")
	require.InDelta(t, 10, n, 9, "about a tenth of the devices are offered v1")

	// Healthy reports after the soak: 25 %.
	b.report(t, "v1", 20, 0)
	b.now = b.now.Add(61 * time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 25, b.history(t, codepush.Production)[0].Rollout)
	require.Equal(t, 25, b.laneStatus(t, l).Percent)

	// Halt disables the release: nobody is offered it.
	_, err := b.ro.Command(ctx, l.ID, release.CmdHalt, "token:ana", "support tickets")
	require.NoError(t, err)
	require.True(t, b.history(t, codepush.Production)[0].Disabled)
	require.Zero(t, b.offered(t, "v1"))
	require.Equal(t, release.StateHalted, b.laneStatus(t, l).State)

	// Resume enables it again at the same rollout.
	_, err = b.ro.Command(ctx, l.ID, release.CmdResume, "token:ana", "false alarm")
	require.NoError(t, err)
	r := b.history(t, codepush.Production)[0]
	require.False(t, r.Disabled)
	require.Equal(t, 25, r.Rollout)
	require.GreaterOrEqual(t, b.offered(t, "v1"), n, "a rollout only grows")

	b.now = b.now.Add(61 * time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 50, b.history(t, codepush.Production)[0].Rollout)
	b.now = b.now.Add(61 * time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 100, b.history(t, codepush.Production)[0].Rollout)
	require.Equal(t, 100, b.offered(t, "v1"))
	st = b.laneStatus(t, l)
	require.Equal(t, release.StateCompleted, st.State)

	// A duplicate tick and a repeated execution change nothing.
	require.NoError(t, b.ro.Pass(ctx))
	require.NoError(t, b.ota.Execute(ctx, l, release.Decision{Action: release.ActionComplete, Percent: 100}))
	require.Len(t, b.history(t, codepush.Production), 1)

	evs, err := b.st.Events(ctx, l.ReleaseID, 0, 100)
	require.NoError(t, err)
	var kinds []string
	for _, e := range evs {
		if e.Kind != "rollout.hold" {
			kinds = append(kinds, e.Kind)
		}
	}
	require.Equal(t, []string{"ota.target", "ota.staged", "ota.promoted", "lane.ready", "rollout.advance", "rollout.advance",
		"command.halt", "command.applied", "command.resume", "command.applied", "rollout.advance", "rollout.complete"}, kinds)
}

func TestOTALaneHaltsOnFailuresAndHoldsWithoutReports(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	l := b.rolling(t, "v1.4.2", "c142", "bundle 1.4.2\n") // 10 %

	// No device reported yet: the gate holds, never advances.
	b.now = b.now.Add(3 * time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	st := b.laneStatus(t, l)
	require.Equal(t, release.StateWaiting, st.State)
	require.Contains(t, st.Reason, "gate ota_failure_rate: no fresh data yet")
	require.Equal(t, 10, b.history(t, codepush.Production)[0].Rollout)

	// Too few reports hold too.
	b.report(t, "v1", 4, 0)
	b.now = b.now.Add(time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	require.Contains(t, b.laneStatus(t, l).Reason, "4 samples, need 10")

	// 3 of 12 devices rolled the update back: halt, and the release is disabled.
	b.report(t, "v1", 5, 3)
	obs, err := b.ota.Observe(ctx, l)
	require.NoError(t, err)
	require.Equal(t, release.Observation{Value: 0.25, Samples: 12, Fresh: true}, obs.Metrics[gate.OTAFailureRate])
	b.now = b.now.Add(time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	st = b.laneStatus(t, l)
	require.Equal(t, release.StateHalted, st.State)
	require.Contains(t, st.Reason, "gate ota_failure_rate failed: 0.25 is above 0.05")
	r := b.history(t, codepush.Production)[0]
	require.True(t, r.Disabled)
	require.Equal(t, 10, r.Rollout)
	require.Zero(t, b.offered(t, "v1"))
}

func TestOTALaneRetryAfterACrashFindsItsReleases(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	l := b.lane(t, "v1.4.2", "c142", "bundle 1.4.2\n")
	require.NoError(t, b.work(ctx, l))

	// Simulate a crash after both remote changes, before anything was recorded.
	cur, err := b.st.GetLane(ctx, l.ID)
	require.NoError(t, err)
	require.NoError(t, b.st.SetLaneData(ctx, l.ID, map[string]any{}, b.now))
	_, err = b.st.UpdateStatus(ctx, l.ID, release.Status{State: release.StatePending, Version: cur.Status.Version, UpdatedAt: b.now})
	require.NoError(t, err)

	require.NoError(t, b.work(ctx, l))
	require.Len(t, b.history(t, codepush.Staging), 1, "no second Staging release")
	require.Len(t, b.history(t, codepush.Production), 1, "no second promotion")
	require.Equal(t, release.StateRolling, b.laneStatus(t, l).State)
}

func TestOTALaneRollbackGoesBackToThePreviousRelease(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	first := b.lane(t, "v1.4.2", "c142", "bundle 1.4.2\n")
	require.NoError(t, b.work(ctx, first))
	_, err := b.ro.Command(ctx, first.ID, release.CmdComplete, "token:ana", "")
	require.NoError(t, err)

	second := b.rolling(t, "v1.4.3", "c143", "bundle 1.4.3\n")
	_, err = b.ro.Command(ctx, second.ID, release.CmdRollback, "token:ana", "login broken")
	require.NoError(t, err)
	prod := b.history(t, codepush.Production)
	require.Len(t, prod, 3)
	require.Equal(t, codepush.MethodRollback, prod[2].Method)
	require.Equal(t, "v1", prod[2].OriginalLabel)
	require.Equal(t, prod[0].PackageHash, prod[2].PackageHash)
	require.Equal(t, 100, b.offered(t, "v3"), "every device goes back to the first bundle")

	// Executing the rollback again does not roll back twice.
	require.NoError(t, b.ota.Execute(ctx, second, release.Decision{Action: release.ActionRollback}))
	require.Len(t, b.history(t, codepush.Production), 3)
}

func TestOTALaneFailsWithAReason(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()

	// Native code no binary has: no range, no release.
	b.commit(t, "c150", map[string]string{"ios/Podfile": "platform :ios, '17.0'\n", "src/App.tsx": "x"})
	native := b.lane(t, "v1.5.0", "c150", "bundle 1.5.0\n") // its fingerprint is the one recorded above
	err := b.work(ctx, native)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	st := b.laneStatus(t, native)
	require.Equal(t, release.StateFailed, st.State)
	require.Contains(t, st.Reason, "no recorded ios binary has the native fingerprint")
	require.Empty(t, b.history(t, codepush.Staging))

	// No bundle asset yet: wait for it, then give up with a reason.
	missing := b.lane(t, "v1.4.5", "c145", "bundle 1.4.5\n")
	b.assets.Delete("v1.4.5", "bundle-ios.zip")
	err = b.work(ctx, missing)
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	require.Equal(t, release.StatePending, b.laneStatus(t, missing).State)
	require.Contains(t, b.laneStatus(t, missing).Reason, `waiting: the asset "bundle-ios.zip" has not appeared on the GitHub release v1.4.5 (since `,
		"the status says what the lane waits for")
	require.Contains(t, b.laneStatus(t, missing).Reason, "the lane fails if this lasts 2h0m0s")
	b.now = b.now.Add(3 * time.Hour)
	require.ErrorAs(t, b.work(ctx, missing), &cancel)
	require.Contains(t, b.laneStatus(t, missing).Reason, `has no asset matching "bundle-ios.zip"`)

	// Observing a lane with no Production release is no data, not an error.
	obs, err := b.ota.Observe(ctx, missing)
	require.NoError(t, err)
	require.Empty(t, obs.Metrics)
	require.Error(t, b.ota.Execute(ctx, missing, release.Decision{Action: release.ActionAdvance, Percent: 25}))
}

func TestOTALaneSoaksOnStagingBeforeProduction(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	app := b.ota.Apps["acme"]
	app.OTA.StagingSoak = config.Duration(30 * time.Minute)
	b.ota.Apps["acme"] = app
	l := b.lane(t, "v1.4.2", "c142", "bundle 1.4.2\n")

	var snooze *river.JobSnoozeError
	require.ErrorAs(t, b.work(ctx, l), &snooze)
	require.Equal(t, 30*time.Minute, snooze.Duration)
	require.Len(t, b.history(t, codepush.Staging), 1)
	require.Empty(t, b.history(t, codepush.Production), "not before the soak")
	require.Equal(t, release.StatePending, b.laneStatus(t, l).State)

	b.now = b.now.Add(20 * time.Minute)
	require.ErrorAs(t, b.work(ctx, l), &snooze)
	require.Equal(t, 10*time.Minute, snooze.Duration)

	b.now = b.now.Add(10 * time.Minute)
	require.NoError(t, b.work(ctx, l))
	require.Len(t, b.history(t, codepush.Staging), 1)
	require.Len(t, b.history(t, codepush.Production), 1)
	require.Equal(t, release.StateRolling, b.laneStatus(t, l).State)
	require.Equal(t, 1, b.assets.Fetches())
}

func TestOTARollbackWithoutAnEarlierReleaseDisables(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	l := b.rolling(t, "v1.4.2", "c142", "bundle 1.4.2\n")
	_, err := b.ro.Command(ctx, l.ID, release.CmdRollback, "token:ana", "crash on launch")
	require.NoError(t, err)
	prod := b.history(t, codepush.Production)
	require.Len(t, prod, 1, "nothing to go back to")
	require.True(t, prod[0].Disabled)
	require.Zero(t, b.offered(t, "v1"))
	require.Equal(t, release.StateHalted, b.laneStatus(t, l).State)
}

// After an earlier lane was halted, the release before ours is disabled:
// a rollback has nothing enabled to go back to and must stop serving ours,
// not append a disabled copy and leave ours at 100 %.
func TestOTARollbackAfterAHaltedLaneServesTheBadReleaseToNobody(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	first := b.rolling(t, "v1.4.2", "c142", "bundle 1.4.2\n")
	_, err := b.ro.Command(ctx, first.ID, release.CmdHalt, "token:ana", "crash")
	require.NoError(t, err)

	second := b.rolling(t, "v1.4.3", "c143", "bundle 1.4.3\n")
	prod := b.history(t, codepush.Production)
	require.Len(t, prod, 2)
	require.True(t, prod[0].Disabled)
	require.Equal(t, 10, prod[1].Rollout)
	require.NotZero(t, b.offered(t, "v2"))

	_, err = b.ro.Command(ctx, second.ID, release.CmdRollback, "token:ana", "login broken")
	require.NoError(t, err)
	prod = b.history(t, codepush.Production)
	require.Len(t, prod, 2, "no disabled copy of v1 is appended")
	require.True(t, prod[1].Disabled, "the bad release is disabled")
	require.Zero(t, b.offered(t, "v2"))
	require.Zero(t, b.offered(t, "v1"))
	require.Equal(t, release.StateHalted, b.laneStatus(t, second).State)
}

// An advance never re-enables a release something else disabled (an
// operator through the CodePush API, or a halt racing the tick); only a
// resume does.
func TestOTAAdvanceDoesNotReenableAReleaseDisabledElsewhere(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	l := b.rolling(t, "v1.4.2", "c142", "bundle 1.4.2\n") // 10 %

	disable := true
	_, _, err := b.cp.Patch(codepush.WithActor(ctx, codepush.Actor{Name: "ops@example.com"}), "acme-ios", codepush.Production,
		codepush.PackageInfo{Disabled: &disable})
	require.NoError(t, err)

	b.report(t, "v1", 20, 0)
	b.now = b.now.Add(61 * time.Minute)
	require.NoError(t, b.ro.Pass(ctx), "the lane follows the disabled release instead of failing the step")
	r := b.history(t, codepush.Production)[0]
	require.True(t, r.Disabled, "still disabled")
	require.Equal(t, 10, r.Rollout, "not advanced")
	require.Zero(t, b.offered(t, "v1"))
	st := b.laneStatus(t, l)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, 10, st.Percent)
	require.Contains(t, st.Reason, "resume the lane to re-enable it")

	// The same advance executed for a lane that is rolling fails too, and
	// so does the plan's own 100 %; for a halted lane (a resume) it enables
	// the release again.
	require.Error(t, b.ota.Execute(ctx, l, release.Decision{Action: release.ActionAdvance, Percent: 25}))
	require.Error(t, b.ota.Execute(ctx, l, release.Decision{Action: release.ActionComplete, Percent: 100}))
	require.True(t, b.history(t, codepush.Production)[0].Disabled)
	_, err = b.ro.Command(ctx, l.ID, release.CmdResume, "token:ana", "fine")
	require.NoError(t, err)
	r = b.history(t, codepush.Production)[0]
	require.False(t, r.Disabled)
	require.Equal(t, 10, r.Rollout)
}

// TestOTACancelAfterAnUnrecordedPromotion: the lane job promoted the release
// to Production and died before recording it; a cancel then finds the
// promotion by its Staging label and disables it, so nothing of a
// cancelled lane is served.
func TestOTACancelAfterAnUnrecordedPromotion(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	l := b.lane(t, "v1.4.2", "c142", "bundle 1.4.2\n")
	require.NoError(t, b.work(ctx, l))
	var data map[string]any
	require.NoError(t, b.st.LaneData(ctx, l.ID, &data))
	require.NotEmpty(t, data["production_label"])
	delete(data, "production_label")
	require.NoError(t, b.st.SetLaneData(ctx, l.ID, data, b.now))
	st := b.laneStatus(t, l)
	st.State = release.StatePending
	_, err := b.st.UpdateStatus(ctx, l.ID, st)
	require.NoError(t, err)
	require.False(t, b.history(t, codepush.Production)[0].Disabled)

	_, err = b.ro.Command(ctx, l.ID, release.CmdCancel, "token:ana", "wrong tag")
	require.NoError(t, err)
	require.Equal(t, release.StateCancelled, b.laneStatus(t, l).State)
	require.True(t, b.history(t, codepush.Production)[0].Disabled, "the unrecorded promotion is not served")

	// A cancel before any promotion has nothing to stop.
	l2 := b.lane(t, "v1.4.3", "c143", "bundle 1.4.3\n")
	_, err = b.ro.Command(ctx, l2.ID, release.CmdCancel, "token:ana", "not this one")
	require.NoError(t, err)
	require.Equal(t, release.StateCancelled, b.laneStatus(t, l2).State)
}
