// Package dashboard serves releasepilot's release dashboard at "/", beside
// the /v1 API in the same binary: server-rendered pages (html/template and
// go:embed, no build step) for releases, their lanes and audit log, and the
// OTA deployments; operators' commands through the API's own command core,
// each shown as a dry run before it acts; sign-in with an API token
// exchanged for a session kept (hashed) in the database, so every replica
// honours it; and live lane updates over server-sent events read from the
// audit log in the database, so they work across replicas too.
//
// Every page reads without JavaScript. A small script (static/app.js, no
// library) adds the confirm dialog, live updates and countdowns.
package dashboard

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

//go:embed templates static
var assets embed.FS

// Commands is the command core the dashboard acts through: the same checks,
// refusals, audit entries and queue as POST /v1/lanes/{id}/{command}.
// *httpapi.Server is one.
type Commands interface {
	DryRunCommand(ctx context.Context, laneID, name, reason string) (httpapi.CommandMove, error)
	QueueCommand(ctx context.Context, laneID, name, actor, reason string) (httpapi.CommandMove, error)
}

// OTAReader reads the CodePush apps, their deployment histories and the
// devices' status-report counters; *store.CodePush is one.
type OTAReader interface {
	Apps(ctx context.Context) ([]codepush.App, error)
	Releases(ctx context.Context, deploymentKey string) ([]codepush.Release, error)
	Counts(ctx context.Context, deploymentKey string) (map[string]codepush.Counts, error)
}

// GateReadings gives a lane's gate readings in the stage that began at
// since, by gate key (release.GateRule.Key): each rule's newest stored
// measurement, judged as the reconciler judged it, and its failures in a
// row. *store.Store is one, and the default.
type GateReadings interface {
	GateReadings(ctx context.Context, laneID string, since time.Time) (map[string]release.GateReading, error)
}

// Deps are what the dashboard needs. Store, Commands and Credentials are
// required.
type Deps struct {
	Store       *store.Store
	Commands    Commands
	Credentials httpapi.Credentials
	// OTA, when set, serves the OTA deployments page.
	OTA OTAReader
	// Gates supplies the gates' measurements; default: Store.
	Gates   GateReadings
	Freezes []release.Freeze
	Now     func() time.Time
	Logger  *slog.Logger
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure on every request, for a dashboard
	// behind a proxy that terminates TLS; without it they are Secure when
	// the request itself came over TLS.
	SecureCookies bool
	// LiveInterval is how often the audit log is read for live updates
	// (default 1s).
	LiveInterval time.Duration
}

// Dashboard serves the pages.
type Dashboard struct {
	d     Deps
	log   *slog.Logger
	pages map[string]*page
	hub   *hub
}

// New builds the dashboard and parses its templates.
func New(d Deps) (*Dashboard, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = 12 * time.Hour
	}
	if d.LiveInterval <= 0 {
		d.LiveInterval = time.Second
	}
	if d.Gates == nil && d.Store != nil {
		d.Gates = d.Store
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	db := &Dashboard{d: d, log: d.Logger, pages: pages}
	db.hub = newHub(d.Store, d.LiveInterval, d.Logger)
	return db, nil
}

// Registrar takes routes; *httpapi.Server is one. The dashboard registers
// its routes without the API's bearer check (RoleNone) and checks its own
// session and role on every request.
type Registrar interface {
	Handle(pattern string, role httpapi.Role, h http.Handler)
}

// Register mounts the dashboard's routes.
func (db *Dashboard) Register(r Registrar) {
	static, _ := fs.Sub(assets, "static")
	files := http.FileServerFS(static)
	r.Handle("GET /static/", httpapi.RoleNone, http.StripPrefix("/static/", db.guard(cacheFor(time.Hour, files))))
	r.Handle("GET /signin", httpapi.RoleNone, db.guard(http.HandlerFunc(db.signInForm)))
	r.Handle("POST /signin", httpapi.RoleNone, db.guard(http.HandlerFunc(db.signIn)))
	r.Handle("POST /signout", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleViewer, db.signOut)))
	r.Handle("GET /{$}", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleViewer, db.releasesPage)))
	r.Handle("GET /releases/{id}", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleViewer, db.releasePage)))
	r.Handle("GET /releases/{id}/panels", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleViewer, db.releasePanels)))
	r.Handle("GET /releases/{id}/live", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleViewer, db.live)))
	r.Handle("GET /lanes/{id}/{command}", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleOperator, db.confirmCommand)))
	r.Handle("POST /lanes/{id}/{command}", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleOperator, db.runCommand)))
	if db.d.OTA != nil {
		r.Handle("GET /ota", httpapi.RoleNone, db.guard(db.signedIn(httpapi.RoleViewer, db.otaPage)))
	}
}

// Close ends live streams, so that a server shutting down need not wait
// for them.
func (db *Dashboard) Close() { db.hub.close() }

// guard refuses cross-origin state changes (Sec-Fetch-Site and Origin, by
// net/http's CrossOriginProtection) before anything else, and sets the
// headers every answer carries.
func (db *Dashboard) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db.errorPage(w, r, http.StatusForbidden, "Refused", "This form was sent from another site. Open the dashboard and try again.")
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	}))
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+itoa(int(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}
