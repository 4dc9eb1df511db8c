package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/nativechecktest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
	"github.com/swapjoy/releasepilot/internal/store"
)

// seedApp records, for app, the iOS 1.4.0 binary built from c140 and the
// fingerprint of the JS-only commit c142.
func seedApp(t *testing.T, st *store.Store, app string) {
	t.Helper()
	ctx := context.Background()
	base := map[string]string{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v1\n"}
	r := nativechecktest.Repo{"c140": base, "c142": maps.Clone(base)}
	r["c142"]["src/App.tsx"] = "v2\n"
	hashes := map[string]string{}
	for _, c := range []string{"c140", "c142"} {
		fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(ctx, r, c)
		require.NoError(t, err)
		fp := fps[nativecheck.IOS]
		data, err := json.Marshal(fp)
		require.NoError(t, err)
		require.NoError(t, st.SaveFingerprint(ctx, store.Fingerprint{App: app, Platform: release.IOS, Commit: c, Algorithm: fp.Algorithm, Hash: fp.Hash, Data: data, CreatedAt: time.Now()}))
		hashes[c] = fp.Hash
	}
	_, err := st.RecordBinary(ctx, release.Binary{App: app, Platform: release.IOS, Version: "1.4.0", BuildNumber: "40", Commit: "c140", Fingerprint: hashes["c140"], CreatedAt: time.Now()})
	require.NoError(t, err)
}

// TestForgedReportsMoveNoGate: status reports are unauthenticated, so 10,000
// forged ones from one address — each with a fresh client id, through the
// trusted proxy — must neither halt a healthy rollout nor save a failing
// one, nor make up the gate's minimum sample on their own. Honest devices
// come from their own addresses.
func TestForgedReportsMoveNoGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := func(name string) string {
		return fmt.Sprintf("  - {name: %s, repository: acme/%s, webhook_secret: s, ota: {enabled: true},\n"+
			"     rollout: {soak: 1h, gates: [{metric: ota_failure_rate, max: 0.05, min_samples: 100}]}}\n", name, name)
	}
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\ncodepush: {trusted_proxies: [127.0.0.1]}\ntokens:\n  - {name: ops, role: operator, token: %q}\napps:\n%s%s",
		t.TempDir(), operatorToken, app("good"), app("bad"))
	cfg, err := config.Parse([]byte(yaml), "")
	require.NoError(t, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	now := time.Now().UTC()
	svc.Rollouts.Now = func() time.Time { return now }
	svc.Gates.Now = svc.Rollouts.Now
	h := svc.HTTP.Handler()

	type lane struct {
		id, key string
	}
	lanes := map[string]lane{}
	for _, name := range []string{"good", "bad"} {
		seedApp(t, svc.Store, name)
		rb, ct := releaseBody(t, map[string]any{"appVersion": "1.4.0", "commit": "c142"}, "bundle of "+name)
		req := httptest.NewRequest("POST", "/v1/codepush/apps/"+name+"-ios/deployments/Production/release", rb)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		rels, err := svc.Store.ListReleases(ctx, name, 1)
		require.NoError(t, err)
		ls, err := svc.Store.Lanes(ctx, rels[0].ID)
		require.NoError(t, err)
		req = httptest.NewRequest("GET", "/v1/codepush/apps/"+name+"-ios/deployments/Production", nil)
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var d struct{ Deployment struct{ Key string } }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
		lanes[name] = lane{ls[0].ID, d.Deployment.Key}
	}
	report := func(key, addr, client, status string) int {
		body := fmt.Sprintf(`{"app_version":"1.4.0","deployment_key":%q,"client_unique_id":%q,"label":"v1","status":%q}`, key, client, status)
		req := httptest.NewRequest("POST", codepush.PathReportDeployV01, strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000" // the proxy
		req.Header.Set("X-Forwarded-For", addr)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	forge := func(key, status string) (accepted int) {
		for i := range 10_000 {
			switch code := report(key, "203.0.113.66", fmt.Sprintf("forged-%s-%d", status, i), status); code {
			case http.StatusOK:
				accepted++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("forged report %d: %d", i, code)
			}
		}
		return accepted
	}
	honest := func(key string, devices, failed int) {
		for i := range devices {
			status := codepush.StatusSucceeded
			if i < failed {
				status = codepush.StatusFailed
			}
			require.Equal(t, http.StatusOK, report(key, fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256), fmt.Sprintf("device-%d", i), status))
		}
	}
	status := func(name string) release.Status {
		l, err := svc.Store.GetLane(ctx, lanes[name].id)
		require.NoError(t, err)
		return l.Status
	}
	pass := func() { // the leader's reconcile: measure the gates, then move the lanes
		for range 5 { // a pass moves one step at a time
			now = now.Add(time.Minute)
			require.NoError(t, svc.Gates.Pass(ctx, svc.Rollouts))
			require.NoError(t, svc.Rollouts.Pass(ctx))
		}
	}

	pass()
	require.Equal(t, release.StateWaiting, status("good").State, "soaking")
	require.Equal(t, 10, status("good").Percent)

	// 10,000 forged failures with no honest data: a handful get through the
	// per-address limit; too few to reach min_samples, so the gate holds.
	accepted := forge(lanes["good"].key, codepush.StatusFailed)
	require.LessOrEqual(t, accepted, 25, "the burst, and what trickles in meanwhile")
	require.Positive(t, accepted)
	now = now.Add(2 * time.Hour)
	pass()
	st := status("good")
	require.Equal(t, release.StateWaiting, st.State, st.Reason)
	require.Equal(t, 10, st.Percent)
	require.Contains(t, st.Reason, fmt.Sprintf("over %d samples, need 100", accepted))

	// A healthy fleet (2 % rolled back) advances despite the forged failures.
	honest(lanes["good"].key, 1000, 20)
	pass()
	require.Equal(t, 25, status("good").Percent, status("good").Reason)
	require.NotEqual(t, release.StateHalted, status("good").State)

	// A failing fleet (10 % rolled back) halts despite 10,000 forged installs.
	now = now.Add(2 * time.Hour)
	pass()
	honest(lanes["bad"].key, 1000, 100)
	require.LessOrEqual(t, forge(lanes["bad"].key, codepush.StatusSucceeded), 25)
	pass()
	st = status("bad")
	require.Equal(t, release.StateHalted, st.State, st.Reason)
	require.Contains(t, st.Reason, "gate ota_failure_rate failed")

	// The counters are per device: a device's repeated report counts once.
	req := httptest.NewRequest("GET", "/v1/codepush/apps/good-ios/deployments/Production/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	for range 3 {
		require.Equal(t, http.StatusOK, report(lanes["good"].key, "10.9.9.9", "device-0", codepush.StatusFailed))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m struct {
		Metrics map[string]struct{ Failed, Installed int64 } `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
	require.EqualValues(t, 20+accepted, m.Metrics["v1"].Failed)
	require.EqualValues(t, 980, m.Metrics["v1"].Installed)
}
