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

type issuedToken struct {
	email   string
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
	if time.Unix(claims.Exp, 0).Before(time.Now()) {
		fail("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	}
	if !strings.Contains(claims.Scope, "androidpublisher") && !strings.Contains(claims.Scope, "playdeveloperreporting") {
		fail("Invalid OAuth scope or ID token audience provided.")
		return
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	tok := "ya29.fake-" + hex.EncodeToString(raw)
	s.mu.Lock()
	s.tokens[tok] = issuedToken{email: claims.Iss, expires: time.Now().Add(time.Hour)}
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

// caller returns the service account a request's bearer token was issued to.
func (s *Server) caller(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return "", fmt.Errorf("no bearer token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.tokens[tok]
	if !ok || time.Now().After(it.expires) {
		return "", fmt.Errorf("unknown token")
	}
	return it.email, nil
}
