package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GitHub's rules for an app's JWT (docs.github.com, "Generating a JSON Web
// Token (JWT) for a GitHub App"): RS256, iss the app's id, exp no more than
// 10 minutes ahead. The messages are GitHub's own.
const (
	MaxJWTLifetime = 10 * time.Minute
	msgJWTDecode   = "A JSON web token could not be decoded"
	msgExpFuture   = "'Expiration time' claim ('exp') is too far in the future"
	msgExpPast     = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	msgIatFuture   = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	msgIssuer      = "'Issuer' claim ('iss') must be an Integer"
)

type appObj struct {
	id  int64
	key *rsa.PublicKey
}

type installObj struct {
	id      int64
	appID   int64
	account string
	repos   map[string]bool // lower-case full names; nil: every repository of the account
}

type tokenObj struct {
	installation int64
	expires      time.Time
}

// NewApp registers a GitHub App with a fresh RSA key and returns its id and
// the private key as the PEM GitHub lets the app's owner download
// (PKCS#1, "BEGIN RSA PRIVATE KEY").
func (s *Server) NewApp() (int64, []byte) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = map[int64]*appObj{}
	}
	id := int64(100000 + len(s.apps) + 1)
	s.apps[id] = &appObj{id: id, key: &k.PublicKey}
	return id, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// Install installs app on account's repositories (all of them when none
// are named) and returns the installation id.
func (s *Server) Install(appID int64, account string, repos ...string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.installs == nil {
		s.installs = map[int64]*installObj{}
	}
	s.nextID++
	in := &installObj{id: 40000000 + s.nextID, appID: appID, account: account}
	if len(repos) > 0 {
		in.repos = map[string]bool{}
		for _, r := range repos {
			in.repos[strings.ToLower(r)] = true
		}
	}
	s.installs[in.id] = in
	return in.id
}

// TokensMinted counts the installation tokens the fake has issued.
func (s *Server) TokensMinted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minted
}

// Denied counts requests refused with 401.
func (s *Server) Denied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied
}

// RevokeTokens invalidates every installation token, as a token revoked
// through the API or an app's key rotation does; their next use is 401.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = nil
}

func (s *Server) tokenTTL() time.Duration {
	if s.TokenTTL > 0 {
		return s.TokenTTL
	}
	return time.Hour
}

func (s *Server) unauthorized(w http.ResponseWriter, msg string) {
	s.denied++
	writeError(w, http.StatusUnauthorized, msg, docsBase)
}

func bearer(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(auth, "token ")
	}
	return tok, ok && tok != ""
}

// authenticate checks a repository request's credential and returns the key
// of the budget it spends. Without Token and apps the fake needs none.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, fullName string) (string, bool) {
	tok, ok := bearer(r)
	if s.Token == "" && len(s.apps) == 0 {
		return "anonymous", true
	}
	if ok && s.Token != "" && tok == s.Token {
		return "token", true
	}
	if t := s.tokens[tok]; ok && t != nil {
		if !s.now().Before(t.expires) {
			s.unauthorized(w, "Bad credentials")
			return "", false
		}
		in := s.installs[t.installation]
		owner, _, _ := strings.Cut(fullName, "/")
		if in == nil || !strings.EqualFold(owner, in.account) || (in.repos != nil && !in.repos[strings.ToLower(fullName)]) {
			// A repository the installation cannot see does not exist.
			notFound(w, docsBase+"/repos/repos#get-a-repository")
			return "", false
		}
		return InstallationKey(in.id), true
	}
	s.unauthorized(w, "Bad credentials")
	return "", false
}

