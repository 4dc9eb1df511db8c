package gate_test

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/nativechecktest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// memRepo is a repository held in memory: commit -> path -> content.
type memRepo = nativechecktest.Repo

func lockfile(deps map[string]string) string {
	pkgs := map[string]any{"": map[string]any{"name": "acme", "dependencies": deps}}
	for n, v := range deps {
		pkgs["node_modules/"+n] = map[string]any{"version": v}
	}
	b, _ := json.Marshal(map[string]any{"name": "acme", "lockfileVersion": 3, "packages": pkgs})
	return string(b)
}

// baseTree is a small React Native app whose iOS native inputs are the
// Podfile, the app delegate and one native npm package.
func baseTree() map[string]string {
	deps := map[string]string{"react-native-camera-kit": "13.0.0"}
	pj, _ := json.Marshal(map[string]any{"name": "acme", "dependencies": deps})
	return map[string]string{
		"package.json":                 string(pj),
		"package-lock.json":            lockfile(deps),
		"ios/Podfile":                  "platform :ios, '15.0'\n",
		"ios/Acme/AppDelegate.swift":   "import UIKit\n",
		"android/app/src/main/Main.kt": "class Main\n",
		"src/App.tsx":                  "export const App = () => null\n",
	}
}

type gateBundle struct {
	st   *store.Store
	repo memRepo
	gate *gate.NativeGate
	fps  map[string]string // commit -> iOS fingerprint hash
}

func setupGate(t *testing.T) *gateBundle {
	t.Helper()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	require.NoError(t, st.UpsertApp(context.Background(), release.App{Name: "acme", Repository: "acme/mobile"}, time.Now()))
	return &gateBundle{st: st, repo: memRepo{}, fps: map[string]string{},
		gate: &gate.NativeGate{Store: st, Apps: map[string]gate.OTAApp{"acme-ios": {App: "acme", Platform: release.IOS}}}}
}

// commit records the fingerprint of a commit with files, as plan_release does.
func (b *gateBundle) commit(t *testing.T, sha string, files map[string]string) string {
	t.Helper()
	b.repo[sha] = files
	fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(context.Background(), b.repo, sha)
	require.NoError(t, err)
	fp := fps[nativecheck.IOS]
	data, err := json.Marshal(fp)
	require.NoError(t, err)
	require.NoError(t, b.st.SaveFingerprint(context.Background(), store.Fingerprint{App: "acme", Platform: release.IOS, Commit: sha,
		Algorithm: fp.Algorithm, Hash: fp.Hash, Data: data, CreatedAt: time.Now()}))
	b.fps[sha] = fp.Hash
	return fp.Hash
}

func (b *gateBundle) binary(t *testing.T, version, build, commit string) {
	t.Helper()
	_, err := b.st.RecordBinary(context.Background(), release.Binary{App: "acme", Platform: release.IOS, Version: version, BuildNumber: build,
		Commit: commit, Fingerprint: b.fps[commit], CreatedAt: time.Now()})
	require.NoError(t, err)
}

func with(files map[string]string, changes map[string]string) map[string]string {
	out := maps.Clone(files)
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func TestNativeGateRefusesANativeChangeNamingFilesAndDependencies(t *testing.T) {
	t.Parallel()
	b := setupGate(t)
	ctx := context.Background()
	b.commit(t, "c140", baseTree())
	b.binary(t, "1.4.0", "41", "c140")

	deps := map[string]string{"react-native-camera-kit": "14.1.0"}
	pj, _ := json.Marshal(map[string]any{"name": "acme", "dependencies": deps})
	b.commit(t, "c150", with(baseTree(), map[string]string{
		"ios/Podfile":       "platform :ios, '16.0'\n",
		"package.json":      string(pj),
		"package-lock.json": lockfile(deps),
		"src/App.tsx":       "export const App = () => 'new'\n",
	}))
	err := b.gate.CheckRelease(ctx, "acme-ios", codepush.Production, "1.4.0", "c150")
	require.Error(t, err)
	require.Equal(t, codepush.KindConflict, codepush.KindOf(err))
	msg := err.Error()
	require.Contains(t, msg, "binary 1.4.0 (build 41, commit c140)")
	require.Contains(t, msg, "file changed: ios/Podfile")
	require.Contains(t, msg, "native package changed: react-native-camera-kit 13.0.0 -> 14.1.0")
	require.NotContains(t, msg, "src/App.tsx", "JS files are not native")

	// The same refusal through the CodePush service: nothing is released.
	svc, err := codepush.New(ctx, codepush.Config{Blobs: codepush.DirBlobs{Dir: t.TempDir()}, Gate: b.gate})
	require.NoError(t, err)
	_, err = svc.CreateApp(ctx, "acme-ios", false)
	require.NoError(t, err)
	_, err = svc.Release(ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Staging, AppVersion: "1.4.0", Commit: "c150",
		Package: strings.NewReader("bundle")})
	require.ErrorContains(t, err, "file changed: ios/Podfile")
	h, err := svc.History(ctx, "acme-ios", codepush.Staging)
	require.NoError(t, err)
	require.Empty(t, h)
}

