package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

type jobsUp bool

func (j jobsUp) Running() bool { return bool(j) }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func get(t *testing.T, h http.Handler, path, token string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		db     error
		jobs   bool
		code   int
		status string
		dbText string
		jobsTx string
	}{
		{"healthy", nil, true, 200, "ok", "connected", "running"},
		{"database down", errors.New("dial tcp: connection refused"), true, 503, "unavailable", "error: database unreachable", "running"},
		{"jobs stopped", nil, false, 200, "degraded", "connected", "stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := httpapi.New(httpapi.Deps{Version: "1.2.3", Started: t0, Now: func() time.Time { return t0.Add(90 * time.Second) },
				DB: pinger{tt.db}, Jobs: jobsUp(tt.jobs)})
			res, body := get(t, s.Handler(), "/health", "")
			require.Equal(t, tt.code, res.StatusCode)
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			var h map[string]string
			require.NoError(t, json.Unmarshal(body, &h))
			require.Equal(t, map[string]string{"status": tt.status, "version": "1.2.3", "uptime": "1m30s", "database": tt.dbText,
				"jobs": tt.jobsTx, "timestamp": "2026-11-25T12:01:30Z"}, h)
			require.NotContains(t, string(body), "connection refused", "driver details stay in the log")
		})
	}
}

func TestMetricsCountRoutesNotPaths(t *testing.T) {
	t.Parallel()
	m := httpapi.NewMetrics()
	s := httpapi.New(httpapi.Deps{DB: pinger{}, Jobs: jobsUp(true), Metrics: m})
	h := s.Handler()
	get(t, h, "/health", "")
	get(t, h, "/health", "")
	get(t, h, "/no/such/thing/123", "")
	m.ObserveJob("reconcile", "completed")
	_, body := get(t, h, "/metrics", "")
	text := string(body)
	require.Contains(t, text, `releasepilot_http_requests_total{method="GET",route="GET /health",status="200"} 2`)
	require.Contains(t, text, `releasepilot_http_requests_total{method="GET",route="unmatched",status="404"} 1`)
	require.Contains(t, text, `releasepilot_jobs_total{kind="reconcile",outcome="completed"} 1`)
	require.NotContains(t, text, "/no/such/thing/123")
}

func TestMetricsFoldUnknownMethods(t *testing.T) {
	t.Parallel()
	m := httpapi.NewMetrics()
	h := httpapi.New(httpapi.Deps{Metrics: m}).Handler()
	for i := range 50 {
		req := httptest.NewRequest(fmt.Sprintf("INVENTED%d", i), "/health", nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest(http.MethodDelete, "/health", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	_, body := get(t, h, "/metrics", "")
	text := string(body)
	require.Contains(t, text, `releasepilot_http_requests_total{method="other",route="unmatched",status="405"} 50`)
	require.Contains(t, text, `releasepilot_http_requests_total{method="DELETE",route="unmatched",status="405"} 1`)
	require.NotContains(t, text, "INVENTED")
}

func TestClientDisconnectIs499NotAnError(t *testing.T) {
	t.Parallel()
	m := httpapi.NewMetrics()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := httpapi.New(httpapi.Deps{Metrics: m, Logger: log})
	// A handler whose query fails because the client went away, as
	// database/sql reports it.
	s.Handle("GET /slow", httpapi.RoleNone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		httpapi.WriteStoreError(w, log, fmt.Errorf("list releases: %w", r.Context().Err()))
	}))
	h := s.Handler()
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/slow", nil).WithContext(ctx)
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), req)
	_, body := get(t, h, "/metrics", "")
	require.Contains(t, string(body), `releasepilot_http_requests_total{method="GET",route="GET /slow",status="499"} 1`)
	require.NotContains(t, string(body), `status="500"`)
	require.Empty(t, logs.String(), "a disconnect is logged at debug only")

	// A real store failure still answers and counts 500 and is logged.
	s.Handle("GET /broken", httpapi.RoleNone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteStoreError(w, log, errors.New("disk I/O error"))
	}))
	res, _ := get(t, h, "/broken", "")
	require.Equal(t, 500, res.StatusCode)
	_, body = get(t, h, "/metrics", "")
	require.Contains(t, string(body), `route="GET /broken",status="500"} 1`)
	require.Contains(t, logs.String(), "disk I/O error")
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	s := httpapi.New(httpapi.Deps{})
	res, body := get(t, s.Handler(), "/nope", "")
	require.Equal(t, 404, res.StatusCode)
	require.JSONEq(t, `{"error":{"code":"not_found","message":"no route for GET /nope"}}`, string(body))
	req := httptest.NewRequest(http.MethodPost, "/health", nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	require.Contains(t, rec.Body.String(), `"code":"method_not_allowed"`)
}

