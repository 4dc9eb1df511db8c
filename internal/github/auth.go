package github

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AppCredentials authenticate as a GitHub App: installation tokens are
// minted with a JWT signed by the app's private key (RS256, golang-jwt) and
// refreshed before they expire.
type AppCredentials struct {
	// ID is the app's id.
	ID int64
	// InstallationID is the app's installation on the repositories'
	// account; 0 looks it up for each repository
	// (GET /repos/{owner}/{repo}/installation).
	InstallationID int64
	PrivateKey     *rsa.PrivateKey
}

// ParseAppKey reads the PEM private key GitHub generates for an app.
func ParseAppKey(pemKey []byte) (*rsa.PrivateKey, error) {
	k, err := jwt.ParseRSAPrivateKeyFromPEM(pemKey)
	if err != nil {
		return nil, errors.New("github: the app's private key is not an RSA key in PEM")
	}
	return k, nil
}

// Installation tokens live an hour; one is replaced once less than
// tokenRefresh of its life is left, so no request carries one that expires
// on the way.
const (
	tokenRefresh = 5 * time.Minute
	jwtBackdate  = 60 * time.Second // GitHub's advice against clock drift
	jwtLifetime  = 9 * time.Minute  // GitHub allows at most 10 from now
)

// credential is what authenticates one request.
type credential struct {
	key    string // budget key
	label  string // for errors: never the secret
	header string // Authorization value, "" for none
	// installation and token are set for app installation tokens, which
	// can be refreshed after a 401.
	installation int64
	token        string
}

// authorizer hands out credentials for requests to a repository ("" for
// requests that name none).
type authorizer interface {
	credential(ctx context.Context, repo string) (credential, error)
	// refresh drops c if it is still the current credential (a 401) and
	// reports whether a fresh one can be tried.
	refresh(c credential) bool
}

type anonymous struct{}

func (anonymous) credential(context.Context, string) (credential, error) {
	return credential{key: "anonymous", label: "anonymous"}, nil
}
func (anonymous) refresh(credential) bool { return false }

type tokenAuth struct{ token, key string }

func newTokenAuth(tok string) tokenAuth {
	sum := sha256.Sum256([]byte(tok))
	return tokenAuth{token: tok, key: "token:" + hex.EncodeToString(sum[:6])}
}

func (t tokenAuth) credential(context.Context, string) (credential, error) {
	return credential{key: t.key, label: "token", header: "Bearer " + t.token}, nil
}
func (tokenAuth) refresh(credential) bool { return false }

// appAuth mints and caches installation tokens.
type appAuth struct {
	creds AppCredentials
	base  *url.URL
	rt    http.RoundTripper
	now   func() time.Time

	mu       sync.Mutex
	installs map[string]int64 // repository → installation
	tokens   map[int64]*installToken
}

type installToken struct {
	mu      sync.Mutex
	token   string
	expires time.Time
}

func (a *appAuth) credential(ctx context.Context, repo string) (credential, error) {
	id := a.creds.InstallationID
	if id == 0 {
		if repo == "" {
			return credential{}, errors.New("github: the app needs a repository to find its installation (set github.app.installation_id)")
		}
		var err error
		if id, err = a.installation(ctx, repo); err != nil {
			return credential{}, err
		}
	}
	a.mu.Lock()
	if a.tokens == nil {
		a.tokens = map[int64]*installToken{}
	}
	it := a.tokens[id]
	if it == nil {
		it = &installToken{}
		a.tokens[id] = it
	}
	a.mu.Unlock()

	it.mu.Lock()
	defer it.mu.Unlock()
	if it.token == "" || it.expires.Sub(a.now()) < tokenRefresh {
		tok, exp, err := a.mint(ctx, id)
		if err != nil {
			return credential{}, err
		}
		it.token, it.expires = tok, exp
	}
	return credential{key: fmt.Sprintf("installation:%d", id), label: fmt.Sprintf("installation %d", id),
		header: "token " + it.token, installation: id, token: it.token}, nil
}

func (a *appAuth) refresh(c credential) bool {
	if c.installation == 0 {
		return false
	}
	a.mu.Lock()
	it := a.tokens[c.installation]
	a.mu.Unlock()
	if it == nil {
		return true
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.token == c.token {
		it.token = ""
	}
	return true
}

// jwt signs the app's token for the app endpoints.
func (a *appAuth) jwt() (string, error) {
	now := a.now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(a.creds.ID, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-jwtBackdate)),
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
	})
	return t.SignedString(a.creds.PrivateKey)
}

