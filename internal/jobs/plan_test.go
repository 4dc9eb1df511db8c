package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func lockJSON(pkgs map[string]string) string {
	packages := map[string]any{"": map[string]any{"name": "demo", "version": "1.0.0"}}
	for name, v := range pkgs {
		packages["node_modules/"+name] = map[string]any{"version": v, "resolved": "https://registry.npmjs.org/" + name + "/-/" + name + "-" + v + ".tgz"}
	}
	b, _ := json.Marshal(map[string]any{"name": "demo", "lockfileVersion": 3, "requires": true, "packages": packages})
	return string(b)
}

func appFiles(version, build string, deps map[string]string, js string) githubtest.Files {
	pj, _ := json.Marshal(map[string]any{"name": "demo", "version": version, "dependencies": deps})
	return githubtest.Files{
		"package.json":             string(pj),
		"package-lock.json":        lockJSON(deps),
		"src/App.tsx":              js,
		"ios/Podfile":              "platform :ios, '15.1'\nuse_react_native!\n",
		"ios/Demo/Info.plist":      fmt.Sprintf("<plist><dict><key>CFBundleShortVersionString</key><string>%s</string><key>CFBundleVersion</key><string>%s</string></dict></plist>\n", version, build),
		"android/app/build.gradle": fmt.Sprintf("android {\n  defaultConfig {\n    versionCode %s\n    versionName \"%s\"\n  }\n}\n", build, version),
	}
}

type planBundle struct {
	st      *store.Store
	gh      *githubtest.Server
	repo    *githubtest.Repo
	planner *jobs.Planner
	started []string
	now     time.Time
	head    string
}

func setupPlan(t *testing.T) *planBundle {
	t.Helper()
	b := &planBundle{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	db := storetest.Open(t, store.SQLite)
	b.st = store.New(db)
	b.gh = githubtest.New()
	b.gh.Token = "gh-token"
	ghSrv := httptest.NewServer(b.gh)
	t.Cleanup(ghSrv.Close)
	reg := npmtest.New()
	regSrv := httptest.NewServer(reg)
	t.Cleanup(regSrv.Close)
	reg.BaseURL = regSrv.URL
	reg.AddNative("react-native", "0.81.0")
	reg.AddNative("react-native-mmkv", "3.2.0")
	reg.AddNative("react-native-mmkv", "3.3.0")
	reg.AddJS("lodash", "4.17.21")
	reg.AddJS("lodash", "4.17.22")
	b.repo = b.gh.Repo("acme/acme-mobile")
	client, err := github.NewClient(github.ClientOptions{BaseURL: ghSrv.URL, Token: "gh-token"})
	require.NoError(t, err)
	app := config.App{Name: "acme", Repository: "acme/acme-mobile", TagPattern: "v*", Rollout: config.Rollout{Soak: config.Duration(time.Hour)},
		IOS: config.IOS{Enabled: true, BundleID: "com.acme"}, Android: config.Android{Enabled: true, PackageName: "com.acme", Stages: []int{10, 25, 50, 100}},
		OTA: config.OTA{Enabled: true, Stages: []int{20, 100}}}
	require.NoError(t, b.st.UpsertApp(context.Background(), release.App{Name: "acme", Repository: app.Repository}, b.now))
	b.planner = &jobs.Planner{
		Store: b.st, Apps: map[string]config.App{"acme": app},
		Repo:     func(name string) (jobs.RepoReader, error) { return client.Repo(name) },
		Packages: &nativecheck.Registry{URL: regSrv.URL},
		Enqueue: func(_ context.Context, _ *store.Store, args river.JobArgs, _ *river.InsertOpts) (int64, bool, error) {
			b.started = append(b.started, args.Kind())
			return 1, false, nil
		},
		CanStart: func(kind string) bool { return kind != "ios_lane" },
		Now:      func() time.Time { return b.now },
	}
	return b
}

// tag commits files, tags them, creates the release as the webhook would,
// and plans it.
func (b *planBundle) tag(t *testing.T, tag, version string, files githubtest.Files, msg string, otaOnly bool) (release.Release, map[release.Platform]release.Lane) {
	t.Helper()
	ctx := context.Background()
	var parents []string
	if b.head != "" {
		parents = []string{b.head}
	}
	sha := b.repo.Commit(msg, files, parents...)
	b.head = sha
	b.repo.LightweightTag(tag, sha)
	rel, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: tag, Version: version, Commit: sha, CreatedAt: b.now})
	require.NoError(t, err)
	require.NoError(t, b.planner.Plan(ctx, jobs.PlanReleaseArgs{App: "acme", Tag: tag, Commit: sha, ReleaseID: rel.ID, OTAOnly: otaOnly}))
	rel, err = b.st.GetRelease(ctx, rel.ID)
	require.NoError(t, err)
	lanes, err := b.st.Lanes(ctx, rel.ID)
	require.NoError(t, err)
	out := map[release.Platform]release.Lane{}
	for _, l := range lanes {
		out[l.Platform] = l
	}
	return rel, out
}

