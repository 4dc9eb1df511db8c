//go:build load

package loadtest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// The intake benchmark's knobs: flags, defaulting to the environment, then
// to the figures (200 deliveries/s for 60 s, 20,000 failing plans).
var (
	intakeRate     = flag.Float64("intake.rate", envFloat("RELEASEPILOT_LOAD_RATE", 200), "webhook deliveries per second")
	intakeDuration = flag.Duration("intake.duration", envDuration("RELEASEPILOT_LOAD_DURATION", 60*time.Second), "how long to send at that rate")
	intakeFailing  = flag.Int("intake.failing", envInt("RELEASEPILOT_LOAD_FAILING_PLANS", 20000, 0), "plan jobs that fail and retry during the failing-plans runs")
)

// ackTimeout is GitHub's delivery timeout: an ack slower than this is lost.
const ackTimeout = 10 * time.Second

const (
	loadSecret = "load-test-webhook-secret"
	loadRepo   = "acme/mobile"
	brokenRepo = "acme/broken"
)

// BenchmarkWebhookIntake sends signed tag pushes at a steady rate, open loop
// (each at its scheduled time, whether or not earlier ones were answered),
// to the real service's POST /webhooks/github on a TCP listener, on SQLite
// and on Postgres, with and without thousands of plan jobs failing and
// retrying; and, as the reference of the same run, to a bare net/http
// handler that only checks the HMAC. Every delivery is a new tag of a
// configured app, so each one creates a release and its plan_release job.
// Latency is from the scheduled send to the ack; an ack slower than
// GitHub's 10 s is a timeout.
func BenchmarkWebhookIntake(b *testing.B) {
	b.Run("bare-hmac", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(bareHMAC))
		defer srv.Close()
		for range b.N {
			res := drive(b, srv.URL, strings.Repeat("a", 40))
			res.report(b, "bare net/http HMAC handler")
			require.Zero(b, res.errors+res.timeouts, "the reference handler failed: %v", res.firstErr)
		}
	})
	for _, e := range []store.Engine{store.SQLite, store.Postgres} {
		variants := []int{0}
		if *intakeFailing > 0 {
			variants = append(variants, *intakeFailing)
		}
		for _, failing := range variants {
			name := string(e)
			if failing > 0 {
				name += "/failing-plans"
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					w := newIntakeWorld(b, e)
					svc := w.start(b, failing)
					res := drive(b, "http://"+svc.Addr, w.c1)
					plans := w.planStats(b, svc)
					res.report(b, fmt.Sprintf("releasepilot on %s, %d failing plan jobs (after the run: %s)", e, failing, plans))
					n, err := w.releases(svc)
					require.NoError(b, err)
					require.Equal(b, res.accepted, n, "every accepted delivery created one release")
				}
			})
		}
	}
}

