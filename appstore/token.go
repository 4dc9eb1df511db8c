package appstore

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Audience is the only JWT audience App Store Connect accepts for this API.
const Audience = "appstoreconnect-v1"

// MaxTokenLifetime is the longest exp−iat Apple accepts for the resources
// this package uses (only some GET-only scoped tokens may live longer).
const MaxTokenLifetime = 20 * time.Minute

// ClockSkew is how far before now a token's iat is set.
const ClockSkew = 60 * time.Second

// DefaultTokenLifetime leaves a margin below MaxTokenLifetime so a token
// minted on a slightly fast clock is still accepted.
const DefaultTokenLifetime = 15 * time.Minute

// Key is an App Store Connect API key. IssuerID is empty for an individual
// key (the token then carries sub "user" and no iss).
//
// Key deliberately has no exported way to print the private key: its String
// method and the errors of this package never include it.
type Key struct {
	ID         string // the key id, sent as the JWT "kid" header
	IssuerID   string // team keys only
	PrivateKey *ecdsa.PrivateKey
}

// String names the key without revealing it.
func (k Key) String() string {
	if k.IssuerID == "" {
		return fmt.Sprintf("appstore.Key{ID:%s individual}", k.ID)
	}
	return fmt.Sprintf("appstore.Key{ID:%s IssuerID:%s}", k.ID, k.IssuerID)
}

// GoString is used by %#v; it must not dump the private key either.
func (k Key) GoString() string { return k.String() }

// redactedKey is how a Key appears in JSON and structured logs.
type redactedKey struct {
	ID         string `json:"id"`
	IssuerID   string `json:"issuer_id,omitempty"`
	PrivateKey string `json:"private_key"`
}

func (k Key) redacted() redactedKey {
	r := redactedKey{ID: k.ID, IssuerID: k.IssuerID}
	if k.PrivateKey != nil {
		r.PrivateKey = "[REDACTED]"
	}
	return r
}

// MarshalJSON writes the key's ids only: encoding/json would otherwise
// write the private scalar D of the *ecdsa.PrivateKey.
func (k Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.redacted()) }

// LogValue makes slog handlers (JSON ones included) log the ids only.
func (k Key) LogValue() slog.Value {
	r := k.redacted()
	return slog.GroupValue(slog.String("id", r.ID), slog.String("issuer_id", r.IssuerID), slog.String("private_key", r.PrivateKey))
}

// ParsePrivateKey reads a .p8 file's contents: a PEM "PRIVATE KEY" block with
// an unencrypted PKCS#8 P-256 key. The error never quotes the input.
func ParsePrivateKey(p8 []byte) (*ecdsa.PrivateKey, error) {
	k, err := jwt.ParseECPrivateKeyFromPEM(p8)
	if err != nil {
		// The jwt error text does not include key material, but keep ours fixed anyway.
		return nil, errors.New("appstore: private key is not a PEM PKCS#8 EC key")
	}
	if k.Curve.Params().Name != "P-256" {
		return nil, fmt.Errorf("appstore: private key curve is %s, want P-256", k.Curve.Params().Name)
	}
	return k, nil
}

// NewKey builds a Key from the contents of an AuthKey_<KEYID>.p8 file.
// issuerID is empty for an individual key.
func NewKey(keyID, issuerID string, p8 []byte) (Key, error) {
	if keyID == "" {
		return Key{}, &ValidationError{Field: "keyID", Reason: "must not be empty"}
	}
	priv, err := ParsePrivateKey(p8)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", keyID, err)
	}
	return Key{ID: keyID, IssuerID: issuerID, PrivateKey: priv}, nil
}

