package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const adminToken = "admin-token-0123456789"

type keysBundle struct {
	st  *store.Store
	srv *httpapi.Server
	h   http.Handler
	now time.Time
	log *bytes.Buffer
}

func setupKeys(t *testing.T, e store.Engine) *keysBundle {
	t.Helper()
	b := &keysBundle{st: store.New(storetest.Open(t, e)), now: t0, log: &bytes.Buffer{}}
	b.srv = httpapi.New(httpapi.Deps{Store: b.st, Now: func() time.Time { return b.now }, Logger: slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Tokens: []httpapi.Token{httpapi.NewToken("root", httpapi.RoleAdmin, adminToken), httpapi.NewToken("viewer", httpapi.RoleViewer, "viewer-token-0123456789")}})
	b.h = b.srv.Handler()
	return b
}

func (b *keysBundle) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (b *keysBundle) create(t *testing.T, body string) (string, map[string]any) {
	t.Helper()
	code, out := b.do(t, "POST", "/v1/access-keys", adminToken, body)
	require.Equal(t, http.StatusCreated, code, out)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	return m["key"].(string), m
}

// TestAccessKeys: admins create, list and revoke access keys; a key works
// as a credential with its role until it expires or is revoked; its secret
// is shown once and never again — not in lists, events or logs.
func TestAccessKeys(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setupKeys(t, e)
			ctx := context.Background()

			code, out := b.do(t, "POST", "/v1/access-keys", "viewer-token-0123456789", `{"name":"ci","role":"operator"}`)
			require.Equal(t, http.StatusForbidden, code, out)
			for body, want := range map[string]string{
				`{"name":"ci","role":"root"}`:                `role: \"root\" is not one of viewer, operator, admin`,
				`{"name":"","role":"viewer"}`:                `name: must be 1 to 100 letters`,
				`{"name":"ci","role":"viewer","ttl":"soon"}`: `ttl: \"soon\" is not a duration`,
				`{"name":"ci","role":"viewer","ttl":"-1h"}`:  `ttl: \"-1h0m0s\" must be between 0`,
				`{"name":"ci","role":"viewer","bogus":1}`:    `unknown field`,
			} {
				code, out := b.do(t, "POST", "/v1/access-keys", adminToken, body)
				require.Equal(t, http.StatusBadRequest, code, body)
				require.Contains(t, out, want, body)
			}

			secret, created := b.create(t, `{"name":"ci","role":"operator","ttl":"24h"}`)
			require.Regexp(t, `^rpk_[A-Za-z0-9_-]{43}$`, secret, "a code-push-server compatible key")
			require.Equal(t, map[string]any{"name": "ci", "role": "operator", "created_by": "token:root", "created_at": "2026-11-25T12:00:00Z",
				"expires_at": "2026-11-26T12:00:00Z", "key": secret}, created)
			code, out = b.do(t, "POST", "/v1/access-keys", adminToken, `{"name":"ci","role":"viewer"}`)
			require.Equal(t, http.StatusConflict, code, out)

			// The key is a credential: its role, its name as actor.
			p, err := b.srv.Authenticator().Principal(ctx, secret)
			require.NoError(t, err)
			require.Equal(t, httpapi.Principal{Actor: "accesskey:ci", Name: "ci", Role: httpapi.RoleOperator, AccessKey: true,
				ExpiresAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}, p)
			code, _ = b.do(t, "GET", "/v1/releases", secret, "")
			require.Equal(t, http.StatusOK, code)
			code, _ = b.do(t, "GET", "/v1/access-keys", secret, "")
			require.Equal(t, http.StatusForbidden, code, "an operator is not an admin")
			p, err = b.srv.Authenticator().Principal(ctx, adminToken)
			require.NoError(t, err)
			require.Equal(t, httpapi.Principal{Actor: "token:root", Name: "root", Role: httpapi.RoleAdmin}, p)
			_, err = b.srv.Authenticator().Principal(ctx, "rpk_unknown")
			require.ErrorIs(t, err, httpapi.ErrUnknownCredential)

			// As the dashboard's Credentials: sign-in and the lookup on
			// every request after it.
			var creds httpapi.Credentials = b.srv.Authenticator()
			id, ok, err := creds.Authenticate(ctx, secret)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, httpapi.Identity{Subject: "accesskey:ci", Actor: "accesskey:ci", Role: httpapi.RoleOperator}, id)
			id, ok, err = creds.Lookup(ctx, "accesskey:ci")
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, httpapi.RoleOperator, id.Role)
			id, ok, err = creds.Lookup(ctx, "token:root")
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, httpapi.RoleAdmin, id.Role)
			_, ok, err = creds.Authenticate(ctx, "rpk_unknown")
			require.NoError(t, err)
			require.False(t, ok)

			code, out = b.do(t, "GET", "/v1/access-keys", adminToken, "")
			require.Equal(t, http.StatusOK, code)
			require.JSONEq(t, `{"access_keys":[{"name":"ci","role":"operator","created_by":"token:root","created_at":"2026-11-25T12:00:00Z","expires_at":"2026-11-26T12:00:00Z"}]}`, out)

			// Expired: refused, saying so.
			b.now = b.now.Add(25 * time.Hour)
			code, out = b.do(t, "GET", "/v1/releases", secret, "")
			require.Equal(t, http.StatusUnauthorized, code)
			require.Contains(t, out, `access key \"ci\" expired at 2026-11-26T12:00:00Z`)
			_, err = b.srv.Authenticator().Principal(ctx, secret)
			require.ErrorIs(t, err, httpapi.ErrExpiredCredential)
			_, ok, err = creds.Authenticate(ctx, secret)
			require.NoError(t, err)
			require.False(t, ok, "an expired key signs nobody in")
			_, ok, err = creds.Lookup(ctx, "accesskey:ci")
			require.NoError(t, err)
			require.False(t, ok, "and ends the sessions it signed in")

			// Revoked: gone at once.
			forever, _ := b.create(t, `{"name":"deploy bot","role":"viewer"}`)
			code, _ = b.do(t, "GET", "/v1/releases", forever, "")
			require.Equal(t, http.StatusOK, code, "no ttl: no expiry")
			code, _ = b.do(t, "DELETE", "/v1/access-keys/deploy%20bot", adminToken, "")
			require.Equal(t, http.StatusNoContent, code)
			code, _ = b.do(t, "GET", "/v1/releases", forever, "")
			require.Equal(t, http.StatusUnauthorized, code)
			_, ok, err = creds.Lookup(ctx, "accesskey:deploy bot")
			require.NoError(t, err)
			require.False(t, ok, "a revoked key's sessions end")
			code, out = b.do(t, "DELETE", "/v1/access-keys/deploy%20bot", adminToken, "")
			require.Equal(t, http.StatusNotFound, code, out)

			// The audit log has who made and revoked what, never a secret.
			evs, err := b.st.Events(ctx, "", 0, 100)
			require.NoError(t, err)
			var kinds []string
			for _, ev := range evs {
				kinds = append(kinds, ev.Kind+" "+ev.Actor)
			}
			require.Equal(t, []string{"access_key.created token:root", "access_key.created token:root", "access_key.revoked token:root"}, kinds)
			raw, _ := json.Marshal(evs)
			for _, s := range []string{secret, forever} {
				require.NotContains(t, string(raw), s)
				require.NotContains(t, b.log.String(), s)
				require.NotContains(t, string(raw), store.HashSecret(s), "not even the hash")
			}
		})
	}
}

