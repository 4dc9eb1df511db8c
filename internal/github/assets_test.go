package github_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"sync"
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
	require.Contains(t, err.Error(), `release v1.4.0 has no asset matching "*.ipa" (assets: app-release.aab, bundle-ios.zip; looked for again after`)

	_, _, err = r.FetchAsset(context.Background(), "v9.9.9", "*.aab")
	require.True(t, errors.Is(err, fs.ErrNotExist), err)
	require.NotContains(t, err.Error(), "gh-secret-token")

	_, _, err = r.FetchAsset(context.Background(), "v1.4.0", "[")
	require.ErrorContains(t, err, `asset pattern "["`)
}

// TestFetchAssetConcurrently: lanes of two platforms fetch their assets at
// once (go-github swaps its client's CheckRedirect during a download; under
// -race this test caught it racing with the other lane's requests).
func TestFetchAssetConcurrently(t *testing.T) {
	t.Parallel()
	fake := githubtest.New()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.Repo("acme/mobile").Release("v1.4.0", map[string][]byte{"bundle-ios.zip": []byte("ios"), "bundle-android.zip": []byte("android")})
	c, err := github.NewClient(github.ClientOptions{BaseURL: srv.URL})
	require.NoError(t, err)
	r, err := c.Repo("acme/mobile")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Go(func() {
			platform := []string{"ios", "android"}[i%2]
			f, _, err := r.FetchAsset(context.Background(), "v1.4.0", "bundle-"+platform+".zip")
			if err != nil {
				errs <- err
				return
			}
			defer os.Remove(f.Name())
			defer f.Close()
			b, err := io.ReadAll(f)
			if err == nil && string(b) != platform {
				err = errors.New("got " + string(b) + " for " + platform)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
