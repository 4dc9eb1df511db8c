package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/service"
)

// TestErrorShapes: every error under /v1 — unknown routes and wrong
// methods included, in the mounted CodePush API too — is the JSON error
// shape, with Allow on 405; the CodePush CLI's routes at the root answer
// as code-push-server does, in plain sentences.
func TestErrorShapes(t *testing.T) {
	t.Parallel()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
tokens:
  - {name: viewer, role: viewer, token: %q}
  - {name: ops, role: operator, token: %q}
  - {name: admin, role: admin, token: %q}
apps:
  - {name: acme, repository: acme/mobile, webhook_secret: s, ota: {enabled: true}}
`, t.TempDir(), viewerToken, operatorToken, adminToken)
	cfg, err := config.Parse([]byte(yaml), "")
	require.NoError(t, err)
	svc, err := service.New(context.Background(), cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	h := svc.HTTP.Handler()
	do := func(method, path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	for _, tc := range []struct {
		method, path, token string
		status              int
		code, allow         string
	}{
		{"GET", "/v1/nope", adminToken, 404, "not_found", ""},
		{"GET", "/v1", "", 404, "not_found", ""},
		{"DELETE", "/v1/releases", adminToken, 405, "method_not_allowed", "GET"},
		{"PUT", "/v1/access-keys", adminToken, 405, "method_not_allowed", "POST"},
		{"GET", "/v1/access-keys/x", adminToken, 405, "method_not_allowed", "DELETE"},
		{"GET", "/v1/ota/releases", adminToken, 405, "method_not_allowed", "POST"},
		{"GET", "/v1/access-keys", operatorToken, 403, "forbidden", ""},
		{"GET", "/v1/access-keys", "", 401, "unauthorized", ""},
		{"POST", "/v1/ota/releases", viewerToken, 403, "forbidden", ""},
		{"POST", "/v1/ota/releases", operatorToken, 400, "invalid", ""},
		{"GET", "/v1/codepush/nope", viewerToken, 404, "not_found", ""},
		{"GET", "/v1/codepush/apps/nope", viewerToken, 404, "not_found", ""},
		{"GET", "/v1/codepush/apps/acme-ios/deployments/Nope/history", viewerToken, 404, "not_found", ""},
		{"DELETE", "/v1/codepush/apps", operatorToken, 405, "method_not_allowed", "GET"},
		{"PUT", "/v1/codepush/apps/acme-ios/deployments/Staging/release", operatorToken, 405, "method_not_allowed", "PATCH"},
		{"POST", "/v1/codepush/apps/acme-ios/deployments/Staging/release", operatorToken, 400, "invalid", ""},
		{"POST", "/v1/codepush/apps", viewerToken, 403, "forbidden", ""},
	} {
		rec := do(tc.method, tc.path, tc.token)
		name := tc.method + " " + tc.path
		require.Equal(t, tc.status, rec.Code, "%s: %s", name, rec.Body.String())
		require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json"), "%s: %s", name, rec.Header().Get("Content-Type"))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), "%s: %s", name, rec.Body.String())
		require.Equal(t, tc.code, e.Error.Code, name)
		require.NotEmpty(t, e.Error.Message, name)
		if tc.allow != "" {
			require.Contains(t, rec.Header().Get("Allow"), tc.allow, name)
		}
	}

	// The CodePush CLI's API answers as code-push-server: plain sentences.
	key := func() string {
		req := httptest.NewRequest("POST", "/v1/access-keys", strings.NewReader(`{"name":"cli","role":"viewer"}`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, 201, rec.Code, rec.Body.String())
		var k struct{ Key string }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &k))
		return k.Key
	}()
	for _, tc := range []struct {
		method, path, token string
		status              int
		body                string
	}{
		{"GET", "/authenticated", "", 401, `The session or access key being used is invalid, please run "code-push login SERVER_URL --accessKey KEY" again with a releasepilot access key.`},
		{"GET", "/apps", "not a key", 401, `The session or access key being used is invalid, please run "code-push login SERVER_URL --accessKey KEY" again with a releasepilot access key.`},
		{"GET", "/apps/nope", key, 404, `App "nope" does not exist.`},
		{"GET", "/apps/acme-ios/deployments/Nope/", key, 404, `Deployment "Nope" does not exist.`},
		{"POST", "/apps/", key, 403, `This action requires the operator role; accesskey:cli has the viewer role.`},
		{"POST", "/authenticated", key, 405, `Cannot POST /authenticated`},
		{"GET", "/apps/acme-ios/nope", key, 404, `Cannot GET /apps/acme-ios/nope`},
		{"DELETE", "/sessions/my-laptop", key, 404, `There are no sessions associated with "my-laptop."`},
		{"DELETE", "/accessKeys/rpk_secret-looking", key, 404, `Access key "(hidden)" does not exist.`},
	} {
		rec := do(tc.method, tc.path, tc.token)
		name := tc.method + " " + tc.path
		require.Equal(t, tc.status, rec.Code, "%s: %s", name, rec.Body.String())
		require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"), name)
		require.Equal(t, tc.body, rec.Body.String(), name)
	}
	rec := do("GET", "/authenticated/", key)
	require.Equal(t, 200, rec.Code)
	require.JSONEq(t, `{"authenticated":true}`, rec.Body.String())
}
