package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// accessKeyPrefix marks releasepilot access keys, so that one found in a
// log or a repository is recognisable (and greppable by secret scanners).
const accessKeyPrefix = "rpk_"

// NewAccessKeySecret returns a new access key secret: "rpk_" and 32 random
// bytes in URL-safe base64, which code-push-server's key check
// (^[A-Za-z0-9_-]{10,100}$) accepts.
func NewAccessKeySecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return accessKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

var accessKeyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@ -]{0,99}$`)

// MaxAccessKeyTTL bounds a key's lifetime.
const MaxAccessKeyTTL = 10 * 365 * 24 * time.Hour

// createAccessKey stores a new key and records it in the audit log, in one
// transaction. ttl 0 means the key does not expire. The secret is returned
// once and never stored.
func createAccessKey(ctx context.Context, st *store.Store, name string, role Role, ttl time.Duration, actor string, now time.Time) (store.AccessKey, string, error) {
	if !accessKeyNameRE.MatchString(name) {
		return store.AccessKey{}, "", &fieldError{"name", name, "1 to 100 letters, digits, spaces or . _ @ -, starting with a letter or digit"}
	}
	if role == RoleNone {
		return store.AccessKey{}, "", &fieldError{"role", "", "one of viewer, operator, admin"}
	}
	if ttl < 0 || ttl > MaxAccessKeyTTL {
		return store.AccessKey{}, "", &fieldError{"ttl", ttl.String(), "between 0 (never expires) and 10 years"}
	}
	k := store.AccessKey{Name: name, Role: role.String(), CreatedBy: actor, CreatedAt: now.UTC()}
	if ttl > 0 {
		k.ExpiresAt = now.Add(ttl).UTC()
	}
	secret := NewAccessKeySecret()
	err := st.Tx(ctx, func(tx *store.Store) error {
		if err := tx.CreateAccessKey(ctx, k, store.HashSecret(secret)); err != nil {
			return err
		}
		_, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: actor, Kind: "access_key.created", Details: accessKeyDetails(k)})
		return err
	})
	return k, secret, err
}

func eventAt(at time.Time, actor, kind string, details map[string]any) release.Event {
	return release.Event{At: at, Actor: actor, Kind: kind, Details: details}
}

func accessKeyDetails(k store.AccessKey) map[string]any {
	d := map[string]any{"name": k.Name, "role": k.Role}
	if !k.ExpiresAt.IsZero() {
		d["expires_at"] = k.ExpiresAt.Format(time.RFC3339)
	}
	return d
}

// revokeAccessKey deletes a key and records it, in one transaction.
func revokeAccessKey(ctx context.Context, st *store.Store, name, actor string, now time.Time) error {
	return st.Tx(ctx, func(tx *store.Store) error {
		k, err := tx.AccessKey(ctx, name)
		if err != nil {
			return err
		}
		if err := tx.DeleteAccessKey(ctx, name); err != nil {
			return err
		}
		_, err = tx.AppendEvent(ctx, release.Event{At: now, Actor: actor, Kind: "access_key.revoked", Details: accessKeyDetails(k)})
		return err
	})
}

// fieldError is a bad input naming the field and value.
type fieldError struct{ field, value, want string }

func (e *fieldError) Error() string {
	if e.value == "" {
		return fmt.Sprintf("%s: must be %s", e.field, e.want)
	}
	return fmt.Sprintf("%s: %q must be %s", e.field, e.value, e.want)
}

// accessKeyView is an access key as the admin API shows it: never the
// secret, except once in the answer that creates it.
type accessKeyView struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at,omitempty"`
	Key       string `json:"key,omitempty"`
}

func viewAccessKey(k store.AccessKey) accessKeyView {
	v := accessKeyView{Name: k.Name, Role: k.Role, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339)}
	if !k.ExpiresAt.IsZero() {
		v.ExpiresAt = k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return v
}

func (s *Server) registerAccessKeys() {
	s.Handle("GET /v1/access-keys", RoleAdmin, http.HandlerFunc(s.listAccessKeys))
	s.Handle("POST /v1/access-keys", RoleAdmin, http.HandlerFunc(s.createAccessKey))
	s.Handle("DELETE /v1/access-keys/{name}", RoleAdmin, http.HandlerFunc(s.revokeAccessKey))
}

func (s *Server) listAccessKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := s.deps.Store.AccessKeys(r.Context())
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	out := []accessKeyView{}
	for _, k := range ks {
		out = append(out, viewAccessKey(k))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"access_keys": out})
}

func (s *Server) createAccessKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
		Role string `json:"role"`
		// TTL is a Go duration ("720h"); empty: the key does not expire.
		TTL string `json:"ttl"`
	}
	if err := DecodeJSON(r, 64<<10, &req); err != nil {
		WriteDecodeError(w, err)
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("ttl: %q is not a duration such as 720h", req.TTL))
			return
		}
	}
	role := ParseRole(req.Role)
	if role == RoleNone {
		WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("role: %q is not one of viewer, operator, admin", req.Role))
		return
	}
	k, secret, err := createAccessKey(r.Context(), s.deps.Store, req.Name, role, ttl, Actor(r.Context()), s.deps.Now())
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		WriteError(w, http.StatusBadRequest, "invalid", fe.Error())
		return
	case err != nil:
		WriteStoreError(w, s.log, err)
		return
	}
	v := viewAccessKey(k)
	v.Key = secret
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusCreated, v)
}

func (s *Server) revokeAccessKey(w http.ResponseWriter, r *http.Request) {
	if err := revokeAccessKey(r.Context(), s.deps.Store, r.PathValue("name"), Actor(r.Context()), s.deps.Now()); err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
