// Package sandbox runs releasepilot end to end against in-process fakes of
// GitHub, the npm registry, App Store Connect, Google Play and Sentry:
// `releasepilot demo` tags a React Native app four times and shows the
// first tag go through TestFlight and the App Store phased release on iOS
// and the Play staged rollout on Android, the second, JS-only, go over the
// air on both, the third, an OTA tag whose change is native, refused with
// the files that differ, and the fourth's iOS phased release paused by its
// Sentry gate when its crash-free sessions drop, without anyone acting.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/apiclient"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate/sentrytest"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
	"github.com/swapjoy/releasepilot/internal/service"
)

// Options tune a demo run.
type Options struct {
	// DataDir holds the demo's SQLite database and packages.
	DataDir string
	// Soak is the time each rollout stage waits (default 2s).
	Soak time.Duration
	// Timeout bounds each release (default 3 minutes).
	Timeout time.Duration
	// Log receives the service's own logs (discarded when nil).
	Log *slog.Logger
	// Listen is the address the service listens on (default
	// 127.0.0.1:0, a free port).
	Listen string
	// WrapFakes, when set, wraps the in-process App Store Connect
	// ("appstore") and Google Play ("play") fakes; tests check the wire
	// traffic with it.
	WrapFakes func(kind string, h http.Handler) http.Handler
}

// Demo is a sandbox left running by Start: the service with its fakes,
// the demo's releases, and tokens to sign in to the dashboard with.
type Demo struct {
	// URL is the service's base URL; the dashboard is at URL + "/".
	URL           string
	AdminToken    string
	OperatorToken string
	ViewerToken   string
	// Releases are the demo's release ids, oldest first. The last one,
	// Live, is a native change still in Apple's phased release on iOS:
	// something to watch and operate.
	Releases []string
	Live     string
	// Service is the running service.
	Service *service.Service
	closers []func()
}