func TestNativeGateAcceptsAMatchingCommitAndTargetsExactlyTheMatchingBinaries(t *testing.T) {
	t.Parallel()
	b := setupGate(t)
	ctx := context.Background()
	b.commit(t, "c130", with(baseTree(), map[string]string{"ios/Podfile": "platform :ios, '14.0'\n"}))
	b.binary(t, "1.3.0", "30", "c130")
	b.commit(t, "c140", baseTree())
	b.binary(t, "1.4.0", "41", "c140")
	b.commit(t, "c141", with(baseTree(), map[string]string{"src/App.tsx": "export const App = () => 141\n"}))
	b.binary(t, "1.4.1", "42", "c141")
	fp := b.commit(t, "c142", with(baseTree(), map[string]string{"src/App.tsx": "export const App = () => 142\n"}))
	require.Equal(t, b.fps["c140"], fp, "a JS-only change keeps the fingerprint")

	bins, err := b.st.Binaries(ctx, "acme", release.IOS)
	require.NoError(t, err)
	rng, excluded := gate.MatchingRange(bins, fp)
	require.Equal(t, "1.4.0 || 1.4.1", rng)
	require.Empty(t, excluded)

	svc, err := codepush.New(ctx, codepush.Config{Blobs: codepush.DirBlobs{Dir: t.TempDir()}, Gate: b.gate})
	require.NoError(t, err)
	_, err = svc.CreateApp(ctx, "acme-ios", false)
	require.NoError(t, err)
	r, err := svc.Release(ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Staging, AppVersion: rng, Commit: "c142",
		Package: strings.NewReader("bundle 142")})
	require.NoError(t, err)
	require.Equal(t, "1.4.0 || 1.4.1", r.AppVersion)
	_, err = svc.Promote(ctx, "acme-ios", codepush.Staging, codepush.Production, codepush.PackageInfo{AppVersion: ptr("^1.3.0")})
	require.ErrorContains(t, err, "1 of the 3 ios binaries in the range")
	p, err := svc.Promote(ctx, "acme-ios", codepush.Staging, codepush.Production, codepush.PackageInfo{})
	require.NoError(t, err, "promotion passes the gate too")
	require.Equal(t, "c142", p.Commit)

	// Widening the range over the 1.3.0 binary is refused, whoever asks.
	_, _, err = svc.Patch(ctx, "acme-ios", codepush.Production, codepush.PackageInfo{AppVersion: ptr(">=1.3.0")})
	require.ErrorContains(t, err, "binary 1.3.0 (build 30, commit c130)")
	require.ErrorContains(t, err, "file changed: ios/Podfile")
	for _, dev := range []struct {
		version string
		offered bool
	}{{"1.3.0", false}, {"1.4.0", true}, {"1.4.1", true}, {"1.5.0", false}} {
		info, err := svc.CheckUpdate(codepush.UpdateRequest{DeploymentKey: mustKey(t, svc, codepush.Production), AppVersion: dev.version})
		require.NoError(t, err)
		require.Equal(t, dev.offered, info.IsAvailable, "binary %s", dev.version)
	}
}

func mustKey(t *testing.T, svc *codepush.Service, dep string) string {
	a, err := svc.App(context.Background(), "acme-ios")
	require.NoError(t, err)
	for _, d := range a.Deployments {
		if d.Name == dep {
			return d.Key
		}
	}
	t.Fatalf("no deployment %s", dep)
	return ""
}