// call sends one request to an app endpoint (authenticated with the JWT,
// outside the installation budgets) and decodes its JSON answer.
func (a *appAuth) call(ctx context.Context, method, path string, want int, out any) error {
	signed, err := a.jwt()
	if err != nil {
		return fmt.Errorf("github: sign the app's JWT: %w", err)
	}
	u := a.base.ResolveReference(&url.URL{Path: strings.TrimPrefix(path, "/")})
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+signed)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := a.rt.RoundTrip(req)
	if err != nil {
		return &APIError{Op: method + " " + path, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &APIError{Op: method + " " + path, StatusCode: resp.StatusCode, Err: err}
	}
	if resp.StatusCode != want {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return &APIError{Op: method + " " + path, StatusCode: resp.StatusCode, Err: fmt.Errorf("%d %s", resp.StatusCode, e.Message)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &APIError{Op: method + " " + path, StatusCode: resp.StatusCode, Err: fmt.Errorf("decode answer: %w", err)}
	}
	return nil
}

// mint creates an installation token (POST
// /app/installations/{id}/access_tokens).
func (a *appAuth) mint(ctx context.Context, id int64) (string, time.Time, error) {
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := a.call(ctx, http.MethodPost, fmt.Sprintf("app/installations/%d/access_tokens", id), http.StatusCreated, &out); err != nil {
		return "", time.Time{}, fmt.Errorf("create a token for installation %d: %w", id, err)
	}
	if out.Token == "" || out.ExpiresAt.IsZero() {
		return "", time.Time{}, &APIError{Op: "create installation token", Err: errors.New("answer has no token or expires_at")}
	}
	return out.Token, out.ExpiresAt, nil
}

// installation finds the app's installation on a repository once.
func (a *appAuth) installation(ctx context.Context, repo string) (int64, error) {
	a.mu.Lock()
	id, ok := a.installs[repo]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	var out struct {
		ID int64 `json:"id"`
	}
	if err := a.call(ctx, http.MethodGet, "repos/"+repo+"/installation", http.StatusOK, &out); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
			return 0, fmt.Errorf("github: the app %d is not installed on %s: %w", a.creds.ID, repo, err)
		}
		return 0, fmt.Errorf("find the app's installation on %s: %w", repo, err)
	}
	a.mu.Lock()
	if a.installs == nil {
		a.installs = map[string]int64{}
	}
	a.installs[repo] = out.ID
	a.mu.Unlock()
	return out.ID, nil
}

// transport authenticates every API request, keeps each credential's
// budget, and tries once more with a fresh installation token after a
// 401. It strips the rate-limit headers after reading them: go-github keeps
// its own wall-clock record of them per client, which would mix
// installations and ignore the injected clock.
type transport struct {
	base    http.RoundTripper
	apiPath string
	auth    authorizer
	budgets *budgets
}

// repoOf returns "owner/name" of an API path under apiPath.
func repoOf(apiPath, p string) string {
	rest, ok := strings.CutPrefix(p, apiPath)
	if !ok {
		return ""
	}
	parts := strings.SplitN(strings.TrimPrefix(rest, "/"), "/", 4)
	if len(parts) >= 3 && parts[0] == "repos" {
		return parts[1] + "/" + parts[2]
	}
	return ""
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	repo := repoOf(t.apiPath, req.URL.Path)
	for attempt := 0; ; attempt++ {
		c, err := t.auth.credential(ctx, repo)
		if err != nil {
			return nil, err
		}
		if err := t.budgets.admit(c.key, c.label, isPoll(ctx)); err != nil {
			return nil, err
		}
		out := req.Clone(ctx)
		if attempt > 0 && req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		if c.header != "" {
			out.Header.Set("Authorization", c.header)
		}
		resp, err := t.base.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		if rerr := t.budgets.observe(c.key, c.label, resp); rerr != nil {
			resp.Body.Close()
			return nil, rerr
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && (req.Body == nil || req.GetBody != nil) && t.auth.refresh(c) {
			// An installation token revoked or expired early: mint a new
			// one and try again, once.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			continue
		}
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource"} {
			resp.Header.Del(h)
		}
		return resp, nil
	}
}
