package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/httpapi"
)

// goneStore fails as the database does when the request's context is
// cancelled mid-query.
type goneStore struct{ *codepush.MemStore }

func (s goneStore) RecordReport(ctx context.Context, r codepush.ClientReport) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	return s.MemStore.RecordReport(ctx, r)
}

// TestCodePushClientGoneCounts499: the API server's metrics and logs treat
// a CodePush device that went away as they treat a /v1 client: 499, no
// 500, nothing at error level.
func TestCodePushClientGoneCounts499(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cp, err := codepush.New(ctx, codepush.Config{Store: goneStore{&codepush.MemStore{}}, Blobs: codepush.DirBlobs{Dir: t.TempDir()}, Logger: log})
	require.NoError(t, err)
	a, err := cp.CreateApp(codepush.WithActor(ctx, codepush.Actor{Name: "ana"}), "acme-ios", false)
	require.NoError(t, err)
	m := httpapi.NewMetrics()
	s := httpapi.New(httpapi.Deps{Metrics: m, Logger: log})
	acq := cp.AcquisitionHandler()
	s.Handle("POST "+codepush.PathReportDeployV01, httpapi.RoleNone, acq)
	h := s.Handler()

	gone, cancel := context.WithCancel(ctx)
	cancel()
	body := `{"deployment_key":"` + a.Deployments[0].Key + `","app_version":"1.4.0","client_unique_id":"D1"}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, codepush.PathReportDeployV01, strings.NewReader(body)).WithContext(gone))
	require.Equal(t, httpapi.StatusClientClosedRequest, rec.Code)

	_, metrics := get(t, h, "/metrics", "")
	require.Contains(t, string(metrics), `releasepilot_http_requests_total{method="POST",route="POST `+codepush.PathReportDeployV01+`",status="499"} 1`)
	require.NotContains(t, string(metrics), `status="500"`)
	require.Empty(t, logs.String(), "a device that went away is logged at debug only")

	// The legacy management API at the root: a credential lookup cut
	// short by the CLI going away.
	api := &httpapi.CodePushAPI{Auth: principalsFunc(func(ctx context.Context, _ string) (httpapi.Principal, error) {
		return httpapi.Principal{}, fmt.Errorf("look up access key: %w", ctx.Err())
	}), Log: log}
	s.Handle("/apps", httpapi.RoleNone, api)
	req := httptest.NewRequest(http.MethodGet, "/apps", nil).WithContext(gone)
	req.Header.Set("Authorization", "Bearer rpk_x")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, httpapi.StatusClientClosedRequest, rec.Code)
	_, metrics = get(t, h, "/metrics", "")
	require.Contains(t, string(metrics), `route="/apps",status="499"} 1`)
	require.Empty(t, logs.String())
}

type principalsFunc func(ctx context.Context, credential string) (httpapi.Principal, error)

func (f principalsFunc) Principal(ctx context.Context, credential string) (httpapi.Principal, error) {
	return f(ctx, credential)
}