func TestNativeGateFailsClosed(t *testing.T) {
	t.Parallel()
	b := setupGate(t)
	ctx := context.Background()
	b.commit(t, "c140", baseTree())
	b.binary(t, "1.4.0", "41", "c140")
	// A binary whose commit's inputs were never recorded.
	_, err := b.st.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: "1.4.2", BuildNumber: "43", Commit: "c999", Fingerprint: "0123abcd", CreatedAt: time.Now()})
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		app, rng, commit string
		want             []string
	}{
		"no commit":             {"acme-ios", "1.4.0", "", []string{`commit "": native gate: the release names no commit`, `a line "Commit: SHA" in the CodePush CLI's --description`, "releasepilot ota release --commit SHA"}},
		"unknown fingerprint":   {"acme-ios", "1.4.0", "cafe", []string{"no ios native fingerprint is recorded for commit cafe of acme"}},
		"no covered binary":     {"acme-ios", "2.0.0", "c140", []string{"the range covers no recorded ios binary of acme (recorded: 1.4.0, 1.4.2)"}},
		"unknown CodePush app":  {"other-ios", "1.4.0", "c140", []string{`CodePush app "other-ios" is not the OTA app of any configured app`}},
		"binary inputs unknown": {"acme-ios", "1.4.2", "c140", []string{"binary 1.4.2 (build 43, commit c999)", "the binary's inputs are not recorded"}},
	} {
		err := b.gate.CheckRelease(ctx, tc.app, codepush.Staging, tc.rng, tc.commit)
		require.Error(t, err, name)
		want := codepush.KindConflict
		if tc.commit == "" {
			want = codepush.KindInvalid // a missing input, with how to give it
		}
		require.Equal(t, want, codepush.KindOf(err), name)
		for _, w := range tc.want {
			require.Contains(t, err.Error(), w, name)
		}
	}

	// A damaged fingerprint record is refused, not trusted.
	require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: "bad", Algorithm: nativecheck.Algorithm,
		Hash: b.fps["c140"], Data: []byte(`{"hash":"` + b.fps["c140"] + `"}`), CreatedAt: time.Now()}))
	err = b.gate.CheckRelease(ctx, "acme-ios", codepush.Staging, "1.4.0", "bad")
	require.ErrorContains(t, err, "damaged or incomplete")

	require.NoError(t, b.gate.CheckRelease(ctx, "acme-ios", codepush.Staging, "1.4.0", "c140"))
}

func TestMatchingRangeLeavesOutAmbiguousVersions(t *testing.T) {
	t.Parallel()
	bins := []release.Binary{
		{Version: "1.10.0", BuildNumber: "9", Fingerprint: "A"},
		{Version: "1.4.0", BuildNumber: "1", Fingerprint: "A"},
		{Version: "1.4.0", BuildNumber: "2", Fingerprint: "B"}, // same version, other native code
		{Version: "1.9.0", BuildNumber: "8", Fingerprint: "A"},
		{Version: "1.9.0", BuildNumber: "8b", Fingerprint: "A"},
		{Version: "2.0.0", BuildNumber: "10", Fingerprint: "B"},
	}
	rng, excluded := gate.MatchingRange(bins, "A")
	require.Equal(t, "1.9.0 || 1.10.0", rng, "semver order, deduplicated")
	require.Equal(t, []string{"1.4.0"}, excluded)
	rng, _ = gate.MatchingRange(bins, "")
	require.Empty(t, rng)
}

func TestOTAObservation(t *testing.T) {
	t.Parallel()
	require.Equal(t, release.Observation{}, gate.OTAObservation(codepush.Counts{Downloaded: 50}), "no reports: not fresh")
	require.Equal(t, release.Observation{}, gate.OTAObservation(codepush.Counts{Installed: 8, Failed: 2}), "counts of reports, not of devices: not fresh")
	require.Equal(t, release.Observation{Value: 0.2, Samples: 10, Fresh: true}, gate.OTAObservation(codepush.Counts{Installed: 8, Failed: 2, Downloaded: 12, Active: 8, Clients: 10}))
	require.Equal(t, release.Observation{Value: 0.25, Samples: 8, Fresh: true},
		gate.OTAObservation(codepush.Counts{Installed: 8, Failed: 2, Clients: 8}), "two devices failed, then installed: the samples are the 8 devices")
	require.Equal(t, release.Observation{Value: 0, Samples: 5, Fresh: true}, gate.OTAObservation(codepush.Counts{Installed: 5, Clients: 5}))
}

func TestNativeGateUnverifiedStaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := &gate.NativeGate{Apps: map[string]gate.OTAApp{
		"open-ios":   {App: "open", Platform: release.IOS, AllowUnverifiedStaging: true},
		"closed-ios": {App: "closed", Platform: release.IOS},
	}}
	require.NoError(t, g.CheckRelease(ctx, "open-ios", codepush.Staging, "1.4.0", ""), "allowed on Staging")
	for _, tc := range []struct{ app, dep string }{{"open-ios", codepush.Production}, {"closed-ios", codepush.Staging}, {"open-ios", "QA"}} {
		err := g.CheckRelease(ctx, tc.app, tc.dep, "1.4.0", "")
		require.Equal(t, codepush.KindInvalid, codepush.KindOf(err), "%s %s", tc.app, tc.dep)
		require.ErrorContains(t, err, "names no commit")
	}
}

func ptr[T any](v T) *T { return &v }
