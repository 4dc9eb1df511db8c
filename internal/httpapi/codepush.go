package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/store"
)

// CodePushAPI is the legacy CodePush management API at the server's root,
// as code-push-cli 2.1.9 (code-push SDK 2.0.6) and code-push-server's
// standalone CLI speak it: "code-push login <releasepilot URL> --accessKey
// KEY", then /authenticated, /account, /accessKeys, /sessions and /apps/…
// with plain-text errors the CLI prints. Credentials are releasepilot's
// (access keys and API tokens, each with a role): reading needs viewer,
// changing operator; /accessKeys lets anyone make keys of their own role
// and manage the keys they made (admins: every key).
type CodePushAPI struct {
	Auth Principals
	// Management serves /apps/…: the codepush package's management handler
	// (plain-text errors) over releasepilot's rules.
	Management http.Handler
	Store      *store.Store
	Now        func() time.Time
	Log        *slog.Logger
	mux        *http.ServeMux
}

// Patterns are the root paths the API answers; mount each on the server.
func (c *CodePushAPI) Patterns() []string {
	return []string{"/authenticated", "/authenticated/", "/account", "/account/", "/accessKeys", "/accessKeys/", "/sessions/", "/apps", "/apps/", "/auth/"}
}

func (c *CodePushAPI) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *CodePushAPI) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func (c *CodePushAPI) routes() *http.ServeMux {
	mux := http.NewServeMux()
	both := func(pattern string, role Role, f func(http.ResponseWriter, *http.Request, Principal)) {
		h := c.authenticate(role, f)
		mux.Handle(pattern, h)
		mux.Handle(pattern+"/{$}", h)
	}
	both("GET /authenticated", RoleViewer, func(w http.ResponseWriter, r *http.Request, p Principal) {
		writeCodePushJSON(w, http.StatusOK, map[string]any{"authenticated": true})
	})
	both("GET /account", RoleViewer, c.account)
	both("GET /accessKeys", RoleViewer, c.listKeys)
	both("POST /accessKeys", RoleViewer, c.addKey)
	both("GET /accessKeys/{name}", RoleViewer, c.getKey)
	both("PATCH /accessKeys/{name}", RoleViewer, c.patchKey)
	both("DELETE /accessKeys/{name}", RoleViewer, c.removeKey)
	both("DELETE /sessions/{createdBy}", RoleViewer, func(w http.ResponseWriter, r *http.Request, p Principal) {
		// Sessions come from browser logins, which releasepilot does not
		// have; code-push-cli ignores this 404 on logout.
		writeCodePushText(w, http.StatusNotFound, fmt.Sprintf("There are no sessions associated with \"%s.\"", r.PathValue("createdBy"))) // sic, code-push-server's wording
	})
	mux.HandleFunc("GET /auth/{page}", func(w http.ResponseWriter, r *http.Request) {
		// "code-push login <url>" without --accessKey opens this page.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>releasepilot</title><p>releasepilot has no browser login. Ask an admin for an access key "+
			"(<code>releasepilot access-key create --name NAME --role operator</code>), then run "+
			"<code>code-push login %s --accessKey KEY</code>.</p>", html.EscapeString(c.serverURL(r)))
	})
	mgmt := func(w http.ResponseWriter, r *http.Request, p Principal) {
		ctx := codepush.WithActor(r.Context(), codepush.Actor{Name: p.Actor})
		c.Management.ServeHTTP(w, r.WithContext(ctx))
	}
	mux.Handle("GET /apps", c.authenticate(RoleViewer, mgmt))
	mux.Handle("GET /apps/", c.authenticate(RoleViewer, mgmt))
	mux.Handle("/apps", c.authenticate(RoleOperator, mgmt))
	mux.Handle("/apps/", c.authenticate(RoleOperator, mgmt))
	return mux
}

// serverURL is a guess for the help page only; it is never used for
// anything a device fetches.
func (c *CodePushAPI) serverURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (c *CodePushAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.mux == nil {
		c.mux = c.routes()
	}
	// A copy: the mux records its match on the request, and the server's
	// own mux must keep seeing that it matched.
	r = r.WithContext(r.Context())
	c.mux.ServeHTTP(&unmatchedWriter{ResponseWriter: w, r: r, answer: codePushUnmatched}, r)
}

// codePushUnmatched answers the mux's own 404 and 405 as Express does,
// in plain text.
func codePushUnmatched(w http.ResponseWriter, r *http.Request, code int, _ string) {
	writeCodePushText(w, code, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
}

var codePushTextEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// writeCodePushText answers as code-push-server does (Express's
// res.send(string) after sanitize-html): text/html with &, < and > escaped.
func writeCodePushText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, codePushTextEscaper.Replace(msg))
}

func writeCodePushJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authenticate checks the bearer credential as code-push-server's passport
// strategy does: a missing, malformed, unknown or expired one is 401 with a
// sentence (the CLI then forgets its session), too low a role 403.
func (c *CodePushAPI) authenticate(min Role, f func(http.ResponseWriter, *http.Request, Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, err := c.Auth.Principal(r.Context(), secret)
		switch {
		case errors.Is(err, ErrExpiredCredential):
			writeCodePushText(w, http.StatusUnauthorized, fmt.Sprintf("The access key being used has expired (%s), please ask an admin for a new one and run \"code-push login\" again.",
				strings.TrimSuffix(err.Error(), ": "+ErrExpiredCredential.Error())))
			return
		case errors.Is(err, ErrUnknownCredential):
			writeCodePushText(w, http.StatusUnauthorized, "The session or access key being used is invalid, please run \"code-push login SERVER_URL --accessKey KEY\" again with a releasepilot access key.")
			return
		case err != nil && c.clientGone(w, r, err):
			return
		case err != nil:
			c.log().Error("codepush api: authenticate", "err", err)
			writeCodePushText(w, http.StatusServiceUnavailable, "The CodePush server temporarily timed out. Please try again.")
			return
		}
		if p.Role < min {
			writeCodePushText(w, http.StatusForbidden, fmt.Sprintf("This action requires the %s role; %s has the %s role.", min, p.Actor, p.Role))
			return
		}
		f(w, r.WithContext(WithPrincipal(r.Context(), p)), p)
	})
}

func (c *CodePushAPI) account(w http.ResponseWriter, r *http.Request, p Principal) {
	writeCodePushJSON(w, http.StatusOK, map[string]any{"account": map[string]any{"email": p.Actor, "name": p.Name, "linkedProviders": []string{}}})
}

// restAccessKey is code-push-server's REST AccessKey; Name is the secret,
// shown only when the key is made.
type restAccessKey struct {
	Name         string `json:"name,omitempty"`
	FriendlyName string `json:"friendlyName"`
	Description  string `json:"description"`
	CreatedBy    string `json:"createdBy"`
	CreatedTime  int64  `json:"createdTime"`
	Expires      int64  `json:"expires"`
	IsSession    bool   `json:"isSession"`
}

// noExpiry is what a key without expiry shows as its expiry to the CLI,
// which formats the number as a date: 9999-12-31.
const noExpiry = 253402214400000

func toRestAccessKey(k store.AccessKey) restAccessKey {
	exp := int64(noExpiry)
	if !k.ExpiresAt.IsZero() {
		exp = k.ExpiresAt.UnixMilli()
	}
	return restAccessKey{FriendlyName: k.Name, Description: k.Name, CreatedBy: k.CreatedBy, CreatedTime: k.CreatedAt.UnixMilli(), Expires: exp}
}

// mine reports whether p may see and change k: admins every key, others
// the keys they made.
func mine(p Principal, k store.AccessKey) bool {
	return p.Role >= RoleAdmin || k.CreatedBy == p.Actor
}

func (c *CodePushAPI) listKeys(w http.ResponseWriter, r *http.Request, p Principal) {
	ks, err := c.Store.AccessKeys(r.Context())
	if err != nil {
		c.storeError(w, r, err)
		return
	}
	out := []restAccessKey{}
	for _, k := range ks {
		if mine(p, k) {
			rk := toRestAccessKey(k)
			rk.Name = "(hidden)" // as code-push-server masks it for old CLIs
			out = append(out, rk)
		}
	}
	writeCodePushJSON(w, http.StatusOK, map[string]any{"accessKeys": out})
}

type validationError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (c *CodePushAPI) addKey(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		FriendlyName string `json:"friendlyName"`
		Description  string `json:"description"` // older CLIs' name for it
		CreatedBy    string `json:"createdBy"`   // the CLI's hostname; the creator is p
		TTL          *int64 `json:"ttl"`         // milliseconds
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeCodePushText(w, http.StatusBadRequest, "The body is not valid JSON: "+err.Error())
		return
	}
	name := req.FriendlyName
	if name == "" {
		name = req.Description
	}
	ttl := 60 * 24 * time.Hour // code-push-server's default
	if req.TTL != nil {
		ttl = time.Duration(*req.TTL) * time.Millisecond
	}
	k, secret, err := createAccessKey(r.Context(), c.Store, name, p.Role, ttl, p.Actor, c.now())
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		field := map[string]string{"name": "friendlyName", "ttl": "ttl"}[fe.field]
		// code-push-server sends access-key validation errors as a JSON array.
		writeCodePushJSON(w, http.StatusBadRequest, []validationError{{Field: field, Message: "Field is invalid"}})
		return
	case errors.Is(err, store.ErrConflict):
		writeCodePushText(w, http.StatusConflict, fmt.Sprintf("The access key %q already exists.", name))
		return
	case err != nil:
		c.storeError(w, r, err)
		return
	}
	rk := toRestAccessKey(k)
	rk.Name = secret
	w.Header().Set("Location", "/accessKeys/"+url.PathEscape(k.Name))
	w.Header().Set("Cache-Control", "no-store")
	writeCodePushJSON(w, http.StatusCreated, map[string]any{"accessKey": rk})
}

