package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
)

// clock is a settable time shared by the fake and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type appBundle struct {
	fake  *githubtest.Server
	srv   *httptest.Server
	clock *clock
	appID int64
	key   *rsa.PrivateKey
	inst  int64
	c     *github.Client
	repo  *githubtest.Repo
	head  string
}

// setupApp serves the fake (under prefix, as GitHub Enterprise serves its
// API under /api/v3) with an app installed on acme's repositories.
func setupApp(t *testing.T, prefix string, opts func(*github.ClientOptions)) *appBundle {
	t.Helper()
	b := &appBundle{fake: githubtest.New(), clock: newClock()}
	b.fake.Now = b.clock.Now
	b.fake.Token = "ghp_fixture" // a personal token works beside the app
	var h http.Handler = b.fake
	if prefix != "" {
		h = http.StripPrefix(strings.TrimSuffix(prefix, "/"), b.fake)
	}
	b.srv = httptest.NewServer(specChecked(t, h, prefix))
	t.Cleanup(b.srv.Close)
	var pemKey []byte
	b.appID, pemKey = b.fake.NewApp()
	var err error
	b.key, err = github.ParseAppKey(pemKey)
	require.NoError(t, err)
	b.inst = b.fake.Install(b.appID, "acme")
	b.repo = b.fake.Repo("acme/mobile")
	b.head = b.repo.Commit("init", githubtest.Files{"a": "1"})
	b.repo.LightweightTag("v1.0.0", b.head)
	o := github.ClientOptions{BaseURL: b.srv.URL + prefix, App: &github.AppCredentials{ID: b.appID, PrivateKey: b.key}, Now: b.clock.Now}
	if opts != nil {
		opts(&o)
	}
	b.c, err = github.NewClient(o)
	require.NoError(t, err)
	return b
}

func (b *appBundle) resolve(t *testing.T, repo string) error {
	t.Helper()
	r, err := b.c.Repo(repo)
	require.NoError(t, err)
	_, err = r.ResolveTag(t.Context(), "v1.0.0")
	return err
}

func TestAppTokensRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	require.NoError(t, b.resolve(t, "acme/mobile"))
	require.Equal(t, 1, b.fake.TokensMinted())
	b.clock.Advance(50 * time.Minute)
	require.NoError(t, b.resolve(t, "acme/mobile"))
	require.Equal(t, 1, b.fake.TokensMinted(), "ten minutes left: the token is kept")
	b.clock.Advance(6 * time.Minute)
	require.NoError(t, b.resolve(t, "acme/mobile"))
	require.Equal(t, 2, b.fake.TokensMinted(), "four minutes left: replaced before it expires")
	require.Zero(t, b.fake.Denied(), "no request ever carried an expired token")
	// The installation was looked up once for the repository.
	lookups := 0
	for _, r := range b.fake.Requests() {
		if strings.HasSuffix(r, "/installation") {
			lookups++
		}
	}
	require.Equal(t, 1, lookups)
}

func TestAppTokenRefreshedAfter401(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	require.NoError(t, b.resolve(t, "acme/mobile"))
	b.fake.RevokeTokens()
	require.NoError(t, b.resolve(t, "acme/mobile"), "the 401 is answered with a new token and the request is sent again")
	require.Equal(t, 2, b.fake.TokensMinted())
	require.Equal(t, 1, b.fake.Denied())
	// A POST is retried with its body too.
	b.fake.RevokeTokens()
	r, err := b.c.Repo("acme/mobile")
	require.NoError(t, err)
	d, err := r.CreateDeployment(t.Context(), github.NewDeployment{SHA: b.head, Environment: "ios-testflight", LaneID: "lane_1", ReleaseID: "rel_1"})
	require.NoError(t, err)
	require.NotZero(t, d.ID)
	require.Equal(t, 3, b.fake.TokensMinted())
}

func TestAppOnGitHubEnterprise(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "/api/v3/", func(o *github.ClientOptions) { o.App.InstallationID = 0 })
	require.NoError(t, b.resolve(t, "acme/mobile"))
	for _, r := range b.fake.Requests() {
		require.False(t, strings.HasPrefix(r, "GET /api/v3"), "the prefix is GitHub Enterprise's, the fake saw %s", r)
	}
	// With the installation configured, no lookup is made.
	b2 := setupApp(t, "/api/v3/", nil)
	c, err := github.NewClient(github.ClientOptions{BaseURL: b2.srv.URL + "/api/v3", Now: b2.clock.Now,
		App: &github.AppCredentials{ID: b2.appID, InstallationID: b2.inst, PrivateKey: b2.key}})
	require.NoError(t, err)
	r, err := c.Repo("acme/mobile")
	require.NoError(t, err)
	_, err = r.ResolveTag(t.Context(), "v1.0.0")
	require.NoError(t, err)
	for _, r := range b2.fake.Requests() {
		require.NotContains(t, r, "/installation ")
	}
}