// Claims is the JWT payload App Store Connect expects. Audience is a plain
// JSON string: jwt.RegisteredClaims would encode it as an array.
type Claims struct {
	Issuer    string   `json:"iss,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	IssuedAt  int64    `json:"iat"`
	ExpiresAt int64    `json:"exp"`
	Audience  string   `json:"aud"`
	Scope     []string `json:"scope,omitempty"`
}

// The jwt.Claims methods let golang-jwt parse Claims too (the fake uses them).

// GetExpirationTime implements jwt.Claims.
func (c Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

// GetIssuedAt implements jwt.Claims.
func (c Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

// GetNotBefore implements jwt.Claims; Apple tokens carry no nbf.
func (c Claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c Claims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

// TokenSource mints and caches bearer tokens for one Key. It is safe for
// concurrent use. The zero Lifetime means DefaultTokenLifetime; Now nil
// means time.Now.
type TokenSource struct {
	Key      Key
	Lifetime time.Duration
	// RefreshBefore is how long before exp a cached token is replaced
	// (default 1 minute), so a request never leaves with a token that
	// expires in flight.
	RefreshBefore time.Duration
	Now           func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time
	minted int
}

// MarshalJSON writes the key's ids and the lifetime, never the private key
// or the cached token.
func (ts *TokenSource) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key      redactedKey `json:"key"`
		Lifetime string      `json:"lifetime,omitempty"`
	}{ts.Key.redacted(), ts.lifetimeString()})
}

// LogValue logs the key's ids only, never the private key or a token.
func (ts *TokenSource) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("key", ts.Key.LogValue()), slog.String("lifetime", ts.lifetimeString()))
}

// String names the source's key without revealing it.
func (ts *TokenSource) String() string { return "appstore.TokenSource{" + ts.Key.String() + "}" }

func (ts *TokenSource) lifetimeString() string {
	if ts.Lifetime <= 0 {
		return DefaultTokenLifetime.String()
	}
	return ts.Lifetime.String()
}

// NewTokenSource returns a TokenSource for key with the default lifetime.
func NewTokenSource(key Key) *TokenSource { return &TokenSource{Key: key} }

func (ts *TokenSource) now() time.Time {
	if ts.Now != nil {
		return ts.Now()
	}
	return time.Now()
}

// Token returns a valid signed token, minting a new one when the cached one
// is within RefreshBefore of its expiry.
func (ts *TokenSource) Token() (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	refresh := ts.RefreshBefore
	if refresh <= 0 {
		refresh = time.Minute
	}
	if ts.token != "" && now.Add(refresh).Before(ts.expiry) {
		return ts.token, nil
	}
	return ts.mintLocked(now)
}

// Invalidate drops the cached token so the next Token call mints a fresh one
// (used after a 401).
func (ts *TokenSource) Invalidate() {
	ts.mu.Lock()
	ts.token = ""
	ts.mu.Unlock()
}

// Minted reports how many tokens this source has signed.
func (ts *TokenSource) Minted() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.minted
}

func (ts *TokenSource) mintLocked(now time.Time) (string, error) {
	if ts.Key.ID == "" {
		return "", errors.New("appstore: token source: key id is empty")
	}
	if ts.Key.PrivateKey == nil {
		return "", fmt.Errorf("appstore: token source: key %s has no private key", ts.Key.ID)
	}
	life := ts.Lifetime
	if life <= 0 {
		life = DefaultTokenLifetime
	}
	if life > MaxTokenLifetime {
		return "", fmt.Errorf("appstore: token lifetime %s exceeds Apple's %s limit", life, MaxTokenLifetime)
	}
	// Back-date iat a minute, as fastlane does, so a clock slightly ahead
	// of Apple's does not make the token "issued in the future"; keep
	// exp - iat within Apple's 20 minutes.
	now = now.Truncate(time.Second)
	iat := now.Add(-ClockSkew)
	exp := now.Add(life)
	if exp.Sub(iat) > MaxTokenLifetime {
		exp = iat.Add(MaxTokenLifetime)
	}
	c := Claims{
		IssuedAt:  iat.Unix(),
		ExpiresAt: exp.Unix(),
		Audience:  Audience,
	}
	if ts.Key.IssuerID != "" {
		c.Issuer = ts.Key.IssuerID
	} else {
		c.Subject = "user"
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = ts.Key.ID
	t.Header["typ"] = "JWT"
	s, err := t.SignedString(ts.Key.PrivateKey)
	if err != nil {
		return "", fmt.Errorf("appstore: signing token for key %s failed", ts.Key.ID)
	}
	ts.token = s
	ts.expiry = exp
	ts.minted++
	return s, nil
}
