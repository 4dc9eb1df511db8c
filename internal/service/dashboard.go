package service

import (
	"github.com/swapjoy/releasepilot/internal/dashboard"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// setupDashboard mounts the release dashboard at "/" on the API's server:
// sign-in with the configured tokens, commands through the API's command
// core, OTA adoption from the CodePush tables, gate measurements from the
// store.
func (s *Service) setupDashboard(creds httpapi.Credentials, freezes []release.Freeze) error {
	d, err := dashboard.New(dashboard.Deps{
		Store:         s.Store,
		Commands:      s.HTTP,
		Credentials:   creds,
		OTA:           store.NewCodePush(s.DB),
		Gates:         s.Store, // every gate measurement, as the reconciler judged it
		Freezes:       freezes,
		Logger:        s.Log.With("component", "dashboard"),
		SessionTTL:    s.Config.Dashboard.SessionTTL.D(),
		SecureCookies: s.Config.Dashboard.SecureCookies,
		LiveInterval:  s.Config.Dashboard.LiveInterval.D(),
	})
	if err != nil {
		return err
	}
	d.Register(s.HTTP)
	s.Dashboard = d
	return nil
}
