package progress_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/progress"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const ghToken = "ghp_progress_test"

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type bundle struct {
	fake   *githubtest.Server
	srv    *httptest.Server
	repo   *githubtest.Repo
	head   string
	app    config.App
	st     *store.Store
	mirror *progress.Mirror
}

func newMirror(t *testing.T, st *store.Store, srvURL string, app config.App, holder string) *progress.Mirror {
	t.Helper()
	c, err := github.NewClient(github.ClientOptions{BaseURL: srvURL, Token: ghToken})
	require.NoError(t, err)
	return &progress.Mirror{Store: st, Apps: map[string]config.App{app.Name: app}, Holder: holder, Now: func() time.Time { return t0 },
		ReleaseURL: "https://releasepilot.example.com/v1/releases/{release_id}",
		Repo: func(fullName string) (progress.Deployments, error) {
			return c.Repo(fullName)
		}}
}

func setup(t *testing.T, e store.Engine) *bundle {
	t.Helper()
	b := &bundle{fake: githubtest.New()}
	b.fake.Token = ghToken
	b.srv = httptest.NewServer(b.fake)
	t.Cleanup(b.srv.Close)
	b.repo = b.fake.Repo("acme/mobile")
	b.head = b.repo.Commit("release 1.4.0", githubtest.Files{"a": "1"})
	b.app = config.App{Name: "acme", Repository: "acme/mobile", GitHubDeployments: true,
		IOS: config.IOS{AppStore: true}, Android: config.Android{Track: "production"}}
	b.st = store.New(storetest.Open(t, e))
	require.NoError(t, b.st.UpsertApp(context.Background(), release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	b.mirror = newMirror(t, b.st, b.srv.URL, b.app, "replica-a")
	require.NoError(t, b.mirror.Pass(context.Background()), "the first pass starts the cursor at the newest event")
	return b
}

type lanes struct {
	rel     release.Release
	android release.Lane
	ios     release.Lane
	ota     release.Lane
}

func (b *bundle) release(t *testing.T, tag, commit string) lanes {
	t.Helper()
	ctx := context.Background()
	rel, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: tag, Version: strings.TrimPrefix(tag, "v"), Commit: commit, CreatedAt: t0})
	require.NoError(t, err)
	mk := func(p release.Platform, k release.LaneKind) release.Lane {
		l, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: rel.ID, Platform: p, Kind: k}, t0)
		require.NoError(t, err)
		return l
	}
	return lanes{rel: rel, android: mk(release.Android, release.KindStore), ios: mk(release.IOS, release.KindStore)}
}

// event appends an audit event as the lanes write it.
func (b *bundle) event(t *testing.T, l release.Lane, kind string, details map[string]any) {
	t.Helper()
	details["platform"] = string(l.Platform)
	_, err := b.st.AppendEvent(context.Background(), release.Event{At: t0, Actor: "system", ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: kind, Details: details})
	require.NoError(t, err)
}

func (b *bundle) androidLife(t *testing.T, l release.Lane) {
	b.event(t, l, "lane.planned", map[string]any{"kind": "store", "reason": "native files changed"})
	b.event(t, l, "android.bundle_uploaded", map[string]any{"version_code": 42})
	b.event(t, l, "lane.ready", map[string]any{"detail": "versionCode 42 is on the internal track"})
	for _, p := range []int{10, 25} {
		b.event(t, l, "rollout.advance", map[string]any{"action": "advance", "percent": p, "state": "waiting"})
		b.event(t, l, "rollout.hold", map[string]any{"action": "hold", "percent": p, "state": "waiting", "reason": "soaking"})
	}
	b.event(t, l, "command.complete", map[string]any{"action": "complete", "percent": 100, "state": "completed"})
}

type seen struct{ state, desc string }

func statuses(d githubtest.Deployment) []seen {
	var out []seen
	for _, s := range d.Statuses {
		out = append(out, seen{s.State, s.Description})
	}
	return out
}

var wantAndroid = []seen{
	{"queued", "v1.4.0 android: store lane planned: native files changed"},
	{"in_progress", "v1.4.0 android: 0%, bundle in Google Play"},
	{"in_progress", "v1.4.0 android: 0%, ready: versionCode 42 is on the internal track"},
	{"in_progress", "v1.4.0 android: rolling out: 10%"},
	{"in_progress", "v1.4.0 android: rolling out: 25%"},
	{"success", "v1.4.0 android: at 100%"},
}

var wantIOS = []seen{
	{"queued", "v1.4.0 ios: store lane planned"},
	{"failure", "v1.4.0 ios: failed: App Review rejected 1.4.0 (45)"},
}

func (b *bundle) iosLife(t *testing.T, l release.Lane) {
	b.event(t, l, "lane.planned", map[string]any{"kind": "store"})
	b.event(t, l, "lane.failed", map[string]any{"reason": "App Review rejected 1.4.0 (45)"})
}