// appFromJWT verifies an app's JWT as GitHub does and returns the app.
func (s *Server) appFromJWT(w http.ResponseWriter, r *http.Request) (*appObj, bool) {
	raw, ok := bearer(r)
	if !ok {
		s.unauthorized(w, msgJWTDecode)
		return nil, false
	}
	// iss may be the app's id as a number or a string (GitHub takes both).
	claims := jwt.MapClaims{}
	var app *appObj
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		var id int64
		var err error
		switch iss := claims["iss"].(type) {
		case float64:
			id = int64(iss)
		case string:
			id, err = strconv.ParseInt(iss, 10, 64)
		default:
			err = errors.New(msgIssuer)
		}
		if err != nil {
			return nil, errors.New(msgIssuer)
		}
		if app = s.apps[id]; app == nil {
			return nil, errors.New(msgJWTDecode)
		}
		return app.key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		msg := msgJWTDecode
		if strings.Contains(err.Error(), msgIssuer) {
			msg = msgIssuer
		}
		s.unauthorized(w, msg)
		return nil, false
	}
	exp, expErr := claims.GetExpirationTime()
	iat, iatErr := claims.GetIssuedAt()
	now := s.now()
	switch {
	case expErr != nil || exp == nil || !exp.After(now):
		s.unauthorized(w, msgExpPast)
		return nil, false
	case exp.After(now.Add(MaxJWTLifetime)):
		s.unauthorized(w, msgExpFuture)
		return nil, false
	case iatErr != nil || iat == nil || iat.After(now):
		s.unauthorized(w, msgIatFuture)
		return nil, false
	}
	return app, true
}

// serveApp answers POST /app/installations/{id}/access_tokens.
func (s *Server) serveApp(w http.ResponseWriter, r *http.Request) {
	const doc = docsBase + "/apps/apps#create-an-installation-access-token-for-an-app"
	rest := strings.TrimPrefix(r.URL.Path, "/app/installations/")
	idStr, tail, _ := strings.Cut(rest, "/")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if !strings.HasPrefix(r.URL.Path, "/app/installations/") || tail != "access_tokens" || err != nil {
		notFound(w, docsBase)
		return
	}
	if r.Method != http.MethodPost {
		notFound(w, doc)
		return
	}
	app, ok := s.appFromJWT(w, r)
	if !ok {
		return
	}
	in := s.installs[id]
	if in == nil || in.appID != app.id {
		notFound(w, doc)
		return
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := "ghs_" + hex.EncodeToString(b[:])
	if s.tokens == nil {
		s.tokens = map[string]*tokenObj{}
	}
	expires := s.now().Add(s.tokenTTL()).UTC().Truncate(time.Second)
	s.tokens[tok] = &tokenObj{installation: id, expires: expires}
	s.minted++
	selection := "all"
	if in.repos != nil {
		selection = "selected"
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"token": tok, "expires_at": expires.Format(time.RFC3339),
		"permissions":          map[string]string{"contents": "read", "deployments": "write", "metadata": "read"},
		"repository_selection": selection,
	})
}

// serveRepoInstallation answers GET /repos/{owner}/{repo}/installation.
func (s *Server) serveRepoInstallation(w http.ResponseWriter, r *http.Request, fullName string) {
	const doc = docsBase + "/apps/apps#get-a-repository-installation-for-the-authenticated-app"
	if r.Method != http.MethodGet {
		notFound(w, doc)
		return
	}
	app, ok := s.appFromJWT(w, r)
	if !ok {
		return
	}
	owner, _, _ := strings.Cut(fullName, "/")
	for _, in := range s.installs {
		if in.appID != app.id || !strings.EqualFold(in.account, owner) || (in.repos != nil && !in.repos[strings.ToLower(fullName)]) {
			continue
		}
		selection := "all"
		if in.repos != nil {
			selection = "selected"
		}
		base := "http://" + r.Host
		writeJSON(w, http.StatusOK, map[string]any{
			"id": in.id, "app_id": app.id, "app_slug": "releasepilot", "target_id": 1001, "target_type": "Organization",
			"account":              simpleUser(r.Host, in.account, 1001, "Organization"),
			"repository_selection": selection,
			"access_tokens_url":    fmt.Sprintf("%s/app/installations/%d/access_tokens", base, in.id),
			"repositories_url":     base + "/installation/repositories",
			"html_url":             fmt.Sprintf("https://github.com/organizations/%s/settings/installations/%d", in.account, in.id),
			"permissions":          map[string]string{"contents": "read", "deployments": "write", "metadata": "read"},
			"events":               []string{}, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
			"single_file_name": nil, "has_multiple_single_files": false, "single_file_paths": []string{},
			"suspended_by": nil, "suspended_at": nil,
		})
		return
	}
	notFound(w, doc)
}
