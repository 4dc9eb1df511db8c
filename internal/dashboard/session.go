package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/store"
)

const (
	// SessionCookie holds the session's secret; the database keeps only
	// its SHA-256.
	SessionCookie = "rp_session"
	// signInCookie holds the sign-in form's CSRF token until sign-in
	// (double submit: a page on another site can neither read nor set it).
	signInCookie = "rp_signin"
	// CSRFField is the form field of the CSRF token on every form that
	// changes something.
	CSRFField = "csrf"
)

// viewer is the signed-in person of a request.
type viewer struct {
	Actor string
	Role  httpapi.Role
	// CSRF is the token every state-changing form of this session carries.
	CSRF    string
	idHash  string
	Subject string
}

// CanOperate reports whether the viewer may give commands.
func (v *viewer) CanOperate() bool { return v != nil && v.Role >= httpapi.RoleOperator }

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// csrfFor derives a session's CSRF token from its secret, so that every
// replica computes the same token without storing it, and nobody without
// the (HttpOnly) cookie can.
func csrfFor(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("releasepilot dashboard csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (db *Dashboard) secure(r *http.Request) bool { return db.d.SecureCookies || r.TLS != nil }

func (db *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: db.secure(r), SameSite: http.SameSiteStrictMode})
}

// session reads the request's session and the current identity of the
// credential that opened it. nil: not signed in (no cookie, unknown or
// expired session, or a credential that no longer exists).
func (db *Dashboard) session(r *http.Request) (*viewer, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, nil
	}
	ctx := r.Context()
	h := hashSecret(c.Value)
	se, err := db.d.Store.Session(ctx, h, db.d.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	id, ok, err := db.d.Credentials.Lookup(ctx, se.Subject)
	if err != nil {
		return nil, err
	}
	if !ok || id.Role == httpapi.RoleNone {
		// The credential was removed: its sessions end with it.
		_ = db.d.Store.DeleteSession(ctx, h)
		return nil, nil
	}
	return &viewer{Actor: id.Actor, Role: id.Role, CSRF: csrfFor(c.Value), idHash: h, Subject: se.Subject}, nil
}

type viewerKey struct{}

func viewerOf(ctx context.Context) *viewer {
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	return v
}

// signedIn runs h for a signed-in person with at least role min, checked on
// this request whatever page sent it. State-changing requests must carry
// the session's CSRF token.
func (db *Dashboard) signedIn(min httpapi.Role, h func(w http.ResponseWriter, r *http.Request, v *viewer)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		v, err := db.session(r)
		if err != nil {
			db.log.Error("dashboard: read session", "err", err)
			db.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The session could not be read. Try again in a moment.")
			return
		}
		if v == nil {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" && r.URL.Query().Get("partial") == "" {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			db.errorPage(w, r, http.StatusUnauthorized, "Signed out", "Your session ended. Sign in again.")
			return
		}
		if v.Role < min {
			db.errorPage(w, r, http.StatusForbidden, "Not allowed", "You are signed in as "+v.Actor+" with the role "+v.Role.String()+"; this needs "+min.String()+".")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameToken(r.PostFormValue(CSRFField), v.CSRF) {
				db.errorPage(w, r, http.StatusForbidden, "Refused", "This form's security token is missing or out of date. Reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)), v)
	})
}

type signInView struct {
	CSRF      string
	Next      string
	Error     string
	SignedOut bool
}

func (db *Dashboard) signInForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if v, err := db.session(r); err == nil && v != nil {
		http.Redirect(w, r, localNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	tok := newSecret()
	db.setCookie(w, r, signInCookie, tok, 3600)
	db.render(w, r, http.StatusOK, "signin", nil, signInView{CSRF: tok, Next: localNext(r.URL.Query().Get("next")), SignedOut: r.URL.Query().Has("signed_out")})
}

func (db *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	form := r.PostFormValue(CSRFField)
	c, err := r.Cookie(signInCookie)
	if err != nil || !sameToken(form, c.Value) {
		db.errorPage(w, r, http.StatusForbidden, "Refused", "The sign-in form's security token is missing or out of date. Open the sign-in page and try again.")
		return
	}
	next := localNext(r.PostFormValue("next"))
	secret := strings.TrimSpace(r.PostFormValue("token"))
	ctx := r.Context()
	id, ok, err := db.d.Credentials.Authenticate(ctx, secret)
	if err != nil {
		db.log.Error("dashboard: authenticate", "err", err)
		db.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Sign-in could not be checked. Try again in a moment.")
		return
	}
	if !ok || id.Role == httpapi.RoleNone {
		// Say nothing about the token, not even its length.
		db.render(w, r, http.StatusUnauthorized, "signin", nil, signInView{CSRF: form, Next: next, Error: "That token is not valid."})
		return
	}
	now := db.d.Now()
	if _, err := db.d.Store.DeleteExpiredSessions(ctx, now); err != nil {
		db.log.Warn("dashboard: delete expired sessions", "err", err)
	}
	sessionSecret := newSecret()
	err = db.d.Store.CreateSession(ctx, store.Session{IDHash: hashSecret(sessionSecret), Subject: id.Subject, Actor: id.Actor, Role: id.Role.String(),
		CreatedAt: now, ExpiresAt: now.Add(db.d.SessionTTL)})
	if err != nil {
		db.log.Error("dashboard: create session", "err", err)
		db.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The session could not be saved. Try again in a moment.")
		return
	}
	db.log.Info("dashboard: signed in", "actor", id.Actor, "role", id.Role.String())
	db.setCookie(w, r, signInCookie, "", -1)
	db.setCookie(w, r, SessionCookie, sessionSecret, int(db.d.SessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (db *Dashboard) signOut(w http.ResponseWriter, r *http.Request, v *viewer) {
	if err := db.d.Store.DeleteSession(r.Context(), v.idHash); err != nil {
		db.log.Error("dashboard: delete session", "err", err)
		db.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Sign-out could not be saved. Try again.")
		return
	}
	db.log.Info("dashboard: signed out", "actor", v.Actor)
	db.setCookie(w, r, SessionCookie, "", -1)
	http.Redirect(w, r, "/signin?signed_out=1", http.StatusSeeOther)
}

// localNext keeps a redirect target on this site: a path, not "//host" or
// a URL.
func localNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}
