package codepush

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type httpBundle struct {
	*testBundle
	srv *httptest.Server
}

func setupHTTP(t *testing.T) *httpBundle {
	t.Helper()
	tb := setup(t)
	mux := http.NewServeMux()
	tb.svc.RegisterAcquisition(mux)
	actor := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(WithActor(r.Context(), Actor{Name: r.Header.Get("X-Test-Actor")})))
		})
	}
	mux.Handle("/v1/codepush/", http.StripPrefix("/v1/codepush", actor(tb.svc.NewManagementHandler(ManagementOptions{JSONErrors: true}))))
	mux.Handle("/cps/", http.StripPrefix("/cps", actor(tb.svc.ManagementHandler()))) // code-push-server's plain-text errors
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &httpBundle{testBundle: tb, srv: srv}
}

func (hb *httpBundle) do(t *testing.T, method, path string, body io.Reader, contentType string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, hb.srv.URL+path, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-Test-Actor", "bo@example.com")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// textError checks a code-push-server style error: a plain sentence (no
// JSON) starting with the field and its quoted value when given.
func textError(t *testing.T, b []byte, field, value string) string {
	t.Helper()
	require.False(t, json.Valid(b) && len(b) > 0 && (b[0] == '{' || b[0] == '['), "a plain-text error, not JSON: %s", b)
	require.NotEmpty(t, b)
	if field != "" {
		require.True(t, strings.HasPrefix(string(b), field+" ") || strings.HasPrefix(string(b), field+": "), "error names the field %s: %s", field, b)
	}
	if value != "" {
		require.Contains(t, string(b), strconv.Quote(value), "error names the value")
	}
	return string(b)
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

func TestUpdateCheckBothRouteStyles(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	r := hb.release(t, Production, "^1.4.0", "bundle", func(in *ReleaseInput) { in.Description = "Fix crash on login" })
	key := hb.key(t, Production)

	code, body := hb.do(t, "GET", PathUpdateCheckV01+"?deployment_key="+key+"&app_version=1.4&client_unique_id=D8A5", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, map[string]any{"update_info": map[string]any{
		"download_url": "https://ota.example.com" + PathPackages + r.BlobKey, "description": "Fix crash on login",
		"is_available": true, "is_mandatory": false, "app_version": "1.4", "package_hash": r.PackageHash,
		"label": "v1", "package_size": float64(6), "update_app_version": false, "should_run_binary_version": false,
		"target_binary_range": "1.4",
	}}, decode(t, body))

	code, body = hb.do(t, "GET", PathUpdateCheck+"?deploymentKey="+key+"&appVersion=1.4.0&label=v1&packageHash="+r.PackageHash, nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, map[string]any{"updateInfo": map[string]any{
		"downloadURL": "", "description": "", "isAvailable": false, "isMandatory": false, "appVersion": "",
		"packageHash": "", "label": "", "packageSize": float64(0), "updateAppVersion": false,
		"shouldRunBinaryVersion": false, "target_binary_range": "",
	}}, decode(t, body))

	code, body = hb.do(t, "GET", PathUpdateCheckV01+"?deployment_key="+key+"&app_version=2.0.0", nil, "")
	require.Equal(t, http.StatusOK, code)
	info := decode(t, body)["update_info"].(map[string]any)
	require.Equal(t, true, info["should_run_binary_version"])
	require.Equal(t, "^1.4.0", info["app_version"])
}

func TestUpdateCheckErrors(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	key := hb.key(t, Production)
	tests := []struct {
		path   string
		status int
		field  string
	}{
		{PathUpdateCheckV01 + "?app_version=1.0.0", 400, "deployment_key"},
		{PathUpdateCheckV01 + "?deployment_key=short&app_version=1.0.0", 400, "deployment_key"},
		{PathUpdateCheckV01 + "?deployment_key=" + url.QueryEscape("bad key with spaces!") + "&app_version=1.0.0", 400, "deployment_key"},
		{PathUpdateCheckV01 + "?deployment_key=" + key, 400, "app_version"},
		{PathUpdateCheckV01 + "?deployment_key=" + key + "&app_version=banana", 400, "app_version"},
		{PathUpdateCheck + "?deploymentKey=" + key + "&appVersion=1.2.3.4", 400, "appVersion"},
		{PathUpdateCheckV01 + "?deployment_key=unknown-key-1234567&app_version=1.0.0", 404, ""},
		{PathUpdateCheck + "?deploymentKey=unknown-key-1234567&appVersion=1.0.0", 404, ""},
	}
	for _, tc := range tests {
		code, body := hb.do(t, "GET", tc.path, nil, "")
		require.Equal(t, tc.status, code, tc.path)
		msg := textError(t, body, tc.field, "")
		if tc.field == "" {
			require.Contains(t, msg, "no deployment has the key")
		}
	}
}

func TestReportStatusCounters(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	hb.release(t, Production, "1.0.0", "one")
	hb.release(t, Production, "1.0.0", "two")
	key := hb.key(t, Production)
	post := func(path, body string) int {
		code, b := hb.do(t, "POST", path, strings.NewReader(body), "application/json")
		require.Contains(t, []int{200, 400, 404}, code, string(b))
		return code
	}
	require.Equal(t, 200, post(PathReportDownloadV01, `{"client_unique_id":"a","deployment_key":"`+key+`","label":"v1"}`))
	require.Equal(t, 200, post(PathReportDownload, `{"clientUniqueId":"a","deploymentKey":"`+key+`","label":"v2"}`))
	require.Equal(t, 200, post(PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"`+key+`","client_unique_id":"a","label":"v1","status":"DeploymentSucceeded"}`))
	require.Equal(t, 200, post(PathReportDeploy, `{"appVersion":"1.0.0","deploymentKey":"`+key+`","clientUniqueId":"a","label":"v2","status":"DeploymentSucceeded","previousLabelOrAppVersion":"v1"}`))
	require.Equal(t, 200, post(PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"`+key+`","client_unique_id":"b","label":"v2","status":"DeploymentFailed"}`))
	require.Equal(t, 200, post(PathReportDeployV01, `{"app_version":"1.1.0","deployment_key":"`+key+`","client_unique_id":"a","previous_label_or_app_version":"v2"}`))
	// Repeats count nothing: a device counts once per label and status.
	require.Equal(t, 200, post(PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"`+key+`","client_unique_id":"b","label":"v2","status":"DeploymentFailed"}`))
	require.Equal(t, 200, post(PathReportDownloadV01, `{"client_unique_id":"a","deployment_key":"`+key+`","label":"v1"}`))
	require.Equal(t, 400, post(PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"`+key+`","label":"v2","status":"Bogus"}`))
	require.Equal(t, 400, post(PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"`+key+`","label":"v2","status":"DeploymentSucceeded"}`), "no client id")
	require.Equal(t, 400, post(PathReportDeployV01, `{"deployment_key":"`+key+`"}`))
	require.Equal(t, 400, post(PathReportDeployV01, `not json`))
	require.Equal(t, 404, post(PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"unknown-key-1234567","client_unique_id":"a"}`))
	require.Equal(t, 400, post(PathReportDownloadV01, `{"deployment_key":"`+key+`"}`))

	code, body := hb.do(t, "GET", "/v1/codepush/apps/Swap-iOS/deployments/Production/metrics", nil, "")
	require.Equal(t, 200, code, string(body))
	require.Equal(t, map[string]any{"metrics": map[string]any{
		"v1":    map[string]any{"active": float64(0), "downloaded": float64(1), "installed": float64(1), "failed": float64(0)},
		"v2":    map[string]any{"active": float64(0), "downloaded": float64(1), "installed": float64(1), "failed": float64(1)},
		"1.1.0": map[string]any{"active": float64(1)},
	}}, decode(t, body))
}