// bareHMAC is the reference: net/http, the body read whole, one
// HMAC-SHA256 compared in constant time, 202.
func bareHMAC(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	got, err := hex.DecodeString(strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256="))
	m := hmac.New(sha256.New, []byte(loadSecret))
	m.Write(body)
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		http.Error(w, "signature", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

type intakeWorld struct {
	dir   string
	dbURL string
	gh    *httptest.Server
	c1    string
}

func newIntakeWorld(b *testing.B, e store.Engine) *intakeWorld {
	b.Helper()
	fake := githubtest.New()
	fake.Token = "load-test-token"
	w := &intakeWorld{dir: b.TempDir(), dbURL: storetest.URL(b, e)}
	w.gh = httptest.NewServer(fake)
	b.Cleanup(w.gh.Close)
	repo := fake.Repo(loadRepo)
	w.c1 = repo.Commit("release", githubtest.Files{"android/app/build.gradle": "versionCode 42\n", "package.json": `{"name":"mobile","dependencies":{}}`, "src/App.tsx": "v1\n"})
	fake.Repo(brokenRepo).Commit("nothing to see", githubtest.Files{"README.md": "broken\n"})
	return w
}

// start runs the service as serve does, after queueing failing plan jobs
// for the broken app: their releases name a commit GitHub does not have,
// so each attempt fails and River retries it.
func (w *intakeWorld) start(b *testing.B, failing int) *service.Service {
	b.Helper()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
database: {url: %q}
github: {api_url: %s/, token: load-test-token}
apps:
  - name: acme
    repository: %s
    webhook_secret: %s
    android: {enabled: true, package_name: com.acme.mobile}
  - name: broken
    repository: %s
    webhook_secret: another-secret
    android: {enabled: true, package_name: com.acme.broken}
`, w.dir, w.dbURL, w.gh.URL, loadRepo, loadSecret, brokenRepo)
	path := filepath.Join(w.dir, "releasepilot.yaml")
	require.NoError(b, os.WriteFile(path, []byte(cfg), 0o600))
	c, err := config.Load(path)
	require.NoError(b, err)
	ctx := context.Background()
	svc, err := service.New(ctx, c, nil)
	require.NoError(b, err)
	started := false
	b.Cleanup(func() {
		if started {
			_ = svc.Shutdown(context.Background())
		} else {
			_ = svc.DB.Close()
		}
	})
	if failing > 0 {
		t0 := time.Now()
		const batch = 500
		for i := 0; i < failing; i += batch {
			err := svc.Store.Tx(ctx, func(tx *store.Store) error {
				for j := i; j < min(i+batch, failing); j++ {
					tag := fmt.Sprintf("v0.%d.%d", j/1000, j%1000)
					rel, _, err := tx.CreateRelease(ctx, release.Release{App: "broken", Tag: tag, Version: tag[1:], Commit: strings.Repeat("0", 39) + "1", CreatedAt: t0})
					if err != nil {
						return err
					}
					if _, _, err := svc.Jobs.EnqueueTx(ctx, tx, jobs.PlanReleaseArgs{App: "broken", Tag: tag, Commit: rel.Commit, ReleaseID: rel.ID}, nil); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(b, err)
		}
		b.Logf("queued %d failing plan jobs in %s", failing, time.Since(t0).Round(time.Millisecond))
	}
	require.NoError(b, svc.Start(ctx))
	started = true
	return svc
}

func (w *intakeWorld) releases(svc *service.Service) (int, error) {
	var n int
	err := svc.DB.SQL.QueryRowContext(context.Background(), `SELECT count(*) FROM releases WHERE app = 'acme'`).Scan(&n)
	return n, err
}

// planStats says what River did with the plan jobs by the end of the run.
func (w *intakeWorld) planStats(b *testing.B, svc *service.Service) string {
	args := "args::text"
	if svc.DB.Engine == store.SQLite {
		args = "json(args)" // River keeps SQLite's args as JSONB
	}
	rows, err := svc.DB.SQL.QueryContext(context.Background(), `SELECT `+args+`, state, attempt FROM river_job WHERE kind = 'plan_release'`)
	require.NoError(b, err)
	defer rows.Close()
	type key struct{ app, state string }
	count, attempts := map[key]int{}, map[string]int{}
	for rows.Next() {
		var args, state string
		var attempt int
		require.NoError(b, rows.Scan(&args, &state, &attempt))
		var a jobs.PlanReleaseArgs
		require.NoError(b, json.Unmarshal([]byte(args), &a))
		app := a.App
		count[key{app, state}]++
		attempts[app] += attempt
	}
	require.NoError(b, rows.Err())
	var parts []string
	for k, n := range count {
		parts = append(parts, fmt.Sprintf("%s %s %d", k.app, k.state, n))
	}
	slices.Sort(parts)
	return fmt.Sprintf("plan jobs: %s; attempts: acme %d, broken %d", strings.Join(parts, ", "), attempts["acme"], attempts["broken"])
}

type intakeResult struct {
	sent, accepted, errors, timeouts int
	lat                              []time.Duration // of the acks, sorted
	firstErr                         string
	elapsed                          time.Duration
}

// drive sends rate×duration pushes of distinct tags at commit to base, open
// loop, and collects the acks.
func drive(b *testing.B, base, commit string) *intakeResult {
	b.Helper()
	n := int(*intakeRate * intakeDuration.Seconds())
	interval := time.Duration(float64(time.Second) / *intakeRate)
	ds := make([]githubtest.Delivery, n)
	stamp := time.Now().UnixNano() % 1_000_000
	for i := range ds {
		tag := fmt.Sprintf("v%d.%d.%d", stamp, i/1000, i%1000)
		ds[i] = githubtest.NewDelivery("push", githubtest.TagPushPayload(loadRepo, tag, commit), []byte(loadSecret))
	}
	client := &http.Client{Timeout: ackTimeout, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     time.Minute,
	}}
	defer client.CloseIdleConnections()

	res := &intakeResult{sent: n}
	var mu sync.Mutex
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range ds {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(d githubtest.Delivery) {
			defer wg.Done()
			req, err := d.Request(context.Background(), base+"/webhooks/github")
			var code int
			if err == nil {
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
			}
			took := time.Since(at) // from the scheduled send: queueing counts
			mu.Lock()
			defer mu.Unlock()
			var ne net.Error
			switch {
			case err != nil && errors.As(err, &ne) && ne.Timeout(), err == nil && took > ackTimeout:
				res.timeouts++
			case err != nil:
				res.errors++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
			case code != http.StatusAccepted:
				res.errors++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf("status %d", code)
				}
			default:
				res.accepted++
				res.lat = append(res.lat, took)
			}
		}(ds[i])
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	b.StopTimer()
	slices.Sort(res.lat)
	return res
}

func (r *intakeResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
}

func (r *intakeResult) report(b *testing.B, what string) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var max time.Duration
	if len(r.lat) > 0 {
		max = r.lat[len(r.lat)-1]
	}
	b.ReportMetric(ms(r.pct(0.50)), "p50-ms")
	b.ReportMetric(ms(r.pct(0.99)), "p99-ms")
	b.ReportMetric(ms(max), "max-ms")
	b.ReportMetric(float64(r.errors), "errors")
	b.ReportMetric(float64(r.timeouts), "timeouts")
	b.ReportMetric(float64(r.accepted)/r.elapsed.Seconds(), "acks/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s: %d deliveries at %.0f/s for %s: %d acked 202, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d errors, %d timeouts (>%s)%s",
		what, r.sent, *intakeRate, intakeDuration.String(), r.accepted, ms(r.pct(0.50)), ms(r.pct(0.99)), ms(max), r.errors, r.timeouts, ackTimeout,
		map[bool]string{true: ", first error: " + r.firstErr, false: ""}[r.firstErr != ""])
}
