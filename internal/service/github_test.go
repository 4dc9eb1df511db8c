package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const ghHookSecret = "gh-hook-secret"

type ghWorld struct {
	fake *githubtest.Server
	srv  *httptest.Server
	repo *githubtest.Repo
	c1   string
	cfg  string
}

// newGHWorld is GitHub with the releasepilot app installed on acme, and the
// configuration of a releasepilot that authenticates as that app, restarts
// moved tags and mirrors its lanes as deployments.
func newGHWorld(t *testing.T, dbURL string) *ghWorld {
	t.Helper()
	w := &ghWorld{fake: githubtest.New()}
	w.srv = httptest.NewServer(w.fake)
	t.Cleanup(w.srv.Close)
	appID, key := w.fake.NewApp()
	w.fake.Install(appID, "acme")
	w.repo = w.fake.Repo("acme/mobile")
	w.c1 = w.repo.Commit("release 1.4.0", githubtest.Files{"android/app/build.gradle": "versionCode 42\n", "src/App.tsx": "v1\n"})
	w.repo.LightweightTag("v1.4.0", w.c1)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.pem"), key, 0o600))
	w.cfg = fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
database: {url: %q}
jobs: {reconcile_interval: 1s}
github:
  api_url: %s/
  app: {id: %d, private_key_file: app.pem}
  release_url: "https://releasepilot.example.com/v1/releases/{release_id}"
apps:
  - name: acme
    repository: acme/mobile
    webhook_secret: %s
    on_tag_move: restart
    github_deployments: true
    android: {enabled: true, package_name: com.acme.mobile}
`, dir, dbURL, w.srv.URL, appID, ghHookSecret)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "releasepilot.yaml"), []byte(w.cfg), 0o600))
	w.cfg = filepath.Join(dir, "releasepilot.yaml")
	return w
}

func (w *ghWorld) start(t *testing.T) *service.Service {
	t.Helper()
	cfg, err := config.Load(w.cfg)
	require.NoError(t, err)
	svc, err := service.New(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.NoError(t, svc.Start(context.Background()))
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	return svc
}

func deliver(t *testing.T, addr string, d githubtest.Delivery) (int, map[string]any) {
	t.Helper()
	req, err := d.Request(context.Background(), "http://"+addr+"/webhooks/github")
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func movedPush(fullName, tag, before, after string) []byte {
	var m map[string]any
	_ = json.Unmarshal(githubtest.TagPushPayload(fullName, tag, after), &m)
	m["before"], m["created"], m["forced"] = before, false, true
	b, _ := json.Marshal(m)
	return b
}

type deploymentView struct {
	sha, env string
	states   []string
}

func (w *ghWorld) deployments() []deploymentView {
	var out []deploymentView
	for _, d := range w.repo.Deployments() {
		v := deploymentView{sha: d.SHA, env: d.Environment}
		for _, s := range d.Statuses {
			v.states = append(v.states, s.State)
		}
		out = append(out, v)
	}
	return out
}

// TestGitHubEndToEnd: releasepilot authenticated as a GitHub App takes a
// form-encoded tag push, plans the release, shows its lane as a deployment,
// restarts it when the tag moves, and withdraws it when the tag is deleted
// — on SQLite alone, and on Postgres with two replicas whose deployment
// passes run at the same time.
func TestGitHubEndToEnd(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			w := newGHWorld(t, storetest.URL(t, e))
			a := w.start(t)
			replicas := []*service.Service{a}
			if e == store.Postgres {
				replicas = append(replicas, w.start(t))
			}
			require.NoError(t, a.Progress.Pass(ctx), "the deployment cursor starts before the first delivery")
			// Both replicas' passes run over and over beside River's.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for _, r := range replicas {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(5 * time.Millisecond):
							_ = r.Progress.Pass(ctx)
						}
					}
				})
			}
			t.Cleanup(func() { close(stop); wg.Wait() })

			code, out := deliver(t, a.Addr, githubtest.NewFormDelivery("push", githubtest.TagPushPayload("acme/mobile", "v1.4.0", w.c1), []byte(ghHookSecret)))
			require.Equal(t, 202, code, out)
			first := out["release_id"].(string)
			require.Eventually(t, func() bool {
				ds := w.deployments()
				return len(ds) == 1 && len(ds[0].states) == 1
			}, 30*time.Second, 20*time.Millisecond, "the planned lane shows as a queued deployment")
			require.Equal(t, deploymentView{sha: w.c1, env: "android-production", states: []string{"queued"}}, w.deployments()[0])
			l, err := a.Store.Lanes(ctx, first)
			require.NoError(t, err)
			require.Len(t, l, 1)
			require.Equal(t, release.StatePending, l[0].Status.State, "no Play credentials: the lane waits, before its point of no return")

			// The tag moves: on_tag_move restart withdraws the waiting lane
			// and plans the tag again at the new commit.
			c2 := w.repo.Commit("fix", w.repo.Files(w.c1).With(githubtest.Files{"src/App.tsx": "v2\n"}), w.c1)
			w.repo.LightweightTag("v1.4.0", c2)
			code, out = deliver(t, a.Addr, githubtest.NewDelivery("push", movedPush("acme/mobile", "v1.4.0", w.c1, c2), []byte(ghHookSecret)))
			require.Equal(t, 202, code, out)
			var second string
			require.Eventually(t, func() bool {
				old, err := a.Store.GetRelease(ctx, first)
				if err != nil || old.SupersededBy == "" {
					return false
				}
				second = old.SupersededBy
				lanes, err := a.Store.Lanes(ctx, second)
				return err == nil && len(lanes) == 1
			}, 30*time.Second, 20*time.Millisecond, "restarted at the new commit")
			cur, err := a.Store.ReleaseByTag(ctx, "acme", "v1.4.0")
			require.NoError(t, err)
			require.Equal(t, second, cur.ID)
			require.Equal(t, c2, cur.Commit)
			require.Eventually(t, func() bool {
				ds := w.deployments()
				return len(ds) == 2 && strings.Join(ds[0].states, ",") == "queued,inactive" && len(ds[1].states) == 1
			}, 30*time.Second, 20*time.Millisecond, "the withdrawn lane's deployment is inactive, the new lane's queued: %v", w.deployments())
			require.Equal(t, deploymentView{sha: c2, env: "android-production", states: []string{"queued"}}, w.deployments()[1])

			// The tag is deleted (a delete event, JSON): the new lane has not
			// passed its point of no return either, so it is cancelled.
			del := []byte(`{"ref":"v1.4.0","ref_type":"tag","pusher_type":"user","repository":{"full_name":"acme/mobile"},"sender":{"login":"rm"}}`)
			code, out = deliver(t, a.Addr, githubtest.NewDelivery("delete", del, []byte(ghHookSecret)))
			require.Equal(t, 202, code, out)
			require.Eventually(t, func() bool {
				ds := w.deployments()
				return len(ds) == 2 && strings.Join(ds[1].states, ",") == "queued,inactive"
			}, 30*time.Second, 20*time.Millisecond, "%v", w.deployments())
			require.Eventually(t, func() bool {
				rel, err := a.Store.GetRelease(ctx, second)
				return err == nil && rel.State == release.ReleaseCancelled && rel.TagState == release.TagDeleted
			}, 30*time.Second, 20*time.Millisecond, "no lane left: the release is cancelled")

			time.Sleep(50 * time.Millisecond) // more passes: still nothing twice
			ds := w.deployments()
			require.Len(t, ds, 2)
			require.Equal(t, []string{"queued", "inactive"}, ds[0].states)
			require.Equal(t, []string{"queued", "inactive"}, ds[1].states)
			require.GreaterOrEqual(t, w.fake.TokensMinted(), 1, "authenticated as the app")
			require.Zero(t, w.fake.Denied())
		})
	}
}
