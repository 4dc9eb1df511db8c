package playstoretest_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/androidpublisher/v3"

	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// tokenFor fetches a token for the given scopes through Google's library.
func tokenFor(t *testing.T, tb *testBundle, scopes ...string) string {
	t.Helper()
	creds, err := google.CredentialsFromJSONWithType(context.Background(), tb.sa, google.ServiceAccount, scopes...)
	require.NoError(t, err)
	tok, err := creds.TokenSource.Token()
	require.NoError(t, err)
	return tok.AccessToken
}

func TestTokensAreBoundToTheirScope(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	reportingPath := "/v1beta1/apps/" + pkg + "/crashRateMetricSet"
	editsPath := "/androidpublisher/v3/applications/" + pkg + "/edits"
	call := func(token, method, path string) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, tb.url+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &body)
		return resp, body
	}
	wantScopeError := func(resp *http.Response, body map[string]any, scope, service string) {
		t.Helper()
		require.Equal(t, 403, resp.StatusCode)
		require.Equal(t, `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="`+scope+`"`, resp.Header.Get("WWW-Authenticate"))
		e := body["error"].(map[string]any)
		require.Equal(t, "Request had insufficient authentication scopes.", e["message"])
		require.Equal(t, "PERMISSION_DENIED", e["status"])
		require.Equal(t, "insufficientPermissions", e["errors"].([]any)[0].(map[string]any)["reason"])
		d := e["details"].([]any)[0].(map[string]any)
		require.Equal(t, "ACCESS_TOKEN_SCOPE_INSUFFICIENT", d["reason"])
		require.Equal(t, service, d["metadata"].(map[string]any)["service"])
	}

	// An androidpublisher token cannot read vitals.
	resp, body := call(tb.token, "GET", reportingPath)
	wantScopeError(resp, body, playstoretest.ScopeReporting, "playdeveloperreporting.googleapis.com")

	// A Reporting token cannot open an edit.
	rep := tokenFor(t, tb, playstoretest.ScopeReporting)
	resp, body = call(rep, "POST", editsPath)
	wantScopeError(resp, body, playstoretest.ScopeAndroidPublisher, "androidpublisher.googleapis.com")
	resp, _ = call(rep, "GET", reportingPath)
	require.Equal(t, 200, resp.StatusCode)

	// A token with both scopes may do both.
	both := tokenFor(t, tb, playstoretest.ScopeAndroidPublisher, playstoretest.ScopeReporting)
	resp, _ = call(both, "GET", reportingPath)
	require.Equal(t, 200, resp.StatusCode)
	resp, _ = call(both, "POST", editsPath)
	require.Equal(t, 200, resp.StatusCode)
}

// assertion signs a JWT-bearer assertion with the key of tb.sa.
func assertion(t *testing.T, tb *testBundle, claims map[string]any) string {
	t.Helper()
	var sa struct {
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
	}
	require.NoError(t, json.Unmarshal(tb.sa, &sa))
	blk, _ := pem.Decode([]byte(sa.PrivateKey))
	require.NotNil(t, blk)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	base := map[string]any{"iss": sa.ClientEmail, "scope": playstoretest.ScopeAndroidPublisher, "aud": tb.url + "/token"}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	cl, _ := json.Marshal(base)
	signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(cl)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.(*rsa.PrivateKey), crypto.SHA256, sum[:])
	require.NoError(t, err)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func postToken(t *testing.T, tb *testBundle, jwt string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(tb.url+"/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwt}})
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestJWTLifetimeIsChecked(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	now := time.Now().Unix()
	const msg = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	for name, claims := range map[string]map[string]any{
		"no iat":              {"exp": now + 3600, "iat": nil},
		"two hours":           {"iat": now, "exp": now + 7200},
		"an hour and a bit":   {"iat": now - 10, "exp": now + 3591},
		"exp before iat":      {"iat": now, "exp": now - 1},
		"issued in a day":     {"iat": now + 86400, "exp": now + 86400 + 3600},
		"expired an hour ago": {"iat": now - 7200, "exp": now - 3600},
	} {
		code, body := postToken(t, tb, assertion(t, tb, claims))
		require.Equal(t, 400, code, name)
		require.Equal(t, map[string]any{"error": "invalid_grant", "error_description": msg}, body, name)
	}
	code, body := postToken(t, tb, assertion(t, tb, map[string]any{"iat": now, "exp": now + 3600}))
	require.Equal(t, 200, code, body)
	require.Equal(t, "Bearer", body["token_type"])
}

func TestTokenFaultsAreInjected(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	before := tb.fake.Calls(playstoretest.MethodToken)
	require.Equal(t, 1, before, "setup fetched one token")
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodToken, Kind: playstoretest.FaultUnavailable, RetryAfter: 3 * time.Second})
	now := time.Now().Unix()
	jwt := assertion(t, tb, map[string]any{"iat": now, "exp": now + 3600})
	resp, err := http.PostForm(tb.url+"/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwt}})
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode)
	require.Equal(t, "3", resp.Header.Get("Retry-After"))
	require.JSONEq(t, `{"error":"unavailable","error_description":"The service is currently unavailable."}`, string(b))
	issued := tb.fake.TokensIssued()

	code, _ := postToken(t, tb, jwt)
	require.Equal(t, 200, code, "the fault was used up")
	require.Equal(t, before+2, tb.fake.Calls(playstoretest.MethodToken))
	require.Equal(t, issued+1, tb.fake.TokensIssued())
}