func TestAuthAndReleases(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	r, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc", CreatedAt: t0})
	require.NoError(t, err)
	_, err = st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore, Reason: "native code differs",
		Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil)}, t0)
	require.NoError(t, err)
	_, err = st.AppendEvent(ctx, release.Event{At: t0, Actor: "github", ReleaseID: r.ID, Kind: "release.created"})
	require.NoError(t, err)

	s := httpapi.New(httpapi.Deps{Store: st, Tokens: []httpapi.Token{
		httpapi.NewToken("viewer", httpapi.RoleViewer, "viewer-token-0123456789"),
	}})
	h := s.Handler()

	res, body := get(t, h, "/v1/releases/"+r.ID, "")
	require.Equal(t, 401, res.StatusCode)
	require.Contains(t, string(body), "missing bearer token")
	res, _ = get(t, h, "/v1/releases/"+r.ID, "wrong-token")
	require.Equal(t, 401, res.StatusCode)

	res, body = get(t, h, "/v1/releases/"+r.ID, "viewer-token-0123456789")
	require.Equal(t, 200, res.StatusCode)
	var v httpapi.ReleaseView
	require.NoError(t, json.Unmarshal(body, &v))
	require.Equal(t, "v1.4.0", v.Tag)
	require.Len(t, v.Lanes, 1)
	require.Equal(t, "store", v.Lanes[0].Kind)
	require.Equal(t, "native code differs", v.Lanes[0].Reason)
	require.Equal(t, release.StatePending, v.Lanes[0].Status.State)

	res, body = get(t, h, "/v1/releases/rel_missing", "viewer-token-0123456789")
	require.Equal(t, 404, res.StatusCode)
	require.Contains(t, string(body), "not found")

	res, body = get(t, h, "/v1/releases?app=acme", "viewer-token-0123456789")
	require.Equal(t, 200, res.StatusCode)
	require.True(t, strings.Contains(string(body), r.ID))
	res, body = get(t, h, "/v1/releases?limit=zero", "viewer-token-0123456789")
	require.Equal(t, 400, res.StatusCode)
	require.Contains(t, string(body), `limit: \"zero\" is not a number`)

	res, body = get(t, h, "/v1/releases/"+r.ID+"/events", "viewer-token-0123456789")
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, string(body), `"kind":"release.created"`)
}

func TestRoleOrder(t *testing.T) {
	t.Parallel()
	s := httpapi.New(httpapi.Deps{Tokens: []httpapi.Token{
		httpapi.NewToken("v", httpapi.RoleViewer, "viewer-token-0123456789"),
		httpapi.NewToken("a", httpapi.RoleAdmin, "admin-token-0123456789"),
	}})
	var actor string
	s.Handle("POST /v1/op", httpapi.RoleOperator, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor = httpapi.Actor(r.Context())
		w.WriteHeader(204)
	}))
	post := func(tok string) int {
		req := httptest.NewRequest(http.MethodPost, "/v1/op", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, 403, post("viewer-token-0123456789"))
	require.Equal(t, 204, post("admin-token-0123456789"))
	require.Equal(t, "token:a", actor)
}

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	s := httpapi.New(httpapi.Deps{})
	s.Handle("GET /boom", httpapi.RoleNone, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	res, body := get(t, s.Handler(), "/boom", "")
	require.Equal(t, 500, res.StatusCode)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, string(body))
}