// TestCodePushAccessKeys: through the CodePush CLI's /accessKeys, anyone
// makes keys of their own role and sees and removes the keys they made;
// admins see every key. Secrets are shown once.
func TestCodePushAccessKeys(t *testing.T) {
	t.Parallel()
	b := setupKeys(t, store.SQLite)
	operator, _ := b.create(t, `{"name":"ana","role":"operator"}`)
	api := &httpapi.CodePushAPI{Auth: b.srv.Authenticator(), Store: b.st, Now: func() time.Time { return b.now },
		Management: http.NotFoundHandler()}
	do := func(method, path, token, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, out := do("POST", "/accessKeys/", operator, `{"createdBy":"anas-laptop","friendlyName":"ci","ttl":5184000000}`)
	require.Equal(t, http.StatusCreated, code, out)
	var made struct {
		AccessKey struct {
			Name, FriendlyName, CreatedBy string
			Expires                       int64
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &made))
	require.Equal(t, "ci", made.AccessKey.FriendlyName)
	require.Equal(t, "accesskey:ana", made.AccessKey.CreatedBy)
	require.Equal(t, t0.Add(60*24*time.Hour).UnixMilli(), made.AccessKey.Expires)
	ci := made.AccessKey.Name
	p, err := b.srv.Authenticator().Principal(context.Background(), ci)
	require.NoError(t, err)
	require.Equal(t, httpapi.RoleOperator, p.Role, "a key made through the CLI has its maker's role")

	code, out = do("POST", "/accessKeys", operator, `{"friendlyName":"ci"}`)
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, `The access key "ci" already exists.`, out)
	code, out = do("POST", "/accessKeys", operator, `{"friendlyName":"bad/name"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.JSONEq(t, `[{"field":"friendlyName","message":"Field is invalid"}]`, out)

	code, out = do("GET", "/accessKeys", operator, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, out, `"friendlyName":"ci"`)
	require.NotContains(t, out, `"friendlyName":"ana"`, "made by the admin, not by ana")
	require.NotContains(t, out, ci)
	require.Contains(t, out, `"name":"(hidden)"`)
	code, out = do("GET", "/accessKeys", adminToken, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, out, `"friendlyName":"ana"`)
	require.Contains(t, out, `"friendlyName":"ci"`)

	code, _ = do("DELETE", "/accessKeys/ana", operator, "")
	require.Equal(t, http.StatusNotFound, code, "ana cannot remove the key the admin made")
	code, out = do("PATCH", "/accessKeys/ci", operator, `{"friendlyName":"ci-2","ttl":0}`)
	require.Equal(t, http.StatusOK, code, out)
	require.NotContains(t, out, ci)
	code, _ = do("DELETE", "/accessKeys/ci-2", operator, "")
	require.Equal(t, http.StatusNoContent, code)
	_, err = b.srv.Authenticator().Principal(context.Background(), ci)
	require.True(t, errors.Is(err, httpapi.ErrUnknownCredential))

	code, out = do("GET", "/account", operator, "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"account":{"email":"accesskey:ana","name":"ana","linkedProviders":[]}}`, out)

	// The CLI's /apps routes get the caller as the CodePush actor.
	var seen string
	api = &httpapi.CodePushAPI{Auth: b.srv.Authenticator(), Store: b.st, Management: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = codepush.ActorFrom(r.Context()).Name
		w.WriteHeader(http.StatusNoContent)
	})}
	code, _ = do("DELETE", "/apps/x", operator, "")
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, "accesskey:ana", seen)
	code, out = do("DELETE", "/apps/x", "viewer-token-0123456789", "")
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "This action requires the operator role; token:viewer has the viewer role.", out)
}
