package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/gate/sentrytest"
	"github.com/swapjoy/releasepilot/internal/release"
)

// setupGates wires the health gates' Sentry and Prometheus providers (the
// lanes' setups add Play vitals and OTA reports) and the apps the gates
// measure.
//
// In the sandbox without sentry.organization, Sentry is an in-process fake
// (SandboxSentry) whose project for each app is the app's name.
func (s *Service) setupGates(context.Context) error {
	apps := map[string]config.App{}
	for _, a := range s.Config.Apps {
		apps[a.Name] = a
	}
	s.Gates.Apps = apps
	sc := s.Config.Sentry
	sentry := &gate.Sentry{BaseURL: sc.URL, Org: sc.Organization, Token: sc.Token.Value(), Apps: map[string]gate.SentryApp{}}
	if sc.Organization == "" && s.Config.Sandbox {
		fake, url, token, err := startSandboxSentry(s.bg)
		if err != nil {
			return fmt.Errorf("sandbox Sentry: %w", err)
		}
		s.SandboxSentry = fake
		sentry.BaseURL, sentry.Org, sentry.Token = url, sandboxSentryOrg, token
		s.Log.Info("sandbox: Sentry is an in-process fake", "url", url)
	}
	for _, a := range s.Config.Apps {
		sa := gate.SentryApp{Project: a.Sentry.Project, Environment: a.Sentry.Environment}
		if s.SandboxSentry != nil && sa.Project == "" {
			sa.Project, sa.Environment = a.Name, "production"
			s.SandboxSentry.AddProject(a.Name)
		}
		var err error
		if a.Sentry.Release != "" {
			if sa.Release, err = gate.ParseTemplate("release", a.Sentry.Release); err != nil {
				return fmt.Errorf("%w: apps %s sentry.release: %v", config.ErrInvalid, a.Name, err)
			}
		}
		if a.Sentry.OTARelease != "" {
			if sa.OTARelease, err = gate.ParseTemplate("ota_release", a.Sentry.OTARelease); err != nil {
				return fmt.Errorf("%w: apps %s sentry.ota_release: %v", config.ErrInvalid, a.Name, err)
			}
		}
		if sa.Project != "" {
			sentry.Apps[a.Name] = sa
		}
	}
	if sentry.Org != "" {
		s.Gates.Providers[release.ProviderSentry] = sentry
	}
	if u := s.Config.Prometheus.URL; u != "" {
		s.Gates.Providers[release.ProviderPrometheus] = &gate.Prometheus{URL: u, Token: s.Config.Prometheus.Token.Value()}
	}
	return nil
}

// sandboxSentryOrg is the sandbox Sentry's organization.
const sandboxSentryOrg = "sandbox"

// startSandboxSentry runs the Sentry fake on a loopback listener until ctx
// ends, with a fresh auth token.
func startSandboxSentry(ctx context.Context) (*sentrytest.Server, string, string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := "sntrys_sandbox_" + hex.EncodeToString(b[:])
	fake := sentrytest.New(sandboxSentryOrg, nil)
	fake.AddToken(token)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", "", err
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	return fake, "http://" + ln.Addr().String() + "/", token, nil
}
