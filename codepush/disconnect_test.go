package codepush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cancelAwareStore fails as a database does when the request's context is
// cancelled mid-query.
type cancelAwareStore struct{ *MemStore }

func (s cancelAwareStore) Apps(ctx context.Context) ([]App, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return s.MemStore.Apps(ctx)
}

func (s cancelAwareStore) RecordReport(ctx context.Context, r ClientReport) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	return s.MemStore.RecordReport(ctx, r)
}

// TestClientGoneIs499NotAnError: a request whose client went away before
// the answer — an update report, a management read in JSON or in
// code-push-server's plain text — is answered 499 and logged at debug, not
// as a server error; a real storage failure still is one.
func TestClientGoneIs499NotAnError(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := WithActor(context.Background(), Actor{Name: "ana@example.com"})
	mem := &MemStore{}
	svc, err := New(ctx, Config{Store: cancelAwareStore{mem}, Blobs: DirBlobs{Dir: t.TempDir()}, Gate: &recordingGate{}, Logger: log,
		Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }, PublicURL: "https://ota.example.com/"})
	require.NoError(t, err)
	a, err := svc.CreateApp(ctx, "Swap-iOS", false)
	require.NoError(t, err)
	mux := http.NewServeMux()
	svc.RegisterAcquisition(mux)
	mux.Handle("/v1/codepush/", http.StripPrefix("/v1/codepush", svc.NewManagementHandler(ManagementOptions{JSONErrors: true})))
	mux.Handle("/cps/", http.StripPrefix("/cps", svc.ManagementHandler()))

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	report := `{"deployment_key":"` + a.Deployments[0].Key + `","app_version":"1.4.0","client_unique_id":"D1"}`
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodPost, PathReportDeployV01, strings.NewReader(report)),
		httptest.NewRequest(http.MethodGet, "/v1/codepush/apps", nil),
		httptest.NewRequest(http.MethodGet, "/cps/apps", nil),
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req.WithContext(WithActor(gone, Actor{Name: "ana@example.com"})))
		require.Equal(t, StatusClientClosedRequest, rec.Code, req.URL.Path)
		require.Empty(t, rec.Body.String(), "nobody reads it")
	}
	require.NotContains(t, logs.String(), "level=ERROR")
	require.Equal(t, 3, strings.Count(logs.String(), `level=DEBUG msg="codepush: client went away"`), logs.String())
	require.Contains(t, logs.String(), "record report: context canceled")

	// The same report with its client still there is counted.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathReportDeployV01, strings.NewReader(report)))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	// A failure of the server's own is still a 500, logged as an error.
	logs.Reset()
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/codepush/apps", nil)
	svc.writeError(rec, req, errors.New("disk I/O error"))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, rec.Body.String())
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "disk I/O error")
}