// ship records the binaries of a planned store release, as the lanes do
// once a build is distributed.
func (b *planBundle) ship(t *testing.T, rel release.Release, build string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range release.Platforms {
		fp, err := lane.Fingerprint(ctx, b.st, "acme", p, rel.Commit)
		require.NoError(t, err)
		require.NotEmpty(t, fp, "plan_release stored the %s fingerprint", p)
		_, err = b.st.RecordBinary(ctx, release.Binary{App: "acme", Platform: p, Version: rel.Version, BuildNumber: build, Commit: rel.Commit, Fingerprint: fp, ReleaseID: rel.ID, CreatedAt: b.now})
		require.NoError(t, err)
	}
	b.now = b.now.Add(time.Hour)
}

func TestPlanReleaseDecidesLanes(t *testing.T) {
	t.Parallel()
	b := setupPlan(t)
	deps := map[string]string{"react-native": "0.81.0", "react-native-mmkv": "3.2.0", "lodash": "4.17.21"}

	// First release: nothing live yet, so both platforms need a binary.
	r1, lanes := b.tag(t, "v1.0.0", "1.0.0", appFiles("1.0.0", "1", deps, "export default 1\n"), "first", false)
	require.Equal(t, release.ReleaseActive, r1.State)
	require.Equal(t, "First release.", r1.Notes)
	require.Equal(t, release.KindStore, lanes[release.IOS].Kind)
	require.Equal(t, release.KindStore, lanes[release.Android].Kind)
	require.Contains(t, lanes[release.IOS].Reason, "no ios binary has been recorded")
	require.Contains(t, lanes[release.IOS].Reason, "no ios_lane worker is configured", "iOS credentials missing: the lane waits and says why")
	require.Equal(t, []string{"android_lane"}, b.started)
	require.Equal(t, []int{10, 25, 50, 100}, percents(lanes[release.Android].Plan))
	b.ship(t, r1, "1")

	// JS-only change with a version bump in native files: OTA on both platforms.
	r2, lanes := b.tag(t, "v1.0.1", "1.0.1", appFiles("1.0.1", "2", map[string]string{"react-native": "0.81.0", "react-native-mmkv": "3.2.0", "lodash": "4.17.22"}, "export default 2\n"), "fix: typo on the login screen", false)
	require.Equal(t, release.KindOTA, lanes[release.IOS].Kind, lanes[release.IOS].Reason)
	require.Equal(t, release.KindOTA, lanes[release.Android].Kind)
	require.Contains(t, lanes[release.Android].Reason, "JS-only change: native fingerprint equals the live android binary 1.0.0 (1)")
	require.Equal(t, []int{20, 100}, percents(lanes[release.Android].Plan))
	require.Contains(t, r2.Notes, "Changes since v1.0.0:")
	require.Contains(t, r2.Notes, "- fix: typo on the login screen (")

	// A native dependency bump: store lanes, and the reason names it.
	_, lanes = b.tag(t, "v1.1.0", "1.1.0", appFiles("1.1.0", "3", map[string]string{"react-native": "0.81.0", "react-native-mmkv": "3.3.0", "lodash": "4.17.22"}, "export default 3\n"), "feat: faster storage", false)
	require.Equal(t, release.KindStore, lanes[release.Android].Kind)
	require.Contains(t, lanes[release.Android].Reason, "native code differs from the live android binary 1.0.0 (1)")
	require.Contains(t, lanes[release.Android].Reason, "react-native-mmkv")

	// The same native change tagged as OTA-only is refused, with the reason.
	_, lanes = b.tag(t, "ota/v1.1.1", "1.1.1", appFiles("1.1.1", "3", map[string]string{"react-native": "0.81.0", "react-native-mmkv": "3.3.0", "lodash": "4.17.22"}, "export default 4\n"), "try OTA", true)
	for _, p := range release.Platforms {
		require.Equal(t, release.KindRefused, lanes[p].Kind)
		require.True(t, strings.HasPrefix(lanes[p].Reason, "OTA refused: native code differs"), lanes[p].Reason)
		require.Contains(t, lanes[p].Reason, "react-native-mmkv")
		require.Equal(t, release.StateCancelled, lanes[p].Status.State)
	}
}

func TestPlanReleaseIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setupPlan(t)
	deps := map[string]string{"react-native": "0.81.0", "lodash": "4.17.21"}
	rel, lanes := b.tag(t, "v1.0.0", "1.0.0", appFiles("1.0.0", "1", deps, "x\n"), "first", false)
	require.Len(t, lanes, 2)
	started := len(b.started)
	require.NoError(t, b.planner.Plan(context.Background(), jobs.PlanReleaseArgs{App: "acme", Tag: "v1.0.0", Commit: rel.Commit, ReleaseID: rel.ID}))
	got, err := b.st.Lanes(context.Background(), rel.ID)
	require.NoError(t, err)
	require.Len(t, got, 2, "a retried plan creates nothing new")
	require.Equal(t, started, len(b.started))
}

func TestPlanReleaseResolvesTagWithoutCommit(t *testing.T) {
	t.Parallel()
	b := setupPlan(t)
	sha := b.repo.Commit("first", appFiles("1.0.0", "1", map[string]string{"react-native": "0.81.0"}, "x\n"))
	b.repo.AnnotatedTag("v1.0.0", sha, "Release 1.0.0")
	ctx := context.Background()
	rel, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.0.0", Version: "1.0.0", CreatedAt: b.now})
	require.NoError(t, err)
	require.NoError(t, b.planner.Plan(ctx, jobs.PlanReleaseArgs{App: "acme", Tag: "v1.0.0", ReleaseID: rel.ID}))
	rel, err = b.st.GetRelease(ctx, rel.ID)
	require.NoError(t, err)
	require.Equal(t, sha, rel.Commit, "the annotated tag was dereferenced to its commit")
}

func TestPlanReleaseUnknownAppIsPermanent(t *testing.T) {
	t.Parallel()
	b := setupPlan(t)
	w := &jobs.PlanReleaseWorker{Planner: b.planner}
	err := w.Work(context.Background(), &river.Job[jobs.PlanReleaseArgs]{Args: jobs.PlanReleaseArgs{App: "ghost", Tag: "v1", ReleaseID: "rel_x"}})
	require.Error(t, err)
	require.Contains(t, err.Error(), `app "ghost" is not configured`)
	require.Contains(t, err.Error(), "JobCancel", "no retries for a permanent error")
}

func percents(p release.Plan) []int {
	var out []int
	for _, s := range p.Steps {
		if s.SetPercent != nil {
			out = append(out, *s.SetPercent)
		}
	}
	return out
}