// findKey resolves a key by name or by its secret, among those p may see.
func (c *CodePushAPI) findKey(r *http.Request, p Principal) (store.AccessKey, error) {
	name := r.PathValue("name")
	k, err := c.Store.AccessKey(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		k, err = c.Store.AccessKeyByHash(r.Context(), store.HashSecret(name))
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && !mine(p, k)) {
		return k, fmt.Errorf("access key %q: %w", name, store.ErrNotFound)
	}
	return k, err
}

func (c *CodePushAPI) getKey(w http.ResponseWriter, r *http.Request, p Principal) {
	k, err := c.findKey(r, p)
	if err != nil {
		c.keyError(w, r, err)
		return
	}
	writeCodePushJSON(w, http.StatusOK, map[string]any{"accessKey": toRestAccessKey(k)})
}

func (c *CodePushAPI) patchKey(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		FriendlyName string `json:"friendlyName"`
		TTL          *int64 `json:"ttl"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeCodePushText(w, http.StatusBadRequest, "The body is not valid JSON: "+err.Error())
		return
	}
	k, err := c.findKey(r, p)
	if err != nil {
		c.keyError(w, r, err)
		return
	}
	next := k
	if req.FriendlyName != "" {
		if !accessKeyNameRE.MatchString(req.FriendlyName) {
			writeCodePushJSON(w, http.StatusBadRequest, []validationError{{Field: "friendlyName", Message: "Field is invalid"}})
			return
		}
		next.Name = req.FriendlyName
	}
	if req.TTL != nil {
		ttl := time.Duration(*req.TTL) * time.Millisecond
		if ttl < 0 || ttl > MaxAccessKeyTTL {
			writeCodePushJSON(w, http.StatusBadRequest, []validationError{{Field: "ttl", Message: "Field is invalid"}})
			return
		}
		next.ExpiresAt = c.now().Add(ttl).UTC()
	}
	err = c.Store.Tx(r.Context(), func(tx *store.Store) error {
		if err := tx.UpdateAccessKey(r.Context(), k.Name, next); err != nil {
			return err
		}
		d := accessKeyDetails(next)
		d["previous_name"] = k.Name
		_, err := tx.AppendEvent(r.Context(), eventAt(c.now(), p.Actor, "access_key.updated", d))
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		writeCodePushText(w, http.StatusConflict, fmt.Sprintf("The access key %q already exists.", next.Name))
		return
	}
	if err != nil {
		c.storeError(w, r, err)
		return
	}
	writeCodePushJSON(w, http.StatusOK, map[string]any{"accessKey": toRestAccessKey(next)})
}

func (c *CodePushAPI) removeKey(w http.ResponseWriter, r *http.Request, p Principal) {
	k, err := c.findKey(r, p)
	if err == nil {
		err = revokeAccessKey(r.Context(), c.Store, k.Name, p.Actor, c.now())
	}
	if err != nil {
		c.keyError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *CodePushAPI) keyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		name := r.PathValue("name")
		if strings.HasPrefix(name, accessKeyPrefix) {
			name = "(hidden)" // a secret: never echoed
		}
		writeCodePushText(w, http.StatusNotFound, fmt.Sprintf("Access key %q does not exist.", name))
		return
	}
	c.storeError(w, r, err)
}

func (c *CodePushAPI) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if c.clientGone(w, r, err) {
		return
	}
	c.log().Error("codepush api: store", "err", err)
	writeCodePushText(w, http.StatusInternalServerError, "Internal Server Error")
}

// clientGone answers 499 to a request whose client went away, as the /v1
// API does (WriteStoreError), logging err at debug; it reports whether it
// did.
func (c *CodePushAPI) clientGone(w http.ResponseWriter, r *http.Request, err error) bool {
	if !codepush.ClientGone(r, err) {
		return false
	}
	c.log().Debug("codepush api: client went away", "path", r.URL.Path, "err", err)
	w.WriteHeader(StatusClientClosedRequest)
	return true
}
