// Package service assembles releasepilot from its configuration: database,
// migrations, River, HTTP server, and their orderly shutdown. cmd/releasepilot
// and end-to-end tests both run it.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/dashboard"
	"github.com/swapjoy/releasepilot/internal/gate/sentrytest"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/notify"
	"github.com/swapjoy/releasepilot/internal/progress"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Version is set at build time with -ldflags "-X .../internal/service.Version=…".
var Version = "dev"

// NewLogger builds the process logger: JSON unless w is a terminal.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Migrate opens the database and applies every migration.
func Migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	db, err := store.Open(ctx, cfg.Database.URL.Value(), cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx, log)
}

// Service is a running releasepilot.
type Service struct {
	Config *config.Config
	Log    *slog.Logger
	DB     *store.DB
	Store  *store.Store
	Jobs   *jobs.Runner
	// Rollouts executes reconcile passes and commands; lanes register their
	// executors in Rollouts.Executors before Start.
	Rollouts *jobs.Rollouts
	HTTP     *httpapi.Server
	Metrics  *httpapi.Metrics
	// Dashboard is the release dashboard at "/".
	Dashboard *dashboard.Dashboard
	// Addr is the address the HTTP server listens on once Start returned.
	Addr string

	srv     *http.Server
	ln      net.Listener
	workers []func(*river.Workers)
	routes  []route
	// bg is cancelled at shutdown; background work started with
	// goBackground runs under it and is waited for before the database
	// closes.
	bg     context.Context
	stopBG context.CancelFunc
	bgWG   sync.WaitGroup
	// laneKinds lists the lane job kinds with a registered worker.
	laneKinds map[string]bool
	// Planner plans releases (the plan_release job).
	Planner *jobs.Planner
	// Assets fetches build artifacts (GitHub release assets) for the lanes;
	// set by setupGitHub, which runs first.
	Assets lane.Assets
	// wrapFake wraps the sandbox fakes' handlers (WithSandboxFakes).
	wrapFake func(kind string, h http.Handler) http.Handler
	// Progress mirrors lanes to GitHub Deployments (apps with
	// github_deployments); set by setupGitHub.
	Progress *progress.Mirror
	// Gates measures the lanes' health gates; each lane's setup adds the
	// providers it brings (Play vitals, OTA reports), setupGates the rest.
	Gates *jobs.Gates
	// SandboxSentry is the in-process Sentry of the sandbox (nil outside
	// it, or with a real Sentry configured).
	SandboxSentry *sentrytest.Server
}

// addLaneWorker registers the worker of a lane job kind.
func addLaneWorker[T river.JobArgs](s *Service, w river.Worker[T]) {
	var zero T
	s.laneKinds[zero.Kind()] = true
	s.addWorkers(func(ws *river.Workers) { river.AddWorker(ws, w) })
}

type route struct {
	pattern string
	role    httpapi.Role
	handler http.Handler
}

// goBackground runs f until shutdown cancels its context.
func (s *Service) goBackground(f func(ctx context.Context)) {
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		f(s.bg)
	}()
}

// addRoute registers an HTTP route once the server exists.
func (s *Service) addRoute(pattern string, role httpapi.Role, h http.Handler) {
	s.routes = append(s.routes, route{pattern, role, h})
}

// addWorkers registers River workers before the client is built.
func (s *Service) addWorkers(f func(*river.Workers)) { s.workers = append(s.workers, f) }

// Option adjusts how New builds the service.
type Option func(*Service)

// WithSandboxFakes wraps the handlers of the sandbox's in-process store
// fakes, kind "appstore" (App Store Connect) and "play" (Google Play): tests
// put the OpenAPI and discovery checks in front of them.
func WithSandboxFakes(wrap func(kind string, h http.Handler) http.Handler) Option {
	return func(s *Service) { s.wrapFake = wrap }
}

// sandboxHandler is h as the sandbox serves it (wrapped by WithSandboxFakes).
func (s *Service) sandboxHandler(kind string, h http.Handler) http.Handler {
	if s.wrapFake == nil {
		return h
	}
	return s.wrapFake(kind, h)
}