func TestNoUpgradePathAcrossTracks(t *testing.T) {
	t.Parallel()
	commit := func(tb *testBundle, track string, rels ...*androidpublisher.TrackRelease) error {
		id := tb.insert(t)
		_, err := tb.svc.Edits.Tracks.Update(pkg, id, track, &androidpublisher.Track{Track: track, Releases: rels}).Do()
		require.NoError(t, err)
		_, err = tb.svc.Edits.Commit(pkg, id).Do()
		return err
	}
	live := &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{41}}

	t.Run("a versionCode below one active on another track is refused", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.ConsoleUpdate(pkg, "beta", playstoretest.Release{VersionCodes: []int64{43}, Status: "completed"})
		err := commit(tb, "production", live, &androidpublisher.TrackRelease{Status: "inProgress", UserFraction: 0.1, VersionCodes: []int64{42}})
		g := gerr(t, err)
		require.Equal(t, 403, g.Code)
		require.Equal(t, "You cannot rollout this release because it does not allow any existing users to upgrade to the newly added APKs.", g.Message)
		require.Equal(t, "forbidden", g.Errors[0].Reason)
		require.Equal(t, []playstoretest.Release{{VersionCodes: []int64{41}, Status: "completed"}}, tb.fake.Track(pkg, "production"))
	})

	t.Run("an in-progress release on another track counts", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.ConsoleUpdate(pkg, "alpha", playstoretest.Release{VersionCodes: []int64{43}, Status: "inProgress", UserFraction: 0.5})
		err := commit(tb, "internal", &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{42}})
		require.Equal(t, 403, gerr(t, err).Code)
	})

	t.Run("drafts and halted releases elsewhere do not count", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.ConsoleUpdate(pkg, "beta", playstoretest.Release{VersionCodes: []int64{43}, Status: "draft"})
		tb.fake.ConsoleUpdate(pkg, "alpha", playstoretest.Release{VersionCodes: []int64{43}, Status: "halted", UserFraction: 0.2})
		require.NoError(t, commit(tb, "production", live, &androidpublisher.TrackRelease{Status: "inProgress", UserFraction: 0.1, VersionCodes: []int64{42}}))
	})

	t.Run("a release already on the track may go on while a newer one is tested", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.ConsoleUpdate(pkg, "production", playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
			playstoretest.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1})
		tb.fake.ConsoleUpdate(pkg, "internal", playstoretest.Release{VersionCodes: []int64{43}, Status: "completed"})
		require.NoError(t, commit(tb, "production", live, &androidpublisher.TrackRelease{Status: "inProgress", UserFraction: 0.25, VersionCodes: []int64{42}}))
		require.NoError(t, commit(tb, "production", &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{42}}))
	})

	t.Run("equal or higher is fine", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.ConsoleUpdate(pkg, "internal", playstoretest.Release{VersionCodes: []int64{42}, Status: "completed"})
		require.NoError(t, commit(tb, "production", live, &androidpublisher.TrackRelease{Status: "inProgress", UserFraction: 0.1, VersionCodes: []int64{42}}))
	})
}

func TestDraftAppTakesOnlyDrafts(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.fake.AddApp("com.example.new")
	tb.fake.SeedBundles("com.example.new", 1)
	tb.fake.SetDraftApp("com.example.new")
	const msg = "Only releases with status draft may be created on draft app."
	for _, r := range []*androidpublisher.TrackRelease{
		{Status: "completed", VersionCodes: []int64{1}},
		{Status: "inProgress", UserFraction: 0.1, VersionCodes: []int64{1}},
	} {
		e, err := tb.svc.Edits.Insert("com.example.new", &androidpublisher.AppEdit{}).Do()
		require.NoError(t, err)
		_, err = tb.svc.Edits.Tracks.Update("com.example.new", e.Id, "internal", &androidpublisher.Track{Track: "internal", Releases: []*androidpublisher.TrackRelease{r}}).Do()
		g := gerr(t, err)
		require.Equal(t, 400, g.Code)
		require.Equal(t, msg, g.Message)
		require.Equal(t, "badRequest", g.Errors[0].Reason)
	}
	e, err := tb.svc.Edits.Insert("com.example.new", &androidpublisher.AppEdit{}).Do()
	require.NoError(t, err)
	_, err = tb.svc.Edits.Tracks.Update("com.example.new", e.Id, "internal", &androidpublisher.Track{Track: "internal", Releases: []*androidpublisher.TrackRelease{
		{Status: "draft", VersionCodes: []int64{1}}}}).Do()
	require.NoError(t, err)
	_, err = tb.svc.Edits.Commit("com.example.new", e.Id).Do()
	require.NoError(t, err)
	require.Equal(t, []playstoretest.Release{{VersionCodes: []int64{1}, Status: "draft"}}, tb.fake.Track("com.example.new", "internal"))

	// Other apps are not drafts.
	id := tb.insert(t)
	_, err = tb.svc.Edits.Tracks.Update(pkg, id, "production", &androidpublisher.Track{Track: "production", Releases: []*androidpublisher.TrackRelease{
		{Status: "completed", VersionCodes: []int64{42}}}}).Do()
	require.NoError(t, err)
}
