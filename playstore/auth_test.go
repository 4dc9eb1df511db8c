package playstore_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/androidpublisher/v3"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

func TestAuthFromFileAndTokenURLOverride(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()

	path := filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(path, tb.saJSON, 0o600))
	c, err := playstore.New(ctx, playstore.Config{CredentialsFile: path, Endpoint: tb.url + "/"})
	require.NoError(t, err)
	_, err = c.Track(ctx, pkg, "production")
	require.NoError(t, err)

	// A real key's token_uri, redirected to the fake by TokenURL.
	var m map[string]any
	require.NoError(t, json.Unmarshal(tb.saJSON, &m))
	m["token_uri"] = "https://oauth2.googleapis.com/token"
	real, _ := json.Marshal(m)
	c, err = playstore.New(ctx, playstore.Config{CredentialsJSON: real, TokenURL: tb.url + "/token", Endpoint: tb.url + "/"})
	require.NoError(t, err)
	_, err = c.Track(ctx, pkg, "production")
	require.NoError(t, err)
	require.Equal(t, 2, tb.fake.TokensIssued(), "one token per client; setup's client made no call")

	// The same from a file, with an endpoint written without the slash.
	realPath := filepath.Join(t.TempDir(), "real.json")
	require.NoError(t, os.WriteFile(realPath, real, 0o600))
	c, err = playstore.New(ctx, playstore.Config{CredentialsFile: realPath, TokenURL: tb.url + "/token", Endpoint: tb.url})
	require.NoError(t, err)
	_, err = c.Track(ctx, pkg, "production")
	require.NoError(t, err)

	_, err = playstore.New(ctx, playstore.Config{CredentialsFile: filepath.Join(t.TempDir(), "missing.json"), TokenURL: tb.url + "/token"})
	require.ErrorIs(t, err, playstore.ErrInvalid)
	_, err = playstore.New(ctx, playstore.Config{})
	require.ErrorContains(t, err, "exactly one of CredentialsJSON, CredentialsFile and HTTPClient must be set (0 are)")
}

func TestCallerSuppliedHTTPClient(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	creds, err := google.CredentialsFromJSONWithType(ctx, tb.saJSON, google.ServiceAccount, androidpublisher.AndroidpublisherScope)
	require.NoError(t, err)
	c, err := playstore.New(ctx, playstore.Config{HTTPClient: oauth2.NewClient(ctx, creds.TokenSource), Endpoint: tb.url + "/"})
	require.NoError(t, err)
	ts, err := c.Track(ctx, pkg, "production")
	require.NoError(t, err)
	require.Len(t, ts.Releases, 1)

	c, err = playstore.New(ctx, playstore.Config{HTTPClient: &http.Client{}, Endpoint: tb.url + "/"})
	require.NoError(t, err)
	_, err = c.Track(ctx, pkg, "production")
	require.ErrorContains(t, err, "Error 401", "the fake only honours tokens it issued")
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()

	_, err := playstore.New(ctx, playstore.Config{CredentialsJSON: []byte(`-----BEGIN PRIVATE KEY-----\nMIIEsecret`)})
	require.ErrorIs(t, err, playstore.ErrInvalid)
	require.NotContains(t, err.Error(), "MIIEsecret")

	var m map[string]any
	require.NoError(t, json.Unmarshal(tb.saJSON, &m))
	m["type"] = "authorized_user"
	bad, _ := json.Marshal(m)
	_, err = playstore.New(ctx, playstore.Config{CredentialsJSON: bad})
	require.ErrorContains(t, err, `type is "authorized_user"`)
	require.NotContains(t, err.Error(), "PRIVATE KEY")

	// A failing call names the operation and Play's message, never the token.
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsInsert, Kind: playstoretest.FaultInternal, Times: 5})
	_, err = tb.client.Track(ctx, pkg, "production")
	require.Error(t, err)
	require.Contains(t, err.Error(), "Internal error encountered.")
	require.NotContains(t, err.Error(), "ya29.")
	require.NotContains(t, err.Error(), "PRIVATE KEY")
	require.False(t, strings.Contains(err.Error(), string(tb.saJSON[:40])))
}

func TestTokenEndpointFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("a 5xx from the token endpoint is retried", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodToken, Kind: playstoretest.FaultUnavailable})
		ts, err := tb.client.Track(ctx, pkg, "production")
		require.NoError(t, err)
		require.Len(t, ts.Releases, 1)
		require.Equal(t, 2, tb.fake.Calls(playstoretest.MethodToken), "the failed token request and its retry")
		require.Equal(t, 1, tb.fake.TokensIssued())
		require.Equal(t, []time.Duration{time.Second}, tb.slept(), "one backoff")
	})
	t.Run("a token endpoint that stays down gives a temporary error", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodToken, Kind: playstoretest.FaultInternal, Times: 100})
		_, err := tb.client.Track(ctx, pkg, "production")
		require.Error(t, err)
		require.True(t, playstore.IsTemporary(err), "a job may try again later: %v", err)
		require.False(t, playstore.CredentialsRefused(err))
		require.Equal(t, 5, tb.fake.Calls(playstoretest.MethodToken), "MaxAttempts token requests")
		require.Zero(t, tb.fake.Calls(playstoretest.MethodEditsInsert), "no API request went out without a token")
		require.NotContains(t, err.Error(), "PRIVATE KEY")
	})
	t.Run("a refused grant is not retried", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		// A key the fake never issued: invalid_grant, 400.
		other := playstoretest.New(time.Now())
		sa, err := other.ServiceAccountJSON(tb.url, "stranger@fake-project.iam.gserviceaccount.com")
		require.NoError(t, err)
		c := tb.newClient(t, sa)
		_, err = c.Track(ctx, pkg, "production")
		require.Error(t, err)
		require.False(t, playstore.IsTemporary(err), "a wrong key does not heal: %v", err)
		require.True(t, playstore.CredentialsRefused(err), "the lane can tell a person to fix the key: %v", err)
		require.Equal(t, 1, tb.fake.Calls(playstoretest.MethodToken))
		require.Empty(t, tb.slept())
	})
}