func TestPackageDownload(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	r := hb.release(t, Production, "1.0.0", "the bundle")
	code, body := hb.do(t, "GET", PathPackages+r.BlobKey, nil, "")
	require.Equal(t, 200, code)
	require.Equal(t, "the bundle", string(body))
	code, _ = hb.do(t, "GET", PathPackages+sha("nothing"), nil, "")
	require.Equal(t, 404, code)
}

// multipartRelease builds a release upload with the file first, as the
// code-push CLI and curl -F do.
func multipartRelease(t *testing.T, info string, pkg []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if pkg != nil {
		fw, err := mw.CreateFormFile("package", "CodePush.zip")
		require.NoError(t, err)
		_, err = fw.Write(pkg)
		require.NoError(t, err)
	}
	require.NoError(t, mw.WriteField("packageInfo", info))
	require.NoError(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

func TestManagementHTTP(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	code, body := hb.do(t, "POST", "/v1/codepush/apps", strings.NewReader(`{"name":"Swap-Android"}`), "application/json")
	require.Equal(t, 201, code, string(body))
	require.Len(t, decode(t, body)["app"].(map[string]any)["deployments"], 2)

	z := zipOf(t, map[string]string{"CodePush/index.android.bundle": "js"})
	rb, ct := multipartRelease(t, `{"appVersion":"~1.4.0","description":"Fix login","isMandatory":true,"rollout":20,"commit":"abc123"}`, z)
	code, body = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Staging/release", rb, ct)
	require.Equal(t, 201, code, string(body))
	pkg := decode(t, body)["package"].(map[string]any)
	require.Equal(t, "v1", pkg["label"])
	require.Equal(t, float64(20), pkg["rollout"])
	require.Equal(t, "bo@example.com", pkg["releasedBy"])
	require.Equal(t, "Upload", pkg["releaseMethod"])
	require.Equal(t, sha(`["CodePush/index.android.bundle:`+sha("js")+`"]`), pkg["packageHash"])
	require.Equal(t, gateCall{"Swap-Android", Staging, "~1.4.0", "abc123"}, hb.gate.calls[len(hb.gate.calls)-1])

	rb, ct = multipartRelease(t, `{"appVersion":"~1.4.0"}`, []byte("other"))
	code, body = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Staging/release", rb, ct)
	require.Equal(t, 409, code, string(body))

	rb, ct = multipartRelease(t, `{"appVersion":"~1.4.0","rollout":0}`, []byte("other"))
	code, body = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Production/release", rb, ct)
	require.Equal(t, 400, code, string(body))
	require.Equal(t, "rollout", decode(t, body)["error"].(map[string]any)["field"])

	rb, ct = multipartRelease(t, `{"appVersion":"~1.4.0"}`, nil)
	code, _ = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Production/release", rb, ct)
	require.Equal(t, 400, code)
	code, _ = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Production/release", strings.NewReader("{}"), "application/json")
	require.Equal(t, 400, code)

	code, body = hb.do(t, "PATCH", "/v1/codepush/apps/Swap-Android/deployments/Staging/release", strings.NewReader(`{"packageInfo":{"rollout":100}}`), "application/json")
	require.Equal(t, 200, code, string(body))
	code, _ = hb.do(t, "PATCH", "/v1/codepush/apps/Swap-Android/deployments/Staging/release", strings.NewReader(`{"packageInfo":{"isMandatory":true}}`), "application/json")
	require.Equal(t, 204, code)
	code, _ = hb.do(t, "PATCH", "/v1/codepush/apps/Swap-Android/deployments/Staging/release", strings.NewReader(`{"packageInfo":{"bogus":1}}`), "application/json")
	require.Equal(t, 400, code)

	code, body = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Staging/promote/Production", strings.NewReader(`{"packageInfo":{"rollout":5,"description":"prod"}}`), "application/json")
	require.Equal(t, 201, code, string(body))
	pkg = decode(t, body)["package"].(map[string]any)
	require.Equal(t, "Promote", pkg["releaseMethod"])
	require.Equal(t, "Staging", pkg["originalDeployment"])
	require.Equal(t, float64(5), pkg["rollout"])

	rb, ct = multipartRelease(t, `{"appVersion":"~1.4.0"}`, []byte("v2 content"))
	code, body = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Staging/release", rb, ct)
	require.Equal(t, 201, code, string(body))
	code, body = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Staging/rollback", nil, "")
	require.Equal(t, 201, code, string(body))
	require.Equal(t, "v1", decode(t, body)["package"].(map[string]any)["originalLabel"])
	code, _ = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments/Staging/rollback/v3", nil, "")
	require.Equal(t, 409, code)

	code, body = hb.do(t, "GET", "/v1/codepush/apps/Swap-Android/deployments/Staging/history", nil, "")
	require.Equal(t, 200, code)
	h := decode(t, body)["history"].([]any)
	require.Len(t, h, 3)
	require.Equal(t, "Rollback", h[2].(map[string]any)["releaseMethod"])

	code, body = hb.do(t, "GET", "/v1/codepush/apps/Swap-Android/deployments", nil, "")
	require.Equal(t, 200, code)
	require.Len(t, decode(t, body)["deployments"], 2)
	code, body = hb.do(t, "GET", "/v1/codepush/apps/Nope/deployments/Staging/history", nil, "")
	require.Equal(t, 404, code)
	require.Contains(t, string(body), `App \"Nope\" does not exist.`)
	code, _ = hb.do(t, "POST", "/v1/codepush/apps/Swap-Android/deployments", strings.NewReader(`{"name":"Beta"}`), "application/json")
	require.Equal(t, 201, code)
	code, body = hb.do(t, "GET", "/v1/codepush/apps", nil, "")
	require.Equal(t, 200, code)
	require.Len(t, decode(t, body)["apps"], 2)
}

func FuzzUpdateCheckQuery(f *testing.F) {
	ctx := WithActor(f.Context(), Actor{})
	svc, err := New(ctx, Config{Blobs: DirBlobs{Dir: f.TempDir()}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.AddDeployment(ctx, "x", "y", ""); err == nil {
		f.Fatal("adding a deployment to a missing app must fail")
	}
	if _, err := svc.CreateApp(ctx, "Fuzz", true); err != nil {
		f.Fatal(err)
	}
	if _, err := svc.AddDeployment(ctx, "Fuzz", Production, "fuzz-deployment-key"); err != nil {
		f.Fatal(err)
	}
	for i, rng := range []string{"1.0.0", "^1.0.0", "1.x || >=2.0.0-beta <3"} {
		if _, err := svc.Release(ctx, ReleaseInput{App: "Fuzz", Deployment: Production, AppVersion: rng, Package: strings.NewReader(rng), Rollout: 100 - 30*i}); err != nil {
			f.Fatal(err)
		}
		if i < 2 {
			p := 100
			if _, _, err := svc.Patch(ctx, "Fuzz", Production, PackageInfo{Rollout: &p}); err != nil && KindOf(err) != KindConflict {
				f.Fatal(err)
			}
		}
	}
	h := svc.AcquisitionHandler()
	for _, q := range []string{
		"deployment_key=fuzz-deployment-key&app_version=1.0.0&client_unique_id=abc",
		"deploymentKey=fuzz-deployment-key&appVersion=1.0&label=v1&packageHash=x",
		"deployment_key=fuzz-deployment-key&app_version=2.5.0-beta.1&is_companion=TRUE",
		"deployment_key=%zz&app_version=",
		"&app_version=1&deployment_key=fuzz-deployment-key",
	} {
		f.Add(q, true)
		f.Add(q, false)
	}
	f.Fuzz(func(t *testing.T, query string, snake bool) {
		path := PathUpdateCheck
		if snake {
			path = PathUpdateCheckV01
		}
		req := httptest.NewRequest("GET", "http://ota.test"+path, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 404:
		default:
			t.Fatalf("status %d for %q", rec.Code, query)
		}
		if rec.Code != 200 {
			// Errors are code-push-server's plain sentences, with no markup.
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" || rec.Body.Len() == 0 || strings.ContainsAny(rec.Body.String(), "<>") {
				t.Fatalf("error %d for %q: %s %q", rec.Code, query, ct, rec.Body.String())
			}
			return
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
		}
	})
}

type failingStore struct{ MemStore }

func (f *failingStore) Counts(ctx context.Context, key string) (map[string]Counts, error) {
	return nil, errors.New("database is down")
}

func TestInternalErrorsAnswer500WithoutDetails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, err := New(ctx, Config{Store: &failingStore{}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = svc.CreateApp(ctx, "A", false)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	svc.ManagementHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/apps/A/deployments/Staging/metrics", nil))
	require.Equal(t, 500, rec.Code)
	require.Equal(t, "Internal Server Error", rec.Body.String())
	rec = httptest.NewRecorder()
	svc.NewManagementHandler(ManagementOptions{JSONErrors: true}).ServeHTTP(rec, httptest.NewRequest("GET", "/apps/A/deployments/Staging/metrics", nil))
	require.Equal(t, 500, rec.Code)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, rec.Body.String())
}

func TestReportIgnoresUnknownPreviousDeployment(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	key := tb.key(t, Production)
	tb.release(t, Production, "1.0.0", "one") // reports name releases that exist
	require.NoError(t, tb.svc.ReportDeploy(tb.ctx, DeployReport{DeploymentKey: key, AppVersion: "1.0.0", Label: "v1", ClientUniqueID: "device-1",
		Status: StatusSucceeded, PreviousLabelOrAppVersion: "v9", PreviousDeploymentKey: "someone-elses-key-123"}))
	m, err := tb.store.Counts(tb.ctx, "someone-elses-key-123")
	require.NoError(t, err)
	require.Empty(t, m)
	m, err = tb.svc.Metrics(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.Equal(t, map[string]Counts{"v1": {Active: 1, Installed: 1, Clients: 1}}, m)
}

func TestReleaseUploadFieldOrder(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(t, mw.WriteField("packageInfo", `{"appVersion":"1.0.0"}`))
	fw, err := mw.CreateFormFile("package", "main.jsbundle")
	require.NoError(t, err)
	_, err = fw.Write([]byte("bundle"))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	code, body := hb.do(t, "POST", "/v1/codepush/apps/Swap-iOS/deployments/Staging/release", &buf, mw.FormDataContentType())
	require.Equal(t, 201, code, string(body))
	require.Equal(t, sha("bundle"), decode(t, body)["package"].(map[string]any)["packageHash"])

	buf.Reset()
	mw = multipart.NewWriter(&buf)
	fw, err = mw.CreateFormFile("package", "main.jsbundle")
	require.NoError(t, err)
	_, err = fw.Write([]byte("bundle 2"))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	code, body = hb.do(t, "POST", "/v1/codepush/apps/Swap-iOS/deployments/Staging/release", &buf, mw.FormDataContentType())
	require.Equal(t, 400, code)
	require.Equal(t, "packageInfo", decode(t, body)["error"].(map[string]any)["field"])
}

// TestReportStatusRefusesWhatNoDeviceSends: the deployment key is public,
// so a report may only name releases of the deployment and semantic app
// versions, in fields of bounded size; anything else is a 400 naming the
// field, and creates no counter.
func TestReportStatusRefusesWhatNoDeviceSends(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	hb.release(t, Production, "1.0.0", "one")
	key := hb.key(t, Production)
	long := strings.Repeat("x", MaxReportField+1)
	for _, tc := range []struct {
		path, body, field, value string
	}{
		{PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"` + key + `","label":"v2","status":"DeploymentSucceeded"}`, "label", "v2"},
		{PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"` + key + `","label":"junk-label","status":"DeploymentFailed"}`, "label", "junk-label"},
		{PathReportDeploy, `{"appVersion":"banana","deploymentKey":"` + key + `","label":"v1","status":"DeploymentSucceeded"}`, "app_version", "banana"},
		{PathReportDeployV01, `{"app_version":"1.0.0 || 2.0.0","deployment_key":"` + key + `"}`, "app_version", "1.0.0 || 2.0.0"},
		{PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"` + key + `","label":"v1","status":"DeploymentSucceeded","previous_label_or_app_version":"v9"}`, "previous_label_or_app_version", "v9"},
		{PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"` + key + `","previous_label_or_app_version":"whatever"}`, "previous_label_or_app_version", "whatever"},
		{PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"` + key + `","previous_deployment_key":"no spaces allowed"}`, "previous_deployment_key", "no spaces allowed"},
		{PathReportDeployV01, `{"app_version":"1.0.0","deployment_key":"` + key + `","client_unique_id":"` + long + `"}`, "client_unique_id", long[:32] + "…"},
		{PathReportDeployV01, `{"app_version":"1.0.` + long + `","deployment_key":"` + key + `"}`, "app_version", ("1.0." + long)[:32] + "…"},
		{PathReportDownloadV01, `{"client_unique_id":"a","deployment_key":"` + key + `","label":"v7"}`, "label", "v7"},
		{PathReportDownload, `{"clientUniqueId":"` + long + `","deploymentKey":"` + key + `","label":"v1"}`, "client_unique_id", long[:32] + "…"},
	} {
		code, body := hb.do(t, "POST", tc.path, strings.NewReader(tc.body), "application/json")
		require.Equal(t, 400, code, "%s %s: %s", tc.path, tc.body, body)
		textError(t, body, tc.field, tc.value)
	}
	code, body := hb.do(t, "GET", "/v1/codepush/apps/Swap-iOS/deployments/Production/metrics", nil, "")
	require.Equal(t, 200, code, string(body))
	require.Equal(t, map[string]any{"metrics": map[string]any{}}, decode(t, body), "no counter was created")

	// What the SDK sends for a device that moved from v1 to the store binary
	// 1.1 ("1.1" normalises to 1.1.0) is accepted.
	code, body = hb.do(t, "POST", PathReportDeployV01, strings.NewReader(`{"app_version":"1.1","deployment_key":"`+key+`","client_unique_id":"a","previous_label_or_app_version":"v1"}`), "application/json")
	require.Equal(t, 200, code, string(body))
}

// TestReleaseUploadCutShort: a multipart upload whose package part never
// ends (the closing boundary is missing, the body complete) is a bad
// request naming the package, on both error dialects; nothing is released.
func TestReleaseUploadCutShort(t *testing.T) {
	t.Parallel()
	hb := setupHTTP(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(t, mw.WriteField("packageInfo", `{"appVersion":"1.0.0"}`))
	fw, err := mw.CreateFormFile("package", "main.jsbundle")
	require.NoError(t, err)
	_, err = fw.Write([]byte("bundle, cut short"))
	require.NoError(t, err)
	// No mw.Close(): the closing boundary never comes.
	body := buf.Bytes()
	code, b := hb.do(t, "POST", "/v1/codepush/apps/Swap-iOS/deployments/Staging/release", bytes.NewReader(body), mw.FormDataContentType())
	require.Equal(t, 400, code, string(b))
	require.Equal(t, "package", decode(t, b)["error"].(map[string]any)["field"])
	code, b = hb.do(t, "POST", "/cps/apps/Swap-iOS/deployments/Staging/release", bytes.NewReader(body), mw.FormDataContentType())
	require.Equal(t, 400, code, string(b))
	textError(t, b, "package", "")
	code, b = hb.do(t, "GET", "/v1/codepush/apps/Swap-iOS/deployments/Staging/history", nil, "")
	require.Equal(t, 200, code, string(b))
	require.Empty(t, decode(t, b)["history"], "nothing was released")
}
