package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/dashboard"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const (
	opSecret     = "operator-secret-0123456789"
	viewerSecret = "viewer-secret-0123456789"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the dashboard and the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recordingExecutor carries out lane decisions by remembering them.
type recordingExecutor struct {
	mu      sync.Mutex
	actions []string
}

func (e *recordingExecutor) Execute(_ context.Context, _ release.Lane, d release.Decision) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.actions = append(e.actions, string(d.Action))
	return nil
}

func (e *recordingExecutor) Observe(context.Context, release.Lane) (release.Observations, error) {
	return release.Observations{}, nil
}

// mutableCreds lets a test remove a token while sessions exist.
type mutableCreds struct {
	mu sync.Mutex
	ts httpapi.TokenCredentials
}

func (m *mutableCreds) Authenticate(ctx context.Context, s string) (httpapi.Identity, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ts.Authenticate(ctx, s)
}

func (m *mutableCreds) Lookup(ctx context.Context, s string) (httpapi.Identity, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ts.Lookup(ctx, s)
}

func (m *mutableCreds) set(ts ...httpapi.Token) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ts = ts
}

type bundle struct {
	db    *store.DB
	st    *store.Store
	clock *clock
	creds *mutableCreds
	exec  *recordingExecutor
	srv   *httptest.Server
	dash  *dashboard.Dashboard
	rel   release.Release
	lane  release.Lane
}

type option func(*dashboard.Deps)

// setup starts the API and dashboard on a fresh database of engine e with
// River working lane commands, and a release with one Android store lane
// soaking at 10 %.
func setup(t *testing.T, e store.Engine, opts ...option) *bundle {
	t.Helper()
	db := storetest.Open(t, e)
	b := &bundle{db: db, st: store.New(db), clock: &clock{t: t0}, creds: &mutableCreds{}, exec: &recordingExecutor{}}
	b.creds.set(httpapi.NewToken("ops", httpapi.RoleOperator, opSecret), httpapi.NewToken("watcher", httpapi.RoleViewer, viewerSecret))
	ctx := context.Background()
	require.NoError(t, b.st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	var err error
	b.rel, _, err = b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc123", State: release.ReleaseActive, CreatedAt: t0})
	require.NoError(t, err)
	b.lane, err = b.st.CreateLane(ctx, release.Lane{ReleaseID: b.rel.ID, Platform: release.Android, Kind: release.KindStore, Reason: "native code differs",
		Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, []release.GateRule{{Metric: "crash_rate", Max: 0.01, MinSamples: 1000}}),
		Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0, Reason: "soaking at 10%"}}, t0)
	require.NoError(t, err)
	_, err = b.st.AppendEvent(ctx, release.Event{At: t0, Actor: "system", ReleaseID: b.rel.ID, LaneID: b.lane.ID, Kind: "rollout.advance",
		Details: map[string]any{"percent": 10, "state": "rolling", "platform": "android", "reason": "rolled out to 10%"}})
	require.NoError(t, err)

	ro := &jobs.Rollouts{Store: b.st, Now: b.clock.Now, Executors: jobs.Executors{{Kind: release.KindStore, Platform: release.Android}: b.exec}}
	runner, err := jobs.New(jobs.Config{DB: db, Rollouts: ro, ReconcileInterval: time.Hour, FastPoll: true})
	require.NoError(t, err)
	require.NoError(t, runner.Start(ctx))
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = runner.Stop(c)
	})
	b.srv, b.dash = b.replica(t, runner, opts...)
	return b
}

// replica starts another API server with its own dashboard on the same
// database, as a second replica would.
func (b *bundle) replica(t *testing.T, q httpapi.CommandQueue, opts ...option) (*httptest.Server, *dashboard.Dashboard) {
	t.Helper()
	api := httpapi.New(httpapi.Deps{Store: b.st, Commands: q, Now: b.clock.Now, Tokens: nil})
	deps := dashboard.Deps{Store: b.st, Commands: api, Credentials: b.creds, Now: b.clock.Now, LiveInterval: 50 * time.Millisecond}
	for _, o := range opts {
		o(&deps)
	}
	d, err := dashboard.New(deps)
	require.NoError(t, err)
	d.Register(api)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() { d.Close(); srv.Close() })
	return srv, d
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (br *browser) get(path string) (*http.Response, string) {
	br.t.Helper()
	res, err := br.c.Get(br.base + path)
	require.NoError(br.t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (br *browser) post(path string, form url.Values) (*http.Response, string) {
	br.t.Helper()
	req, err := http.NewRequest(http.MethodPost, br.base+path, strings.NewReader(form.Encode()))
	require.NoError(br.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := br.c.Do(req)
	require.NoError(br.t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	require.NotNil(t, m, "no CSRF field in page")
	return m[1]
}

// signIn signs in with secret and returns the browser.
func (b *bundle) signIn(t *testing.T, base, secret string) *browser {
	t.Helper()
	br := newBrowser(t, base)
	res, page := br.get("/signin")
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = br.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {secret}, "next": {"/"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/", res.Header.Get("Location"))
	return br
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}
