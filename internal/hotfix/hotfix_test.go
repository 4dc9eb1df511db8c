package hotfix_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/hotfix"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

type testBundle struct {
	ctx  context.Context
	st   *store.Store
	cp   *codepush.Service
	h    *hotfix.Releaser
	gh   *githubtest.Server
	now  time.Time
	base string // the 1.4.0 binary's commit
	fix  string // JS only
	fix2 string // JS only
	nat  string // changes ios/Podfile
}

func appConfig(name string, allowUnverified bool) config.App {
	return config.App{Name: name, Repository: "acme/mobile", OTA: config.OTA{Enabled: true, AppName: name, Stages: []int{10, 25, 50, 100},
		AllowUnverifiedStaging: allowUnverified},
		Rollout: config.Rollout{Soak: config.Duration(time.Hour), Gates: []config.GateRule{{Metric: gate.OTAFailureRate, Max: ptr(0.05), MinSamples: 100}}}}
}

func setup(t *testing.T, e store.Engine) *testBundle {
	t.Helper()
	b := &testBundle{ctx: codepush.WithActor(context.Background(), codepush.Actor{Name: "accesskey:ana"}), now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	db := storetest.Open(t, e)
	b.st = store.New(db)
	b.gh = githubtest.New()
	srv := httptest.NewServer(b.gh)
	t.Cleanup(srv.Close)
	repo := b.gh.Repo("acme/mobile")
	files := githubtest.Files{"ios/Podfile": "platform :ios, '15.0'\n", "android/build.gradle": "x\n", "src/App.tsx": "v1\n", "package.json": `{"name":"acme"}`}
	b.base = repo.Commit("1.4.0", files)
	b.fix = repo.Commit("fix", files.With(githubtest.Files{"src/App.tsx": "v2\n"}), b.base)
	b.fix2 = repo.Commit("fix 2", files.With(githubtest.Files{"src/App.tsx": "v3\n"}), b.fix)
	b.nat = repo.Commit("iOS 17", files.With(githubtest.Files{"ios/Podfile": "platform :ios, '17.0'\n"}), b.fix2)
	client, err := github.NewClient(github.ClientOptions{BaseURL: srv.URL})
	require.NoError(t, err)

	apps := []config.App{appConfig("acme", false), appConfig("open", true)}
	targets, gateApps := map[string]hotfix.Target{}, map[string]gate.OTAApp{}
	for _, a := range apps {
		require.NoError(t, b.st.UpsertApp(b.ctx, release.App{Name: a.Name, Repository: a.Repository}, b.now))
		for _, p := range release.Platforms {
			name := gate.CodePushAppName(a.Name, p)
			targets[name] = hotfix.Target{App: a, Platform: p}
			gateApps[name] = gate.OTAApp{App: a.Name, Platform: p, AllowUnverifiedStaging: a.OTA.AllowUnverifiedStaging}
		}
	}
	b.cp, err = codepush.New(b.ctx, codepush.Config{Store: store.NewCodePush(db), Blobs: codepush.DirBlobs{Dir: t.TempDir()},
		Gate: &gate.NativeGate{Store: b.st, Apps: gateApps}, Now: func() time.Time { return b.now }})
	require.NoError(t, err)
	for name := range targets {
		_, err := b.cp.CreateApp(b.ctx, name, false)
		require.NoError(t, err)
	}
	b.h = &hotfix.Releaser{Service: b.cp, Store: b.st, Targets: targets, Now: func() time.Time { return b.now },
		Fingerprints: &hotfix.RepoFingerprints{Store: b.st, Repo: func(n string) (nativecheck.Source, error) { return client.Repo(n) }}}

	// The 1.4.0 binaries were built from base; only their fingerprint hash
	// is recorded, as store lanes record it.
	src, err := client.Repo("acme/mobile")
	require.NoError(t, err)
	fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(b.ctx, src, b.base)
	require.NoError(t, err)
	for _, a := range apps {
		_, err = b.st.RecordBinary(b.ctx, release.Binary{App: a.Name, Platform: release.IOS, Version: "1.4.0", BuildNumber: "40", Commit: b.base,
			Fingerprint: fps[nativecheck.IOS].Hash, CreatedAt: b.now})
		require.NoError(t, err)
	}
	return b
}

func bundle(t *testing.T, js string) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("CodePush/main.jsbundle")
	require.NoError(t, err)
	_, err = io.WriteString(w, js)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return &buf
}

func (b *testBundle) lane(t *testing.T, app, tag string) release.Lane {
	t.Helper()
	rel, err := b.st.ReleaseByTag(b.ctx, app, tag)
	require.NoError(t, err)
	ls, err := b.st.Lanes(b.ctx, rel.ID)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	return ls[0]
}

