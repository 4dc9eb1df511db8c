package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/appstore/appstoretest/specvalidate"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

func iosConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\ndata_dir: "+t.TempDir()+"\n"+extra+
		"apps:\n  - {name: acme, repository: acme/mobile, webhook_secret: s, ios: {enabled: true, bundle_id: com.acme}}\n"), "")
	require.NoError(t, err)
	return cfg
}

func TestSetupIOSWiresTheLaneOnlyWithCredentials(t *testing.T) {
	ctx := context.Background()

	// Without a key nothing is registered: iOS lanes wait, and say why.
	svc, err := New(ctx, iosConfig(t, ""), nil)
	require.NoError(t, err)
	require.False(t, svc.laneKinds[(lane.IOSArgs{}).Kind()])
	_, ok := svc.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindStore, Platform: release.IOS}]
	require.False(t, ok)
	rec := httptest.NewRecorder()
	svc.HTTP.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/appstoreconnect", strings.NewReader("{}")))
	require.Equal(t, http.StatusNotFound, rec.Code, "no webhook secret: no route")
	require.NoError(t, svc.Shutdown(ctx))

	// With a key and a webhook secret: worker, executor and route.
	fake := appstoretest.New(appstoretest.Options{})
	srv := httptest.NewServer(specvalidate.Handler(t, fake))
	defer srv.Close()
	_, p8, err := fake.NewKey("KEY123", "issuer-1")
	require.NoError(t, err)
	t.Setenv("RP_TEST_P8", string(p8))
	svc, err = New(ctx, iosConfig(t, "appstore:\n  base_url: "+srv.URL+"\n  key_id: KEY123\n  issuer_id: issuer-1\n  private_key: ${RP_TEST_P8}\nappstore_webhook:\n  secret: hook-secret-0123\n"), nil)
	require.NoError(t, err)
	defer svc.Shutdown(ctx)
	require.True(t, svc.laneKinds[(lane.IOSArgs{}).Kind()])
	_, ok = svc.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindStore, Platform: release.IOS}]
	require.True(t, ok)
	rec = httptest.NewRecorder()
	svc.HTTP.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/appstoreconnect", strings.NewReader("{}")))
	require.Equal(t, http.StatusUnauthorized, rec.Code, "unsigned App Store Connect deliveries are refused")
	require.NotContains(t, rec.Body.String(), "hook-secret-0123")
}
