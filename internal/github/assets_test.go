package github_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
)

func TestFetchAsset(t *testing.T) {
	t.Parallel()
	fake := githubtest.New()
	fake.Token = "gh-secret-token"
	srv := httptest.NewServer(fake)
	defer srv.Close()
	repo := fake.Repo("acme/mobile")
	repo.Release("v1.4.0", map[string][]byte{"app-release.aab": []byte("AAB bytes"), "bundle-ios.zip": []byte("PK zip")})

	c, err := github.NewClient(github.ClientOptions{BaseURL: srv.URL, Token: "gh-secret-token"})
	require.NoError(t, err)
	r, err := c.Repo("acme/mobile")
	require.NoError(t, err)

	f, name, err := r.FetchAsset(context.Background(), "v1.4.0", "*.aab")
	require.NoError(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	require.Equal(t, "app-release.aab", name)
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	require.Equal(t, "AAB bytes", string(b))

	_, _, err = r.FetchAsset(context.Background(), "v1.4.0", "*.ipa")
	require.True(t, errors.Is(err, fs.ErrNotExist))
	require.Contains(t, err.Error(), `release v1.4.0 has no asset matching "*.ipa" (assets: app-release.aab, bundle-ios.zip)`)

	_, _, err = r.FetchAsset(context.Background(), "v9.9.9", "*.aab")
	require.True(t, errors.Is(err, fs.ErrNotExist), err)
	require.NotContains(t, err.Error(), "gh-secret-token")

	_, _, err = r.FetchAsset(context.Background(), "v1.4.0", "[")
	require.ErrorContains(t, err, `asset pattern "["`)
}
