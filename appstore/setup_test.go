package appstore_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/appstore/appstoretest/specvalidate"
)

// clock is a manual clock shared by the client, its token source and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sentRequest is a request the client sent, as the fake received it.
type sentRequest struct {
	Method, Path, Query string
	Body                []byte
}

type testBundle struct {
	fake   *appstoretest.Fake
	client *appstore.Client
	tokens *appstore.TokenSource
	clock  *clock
	key    appstore.Key
	appID  string
	slept  []time.Duration

	mu   sync.Mutex
	sent []sentRequest
}

func (b *testBundle) requests() []sentRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]sentRequest(nil), b.sent...)
}

// mutations returns the non-GET requests the client sent.
func (b *testBundle) mutations() []sentRequest {
	var out []sentRequest
	for _, r := range b.requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

type setupOpts struct {
	fake appstoretest.Options
}

// setup starts a fake behind the OpenAPI validator and a client pointed at
// it. Retries "sleep" by advancing the shared clock, so no test waits.
func setup(t testing.TB, o ...func(*setupOpts)) *testBundle {
	t.Helper()
	var so setupOpts
	for _, f := range o {
		f(&so)
	}
	clk := &clock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	so.fake.Now = clk.Now
	fake := appstoretest.New(so.fake)
	b := &testBundle{fake: fake, clock: clk}
	validated := specvalidate.Handler(t, fake) // loads the spec before any client timeout runs
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			b.mu.Lock()
			b.sent = append(b.sent, sentRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body})
			b.mu.Unlock()
		}
		validated.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(record)
	t.Cleanup(srv.Close)
	key, _, err := fake.NewKey("2X9R4HXF34", "57246542-96fe-1a63-e053-0824d011072a")
	require.NoError(t, err)
	b.key = key
	b.tokens = &appstore.TokenSource{Key: key, Now: clk.Now}
	b.client = &appstore.Client{
		BaseURL:        srv.URL,
		HTTPClient:     srv.Client(),
		Tokens:         b.tokens,
		AttemptTimeout: 2 * time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			b.mu.Lock()
			b.slept = append(b.slept, d)
			b.mu.Unlock()
			clk.Advance(d)
			return ctx.Err()
		},
	}
	b.appID = fake.AddApp(appstoretest.App{ID: "1234567890", BundleID: "com.swapjoy.app", Name: "SwapJoy", SKU: "SWAPJOY"})
	fake.CompleteBetaAppInfo(b.appID)
	fake.AddApp(appstoretest.App{ID: "1234567891", BundleID: "com.swapjoy.app.widget", Name: "SwapJoy Widget"})
	return b
}

func ptr[T any](v T) *T { return &v }

// whatsNew writes What's New on every localization of an update, which App
// Review needs before the version can be submitted.
func whatsNew(t testing.TB, b *testBundle, versionID string) {
	t.Helper()
	_, err := b.client.SetWhatsNew(ctx(t), versionID, nil, "Bug fixes and performance improvements.")
	require.NoError(t, err)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}