// Close stops the service and the fakes.
func (d *Demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

const (
	repoName = "acme/demo-app"
	appName  = "acme"
	pkgName  = "com.acme.demo"
)

func secret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run plays the demo, writing progress to out. It returns an error when a
// release does not end as the demo expects.
func Run(ctx context.Context, out io.Writer, o Options) error {
	d, err := play(ctx, out, o, false)
	if d != nil {
		d.Close()
	}
	return err
}

// Start plays the demo and leaves everything running: after the first two
// releases of Run, it tags a native change (v1.1.0) and returns once its
// iOS lane is in Apple's phased release, so the dashboard has a release in
// flight to watch, halt or complete. The caller closes the Demo.
func Start(ctx context.Context, out io.Writer, o Options) (*Demo, error) {
	d, err := play(ctx, out, o, true)
	if err != nil {
		if d != nil {
			d.Close()
		}
		return nil, err
	}
	return d, nil
}

func play(ctx context.Context, out io.Writer, o Options, keep bool) (*Demo, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Soak <= 0 {
		o.Soak = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	demo := &Demo{}
	gh := githubtest.New()
	gh.Token = secret()
	ghSrv := httptest.NewServer(gh)
	demo.closers = append(demo.closers, ghSrv.Close)
	reg := npmtest.New()
	regSrv := httptest.NewServer(reg)
	demo.closers = append(demo.closers, regSrv.Close)
	reg.BaseURL = regSrv.URL
	reg.AddNative("react-native", "0.81.0")
	reg.AddJS("lodash", "4.17.21")
	reg.AddJS("lodash", "4.17.22")

	hookSecret, adminToken := secret(), "demo-"+secret()
	demo.AdminToken, demo.OperatorToken, demo.ViewerToken = adminToken, "operator-"+secret(), "viewer-"+secret()
	gates := ""
	if !keep {
		// The sandbox's Sentry is an in-process fake (project acme,
		// environment production); the crash act sets its crash-free rates.
		gates = "\n      gates:\n        - {provider: sentry, metric: crash_free_rate(session), min: 0.99, min_samples: 100, failure_limit: 1, interval: 1s, lanes: [ios]}"
	}
	yaml := fmt.Sprintf(`listen: %q
data_dir: %q
sandbox: true
shutdown_timeout: 10s
jobs:
  reconcile_interval: 1s
tokens:
  - {name: demo, role: admin, token: %q}
  - {name: release-manager, role: operator, token: %q}
  - {name: observer, role: viewer, token: %q}
github:
  api_url: %q
  token: %q
npm:
  registry: %q
apps:
  - name: %s
    repository: %s
    webhook_secret: %q
    ota_tag_pattern: "ota/v*"
    rollout:
      soak: %s%s
    ios:
      enabled: true
      bundle_id: %s
      internal_groups: [QA]
      external_groups: [Public beta]
      app_store: true
      phased_release: true
      poll_interval: 1s
    android:
      enabled: true
      package_name: %s
      aab_asset: "*.aab"
    ota:
      enabled: true
`, o.Listen, o.DataDir, adminToken, demo.OperatorToken, demo.ViewerToken, ghSrv.URL+"/", gh.Token, regSrv.URL, appName, repoName, hookSecret, o.Soak, gates, pkgName, pkgName)
	cfg, err := config.Parse([]byte(yaml), "")
	if err != nil {
		return demo, fmt.Errorf("demo config: %w", err)
	}
	var opts []service.Option
	if o.WrapFakes != nil {
		opts = append(opts, service.WithSandboxFakes(o.WrapFakes))
	}
	svc, err := service.New(ctx, cfg, o.Log, opts...)
	if err != nil {
		return demo, err
	}
	if err := svc.Start(ctx); err != nil {
		svc.DB.Close()
		return demo, err
	}
	demo.closers = append(demo.closers, func() { _ = svc.Shutdown(context.WithoutCancel(ctx)) })
	demo.Service = svc
	base := "http://" + svc.Addr
	demo.URL = base
	api := &apiclient.Client{BaseURL: base, Token: adminToken}
	say("releasepilot %s is running at %s on SQLite in %s", service.Version, base, o.DataDir)
	say("GitHub, npm, App Store Connect, Google Play and Sentry are in-process fakes; app %q is %s on GitHub, %s on the App Store and on Play.", appName, repoName, pkgName)

	repo := gh.Repo(repoName)
	first := repo.Commit("feat: first release", appFiles("1.0.0", "1", "4.17.21", "export default () => 'Hello'\n"))
	say("\n1. Tag v1.0.0: the first release; no binary is live yet, so it needs a store build:")
	say("   iOS through TestFlight and App Store review to a phased release, Android through the Play staged rollout.")
	id, err := tagAndWait(ctx, out, api, base, repo, hookSecret, "v1.0.0", first, nil, o.Timeout, false, nil)
	if err != nil {
		return demo, err
	}
	demo.Releases = append(demo.Releases, id)

	second := repo.Commit("fix: greet by name", appFiles("1.0.1", "2", "4.17.22", "export default (n) => `Hello ${n}`\n"), first)
	assets := map[string][]byte{}
	for _, platform := range []string{"android", "ios"} {
		b, err := githubtest.Zip("index."+platform+".bundle", "__d(function(){/* Hello ${n} */});\n")
		if err != nil {
			return demo, err
		}
		assets["bundle-"+platform+".zip"] = b
	}
	say("\n2. Tag v1.0.1: a JS-only change (app code and a JS-only dependency bump), so it ships over the air.")
	id, err = tagAndWait(ctx, out, api, base, repo, hookSecret, "v1.0.1", second, assets, o.Timeout, false, nil)
	if err != nil {
		return demo, err
	}
	demo.Releases = append(demo.Releases, id)

	say("\n3. Devices on binary 1.0.0 ask for an update:")
	for _, platform := range []string{"ios", "android"} {
		key, err := deploymentKey(ctx, api, base, adminToken, appName+"-"+platform, "Production")
		if err != nil {
			return demo, err
		}
		check, err := updateCheck(ctx, base, key, "1.0.0")
		if err != nil {
			return demo, err
		}
		say("   [%s] %s", platform, check)
	}
	if !keep {
		if err := crashActs(ctx, out, api, base, repo, hookSecret, second, o.Timeout, svc.SandboxSentry, demo); err != nil {
			return demo, err
		}
		say("\nDone. The same flow runs against App Store Connect, Google Play, Sentry and your GitHub with real credentials.")
		return demo, nil
	}

	third := appFiles("1.1.0", "3", "4.17.22", "export default (n) => `Hello ${n}!`\n")
	third["ios/Podfile"] += "pod 'Sentry'\n"
	third["android/app/build.gradle"] += "dependencies { implementation 'io.sentry:sentry-android:7.0.0' }\n"
	say("\n4. Tag v1.1.0: a native change (a new pod and Gradle dependency), so both platforms need a store binary;")
	say("   it stays in Apple's 7-day phased release on iOS for you to watch, halt or complete from the dashboard.")
	id, err = tagAndWait(ctx, out, api, base, repo, hookSecret, "v1.1.0", repo.Commit("feat: crash reporting", third, second), nil, o.Timeout, true, nil)
	if err != nil {
		return demo, err
	}
	demo.Releases = append(demo.Releases, id)
	demo.Live = id
	return demo, nil
}

// crashActs are the demo's last two tags: an OTA tag whose commit adds a
// native module, refused with the files that differ; then the same change
// as store builds, whose iOS phased release its Sentry gate pauses when the
// fake Sentry's crash-free sessions drop, nobody acting.
func crashActs(ctx context.Context, out io.Writer, api *apiclient.Client, base string, repo *githubtest.Repo, hookSecret, parent string, timeout time.Duration, sentry *sentrytest.Server, demo *Demo) error {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	// A native module arrives: a pod on iOS, a library on Android.
	trustKit := func(version, build string) githubtest.Files {
		f := appFiles(version, build, "4.17.22", "export default (n) => `Hello ${n}`\n")
		f["ios/Podfile"] += "pod 'TrustKit', '~> 3.0'\n"
		f["android/app/build.gradle"] += "dependencies {\n  implementation 'com.datatheorem.android.trustkit:trustkit:1.1.5'\n}\n"
		return f
	}
	third := repo.Commit("feat: pin certificates with TrustKit", trustKit("1.0.2", "3"), parent)
	say("\n4. Tag ota/v1.0.2: someone asks for an over-the-air release, but the commit adds a native module.")
	say("   An OTA bundle cannot carry native code, so releasepilot refuses it and names the files that differ:")
	id, err := tagAndWait(ctx, out, api, base, repo, hookSecret, "ota/v1.0.2", third, nil, timeout, false, nil)
	if err != nil {
		return err
	}
	demo.Releases = append(demo.Releases, id)

	fourth := repo.Commit("release: 1.1.0 with TrustKit", trustKit("1.1.0", "4"), third)
	say("\n5. Tag v1.1.0: the native change ships as store builds. Its iOS phased release has a Sentry gate")
	say("   (crash-free sessions ≥ 99%% over ≥ 100 sessions, measured every second, halting after 2 failures in a row).")
	crash := &crashAct{sentry: sentry, out: out}
	if id, err = tagAndWait(ctx, out, api, base, repo, hookSecret, "v1.1.0", fourth, nil, timeout, false, crash); err != nil {
		return err
	}
	demo.Releases = append(demo.Releases, id)
	if !crash.halted {
		return errors.New("v1.1.0: the Sentry gate did not halt the iOS phased release")
	}
	if v := sentry.Violations(); len(v) > 0 {
		return fmt.Errorf("the Sentry fake saw requests or answers outside Sentry's OpenAPI schema: %s", strings.Join(v, "; "))
	}
	return nil
}

// crashAct plays users' crashes in the fake Sentry during an iOS phased
// release: healthy sessions once the build is known, then a crash spike
// once Apple's phased release runs. Nobody commands the lane: its gate
// halts it, which pauses the phased release.
type crashAct struct {
	sentry  *sentrytest.Server
	out     io.Writer
	release string // the Sentry release of the iOS build
	crashed bool
	halted  bool
}

const sentryProject, sentryEnv = appName, "production"

// ready learns the iOS build's Sentry release and reports healthy
// sessions for it.
func (c *crashAct) ready(version, build string) {
	c.release = pkgName + "@" + version + "+" + build
	now := time.Now().UTC()
	c.sentry.SetCrashFree(sentryProject, sentryEnv, c.release, now.Add(-time.Hour), now.Add(time.Hour), 400, 300, 0.999)
	fmt.Fprintf(c.out, "   [sentry] release %s: testers' sessions 99.9%% crash-free\n", c.release)
}

// phased starts the crash spike.
func (c *crashAct) phased() {
	if c.crashed || c.release == "" {
		return
	}
	c.crashed = true
	now := time.Now().UTC()
	c.sentry.SetCrashFree(sentryProject, sentryEnv, c.release, now.Add(-time.Hour), now.Add(time.Hour), 4000, 3000, 0.91)
	fmt.Fprintf(c.out, "   [sentry] release %s: a crash spike, 91%% of sessions crash-free; nobody touches the release\n", c.release)
}

// tagAndWait tags commit, sends GitHub's signed push delivery, and prints the
// release's audit log until every lane finishes, or with inFlight until the
// iOS lane is in its phased release (which it leaves running). It returns
// the release id.
//
// Without crash, the release manager completes the iOS phased release on
// its first day; with it, Sentry's crash-free rate drops and the iOS lane
// must halt on its own.
func tagAndWait(ctx context.Context, out io.Writer, api *apiclient.Client, base string, repo *githubtest.Repo, hookSecret, tag, commit string, assets map[string][]byte, timeout time.Duration, inFlight bool, crash *crashAct) (string, error) {
	repo.LightweightTag(tag, commit)
	if assets != nil {
		repo.Release(tag, assets)
	}
	d := githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, tag, commit), []byte(hookSecret))
	req, err := d.Request(ctx, base+"/webhooks/github")
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("send webhook: %w", err)
	}
	var started struct {
		ReleaseID string `json:"release_id"`
	}
	err = json.NewDecoder(res.Body).Decode(&started)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || err != nil {
		return "", fmt.Errorf("webhook for %s answered %d", tag, res.StatusCode)
	}
	fmt.Fprintf(out, "   GitHub push %s → 202, release %s\n", tag, started.ReleaseID)

	deadline := time.Now().Add(timeout)
	var after int64
	completed := false
	for {
		var evs struct {
			Events []struct {
				ID      int64          `json:"id"`
				Kind    string         `json:"kind"`
				Details map[string]any `json:"details"`
			} `json:"events"`
		}
		if err := getJSON(ctx, api, base+"/v1/releases/"+started.ReleaseID+"/events?after="+fmt.Sprint(after), &evs); err != nil {
			return "", err
		}
		for _, e := range evs.Events {
			after = e.ID
			if line := describe(e.Kind, e.Details); line != "" {
				fmt.Fprintln(out, "   "+strings.ReplaceAll(line, "\n", "\n   "))
			}
			if crash != nil && e.Kind == "lane.ready" && e.Details["platform"] == "ios" {
				crash.ready(fmt.Sprint(e.Details["version"]), fmt.Sprint(e.Details["build_number"]))
			}
		}
		rel, err := api.Release(ctx, started.ReleaseID)
		if err != nil {
			return "", err
		}
		lanes, _ := rel["lanes"].([]any)
		done := len(lanes) > 0
		for _, l := range lanes {
			lane, _ := l.(map[string]any)
			st, _ := lane["status"].(map[string]any)
			pct, _ := st["percent"].(float64)
			if inFlight && lane["platform"] == "ios" && lane["kind"] == "store" && pct > 0 && pct < 100 {
				fmt.Fprintf(out, "   [ios] phased release on day 1 (%v%%): left running\n", pct)
				return started.ReleaseID, nil
			}
			if crash != nil && lane["platform"] == "ios" && lane["kind"] == "store" && pct > 0 {
				crash.phased()
			} else if lane["platform"] == "ios" && lane["kind"] == "store" && pct > 0 && pct < 100 && !completed {
				// Apple's phased release takes 7 days and only Apple sets
				// its percentage: a release manager completes it by command.
				completed = true
				reason := "demo: Apple's phased release takes 7 days; release to everyone now"
				fmt.Fprintf(out, "   [ios] phased release on day 1 (%v%%); the release manager completes it: POST /v1/releases/%s/complete\n", pct, started.ReleaseID)
				if _, err := api.Command(ctx, started.ReleaseID, "complete", "ios", reason); err != nil {
					return "", fmt.Errorf("complete the iOS phased release of %s: %w", tag, err)
				}
			}
			switch st["state"] {
			case "completed", "cancelled":
			case "halted":
				if crash != nil && crash.crashed && lane["platform"] == "ios" {
					crash.halted = true
					continue
				}
				return "", fmt.Errorf("release %s: %s lane %s: %v", tag, lane["platform"], st["state"], st["reason"])
			case "failed":
				return "", fmt.Errorf("release %s: %s lane %s: %v", tag, lane["platform"], st["state"], st["reason"])
			default:
				done = false
			}
		}
		if done {
			return started.ReleaseID, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("release %s did not finish within %s", tag, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// describe turns an audit event into one line of demo output.
func describe(kind string, d map[string]any) string {
	p := fmt.Sprint(d["platform"])
	switch kind {
	case "release.created":
		return fmt.Sprintf("release created for %v", d["tag"])
	case "lane.planned":
		kind := map[any]string{"store": "a store", "ota": "an OTA", "refused": "a refused"}[d["kind"]]
		return fmt.Sprintf("[%s] planned as %s lane: %v", p, kind, d["reason"])
	case "lane.ready":
		return fmt.Sprintf("[%s] ready to roll out %v", p, orEmpty(d["detail"]))
	case "rollout.advance", "rollout.complete":
		return fmt.Sprintf("[%s] rolled out to %v%%", p, d["percent"])
	case "rollout.halt":
		line := fmt.Sprintf("[%s] HALTED by its gate, nobody acting: %v", p, d["reason"])
		if p == "ios" {
			line += "\n[ios] the phased release is PAUSED on App Store Connect; a person resumes it"
		}
		return line
	case "lane.failed":
		return fmt.Sprintf("[%s] FAILED: %v", p, d["reason"])
	case "ios.waiting":
		return fmt.Sprintf("[%s] waiting: %v", p, d["reason"])
	case "ios.in_testflight":
		return fmt.Sprintf("[%s] in TestFlight for %v", p, d["groups"])
	case "command.complete", "command.halt", "command.resume", "command.advance", "command.rollback":
		return fmt.Sprintf("[%s] %s by command: %v%% (%v)", p, strings.TrimPrefix(kind, "command."), d["percent"], d["state"])
	case "rollout.hold", "release.planned":
		return ""
	}
	if strings.HasPrefix(kind, "android.") || strings.HasPrefix(kind, "ios.") || strings.HasPrefix(kind, "ota.") {
		return fmt.Sprintf("[%s] %s", p, strings.ReplaceAll(kind, "_", " "))
	}
	return ""
}

func orEmpty(v any) string {
	if v == nil {
		return ""
	}
	return "(" + fmt.Sprint(v) + ")"
}

func getJSON(ctx context.Context, api *apiclient.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+api.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

func deploymentKey(ctx context.Context, api *apiclient.Client, base, token, app, deployment string) (string, error) {
	var out struct {
		Deployments []struct{ Name, Key string } `json:"deployments"`
	}
	if err := getJSON(ctx, api, base+"/v1/codepush/apps/"+app+"/deployments", &out); err != nil {
		return "", err
	}
	for _, d := range out.Deployments {
		if d.Name == deployment {
			return d.Key, nil
		}
	}
	return "", fmt.Errorf("no %s deployment for %s", deployment, app)
}

// updateCheck asks as the react-native-code-push client does.
func updateCheck(ctx context.Context, base, key, appVersion string) (string, error) {
	q := url.Values{"deployment_key": {key}, "app_version": {appVersion}, "client_unique_id": {"demo-device"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v0.1/public/codepush/update_check?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct {
		UpdateInfo struct {
			IsAvailable bool   `json:"is_available"`
			Label       string `json:"label"`
			AppVersion  string `json:"target_binary_range"`
			DownloadURL string `json:"download_url"`
		} `json:"update_info"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("update check answered %d", res.StatusCode)
	}
	if !body.UpdateInfo.IsAvailable {
		return "", errors.New("update check found no update for binary " + appVersion)
	}
	return fmt.Sprintf("%s is available (target %s), download %s", body.UpdateInfo.Label, body.UpdateInfo.AppVersion, body.UpdateInfo.DownloadURL), nil
}

// appFiles is a small bare React Native app at a version.
func appFiles(version, build, lodash, app string) githubtest.Files {
	return githubtest.RNApp{Name: "demo-app", IOSProject: "Demo", Version: version, Build: build, Lodash: lodash, Source: app}.Files()
}