func byEnv(ds []githubtest.Deployment) map[string][]githubtest.Deployment {
	out := map[string][]githubtest.Deployment{}
	for _, d := range ds {
		out[d.Environment] = append(out[d.Environment], d)
	}
	return out
}

func TestLanesBecomeDeployments(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			ctx := context.Background()
			ls := b.release(t, "v1.4.0", b.head)
			b.androidLife(t, ls.android)
			b.iosLife(t, ls.ios)
			refused, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: ls.rel.ID, Platform: release.Platform("android"), Kind: release.KindRefused, ID: "lane_refused"}, t0)
			if err == nil { // one lane per platform: the refused one belongs to another release
				b.event(t, refused, "lane.planned", map[string]any{"kind": "refused"})
			}
			require.NoError(t, b.mirror.Pass(ctx))

			envs := byEnv(b.repo.Deployments())
			require.Len(t, envs, 2)
			android, ios := envs["android-production"], envs["ios-app-store"]
			require.Len(t, android, 1)
			require.Len(t, ios, 1)
			require.Equal(t, b.head, android[0].SHA)
			require.True(t, android[0].Production)
			require.Equal(t, map[string]any{"lane_id": ls.android.ID, "release_id": ls.rel.ID}, android[0].Payload)
			require.Equal(t, wantAndroid, statuses(android[0]))
			require.Equal(t, wantIOS, statuses(ios[0]))
			for _, s := range android[0].Statuses {
				require.True(t, strings.HasPrefix(s.LogURL, "https://releasepilot.example.com/v1/releases/"+ls.rel.ID+"?event="), s.LogURL)
				require.Equal(t, "https://releasepilot.example.com/v1/releases/"+ls.rel.ID, s.EnvironmentURL)
			}

			// Nothing new: a pass posts nothing.
			n := len(b.fake.Requests())
			require.NoError(t, b.mirror.Pass(ctx))
			for _, r := range b.fake.Requests()[n:] {
				require.False(t, strings.HasPrefix(r, "POST"), r)
			}

			// The next release's Android lane completes: the last one's
			// deployment is superseded.
			next := b.repo.Commit("release 1.5.0", githubtest.Files{"a": "2"}, b.head)
			ls2 := b.release(t, "v1.5.0", next)
			b.event(t, ls2.android, "lane.planned", map[string]any{"kind": "store"})
			b.event(t, ls2.android, "command.complete", map[string]any{"action": "complete", "percent": 100})
			require.NoError(t, b.mirror.Pass(ctx))
			android = byEnv(b.repo.Deployments())["android-production"]
			require.Len(t, android, 2)
			old := android[0].Statuses
			require.Equal(t, seen{"inactive", "v1.4.0 android: superseded by v1.5.0"}, seen{old[len(old)-1].State, old[len(old)-1].Description})
			require.Equal(t, "success", android[1].Statuses[len(android[1].Statuses)-1].State)
		})
	}
}

// A withdrawn lane's deployment becomes inactive; an OTA lane deploys to
// its platform's OTA environment; a TestFlight-only iOS lane is not
// production.
func TestEnvironmentsAndWithdrawal(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite)
	b.app.IOS.AppStore = false
	b.mirror.Apps["acme"] = b.app
	ctx := context.Background()
	ls := b.release(t, "v1.4.0", b.head)
	b.event(t, ls.ios, "lane.planned", map[string]any{"kind": "store"})
	b.event(t, ls.ios, "lane.cancelled", map[string]any{"reason": "tag v1.4.0 was deleted before this lane passed its point of no return"})
	rel2, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.1", Version: "1.4.1", Commit: b.head, CreatedAt: t0})
	require.NoError(t, err)
	ota, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: rel2.ID, Platform: release.Android, Kind: release.KindOTA}, t0)
	require.NoError(t, err)
	b.event(t, ota, "lane.planned", map[string]any{"kind": "ota"})
	b.event(t, ota, "ota.staged", map[string]any{"label": "v3"})
	require.NoError(t, b.mirror.Pass(ctx))
	envs := byEnv(b.repo.Deployments())
	require.Equal(t, []seen{{"queued", "v1.4.0 ios: store lane planned"},
		{"inactive", "v1.4.0 ios: cancelled: tag v1.4.0 was deleted before this lane passed its point of no return"}}, statuses(envs["ios-testflight"][0]))
	require.False(t, envs["ios-testflight"][0].Production)
	require.Equal(t, []seen{{"queued", "v1.4.1 android: ota lane planned"}, {"in_progress", "v1.4.1 android: 0%, released to Staging"}},
		statuses(envs["android-ota-production"][0]))
}