func TestAppNotInstalled(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	b.fake.Repo("elsewhere/app")
	err := b.resolve(t, "elsewhere/app")
	require.ErrorContains(t, err, fmt.Sprintf("the app %d is not installed on elsewhere/app", b.appID))
	_, err = github.NewClient(github.ClientOptions{App: &github.AppCredentials{ID: 1}})
	require.ErrorContains(t, err, "needs its id and private key")
	_, err = github.ParseAppKey([]byte("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"))
	require.ErrorContains(t, err, "not an RSA key in PEM")
}

// The fake enforces GitHub's rules for an app's JWT, with GitHub's words.
func TestFakeChecksAppJWT(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	now := b.clock.Now()
	mint := func(key *rsa.PrivateKey, method jwt.SigningMethod, claims jwt.MapClaims) (int, string) {
		t.Helper()
		var signed string
		if method == jwt.SigningMethodHS256 {
			signed, err = jwt.NewWithClaims(method, claims).SignedString([]byte("secret"))
		} else {
			signed, err = jwt.NewWithClaims(method, claims).SignedString(key)
		}
		require.NoError(t, err)
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/app/installations/%d/access_tokens", b.srv.URL, b.inst), nil)
		req.Header.Set("Authorization", "Bearer "+signed)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body struct {
			Message string `json:"message"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Message
	}
	ok := jwt.MapClaims{"iss": b.appID, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(9 * time.Minute).Unix()}
	code, _ := mint(b.key, jwt.SigningMethodRS256, ok)
	require.Equal(t, 201, code, "iss may be a number")
	for _, tc := range []struct {
		name   string
		key    *rsa.PrivateKey
		method jwt.SigningMethod
		claims jwt.MapClaims
		msg    string
	}{
		{"exp over 10 minutes", b.key, jwt.SigningMethodRS256, jwt.MapClaims{"iss": fmt.Sprint(b.appID), "iat": now.Unix(), "exp": now.Add(11 * time.Minute).Unix()},
			"'Expiration time' claim ('exp') is too far in the future"},
		{"expired", b.key, jwt.SigningMethodRS256, jwt.MapClaims{"iss": fmt.Sprint(b.appID), "iat": now.Add(-20 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()},
			"'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"},
		{"issued in the future", b.key, jwt.SigningMethodRS256, jwt.MapClaims{"iss": fmt.Sprint(b.appID), "iat": now.Add(time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix()},
			"'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"},
		{"another key", other, jwt.SigningMethodRS256, ok, "A JSON web token could not be decoded"},
		{"not RS256", nil, jwt.SigningMethodHS256, ok, "A JSON web token could not be decoded"},
		{"unknown app", b.key, jwt.SigningMethodRS256, jwt.MapClaims{"iss": "42", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}, "A JSON web token could not be decoded"},
	} {
		code, msg := mint(tc.key, tc.method, tc.claims)
		require.Equal(t, 401, code, tc.name)
		require.Equal(t, tc.msg, msg, tc.name)
	}
	// An installation token cannot mint, and a JWT cannot read a repository.
	require.NoError(t, b.resolve(t, "acme/mobile"))
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/repos/acme/mobile/tags", nil)
	signed, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, ok).SignedString(b.key)
	req.Header.Set("Authorization", "Bearer "+signed)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
}

// Each installation spends its own budget: one spent does not stop another.
func TestBudgetPerInstallation(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	other := b.fake.Install(b.appID, "globex")
	g := b.fake.Repo("globex/app")
	g.LightweightTag("v1.0.0", g.Commit("init", githubtest.Files{"a": "1"}))
	b.fake.SetRateLimit(githubtest.InstallationKey(b.inst), 3)
	for range 3 {
		require.NoError(t, b.resolve(t, "acme/mobile"))
	}
	err := b.resolve(t, "acme/mobile")
	require.ErrorIs(t, err, github.ErrRateLimited)
	var rl *github.RateLimitedError
	require.ErrorAs(t, err, &rl)
	require.Equal(t, fmt.Sprintf("installation %d", b.inst), rl.Credential)
	require.Equal(t, 3, b.fake.Used(githubtest.InstallationKey(b.inst)), "refused here, not sent to GitHub")
	require.NoError(t, b.resolve(t, "globex/app"), "the other installation has its own budget")
	require.Equal(t, 1, b.fake.Used(githubtest.InstallationKey(other)))
	b.clock.Advance(time.Hour + time.Second)
	require.NoError(t, b.resolve(t, "acme/mobile"), "a new hour, a new budget")
}

func TestRetryAfterIsRespected(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	var limited sync.Once
	b.fake.SecondaryLimit = func(r *http.Request) time.Duration {
		d := time.Duration(0)
		limited.Do(func() { d = 2 * time.Minute })
		return d
	}
	err := b.resolve(t, "acme/mobile")
	require.ErrorIs(t, err, github.ErrRateLimited)
	require.ErrorContains(t, err, "GitHub asked to retry after 120 s")
	used := b.fake.Used(githubtest.InstallationKey(b.inst))
	b.clock.Advance(time.Minute)
	require.ErrorIs(t, b.resolve(t, "acme/mobile"), github.ErrRateLimited)
	require.Equal(t, used, b.fake.Used(githubtest.InstallationKey(b.inst)), "nothing sent while GitHub asked to wait")
	b.clock.Advance(61 * time.Second)
	require.NoError(t, b.resolve(t, "acme/mobile"))
}

// Asset polls stop at the reserve; everything else goes on to the end of
// the budget.
func TestPollsLeaveTheReserve(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", func(o *github.ClientOptions) { o.PollBackoff = time.Nanosecond })
	b.fake.SetRateLimit(githubtest.InstallationKey(b.inst), 20)
	r, err := b.c.Repo("acme/mobile")
	require.NoError(t, err)
	polls := 0
	for range 30 {
		_, _, err := r.FetchAsset(t.Context(), "v9.9.9", "*.aab")
		require.ErrorIs(t, err, fs.ErrNotExist)
		var nr *github.AssetNotReadyError
		if errors.As(err, &nr) {
			require.ErrorIs(t, err, github.ErrRateLimited)
			require.Contains(t, nr.Reason, "polls leave the last 25% to releases")
			break
		}
		polls++
		b.clock.Advance(time.Millisecond)
	}
	require.Equal(t, 15, polls, "20 requests an hour, 5 kept back")
	for range 5 {
		require.NoError(t, b.resolve(t, "acme/mobile"), "a release's own reads still go")
	}
	require.ErrorIs(t, b.resolve(t, "acme/mobile"), github.ErrRateLimited)
}

// TestAssetPollingOverAnHour: 300 releases wait for their assets, each lane
// asking every minute for an hour. Polling backs off, so they spend a small
// share of one installation's 5,000 requests, and an asset that appears is
// still picked up within the back-off's cap.
func TestAssetPollingOverAnHour(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	r, err := b.c.Repo("acme/mobile")
	require.NoError(t, err)
	ctx := context.Background()
	const releases = 300
	for minute := 0; minute < 60; minute++ {
		for i := range releases {
			_, _, err := r.FetchAsset(ctx, fmt.Sprintf("v1.%d.0", i), "*.aab")
			require.ErrorIs(t, err, fs.ErrNotExist)
		}
		b.clock.Advance(time.Minute)
	}
	used := b.fake.Used(githubtest.InstallationKey(b.inst))
	t.Logf("%d lanes polling every minute for an hour: %d requests (of 5000)", releases, used)
	require.Less(t, used, 2500, "before: 18,000 requests an hour, over three times the budget")

	b.repo.Release("v1.7.0", map[string][]byte{"app.aab": []byte("aab")})
	found := -1
	for m := 0; m <= 16; m++ {
		f, _, err := r.FetchAsset(ctx, "v1.7.0", "*.aab")
		if err == nil {
			f.Close()
			found = m
			break
		}
		b.clock.Advance(time.Minute)
	}
	require.GreaterOrEqual(t, found, 0, "the asset was found")
	require.LessOrEqual(t, time.Duration(found)*time.Minute, github.MaxPollBackoff)
	_, _, err = r.FetchAsset(ctx, "v1.7.0", "*.aab")
	require.NoError(t, err, "once found, no back-off")
}
