package playstoretest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
)

// signingKey is generated once per process: RSA generation is slow under -race
// and the key protects nothing.
func signingKey() (*rsa.PrivateKey, error) {
	keyOnce.Do(func() { key, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	return key, keyErr
}

// ServiceAccountJSON returns a service-account key file whose token_uri points
// at this fake (baseURL is the httptest server's URL). Its client_email is the
// "user" of every edit made with it, so two keys are two concurrent users.
func (s *Server) ServiceAccountJSON(baseURL, clientEmail string) ([]byte, error) {
	k, err := signingKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	kid := make([]byte, 8)
	_, _ = rand.Read(kid)
	s.mu.Lock()
	s.accounts[clientEmail] = &k.PublicKey
	s.mu.Unlock()
	return json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     "fake-project",
		"private_key_id": hex.EncodeToString(kid),
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   clientEmail,
		"client_id":      "100000000000000000000",
		"auth_uri":       strings.TrimSuffix(baseURL, "/") + "/o/oauth2/auth",
		"token_uri":      strings.TrimSuffix(baseURL, "/") + "/token",
	}, "", "  ")
}

// OAuth scopes of the two APIs the fake serves.
const (
	ScopeAndroidPublisher = "https://www.googleapis.com/auth/androidpublisher"
	ScopeReporting        = "https://www.googleapis.com/auth/playdeveloperreporting"
)

// msgShortLivedJWT is Google's answer to an assertion whose iat and exp do
// not make a token of at most an hour that is valid now.
const msgShortLivedJWT = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."

type issuedToken struct {
	email   string
	scopes  []string
	expires time.Time
}

// handleToken implements the JWT-bearer grant: it checks the RS256 signature
// against the key it handed out, then issues an opaque bearer token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	fail := func(desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": desc})
	}
	if r.Method != http.MethodPost {
		fail("token endpoint takes POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail("bad form")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		fail("unsupported grant_type")
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		fail("assertion is not a JWS")
		return
	}
	var hdr struct{ Alg string }
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Exp   int64  `json:"exp"`
		Iat   *int64 `json:"iat"`
	}
	if decodeSegment(parts[0], &hdr) != nil || decodeSegment(parts[1], &claims) != nil || hdr.Alg != "RS256" {
		fail("malformed assertion")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		fail("malformed signature")
		return
	}
	s.mu.Lock()
	pub := s.accounts[claims.Iss]
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if pub == nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		fail("Invalid JWT Signature.")
		return
	}
	if want := "http://" + r.Host + "/token"; claims.Aud != want {
		fail("Invalid JWT: audience " + strconv.Quote(claims.Aud) + ", want " + strconv.Quote(want) + ".")
		return
	}
	// Google wants iat, and at most an hour between iat and exp; the token
	// must be valid now (a little clock skew is allowed).
	now := time.Now()
	const skew = 5 * 60
	if claims.Iat == nil || claims.Exp <= *claims.Iat || claims.Exp-*claims.Iat > 3600 ||
		*claims.Iat > now.Unix()+skew || time.Unix(claims.Exp, 0).Before(now) {
		fail(msgShortLivedJWT)
		return
	}
	scopes := strings.Fields(claims.Scope)
	if len(scopes) == 0 {
		fail("Invalid OAuth scope or ID token audience provided.")
		return
	}
	for _, sc := range scopes {
		if sc != ScopeAndroidPublisher && sc != ScopeReporting {
			fail("Invalid OAuth scope or ID token audience provided.")
			return
		}
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	tok := "ya29.fake-" + hex.EncodeToString(raw)
	s.mu.Lock()
	s.tokens[tok] = issuedToken{email: claims.Iss, scopes: scopes, expires: now.Add(time.Hour)}
	s.tokenCount++
	s.mu.Unlock()
	writeJSON(w, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3599})
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// caller returns the service account a request's bearer token was issued
// to and the scopes it was granted.
func (s *Server) caller(r *http.Request) (string, []string, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return "", nil, fmt.Errorf("no bearer token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.tokens[tok]
	if !ok || time.Now().After(it.expires) {
		return "", nil, fmt.Errorf("unknown token")
	}
	return it.email, it.scopes, nil
}

// scopeFor is the scope a method needs: the Reporting API's for vitals,
// androidpublisher's for everything else.
func scopeFor(method string) (scope, service string) {
	if strings.HasPrefix(method, "vitals.") {
		return ScopeReporting, "playdeveloperreporting.googleapis.com"
	}
	return ScopeAndroidPublisher, "androidpublisher.googleapis.com"
}

// insufficientScope is Google's answer to a valid token without the API's
// scope: 403 PERMISSION_DENIED, reason insufficientPermissions, and an
// ErrorInfo ACCESS_TOKEN_SCOPE_INSUFFICIENT, with the scope wanted in
// WWW-Authenticate.
func insufficientScope(w http.ResponseWriter, method string) {
	scope, service := scopeFor(method)
	w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="`+scope+`"`)
	e := &apiError{Code: 403, Message: "Request had insufficient authentication scopes.", Status: "PERMISSION_DENIED",
		Errors: []errorItem{{Message: "Insufficient Permission", Domain: "global", Reason: "insufficientPermissions"}},
		Details: []map[string]any{{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
			"domain": "googleapis.com", "metadata": map[string]string{"service": service, "method": method}}}}
	writeError(w, e)
}