func (b *testBundle) eventKinds(t *testing.T, app, tag string) []string {
	t.Helper()
	rel, err := b.st.ReleaseByTag(b.ctx, app, tag)
	require.NoError(t, err)
	evs, err := b.st.Events(b.ctx, rel.ID, 0, 100)
	require.NoError(t, err)
	var out []string
	for _, e := range evs {
		require.Equal(t, "accesskey:ana", e.Actor, e.Kind)
		out = append(out, e.Kind)
	}
	return out
}

// TestHotfixIsGatedOnItsCommit: a release by hand is accepted when its
// commit's native fingerprint (computed on demand from GitHub) matches the
// binaries it targets, refused naming the files when it does not, and
// refused with how to name one when it names no commit.
func TestHotfixIsGatedOnItsCommit(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			ios := release.IOS

			// A matching commit releases to the binaries that share its
			// fingerprint, computed on demand.
			_, err := b.st.GetFingerprint(b.ctx, "acme", ios, b.fix, nativecheck.Algorithm)
			require.ErrorIs(t, err, store.ErrNotFound)
			r, err := b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: strings.ToUpper(b.fix), Package: bundle(t, "fix")})
			require.NoError(t, err)
			require.Equal(t, "1.4.0", r.AppVersion)
			require.Equal(t, b.fix, r.Commit)
			require.Equal(t, "accesskey:ana", r.ReleasedBy)
			for _, p := range release.Platforms {
				_, err := b.st.GetFingerprint(b.ctx, "acme", p, b.fix, nativecheck.Algorithm)
				require.NoError(t, err, "the commit was fingerprinted and recorded for %s", p)
			}

			// A native commit: refused, naming what differs from the binary.
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: b.nat, Package: bundle(t, "native")})
			require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "%v", err)
			require.ErrorContains(t, err, "binary 1.4.0 (build 40")
			require.ErrorContains(t, err, "file changed: ios/Podfile")
			_, err = b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Production, AppVersion: "^1.4.0",
				Description: "Require iOS 17\nCommit: " + b.nat, Package: bundle(t, "native")})
			require.ErrorContains(t, err, "file changed: ios/Podfile", "the CodePush CLI's Commit: line is read")

			// No commit: refused, saying how to give one.
			for _, dep := range []string{codepush.Staging, codepush.Production} {
				_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Deployment: dep, Package: bundle(t, "anonymous")})
				require.Equal(t, codepush.KindInvalid, codepush.KindOf(err), "%v", err)
				require.ErrorContains(t, err, "names no commit")
				require.ErrorContains(t, err, `a line "Commit: SHA" in the CodePush CLI's --description`)
			}

			// A commit must be a full SHA GitHub knows.
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: b.fix2[:10], Package: bundle(t, "short")})
			require.ErrorContains(t, err, "full 40-character SHA")
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: strings.Repeat("ab", 20), Package: bundle(t, "ghost")})
			require.Equal(t, codepush.KindInvalid, codepush.KindOf(err), "%v", err)
			require.ErrorContains(t, err, "acme/mobile has no such commit")

			// GitHub down: try again later, nothing released.
			b.gh.Fail = func(r *http.Request) int { return http.StatusBadGateway }
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: b.fix2, Package: bundle(t, "later")})
			require.Equal(t, codepush.KindUnavailable, codepush.KindOf(err), "%v", err)
			b.gh.Fail = nil

			// An app that allows it takes unverified releases on Staging only.
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "open", Platform: ios, TargetRange: "1.4.0", Package: bundle(t, "unverified")})
			require.NoError(t, err)
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "open", Platform: ios, TargetRange: "1.4.0", Deployment: codepush.Production, Package: bundle(t, "unverified 2")})
			require.ErrorContains(t, err, "names no commit")
			_, err = b.cp.Promote(b.ctx, "open-ios", codepush.Staging, codepush.Production, codepush.PackageInfo{})
			require.ErrorContains(t, err, "names no commit", "an unverified release is never promoted")

			// An app without OTA on that platform.
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "nope", Platform: ios, Commit: b.fix, Package: bundle(t, "x")})
			require.ErrorContains(t, err, "no configured app ships over the air")

			hist, err := b.cp.History(b.ctx, "acme-ios", codepush.Staging)
			require.NoError(t, err)
			require.Len(t, hist, 1, "only the matching commit was released")
		})
	}
}

