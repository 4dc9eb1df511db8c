package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/store"
)

// Role orders what a token may do: viewer < operator < admin.
type Role int

const (
	RoleNone Role = iota
	RoleViewer
	RoleOperator
	RoleAdmin
)

// ParseRole reads a configured role name.
func ParseRole(s string) Role {
	switch s {
	case "viewer":
		return RoleViewer
	case "operator":
		return RoleOperator
	case "admin":
		return RoleAdmin
	}
	return RoleNone
}

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// Token is an API bearer token. Only its SHA-256 is kept in memory.
type Token struct {
	Name string
	Role Role
	hash [32]byte
}

// NewToken makes a token from its secret value.
func NewToken(name string, role Role, secret string) Token {
	return Token{Name: name, Role: role, hash: sha256.Sum256([]byte(secret))}
}

// Principal is who a credential belongs to.
type Principal struct {
	// Actor names the caller in the audit log: "token:<name>" for a
	// configured API token, "accesskey:<name>" for an access key.
	Actor string
	Name  string
	Role  Role
	// AccessKey is set when the credential is an access key.
	AccessKey bool
	ExpiresAt time.Time // zero: never
}

// AccessKeys finds access keys by the hash of their secret
// (store.HashSecret) or by name; *store.Store is one.
type AccessKeys interface {
	AccessKeyByHash(ctx context.Context, secretHash string) (store.AccessKey, error)
	AccessKey(ctx context.Context, name string) (store.AccessKey, error)
}

// Credential errors of Authenticate.
var (
	ErrUnknownCredential = errors.New("unknown credential")
	ErrExpiredCredential = errors.New("expired credential")
)

// Principals turns bearer credentials into principals; *Authenticator is
// one.
type Principals interface {
	Principal(ctx context.Context, credential string) (Principal, error)
}

// Authenticator turns a bearer credential — a configured API token or an
// access key — into the Principal it belongs to. The API and the CodePush
// management API use Principal; as Credentials (Authenticate, Lookup) it
// signs people in to the dashboard with the same tokens and keys.
type Authenticator struct {
	Tokens []Token
	Keys   AccessKeys // nil: only tokens
	Now    func() time.Time
}

var _ Credentials = (*Authenticator)(nil)

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Principal checks credential. The error is ErrUnknownCredential,
// ErrExpiredCredential (wrapped, naming the key) or a storage error; it
// never contains the credential.
func (a *Authenticator) Principal(ctx context.Context, credential string) (Principal, error) {
	if credential == "" {
		return Principal{}, ErrUnknownCredential
	}
	sum := sha256.Sum256([]byte(credential))
	var found *Token
	for i := range a.Tokens {
		// Compare every token, in constant time, so timing says nothing.
		if subtle.ConstantTimeCompare(sum[:], a.Tokens[i].hash[:]) == 1 {
			found = &a.Tokens[i]
		}
	}
	if found != nil {
		return Principal{Actor: "token:" + found.Name, Name: found.Name, Role: found.Role}, nil
	}
	if a.Keys == nil {
		return Principal{}, ErrUnknownCredential
	}
	k, err := a.Keys.AccessKeyByHash(ctx, hex.EncodeToString(sum[:]))
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnknownCredential
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up access key: %w", err)
	}
	return a.keyPrincipal(k)
}

func (a *Authenticator) keyPrincipal(k store.AccessKey) (Principal, error) {
	p := Principal{Actor: "accesskey:" + k.Name, Name: k.Name, Role: ParseRole(k.Role), AccessKey: true, ExpiresAt: k.ExpiresAt}
	if !k.ExpiresAt.IsZero() && !a.now().Before(k.ExpiresAt) {
		return p, fmt.Errorf("access key %q expired at %s: %w", k.Name, k.ExpiresAt.UTC().Format(time.RFC3339), ErrExpiredCredential)
	}
	return p, nil
}

// Authenticate implements Credentials: a token or an unexpired access key.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Identity, bool, error) {
	p, err := a.Principal(ctx, secret)
	if errors.Is(err, ErrUnknownCredential) || errors.Is(err, ErrExpiredCredential) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, err
	}
	return Identity{Subject: p.Actor, Actor: p.Actor, Role: p.Role}, true, nil
}

// Lookup implements Credentials: a token by its subject ("token:<name>"),
// or an access key ("accesskey:<name>") that still exists and has not
// expired, with its role now.
func (a *Authenticator) Lookup(ctx context.Context, subject string) (Identity, bool, error) {
	name, ok := strings.CutPrefix(subject, "accesskey:")
	if !ok {
		return TokenCredentials(a.Tokens).Lookup(ctx, subject)
	}
	if a.Keys == nil {
		return Identity{}, false, nil
	}
	k, err := a.Keys.AccessKey(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, err
	}
	p, err := a.keyPrincipal(k)
	if err != nil {
		return Identity{}, false, nil
	}
	return Identity{Subject: p.Actor, Actor: p.Actor, Role: p.Role}, true, nil
}

type actorKey struct{}
type principalKey struct{}

// Actor is who made a request, for the audit log.
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok {
		return a
	}
	return "anonymous"
}

// WithActor returns ctx carrying an actor name.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// WithPrincipal returns ctx carrying p, and p's actor.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return WithActor(context.WithValue(ctx, principalKey{}, p), p.Actor)
}

// PrincipalFrom returns the authenticated caller of a request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Authenticator returns the server's authenticator, for other surfaces that
// sign people in with the same credentials.
func (s *Server) Authenticator() *Authenticator { return s.auth }

func (s *Server) authorize(min Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="releasepilot"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token (Authorization: Bearer <token>)")
			return
		}
		p, err := s.auth.Principal(r.Context(), secret)
		switch {
		case errors.Is(err, ErrExpiredCredential):
			w.Header().Set("WWW-Authenticate", `Bearer realm="releasepilot", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", err.Error()+"; ask an admin for a new one")
			return
		case errors.Is(err, ErrUnknownCredential):
			w.Header().Set("WWW-Authenticate", `Bearer realm="releasepilot", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "unknown bearer token")
			return
		case err != nil:
			s.log.Error("authenticate", "err", err)
			WriteError(w, http.StatusServiceUnavailable, "unavailable", "cannot check credentials right now")
			return
		}
		if p.Role < min {
			WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s has role %s; this needs %s", p.Actor, p.Role, min))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