// The pass dies after GitHub made each change and before the answer came
// back — the deployment, then statuses — and is run again each time:
// every deployment and status exists once.
func TestCrashAndRetryCreateOnce(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			ctx := context.Background()
			var posts atomic.Int64
			// Cut the answer of every second POST: the change is made,
			// the pass never hears of it and fails.
			b.fake.DropAfter = func(r *http.Request) bool {
				return r.Method == http.MethodPost && posts.Add(1)%2 == 1
			}
			ls := b.release(t, "v1.4.0", b.head)
			b.androidLife(t, ls.android)
			b.iosLife(t, ls.ios)
			failures := 0
			for range 40 {
				err := b.mirror.Pass(ctx)
				if err == nil {
					break
				}
				failures++
			}
			require.Greater(t, failures, 3, "the cuts made passes fail")
			require.NoError(t, b.mirror.Pass(ctx))
			envs := byEnv(b.repo.Deployments())
			require.Len(t, envs["android-production"], 1, "one deployment, though its creation's answer was lost")
			require.Len(t, envs["ios-app-store"], 1)
			require.Equal(t, wantAndroid, statuses(envs["android-production"][0]), "each status once, in order")
			require.Equal(t, wantIOS, statuses(envs["ios-app-store"][0]))
		})
	}
}

// slow delays GitHub's answers so that two replicas' passes overlap.
type slow struct{ h http.Handler }

func (s slow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(2 * time.Millisecond)
	s.h.ServeHTTP(w, r)
}

// Two replicas on one Postgres run their passes at the same time while the
// lanes move: each deployment and status is created once.
func TestTwoReplicasCreateOnce(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := &bundle{fake: githubtest.New()}
			b.fake.Token = ghToken
			srv := httptest.NewServer(slow{b.fake})
			t.Cleanup(srv.Close)
			b.repo = b.fake.Repo("acme/mobile")
			b.head = b.repo.Commit("release", githubtest.Files{"a": "1"})
			b.app = config.App{Name: "acme", Repository: "acme/mobile", GitHubDeployments: true, IOS: config.IOS{AppStore: true}}
			dbURL := storetest.URL(t, e)
			var mirrors []*progress.Mirror
			for _, holder := range []string{"replica-a", "replica-b"} {
				db, err := store.Open(ctx, dbURL, "")
				require.NoError(t, err)
				t.Cleanup(func() { _ = db.Close() })
				require.NoError(t, db.Migrate(ctx, nil))
				st := store.New(db)
				mirrors = append(mirrors, newMirror(t, st, srv.URL, b.app, holder))
			}
			b.st = mirrors[0].Store
			require.NoError(t, b.st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
			require.NoError(t, mirrors[0].Pass(ctx))

			var stop atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, 1000)
			for _, m := range mirrors {
				wg.Go(func() {
					for !stop.Load() {
						if err := m.Pass(ctx); err != nil {
							errs <- err
						}
					}
				})
			}
			var all []lanes
			for i := range 4 {
				ls := b.release(t, fmt.Sprintf("v1.%d.0", i), b.head)
				all = append(all, ls)
				b.androidLife(t, ls.android)
				b.iosLife(t, ls.ios)
				time.Sleep(5 * time.Millisecond)
			}
			// Let the replicas catch up, then stop them.
			require.Eventually(t, func() bool {
				return countStatuses(b.repo.Deployments()) >= 4*(len(wantAndroid)+len(wantIOS))
			}, 30*time.Second, 10*time.Millisecond)
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			for _, m := range mirrors {
				require.NoError(t, m.Pass(ctx))
			}
			ds := b.repo.Deployments()
			require.Len(t, ds, 8, "one deployment per lane")
			perLane := map[string]githubtest.Deployment{}
			for _, d := range ds {
				id := d.Payload.(map[string]any)["lane_id"].(string)
				require.NotContains(t, perLane, id)
				perLane[id] = d
			}
			for i, ls := range all {
				tag := fmt.Sprintf("v1.%d.0", i)
				a := statuses(perLane[ls.android.ID])
				// A later release's success supersedes this one.
				if i < len(all)-1 {
					require.Equal(t, "inactive", a[len(a)-1].state)
					a = a[:len(a)-1]
				}
				require.Equal(t, retagged(wantAndroid, tag), a, tag)
				require.Equal(t, retagged(wantIOS, tag), statuses(perLane[ls.ios.ID]), tag)
			}
		})
	}
}

func countStatuses(ds []githubtest.Deployment) int {
	n := 0
	for _, d := range ds {
		for _, s := range d.Statuses {
			if s.State != "inactive" {
				n++
			}
		}
	}
	return n
}

func retagged(in []seen, tag string) []seen {
	out := make([]seen, len(in))
	for i, s := range in {
		out[i] = seen{s.state, strings.Replace(s.desc, "v1.4.0", tag, 1)}
	}
	return out
}
