package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/nativechecktest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const (
	viewerToken   = "viewer-token-0123456789"
	operatorToken = "operator-token-0123456789"
)

// replica is one releasepilot process serving HTTP.
type replica struct {
	svc *service.Service
	url string
}

func startReplica(t *testing.T, dbURL, packages string) *replica {
	t.Helper()
	r, err := newReplica(t, dbURL, packages)
	require.NoError(t, err)
	return r
}

// newReplica starts a replica; it may run outside the test goroutine.
func newReplica(t *testing.T, dbURL, packages string) (*replica, error) {
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
database: {url: %q}
codepush: {storage_dir: %q}
tokens:
  - {name: viewer, role: viewer, token: %q}
  - {name: ops, role: operator, token: %q}
apps:
  - {name: acme, repository: acme/mobile, webhook_secret: s, ota: {enabled: true}}
`, t.TempDir(), dbURL, packages, viewerToken, operatorToken)
	cfg, err := config.Parse([]byte(yaml), "")
	if err != nil {
		return nil, err
	}
	svc, err := service.New(context.Background(), cfg, nil)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(svc.HTTP.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = svc.Shutdown(context.Background())
	})
	return &replica{svc: svc, url: srv.URL}, nil
}

func (r *replica) do(t *testing.T, method, path, token string, body io.Reader, contentType string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func releaseBody(t testing.TB, info map[string]any, pkg string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("package", "index.ios.bundle")
	require.NoError(t, err)
	_, err = fw.Write([]byte(pkg))
	require.NoError(t, err)
	ib, err := json.Marshal(info)
	require.NoError(t, err)
	require.NoError(t, mw.WriteField("packageInfo", string(ib)))
	require.NoError(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

// seedBinary records the iOS 1.4.0 binary built from c140, and the
// fingerprints of a JS-only commit and of a native one, as releasepilot
// would have while shipping and planning them.
func seedBinary(t testing.TB, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	base := map[string]string{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v1\n"}
	r := nativechecktest.Repo{"c140": base, "c142": maps.Clone(base), "c150": maps.Clone(base)}
	r["c142"]["src/App.tsx"] = "v2\n"
	r["c150"]["ios/Podfile"] = "platform :ios, '17.0'\n"
	hashes := map[string]string{}
	for _, c := range []string{"c140", "c142", "c150"} {
		fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(ctx, r, c)
		require.NoError(t, err)
		fp := fps[nativecheck.IOS]
		data, err := json.Marshal(fp)
		require.NoError(t, err)
		require.NoError(t, st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: c, Algorithm: fp.Algorithm, Hash: fp.Hash, Data: data, CreatedAt: time.Now()}))
		hashes[c] = fp.Hash
	}
	_, err := st.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: "1.4.0", BuildNumber: "40", Commit: "c140", Fingerprint: hashes["c140"], CreatedAt: time.Now()})
	require.NoError(t, err)
}

// TestOTAServedEndToEnd runs two replicas on one database: a release made
// through one replica's management API, behind the operator token and the
// native gate, is served by the other's update check, downloaded, and
// reported on.
func TestOTAServedEndToEnd(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			dbURL, packages := storetest.URL(t, e), t.TempDir()
			var a, b *replica
			if e == store.Postgres {
				// Replicas may start together (SetupLock keeps their app
				// creation apart; its own test is in internal/store).
				type started struct {
					r   *replica
					err error
				}
				ch := make(chan started, 2)
				for range 2 {
					go func() { r, err := newReplica(t, dbURL, packages); ch <- started{r, err} }()
				}
				s1, s2 := <-ch, <-ch
				require.NoError(t, s1.err)
				require.NoError(t, s2.err)
				a, b = s1.r, s2.r
			} else {
				a = startReplica(t, dbURL, packages)
				b = startReplica(t, dbURL, packages) // shares the package directory, as replicas must
			}

			for _, r := range []*replica{a, b} {
				for _, p := range release.Platforms {
					_, ok := r.svc.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindOTA, Platform: p}]
					require.True(t, ok, "an OTA executor for %s", p)
				}
			}

			// Management needs a token; viewers read.
			code, _ := a.do(t, "GET", "/v1/codepush/apps", "", nil, "")
			require.Equal(t, http.StatusUnauthorized, code)
			code, body := a.do(t, "GET", "/v1/codepush/apps", viewerToken, nil, "")
			require.Equal(t, http.StatusOK, code, string(body))
			require.JSONEq(t, `{"apps":[
				{"name":"acme-android","collaborators":{"token:viewer":{"isCurrentAccount":true,"permission":"Owner"}},"deployments":["Production","Staging"]},
				{"name":"acme-ios","collaborators":{"token:viewer":{"isCurrentAccount":true,"permission":"Owner"}},"deployments":["Production","Staging"]}]}`, string(body))
			keys := map[string]string{}
			for _, app := range []string{"acme-ios", "acme-android"} {
				code, body := a.do(t, "GET", "/v1/codepush/apps/"+app+"/deployments", viewerToken, nil, "")
				require.Equal(t, http.StatusOK, code, string(body))
				var deps struct {
					Deployments []struct{ Name, Key string } `json:"deployments"`
				}
				require.NoError(t, json.Unmarshal(body, &deps))
				for _, d := range deps.Deployments {
					keys[app+"/"+d.Name] = d.Key
				}
				_, bodyB := b.do(t, "GET", "/v1/codepush/apps/"+app+"/deployments", viewerToken, nil, "")
				require.JSONEq(t, string(body), string(bodyB), "both replicas hold the same keys")
			}
			require.Len(t, keys, 4, "Staging and Production of acme-ios and acme-android, created once: %v", keys)
			prodKey := keys["acme-ios/Production"]
			require.NotEmpty(t, prodKey)

			seedBinary(t, a.svc.Store)
			path := "/v1/codepush/apps/acme-ios/deployments/Production/release"
			rb, ct := releaseBody(t, map[string]any{"appVersion": "1.4.0", "commit": "c142", "description": "typo"}, "bundle v2")
			code, body = a.do(t, "POST", path, viewerToken, rb, ct)
			require.Equal(t, http.StatusForbidden, code, string(body))

			// The native gate refuses a native commit, naming the file.
			rb, ct = releaseBody(t, map[string]any{"appVersion": "1.4.0", "commit": "c150"}, "bundle native")
			code, body = a.do(t, "POST", path, operatorToken, rb, ct)
			require.Equal(t, http.StatusConflict, code, string(body))
			require.Contains(t, string(body), "file changed: ios/Podfile")

			rb, ct = releaseBody(t, map[string]any{"appVersion": "1.4.0", "commit": "c142", "description": "typo"}, "bundle v2")
			code, body = a.do(t, "POST", path, operatorToken, rb, ct)
			require.Equal(t, http.StatusCreated, code, string(body))
			require.Contains(t, string(body), `"rollout":10`, "a release by hand starts at the plan's first stage")

			// It is a release with a rolling OTA lane, by the token's name.
			rels, err := a.svc.Store.ListReleases(context.Background(), "acme", 10)
			require.NoError(t, err)
			require.Len(t, rels, 1)
			require.Equal(t, "hotfix:acme-ios/Production/v1", rels[0].Tag)
			lanes, err := a.svc.Store.Lanes(context.Background(), rels[0].ID)
			require.NoError(t, err)
			require.Len(t, lanes, 1)
			require.Equal(t, release.StateRolling, lanes[0].Status.State)
			require.Equal(t, 10, lanes[0].Status.Percent)
			evs, err := a.svc.Store.Events(context.Background(), rels[0].ID, 0, 10)
			require.NoError(t, err)
			require.Equal(t, "token:ops", evs[0].Actor)

			// The other replica serves it without any call on its side, to a
			// device in the first 10 %.
			device := ""
			for i := 0; device == ""; i++ {
				if id := fmt.Sprintf("device-%d", i); codepush.InRollout(id, 10, "v1") {
					device = id
				}
			}
			q := url.Values{"deploymentKey": {prodKey}, "appVersion": {"1.4.0"}, "clientUniqueId": {device}}
			var info struct {
				UpdateInfo struct {
					IsAvailable bool   `json:"isAvailable"`
					Label       string `json:"label"`
					DownloadURL string `json:"downloadURL"`
				} `json:"updateInfo"`
			}
			start := time.Now()
			require.Eventually(t, func() bool {
				code, body := b.do(t, "GET", "/updateCheck?"+q.Encode(), "", nil, "")
				return code == http.StatusOK && json.Unmarshal(body, &info) == nil && info.UpdateInfo.IsAvailable
			}, 10*time.Second, 20*time.Millisecond)
			t.Logf("%s: served by the other replica after %s", e, time.Since(start).Round(time.Millisecond))
			require.Equal(t, "v1", info.UpdateInfo.Label)
			require.True(t, strings.HasPrefix(info.UpdateInfo.DownloadURL, b.url+"/"), info.UpdateInfo.DownloadURL)
			resp, err := http.Get(info.UpdateInfo.DownloadURL)
			require.NoError(t, err)
			pkg, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, "bundle v2", string(pkg))

			// Snake-case route and reports, then metrics through the first replica.
			code, body = b.do(t, "GET", "/v0.1/public/codepush/update_check?deployment_key="+prodKey+"&app_version=1.4.0&client_unique_id="+device, "", nil, "")
			require.Equal(t, http.StatusOK, code, string(body))
			require.Contains(t, string(body), `"label":"v1"`)
			code, body = b.do(t, "GET", "/v0.1/public/codepush/update_check?deployment_key="+prodKey+"&app_version=1.4.0", "", nil, "")
			require.Equal(t, http.StatusOK, code, string(body))
			require.Contains(t, string(body), `"is_available":false`, "a device outside the rollout (no id: never in one) is not offered it")
			report := fmt.Sprintf(`{"deploymentKey":%q,"appVersion":"1.4.0","label":"v1","status":"DeploymentSucceeded","clientUniqueId":%q}`, prodKey, device)
			code, body = b.do(t, "POST", "/reportStatus/deploy", "", strings.NewReader(report), "application/json")
			require.Equal(t, http.StatusOK, code, string(body))
			code, body = a.do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Production/metrics", viewerToken, nil, "")
			require.Equal(t, http.StatusOK, code, string(body))
			require.Contains(t, string(body), `"installed":1`)

			code, body = a.do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Production/history", viewerToken, nil, "")
			require.Equal(t, http.StatusOK, code, string(body))
			require.Contains(t, string(body), `"releasedBy":"token:ops"`)
			require.NotContains(t, string(body), operatorToken)

			// Unknown keys and bad versions answer as the reference says.
			code, _ = b.do(t, "GET", "/updateCheck?deploymentKey=unknown-key-0123456789&appVersion=1.4.0", "", nil, "")
			require.Equal(t, http.StatusNotFound, code)
			code, _ = b.do(t, "GET", "/updateCheck?deploymentKey="+prodKey+"&appVersion=banana", "", nil, "")
			require.Equal(t, http.StatusBadRequest, code)
		})
	}
}

// BenchmarkUpdateCheckMounted measures what mounting costs an update check:
// the codepush handler alone, and the same request through releasepilot's
// HTTP stack (routing, metrics, panic recovery), in process.
func BenchmarkUpdateCheckMounted(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\ntokens:\n  - {name: ops, role: operator, token: %q}\napps:\n  - {name: acme, repository: acme/mobile, webhook_secret: s, ota: {enabled: true}}\n", dir, operatorToken)
	cfg, err := config.Parse([]byte(yaml), "")
	require.NoError(b, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	seedBinary(b, svc.Store)
	h := svc.HTTP.Handler()
	rb, ct := releaseBody(b, map[string]any{"appVersion": "1.4.0", "commit": "c142"}, "bundle v2")
	req := httptest.NewRequest("POST", "/v1/codepush/apps/acme-ios/deployments/Production/release", rb)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(b, http.StatusCreated, rec.Code, rec.Body.String())

	alone, err := codepush.New(ctx, codepush.Config{Store: store.NewCodePush(svc.DB), Blobs: codepush.DirBlobs{Dir: dir}})
	require.NoError(b, err)
	app, err := alone.App(ctx, "acme-ios")
	require.NoError(b, err)
	// The release starts at the plan's first stage: ask as a device in it.
	device := ""
	for i := 0; device == ""; i++ {
		if id := fmt.Sprintf("device-%d", i); codepush.InRollout(id, 10, "v1") {
			device = id
		}
	}
	path := "/v0.1/public/codepush/update_check?deployment_key=" + app.Deployments[1].Key + "&app_version=1.4.0&client_unique_id=" + device
	for _, bc := range []struct {
		name    string
		handler http.Handler
	}{{"codepush", alone.AcquisitionHandler()}, {"releasepilot", h}} {
		handler := bc.handler
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
					if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"is_available":true`) {
						b.Fatalf("%d %s", rec.Code, rec.Body.String())
					}
				}
			})
		})
	}
}

