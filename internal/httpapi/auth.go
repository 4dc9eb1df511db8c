package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
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

type actorKey struct{}

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

func (s *Server) authorize(min Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="releasepilot"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token (Authorization: Bearer <token>)")
			return
		}
		sum := sha256.Sum256([]byte(secret))
		var found *Token
		for i := range s.deps.Tokens {
			// Compare every token, in constant time, so timing says nothing.
			if subtle.ConstantTimeCompare(sum[:], s.deps.Tokens[i].hash[:]) == 1 {
				found = &s.deps.Tokens[i]
			}
		}
		if found == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="releasepilot", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "unknown bearer token")
			return
		}
		if found.Role < min {
			WriteError(w, http.StatusForbidden, "forbidden", "token "+found.Name+" has role "+found.Role.String()+"; this needs "+min.String())
			return
		}
		next.ServeHTTP(w, r.WithContext(WithActor(r.Context(), "token:"+found.Name)))
	})
}