// TestHotfixLanes: a release by hand becomes a lane that follows the plan;
// what the CodePush API does to its Production release moves the lane as
// releasepilot's commands would, in the same transaction, audited.
func TestHotfixLanes(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)

			// On Staging: a pending lane; a newer Staging release supersedes it.
			_, err := b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Staging, AppVersion: "1.4.0", Commit: b.fix, Package: bundle(t, "one")})
			require.NoError(t, err)
			first := b.lane(t, "acme", "hotfix:acme-ios/Staging/v1")
			require.Equal(t, release.StatePending, first.Status.State)
			require.Contains(t, first.Status.Reason, "promote it to Production")
			_, err = b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Staging, AppVersion: "1.4.0", Commit: b.fix2, Package: bundle(t, "two")})
			require.NoError(t, err)
			require.Equal(t, release.StateCancelled, b.lane(t, "acme", "hotfix:acme-ios/Staging/v1").Status.State)
			require.Equal(t, []string{"ota.released", "lane.cancelled"}, b.eventKinds(t, "acme", "hotfix:acme-ios/Staging/v1"))

			// Promote asks for everyone; the lane starts at 10 % and waits
			// for its soak and gate.
			r, err := b.h.Promote(b.ctx, "acme-ios", codepush.Staging, codepush.Production, codepush.PackageInfo{Rollout: ptr(100)})
			require.NoError(t, err)
			require.Equal(t, 10, r.Rollout)
			l := b.lane(t, "acme", "hotfix:acme-ios/Staging/v2")
			require.Equal(t, release.StateRolling, l.Status.State)
			require.Equal(t, 10, l.Status.Percent)
			require.Equal(t, 1, l.Status.StepIndex, "past the 10 % step: next the soak")
			require.NotNil(t, l.Plan.Steps[l.Status.StepIndex].Wait)

			// A new Production release while this one rolls out is refused.
			_, err = b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Production, AppVersion: "1.4.0", Commit: b.fix, Package: bundle(t, "three")})
			require.ErrorContains(t, err, "Please update the previous release to 100% rollout")

			// patch --rollout 40: past 25 %, before the 50 % step's soak.
			_, changed, err := b.h.Patch(b.ctx, "acme-ios", codepush.Production, codepush.PackageInfo{Rollout: ptr(40)})
			require.NoError(t, err)
			require.True(t, changed)
			l = b.lane(t, "acme", "hotfix:acme-ios/Staging/v2")
			require.Equal(t, 40, l.Status.Percent)
			require.Equal(t, 4, l.Status.StepIndex, "steps: 10, wait, gate, 25, wait, gate, 50, …")
			// --disabled halts, a rollout patch of a halted lane is refused,
			// --disabled false resumes.
			_, _, err = b.h.Patch(b.ctx, "acme-ios", codepush.Production, codepush.PackageInfo{Disabled: ptr(true)})
			require.NoError(t, err)
			require.Equal(t, release.StateHalted, b.lane(t, "acme", "hotfix:acme-ios/Staging/v2").Status.State)
			_, _, err = b.h.Patch(b.ctx, "acme-ios", codepush.Production, codepush.PackageInfo{Rollout: ptr(60)})
			require.ErrorContains(t, err, "is halted in releasepilot")
			hist, err := b.cp.History(b.ctx, "acme-ios", codepush.Production)
			require.NoError(t, err)
			require.Equal(t, 40, hist[0].Rollout, "a refused patch changes nothing")
			_, _, err = b.h.Patch(b.ctx, "acme-ios", codepush.Production, codepush.PackageInfo{Disabled: ptr(false)})
			require.NoError(t, err)
			require.Equal(t, release.StateRolling, b.lane(t, "acme", "hotfix:acme-ios/Staging/v2").Status.State)
			_, _, err = b.h.Patch(b.ctx, "acme-ios", codepush.Production, codepush.PackageInfo{Mandatory: ptr(true)})
			require.NoError(t, err)
			require.Equal(t, []string{"ota.released", "ota.promoted", "command.advance", "command.halt", "command.resume", "ota.patched"},
				b.eventKinds(t, "acme", "hotfix:acme-ios/Staging/v2"))

			// Completing it, then a release straight to Production at 5 %:
			// below the first stage it becomes a stage of its own.
			_, _, err = b.h.Patch(b.ctx, "acme-ios", codepush.Production, codepush.PackageInfo{Rollout: ptr(100)})
			require.NoError(t, err)
			require.Equal(t, release.StateCompleted, b.lane(t, "acme", "hotfix:acme-ios/Staging/v2").Status.State)
			_, err = b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Production, AppVersion: "1.4.0", Commit: b.fix, Rollout: 5, Package: bundle(t, "three")})
			require.NoError(t, err)
			direct := b.lane(t, "acme", "hotfix:acme-ios/Production/v2")
			require.Equal(t, 5, direct.Status.Percent)
			require.Equal(t, 5, *direct.Plan.Steps[0].SetPercent)
			require.Equal(t, 10, *direct.Plan.Steps[3].SetPercent)

			// Rollback: the copy of v1 is served and the lane halts.
			rb, err := b.h.Rollback(b.ctx, "acme-ios", codepush.Production, "")
			require.NoError(t, err)
			require.Equal(t, "v1", rb.OriginalLabel)
			direct = b.lane(t, "acme", "hotfix:acme-ios/Production/v2")
			require.Equal(t, release.StateHalted, direct.Status.State)
			require.Equal(t, "v2 rolled back to v1 by accesskey:ana", direct.Status.Reason)
			require.Equal(t, []string{"ota.promoted", "command.rollback"}, b.eventKinds(t, "acme", "hotfix:acme-ios/Production/v2"))

			// Other deployments are released to as CodePush does, audited,
			// with no lane: releasepilot rolls out Production only.
			_, err = b.h.AddDeployment(b.ctx, "acme-ios", "QA", "")
			require.NoError(t, err)
			_, err = b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: "QA", AppVersion: "1.4.0", Commit: b.fix, Package: bundle(t, "qa")})
			require.NoError(t, err)
			_, err = b.st.ReleaseByTag(b.ctx, "acme", "hotfix:acme-ios/QA/v1")
			require.ErrorIs(t, err, store.ErrNotFound)
			evs, err := b.st.Events(b.ctx, "", 0, 100)
			require.NoError(t, err)
			var loose []string
			for _, ev := range evs {
				if ev.ReleaseID == "" {
					loose = append(loose, ev.Kind+" "+ev.Actor)
				}
			}
			require.Equal(t, []string{"codepush.deployment_added accesskey:ana", "ota.released accesskey:ana"}, loose)

			// Staging and Production cannot be renamed or removed; clearing
			// Production's history cancels the lanes that released there.
			_, err = b.h.RenameDeployment(b.ctx, "acme-ios", codepush.Production, "Prod")
			require.ErrorContains(t, err, "where releasepilot's OTA lanes release")
			require.ErrorContains(t, b.h.RemoveDeployment(b.ctx, "acme-ios", codepush.Staging), "cannot be renamed or removed")
			require.ErrorContains(t, b.h.RemoveApp(b.ctx, "acme-ios"), "OTA app of acme on ios")
			require.NoError(t, b.h.ClearHistory(b.ctx, "acme-ios", codepush.Production))
			require.Equal(t, release.StateCancelled, b.lane(t, "acme", "hotfix:acme-ios/Production/v2").Status.State)
			require.Equal(t, release.StateCompleted, b.lane(t, "acme", "hotfix:acme-ios/Staging/v2").Status.State, "finished lanes stay as they were")
		})
	}
}