// TestOTALaneFromATagPush follows a JS-only tag from GitHub's webhook to
// devices: plan_release makes an OTA lane, the ota_lane job (run by River)
// fetches the bundle from the GitHub release, releases it to Staging for the
// binaries that share its fingerprint and promotes it to Production at 10 %.
func TestOTALaneFromATagPush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := githubtest.New()
	gh := httptest.NewServer(fake)
	t.Cleanup(gh.Close)
	repo := fake.Repo("acme/mobile")
	files := githubtest.Files{"ios/Podfile": "platform :ios, '15.0'\n", "android/app/src/main/Main.kt": "class Main\n", "src/App.tsx": "v1\n"}
	base := repo.Commit("1.4.0", files)
	repo.LightweightTag("v1.4.0", base)
	next := repo.Commit("Fix the typo on the login screen", files.With(githubtest.Files{"src/App.tsx": "v2\n"}), base)
	repo.LightweightTag("v1.4.2", next)
	repo.Release("v1.4.2", map[string][]byte{"bundle-ios.zip": []byte("ios bundle 1.4.2"), "bundle-android.zip": []byte("android bundle 1.4.2")})

	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
github: {api_url: %q}
tokens:
  - {name: viewer, role: viewer, token: %q}
apps:
  - {name: acme, repository: acme/mobile, webhook_secret: hook-secret, ota: {enabled: true}}
