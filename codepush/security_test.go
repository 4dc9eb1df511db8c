package codepush

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checkURL runs an update check through handler with the given remote
// address and headers and returns the download URL offered.
func checkURL(t *testing.T, h http.Handler, key, remote string, local net.Addr, hdr map[string]string) string {
	t.Helper()
	req := httptest.NewRequest("GET", PathUpdateCheckV01+"?deployment_key="+key+"&app_version=1.4.0", nil)
	req.RemoteAddr = remote
	if local != nil {
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var body struct {
		UpdateInfo struct {
			DownloadURL string `json:"download_url"`
		} `json:"update_info"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body.UpdateInfo.DownloadURL
}

// TestDownloadURLsIgnoreHost: a download URL comes from public_url, or a
// trusted proxy's X-Forwarded-Proto/Host, or the local address the request
// arrived on — never from the Host header, which anyone can set.
func TestDownloadURLsIgnoreHost(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	r := tb.release(t, Production, "1.4.0", "bundle")
	key := tb.key(t, Production)
	local := &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 8080}
	path := PathPackages + r.BlobKey
	evil := map[string]string{"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}

	tb.svc.cfg.PublicURL = ""
	tb.svc.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	h := tb.svc.AcquisitionHandler()
	for name, tc := range map[string]struct {
		remote string
		hdr    map[string]string
		want   string
	}{
		"forged Host from a device":           {"203.0.113.9:5000", map[string]string{"Host": "evil.example"}, "http://10.0.0.5:8080" + path},
		"forged forwarded headers, untrusted": {"203.0.113.9:5000", evil, "http://10.0.0.5:8080" + path},
		"trusted proxy":                       {"192.168.1.10:443", map[string]string{"Host": "evil.example", "X-Forwarded-Host": "ota.acme.dev", "X-Forwarded-Proto": "https"}, "https://ota.acme.dev" + path},
		"trusted proxy appends to a forged value": {"192.168.1.10:443",
			map[string]string{"X-Forwarded-Host": "evil.example, ota.acme.dev:8443", "X-Forwarded-Proto": "javascript, https"}, "https://ota.acme.dev:8443" + path},
		"trusted proxy, garbage host":        {"192.168.1.10:443", map[string]string{"X-Forwarded-Host": "evil.example/steal?x=", "X-Forwarded-Proto": "https"}, "http://10.0.0.5:8080" + path},
		"trusted proxy, no forwarded host":   {"192.168.1.10:443", map[string]string{"Host": "evil.example"}, "http://10.0.0.5:8080" + path},
		"IPv4-mapped proxy address":          {"[::ffff:192.168.1.10]:443", map[string]string{"X-Forwarded-Host": "ota.acme.dev"}, "http://ota.acme.dev" + path},
		"proxy's neighbour is not the proxy": {"192.168.2.10:443", evil, "http://10.0.0.5:8080" + path},
	} {
		require.Equal(t, tc.want, checkURL(t, h, key, tc.remote, local, tc.hdr), name)
	}

	// The management API's blobUrl follows the same rule.
	mreq := httptest.NewRequest("GET", "/apps/Swap-iOS/deployments/Production/history", nil)
	mreq.RemoteAddr, mreq.Host = "203.0.113.9:5000", "evil.example"
	mreq = mreq.WithContext(context.WithValue(mreq.Context(), http.LocalAddrContextKey, local))
	rec := httptest.NewRecorder()
	tb.svc.ManagementHandler().ServeHTTP(rec, mreq)
	require.Equal(t, 200, rec.Code)
	require.Contains(t, rec.Body.String(), `"blobUrl":"http://10.0.0.5:8080`+path)
	require.NotContains(t, rec.Body.String(), "evil")

	// Without a local address (a handler called directly): the configured
	// listen address.
	tb.svc.cfg.ListenAddr = "127.0.0.1:9999"
	require.Equal(t, "http://127.0.0.1:9999"+path, checkURL(t, h, key, "203.0.113.9:5000", nil, evil))

	// public_url wins over everything.
	tb.svc.cfg.PublicURL = "https://ota.example.com"
	require.Equal(t, "https://ota.example.com"+path, checkURL(t, h, key, "192.168.1.10:443", local, evil))
}

// TestDownloadURLOverTheWire: a real server with a forged Host answers
// with its own address.
func TestDownloadURLOverTheWire(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.svc.cfg.PublicURL = ""
	r := tb.release(t, Production, "1.4.0", "bundle")
	srv := httptest.NewServer(tb.svc.AcquisitionHandler())
	t.Cleanup(srv.Close)
	req, err := http.NewRequest("GET", srv.URL+PathUpdateCheck+"?deploymentKey="+tb.key(t, Production)+"&appVersion=1.4.0", nil)
	require.NoError(t, err)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		UpdateInfo struct {
			DownloadURL string `json:"downloadURL"`
		} `json:"updateInfo"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, srv.URL+PathPackages+r.BlobKey, body.UpdateInfo.DownloadURL)
}

// TestReportsAreRateLimitedPerAddress: one address gets its burst, then
// 429 with Retry-After until tokens come back; other addresses are not
// affected; behind a trusted proxy the client's address counts, and an
// IPv6 /64 is one address.
func TestReportsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.release(t, Production, "1.0.0", "one")
	key := tb.key(t, Production)
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tb.svc.reports = newAddrLimiter(12, 5, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	tb.svc.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}
	h := tb.svc.AcquisitionHandler()
	post := func(remote, xff string, i int) *httptest.ResponseRecorder {
		body := fmt.Sprintf(`{"app_version":"1.0.0","deployment_key":%q,"client_unique_id":"c-%d","label":"v1","status":"DeploymentSucceeded"}`, key, i)
		req := httptest.NewRequest("POST", PathReportDeployV01, strings.NewReader(body))
		req.RemoteAddr = remote
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 5 {
		require.Equal(t, 200, post("203.0.113.1:1000", "", i).Code)
	}
	rec := post("203.0.113.1:1001", "", 5)
	require.Equal(t, 429, rec.Code)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.Equal(t, "Too many requests, please try again later.", rec.Body.String())
	require.Equal(t, 200, post("203.0.113.2:1000", "", 6).Code, "another address has its own bucket")
	// A forged X-Forwarded-For from an untrusted peer changes nothing.
	require.Equal(t, 429, post("203.0.113.1:1002", "198.51.100.7", 7).Code)
	// Through the trusted proxy, each client address counts.
	for i := range 5 {
		require.Equal(t, 200, post("10.0.0.1:2000", "198.51.100.7, 198.51.100.8", 100+i).Code)
	}
	require.Equal(t, 429, post("10.0.0.1:2000", "203.0.113.99, 198.51.100.8", 105).Code, "the nearest untrusted hop counts, not a forged first one")
	require.Equal(t, 200, post("10.0.0.1:2000", "198.51.100.9", 106).Code)
	// An IPv6 /64 is one address.
	for i := range 5 {
		require.Equal(t, 200, post(fmt.Sprintf("[2001:db8:1:2::%x]:3000", i+1), "", 200+i).Code)
	}
	require.Equal(t, 429, post("[2001:db8:1:2:ffff::1]:3000", "", 205).Code)
	require.Equal(t, 200, post("[2001:db8:1:3::1]:3000", "", 206).Code)

	// Tokens come back at 12 a minute.
	mu.Lock()
	now = now.Add(5 * time.Second)
	mu.Unlock()
	require.Equal(t, 200, post("203.0.113.1:1003", "", 300).Code)
	require.Equal(t, 429, post("203.0.113.1:1003", "", 301).Code)

	m, err := tb.svc.Metrics(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.EqualValues(t, 5+1+5+1+5+1+1, m["v1"].Installed, "only accepted reports count")
}

// TestLegacyManagementRoutes: the routes and shapes code-push-cli 2.1.9
// relies on, with code-push-server's plain-text errors.
func TestLegacyManagementRoutes(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	do := func(method, path, body string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, hb.srv.URL+"/cps"+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json;charset=UTF-8")
		}
		req.Header.Set("X-Test-Actor", "bo@example.com")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var sb strings.Builder
		_, _ = fmt.Fprint(&sb, readAll(t, resp))
		return resp.StatusCode, sb.String(), resp.Header
	}
	// 2.1.9 sends trailing slashes and fields the server does not know.
	code, body, hdr := do("POST", "/apps/", `{"name":"MyApp","os":"iOS","platform":"React-Native","manuallyProvisionDeployments":false}`)
	require.Equal(t, 201, code, body)
	require.Equal(t, "/apps/MyApp", hdr.Get("Location"))
	require.JSONEq(t, `{"app":{"name":"MyApp","collaborators":{"bo@example.com":{"isCurrentAccount":true,"permission":"Owner"}},"deployments":["Production","Staging"]}}`, body)
	code, body, _ = do("POST", "/apps/", `{"name":"MyApp"}`)
	require.Equal(t, 409, code)
	require.Equal(t, "An app named 'MyApp' already exists.", body)

	code, body, _ = do("GET", "/apps/MyApp/deployments/", "")
	require.Equal(t, 200, code)
	require.Regexp(t, `^\{"deployments":\[\{"name":"Production","key":"[A-Za-z0-9_-]{28}","package":null\},\{"name":"Staging","key":"[A-Za-z0-9_-]{28}","package":null\}\]\}$`, body)
	code, body, hdr = do("GET", "/apps/MyApp/deployments/Nope", "")
	require.Equal(t, 404, code)
	require.Equal(t, `Deployment "Nope" does not exist.`, body, "release-react adds its hint on a 404 naming a Deployment")
	require.Equal(t, "text/html; charset=utf-8", hdr.Get("Content-Type"))

	code, _, _ = do("POST", "/apps/MyApp/deployments/", `{"name":"QA"}`)
	require.Equal(t, 201, code)
	code, body, _ = do("PATCH", "/apps/MyApp/deployments/QA", `{"name":"Beta"}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"name":"Beta"`)
	code, _, _ = do("DELETE", "/apps/MyApp/deployments/Beta", "")
	require.Equal(t, 204, code)
	code, body, _ = do("GET", "/apps/MyApp/deployments/Beta", "")
	require.Equal(t, 404, code, body)

	// Release, patch with the nulls the CLI sends, clear.
	rb, ct := multipartRelease(t, `{"description":"","isDisabled":false,"isMandatory":false,"rollout":100,"appVersion":"~1.0.0"}`, zipOf(t, map[string]string{"CodePush/main.jsbundle": "js"}))
	req, err := http.NewRequest("POST", hb.srv.URL+"/cps/apps/MyApp/deployments/Staging/release", rb)
	require.NoError(t, err)
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode)
	require.Equal(t, "/apps/MyApp/deployments/Staging", resp.Header.Get("Location"))
	code, body, _ = do("PATCH", "/apps/MyApp/deployments/Staging/release", `{"packageInfo":{"appVersion":null,"description":null,"isMandatory":true,"isDisabled":null,"rollout":null,"label":null}}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"isMandatory":true`)
	code, body, _ = do("PATCH", "/apps/MyApp/deployments/Staging/release", `{"packageInfo":{"appVersion":null,"description":null,"isMandatory":true,"isDisabled":null,"rollout":50,"label":null}}`)
	require.Equal(t, 409, code)
	require.Equal(t, `rollout "50": Cannot update rollout value for a completed rollout release. (v1 is rolled out to everyone.)`, body)
	code, body, _ = do("POST", "/apps/MyApp/deployments/Staging/promote/Production", `{"packageInfo":{"appVersion":null,"description":"","label":null,"isDisabled":null,"isMandatory":null,"rollout":100}}`)
	require.Equal(t, 201, code, body)
	require.Contains(t, body, `"description":""`, "an empty description keeps the source's")
	code, body, _ = do("POST", "/apps/MyApp/deployments/Production/rollback/", "")
	require.Equal(t, 409, code)
	require.Equal(t, "Cannot perform rollback because there are no prior releases to rollback to.", body)
	code, _, _ = do("DELETE", "/apps/MyApp/deployments/Staging/history", "")
	require.Equal(t, 204, code)
	code, body, _ = do("GET", "/apps/MyApp/deployments/Staging/history", "")
	require.Equal(t, 200, code)
	require.Equal(t, `{"history":[]}`, body)

	// Unknown routes and methods answer as Express would, in text.
	code, body, _ = do("GET", "/apps/MyApp/bogus", "")
	require.Equal(t, 404, code)
	require.Equal(t, "Cannot GET /apps/MyApp/bogus", body)
	code, body, _ = do("PUT", "/apps", "")
	require.Equal(t, 405, code)
	require.True(t, strings.HasPrefix(body, "PUT is not allowed on /apps"), body)
	code, _, _ = do("DELETE", "/apps/MyApp", "")
	require.Equal(t, 204, code)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}