func TestCommitFromDescription(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Fix the typo\nCommit: 0123456789abcdef0123456789abcdef01234567": "0123456789abcdef0123456789abcdef01234567",
		"commit:   ABCDEF0123456\r\nmore":                                "abcdef0123456",
		"Fix\n  Commit: abc1234  \n":                                     "abc1234",
		"See commit: abc1234 for details":                                "",
		"Commit: not-a-sha":                                              "",
		"":                                                               "",
	} {
		require.Equal(t, want, hotfix.CommitFromDescription(in), "%q", in)
	}
}

func ptr[T any](v T) *T { return &v }

// TestProductionRolloutOutOfRange: a Production release or promotion asking
// for more than the first stage starts at the first stage, but a rollout
// no CodePush server accepts (above 100) is refused naming the value, as
// it is on every other deployment, and releases nothing.
func TestProductionRolloutOutOfRange(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			_, err := b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Staging, AppVersion: "1.4.0", Commit: b.fix, Package: bundle(t, "one")})
			require.NoError(t, err)
			_, err = b.h.Promote(b.ctx, "acme-ios", codepush.Staging, codepush.Production, codepush.PackageInfo{Rollout: ptr(500)})
			require.Equal(t, codepush.KindInvalid, codepush.KindOf(err), "%v", err)
			require.ErrorContains(t, err, "500")
			_, err = b.h.Release(b.ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Production, AppVersion: "1.4.0", Commit: b.fix, Rollout: 101, Package: bundle(t, "two")})
			require.Equal(t, codepush.KindInvalid, codepush.KindOf(err), "%v", err)
			require.ErrorContains(t, err, "101")
			hist, err := b.cp.History(b.ctx, "acme-ios", codepush.Production)
			require.NoError(t, err)
			require.Empty(t, hist, "nothing reached Production")
		})
	}
}