`, t.TempDir(), gh.URL, viewerToken)
	cfg, err := config.Parse([]byte(yaml), "")
	require.NoError(t, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })

	// The iOS 1.4.0 binary in the store was built from base.
	client, err := github.NewClient(github.ClientOptions{BaseURL: gh.URL})
	require.NoError(t, err)
	src, err := client.Repo("acme/mobile")
	require.NoError(t, err)
	fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(ctx, src, base)
	require.NoError(t, err)
	fp := fps[nativecheck.IOS]
	data, err := json.Marshal(fp)
	require.NoError(t, err)
	require.NoError(t, svc.Store.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: base, Algorithm: fp.Algorithm, Hash: fp.Hash, Data: data, CreatedAt: time.Now()}))
	_, err = svc.Store.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: "1.4.0", BuildNumber: "40", Commit: base, Fingerprint: fp.Hash, CreatedAt: time.Now()})
	require.NoError(t, err)

	require.NoError(t, svc.Start(ctx))
	r := &replica{svc: svc, url: "http://" + svc.Addr}
	d := githubtest.NewDelivery("push", githubtest.TagPushPayload("acme/mobile", "v1.4.2", next), []byte("hook-secret"))
	req, err := http.NewRequest("POST", r.url+"/webhooks/github", bytes.NewReader(d.Body))
	require.NoError(t, err)
	req.Header = d.Header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	var hist struct {
		History []struct {
			Label      string `json:"label"`
			AppVersion string `json:"appVersion"`
			Rollout    int    `json:"rollout"`
			Commit     string `json:"commit"`
		} `json:"history"`
	}
	require.Eventually(t, func() bool {
		code, body := r.do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Production/history", viewerToken, nil, "")
		return code == http.StatusOK && json.Unmarshal(body, &hist) == nil && len(hist.History) == 1
	}, 30*time.Second, 50*time.Millisecond, "the OTA lane reaches Production")
	p := hist.History[0]
	require.Equal(t, "1.4.0", p.AppVersion, "exactly the binary that shares the fingerprint")
	require.Equal(t, 10, p.Rollout)
	require.Equal(t, next, p.Commit)

	code, body := r.do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Staging/history", viewerToken, nil, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"label":"v1"`)

	// Devices of the first 10 % are offered the bundle; the others are not yet.
	code, body = r.do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Production", viewerToken, nil, "")
	require.Equal(t, http.StatusOK, code)
	var one struct {
		Deployment struct{ Name, Key string } `json:"deployment"`
	}
	require.NoError(t, json.Unmarshal(body, &one), string(body))
	prodKey := one.Deployment.Key
	require.NotEmpty(t, prodKey, string(body))
	in, out := "", ""
	for i := 0; in == "" || out == ""; i++ {
		id := fmt.Sprintf("device-%d", i)
		if codepush.InRollout(id, 10, "v1") {
			in = id
		} else {
			out = id
		}
	}
	// The history is read from the database, which the promotion commits
	// to just before it refreshes the served view: look until it serves.
	check := func(id string) string {
		code, body := r.do(t, "GET", "/updateCheck?deploymentKey="+prodKey+"&appVersion=1.4.0&clientUniqueId="+id, "", nil, "")
		require.Equal(t, http.StatusOK, code)
		return string(body)
	}
	require.Eventually(t, func() bool { return strings.Contains(check(in), `"isAvailable":true`) }, 5*time.Second, 10*time.Millisecond, "device %s is offered the bundle", in)
	require.Contains(t, check(out), `"isAvailable":false`, "device %s is not, yet", out)

	lanes := func() []release.Lane {
		rels, err := svc.Store.ListReleases(ctx, "acme", 10)
		require.NoError(t, err)
		require.Len(t, rels, 1)
		ls, err := svc.Store.Lanes(ctx, rels[0].ID)
		require.NoError(t, err)
		return ls
	}
	require.Eventually(t, func() bool {
		for _, l := range lanes() {
			if l.Platform == release.IOS {
				return l.Kind == release.KindOTA && l.Status.State != release.StatePending
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond)
}
