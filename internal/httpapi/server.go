// Package httpapi is releasepilot's HTTP surface: webhooks, the /v1 command
// and query API, OTA routes, /health and /metrics, on the standard library's
// ServeMux.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// JobsStatus reports whether River is working jobs.
type JobsStatus interface {
	Running() bool
}

// Deps are what the server needs. Zero fields disable the routes that need them.
type Deps struct {
	Logger  *slog.Logger
	Version string
	Started time.Time
	Now     func() time.Time
	DB      Pinger
	Jobs    JobsStatus
	Store   *store.Store
	Metrics *Metrics
	Tokens  []Token
	// Commands queues lane commands; nil answers 503 to commands.
	Commands CommandQueue
	// Slack, when set, serves Slack slash commands at POST /webhooks/slack.
	Slack *Slack
	// Freezes are shown in the lanes' outlooks.
	Freezes []release.Freeze
}

// Server routes requests.
type Server struct {
	deps Deps
	mux  *http.ServeMux
	log  *slog.Logger
	auth *Authenticator
}

// New builds the server and registers the base routes. Other packages add
// routes with Handle before the server starts.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Started.IsZero() {
		d.Started = d.Now()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	s := &Server{deps: d, mux: http.NewServeMux(), log: d.Logger, auth: &Authenticator{Tokens: d.Tokens, Now: d.Now}}
	if d.Store != nil {
		s.auth.Keys = d.Store // access keys are credentials too
	}
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.Handle("GET /metrics", d.Metrics.Handler())
	if d.Store != nil {
		s.Handle("GET /v1/releases", RoleViewer, http.HandlerFunc(s.listReleases))
		s.Handle("GET /v1/releases/{id}", RoleViewer, http.HandlerFunc(s.getRelease))
		s.Handle("GET /v1/releases/{id}/events", RoleViewer, http.HandlerFunc(s.releaseEvents))
		s.registerCommands()
		s.registerAccessKeys()
		if d.Slack != nil {
			s.Handle("POST /webhooks/slack", RoleNone, http.HandlerFunc(s.slackCommand))
		}
	}
	return s
}

// Handle registers h at pattern. A role other than RoleNone requires a bearer
// token with at least that role.
func (s *Server) Handle(pattern string, role Role, h http.Handler) {
	if role != RoleNone {
		h = s.authorize(role, h)
	}
	s.mux.Handle(pattern, h)
}

// Handler returns the routed handler with metrics, logging and panic
// recovery around it.
func (s *Server) Handler() http.Handler {
	return s.deps.Metrics.instrument(s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mux.ServeHTTP(&unmatchedWriter{ResponseWriter: w, r: r, answer: jsonUnmatched}, r)
	})))
}

// jsonUnmatched answers the mux's own 404 and 405 as JSON errors like every
// other answer of the API.
func jsonUnmatched(w http.ResponseWriter, r *http.Request, code int, allow string) {
	if code == http.StatusNotFound {
		WriteError(w, code, "not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	} else {
		WriteError(w, code, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	}
}

// unmatchedWriter replaces the mux's own plain-text 404 and 405 answers (no
// pattern matched) with answer's, and drops the body the mux writes after
// them. The API and the CodePush routes share it; each answers in its own
// dialect.
type unmatchedWriter struct {
	http.ResponseWriter
	r          *http.Request
	answer     func(w http.ResponseWriter, r *http.Request, code int, allow string)
	suppressed bool
}

func (w *unmatchedWriter) WriteHeader(code int) {
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.suppressed = true
		w.Header().Del("X-Content-Type-Options")
		w.answer(w.ResponseWriter, w.r, code, w.Header().Get("Allow"))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *unmatchedWriter) Write(b []byte) (int, error) {
	if w.suppressed {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *unmatchedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				WriteError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Error is the JSON body of every error answer.
type Error struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError answers with status and a JSON error body.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	var e Error
	e.Error.Code, e.Error.Message = code, msg
	WriteJSON(w, status, e)
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteStoreError maps store errors to HTTP answers.
func WriteStoreError(w http.ResponseWriter, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, store.ErrConflict):
		WriteError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, context.Canceled):
		// The client went away (or the server is shutting down): nothing
		// failed on our side, and nobody reads the answer.
		log.Debug("request cancelled", "err", err)
		w.WriteHeader(StatusClientClosedRequest)
	default:
		log.Error("store error", "err", err)
		WriteError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

type health struct {
	Status    string `json:"status"`
	Version   string `json:"version"`
	Uptime    string `json:"uptime"`
	Database  string `json:"database"`
	Jobs      string `json:"jobs"`
	Timestamp string `json:"timestamp"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	now := s.deps.Now()
	h := health{
		Status:    "ok",
		Version:   s.deps.Version,
		Uptime:    now.Sub(s.deps.Started).Truncate(time.Second).String(),
		Database:  "connected",
		Jobs:      "running",
		Timestamp: now.UTC().Format(time.RFC3339),
	}
	code := http.StatusOK
	if s.deps.DB == nil {
		h.Database = "not configured"
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.deps.DB.Ping(ctx); err != nil {
			h.Status, h.Database, code = "unavailable", "error: database unreachable", http.StatusServiceUnavailable
			s.log.Warn("health: database ping failed", "err", err)
		}
	}
	if s.deps.Jobs == nil || !s.deps.Jobs.Running() {
		h.Jobs = "stopped"
		if h.Status == "ok" {
			h.Status = "degraded"
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, code, h)
}
