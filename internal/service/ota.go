package service

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"slices"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/hotfix"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/otalane"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// setupOTA wires the OTA lane: the CodePush server on releasepilot's store, the native gate and the OTA executor.
func (s *Service) setupOTA(ctx context.Context) error {
	apps := map[string]config.App{}
	otaApps := map[string]gate.OTAApp{}
	targets := map[string]hotfix.Target{}
	signing := map[string]*rsa.PublicKey{}
	for _, a := range s.Config.Apps {
		apps[a.Name] = a
		if a.OTA.Enabled {
			for _, p := range release.Platforms {
				name := gate.CodePushAppName(a.OTA.AppName, p)
				otaApps[name] = gate.OTAApp{App: a.Name, Platform: p, Expo: a.OTA.Protocol == "expo", AllowUnverifiedStaging: a.OTA.AllowUnverifiedStaging}
				targets[name] = hotfix.Target{App: a, Platform: p}
				if k := a.OTA.SigningKey(); k != nil {
					signing[name] = k
				}
			}
		}
	}

	cps := store.NewCodePush(s.DB)
	// Read the change log position before the views load, so that nothing
	// another replica commits in between is missed.
	since, err := cps.LastChange(ctx)
	if err != nil {
		return err
	}
	blobs, err := s.packageStorage(ctx)
	if err != nil {
		return err
	}
	cp, err := codepush.New(ctx, codepush.Config{
		Store:            cps,
		Blobs:            blobs,
		Gate:             &gate.NativeGate{Store: s.Store, Apps: otaApps},
		PublicURL:        s.Config.CodePush.PublicURL,
		TrustedProxies:   s.Config.CodePush.Proxies(),
		ListenAddr:       s.Config.Listen,
		SigningKeys:      signing,
		ReportsPerMinute: s.Config.CodePush.ReportRatePerMinute,
		ReportBurst:      s.Config.CodePush.ReportBurst,
		Logger:           s.Log.With("component", "codepush"),
		DiffCount:        s.Config.CodePush.DiffCount,
		Diffs:            jobs.DiffScheduler{Runner: func() *jobs.Runner { return s.Jobs }},
	})
	if err != nil {
		return fmt.Errorf("codepush: %w", err)
	}
	names := make([]string, 0, len(otaApps))
	for n := range otaApps {
		names = append(names, n)
	}
	slices.Sort(names)
	err = cps.SetupLock(ctx, func(ctx context.Context) error {
		for _, n := range names {
			if err := ensureCodePushApp(ctx, cp, n); err != nil {
				return fmt.Errorf("codepush app %s: %w", n, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	// Devices authenticate with their deployment key; management needs a
	// token: reading is for viewers, changing for operators.
	// Each route on the server's own mux: update checks are the busiest
	// requests there are, and are routed once.
	for _, rt := range cp.AcquisitionRoutes() {
		s.addRoute(rt.Pattern, httpapi.RoleNone, rt.Handler)
	}
	// People change CodePush through releasepilot's rules: hand-made
	// releases are gated, staged and audited like tagged ones.
	hf := &hotfix.Releaser{Service: cp, Store: s.Store, Targets: targets, Log: s.Log.With("component", "hotfix")}
	if s.Planner != nil && s.Planner.Repo != nil {
		hf.Fingerprints = &hotfix.RepoFingerprints{Store: s.Store, Packages: s.Planner.Packages,
			Repo: func(fullName string) (nativecheck.Source, error) { return s.Planner.Repo(fullName) }}
	}
	if err := s.setupExpo(cp, hf); err != nil {
		return err
	}
	mgmt := http.StripPrefix("/v1/codepush", codePushActor(cp.NewManagementHandler(codepush.ManagementOptions{Operations: hf, JSONErrors: true})))
	s.addRoute("GET /v1/codepush/", httpapi.RoleViewer, mgmt)
	s.addRoute("/v1/codepush/", httpapi.RoleOperator, mgmt)
	s.addRoute("POST /v1/ota/releases", httpapi.RoleOperator, &httpapi.HotfixAPI{Hotfix: hf, Log: s.Log.With("component", "hotfix")})
	// The legacy CodePush management API at the root, for code-push-cli.
	legacy := &httpapi.CodePushAPI{Auth: serverCredentials{s}, Management: cp.NewManagementHandler(codepush.ManagementOptions{Operations: hf}),
		Store: s.Store, Log: s.Log.With("component", "codepush-api")}
	for _, p := range legacy.Patterns() {
		s.addRoute(p, httpapi.RoleNone, legacy)
	}

	s.addWorkers(func(ws *river.Workers) { river.AddWorker(ws, &jobs.CodePushDiffsWorker{CodePush: cp}) })
	ota := &otalane.OTA{Store: s.Store, CodePush: cp, Apps: apps, Assets: s.Assets, Log: s.Log.With("lane", "ota")}
	addLaneWorker(s, &otalane.Worker{OTA: ota})
	for _, p := range release.Platforms {
		s.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindOTA, Platform: p}] = ota
	}
	s.Gates.Providers[release.ProviderOTA] = &gate.OTAReports{Counters: cp}

	// Other replicas' changes reach this one's update-check views through
	// the change log; the follower runs until shutdown.
	f := &store.Follower{Store: cps, Since: since, Invalidate: cp.Invalidate, Reload: cp.Reload, Log: s.Log.With("component", "codepush")}
	s.goBackground(f.Run)
	return nil
}

// ensureCodePushApp creates a configured OTA app with Staging and Production
// deployments, or adds whichever of them is missing.
func ensureCodePushApp(ctx context.Context, cp *codepush.Service, name string) error {
	a, err := cp.App(ctx, name)
	if codepush.KindOf(err) == codepush.KindNotFound {
		_, err = cp.CreateApp(ctx, name, false)
		if codepush.KindOf(err) != codepush.KindConflict {
			return err
		}
		a, err = cp.App(ctx, name) // another replica created it first
	}
	if err != nil {
		return err
	}
	for _, dep := range []string{codepush.Staging, codepush.Production} {
		if slices.ContainsFunc(a.Deployments, func(d codepush.Deployment) bool { return d.Name == dep }) {
			continue
		}
		if _, err := cp.AddDeployment(ctx, name, dep, ""); err != nil && codepush.KindOf(err) != codepush.KindConflict {
			return err
		}
	}
	return nil
}

// serverCredentials reaches the HTTP server's authenticator, which exists
// only after setup.
type serverCredentials struct{ s *Service }

func (c serverCredentials) Principal(ctx context.Context, credential string) (httpapi.Principal, error) {
	return c.s.HTTP.Authenticator().Principal(ctx, credential)
}

// codePushActor names the authenticated caller in CodePush's history.
func codePushActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := codepush.WithActor(r.Context(), codepush.Actor{Name: httpapi.Actor(r.Context())})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// packageStorage is where OTA packages live: an S3-compatible bucket when
// configured, in the database when several replicas may serve them
// (Postgres), else in the storage directory.
func (s *Service) packageStorage(ctx context.Context) (codepush.Blobs, error) {
	switch s.Config.CodePush.Storage {
	case "s3":
		return s3Storage(ctx, s.Config.CodePush.S3)
	case "database":
		return &store.CodePushBlobs{DB: s.DB}, nil
	case "directory":
		return codepush.DirBlobs{Dir: s.Config.CodePush.StorageDir}, nil
	}
	if s.DB.Engine == store.Postgres {
		return &store.CodePushBlobs{DB: s.DB}, nil
	}
	return codepush.DirBlobs{Dir: s.Config.CodePush.StorageDir}, nil
}