// New opens and migrates the database, records the configured apps and
// builds River and the HTTP server. Nothing listens until Start.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := store.Open(ctx, cfg.Database.URL.Value(), cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	if err := db.Migrate(ctx, log); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	st := store.New(db)
	now := time.Now()
	for _, a := range cfg.Apps {
		if err := st.UpsertApp(ctx, release.App{Name: a.Name, Repository: a.Repository}, now); err != nil {
			return nil, fmt.Errorf("record app %s: %w", a.Name, err)
		}
	}
	svc := &Service{Config: cfg, Log: log, DB: db, Store: st, Metrics: httpapi.NewMetrics(), laneKinds: map[string]bool{}}
	for _, o := range opts {
		o(svc)
	}
	svc.bg, svc.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if !ok {
			svc.stopBG()
			svc.bgWG.Wait()
		}
	}()
	var freezes []release.Freeze
	for _, f := range cfg.Freezes {
		from, to := f.Span()
		freezes = append(freezes, release.Freeze{From: from, To: to, Reason: f.Reason, Apps: f.Apps})
	}
	svc.Rollouts = &jobs.Rollouts{Store: st, Executors: jobs.Executors{}, Log: log, Freezes: freezes, PassBudget: cfg.Jobs.PassBudget.D()}
	// Each part of the product wires itself in its own file: workers,
	// executors, lane starters and routes.
	svc.Gates = &jobs.Gates{Store: st, Providers: map[string]jobs.GateProvider{}, Executors: svc.Rollouts.Executors, Log: log.With("component", "gates")}
	svc.Rollouts.Gates = svc.Gates
	for _, setup := range []func(context.Context) error{svc.setupGitHub, svc.setupIOS, svc.setupAndroid, svc.setupOTA, svc.setupGates} {
		if err := setup(ctx); err != nil {
			return nil, err
		}
	}
	notifier := &notify.Notifier{Store: st, Log: log.With("component", "notify"), Freezes: freezes}
	for _, n := range cfg.Notify {
		notifier.Targets = append(notifier.Targets, notify.Target{Kind: n.Kind, URL: n.URL.Value(), Topics: n.Events})
	}
	runner, err := jobs.New(jobs.Config{
		Rollouts: svc.Rollouts,
		// The leader's pass: move due rollouts, then tell people (and GitHub).
		Reconcile: func(ctx context.Context) error {
			ctx = jobs.WithGatePass(ctx) // one provider answer per question per pass
			return errors.Join(svc.Gates.Pass(ctx, svc.Rollouts), svc.Rollouts.Pass(ctx), notifier.Pass(ctx), svc.Progress.Pass(ctx))
		},
		DB:                db,
		Logger:            log,
		ControlWorkers:    cfg.Jobs.ControlWorkers,
		PlanWorkers:       cfg.Jobs.PlanWorkers,
		ReconcileInterval: cfg.Jobs.ReconcileInterval.D(),
		RescueAfter:       cfg.Jobs.RescueAfter.D(),
		ActionTimeout:     cfg.Jobs.ActionTimeout.D(),
		Observe:           svc.Metrics.ObserveJob,
		FastPoll:          cfg.Sandbox,
		Register:          svc.workers,
	})
	if err != nil {
		return nil, err
	}
	svc.Jobs = runner
	var tokens []httpapi.Token
	for _, t := range cfg.Tokens {
		tokens = append(tokens, httpapi.NewToken(t.Name, httpapi.ParseRole(t.Role), t.Token.Value()))
	}
	var slack *httpapi.Slack
	if cfg.Slack.SigningSecret.IsSet() {
		slack = &httpapi.Slack{SigningSecret: []byte(cfg.Slack.SigningSecret.Value()), Users: map[string]httpapi.Role{}}
		for id, role := range cfg.Slack.Users {
			slack.Users[id] = httpapi.ParseRole(role)
		}
	}
	svc.HTTP = httpapi.New(httpapi.Deps{
		Logger: log, Version: Version, Started: now, DB: db, Jobs: runner, Store: st, Metrics: svc.Metrics, Tokens: tokens, Commands: runner,
		Slack: slack, Freezes: freezes,
	})
	for _, rt := range svc.routes {
		svc.HTTP.Handle(rt.pattern, rt.role, rt.handler)
	}
	// Tokens and access keys sign people in to the dashboard.
	if err := svc.setupDashboard(svc.HTTP.Authenticator(), freezes); err != nil {
		return nil, err
	}
	ok = true
	return svc, nil
}

// Start listens and starts working jobs. ctx only bounds starting; the
// service runs until Shutdown.
func (s *Service) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Config.Listen, err)
	}
	s.ln, s.Addr = ln, ln.Addr().String()
	if err := s.Jobs.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	s.srv = &http.Server{
		Handler:           s.HTTP.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error("http server stopped", "err", err)
		}
	}()
	s.Log.Info("releasepilot started", "version", Version, "addr", s.Addr, "database", string(s.DB.Engine), "apps", len(s.Config.Apps))
	return nil
}

// Shutdown drains, HTTP and jobs side by side, for up to the configured
// shutdown timeout: the server stops accepting connections and lets
// in-flight requests finish, and River stops fetching jobs and lets running
// ones finish. At the deadline, connections still open are closed, and jobs
// still running are cancelled and go back to the queue, where another
// replica (or the next start) picks them up; that is still a clean drain.
// Then the database closes. It returns an error only when something could
// not be handed back or closed.
func (s *Service) Shutdown(ctx context.Context) error {
	timeout := s.Config.ShutdownTimeout.D()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var errs []error
	s.Dashboard.Close() // live streams would hold the HTTP shutdown
	var httpErr, jobsErr error
	var wg sync.WaitGroup
	if s.srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.srv.Shutdown(ctx)
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				s.Log.Warn("HTTP connections still open at the end of shutdown_timeout; closing them", "timeout", timeout.String())
				_ = s.srv.Close() // its listeners are closed already; closing them again says so
				err = nil
			}
			httpErr = err
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		jobsErr = s.Jobs.Stop(ctx)
	}()
	wg.Wait()
	if httpErr != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", httpErr))
	}
	if jobsErr != nil {
		errs = append(errs, fmt.Errorf("jobs shutdown: %w", jobsErr))
	}
	s.stopBG()
	s.bgWG.Wait()
	if err := s.DB.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close database: %w", err))
	}
	s.Log.Info("releasepilot stopped")
	return errors.Join(errs...)
}

// Run starts the service and blocks until ctx is cancelled, then shuts down.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	svc, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		svc.DB.Close()
		return err
	}
	<-ctx.Done()
	log.Info("shutting down: draining requests and jobs", "timeout", cfg.ShutdownTimeout.D().String())
	return svc.Shutdown(context.WithoutCancel(ctx))
}
