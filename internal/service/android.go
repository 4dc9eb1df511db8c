package service

import (
	"context"
	"fmt"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
)

// setupAndroid wires the Android lane: Play client, lane jobs, the staged-rollout executor and the vitals gate.
//
// Without playstore.service_account nothing is registered: planned Android
// store lanes then wait, and their reason says that no android_lane worker
// is configured.
func (s *Service) setupAndroid(ctx context.Context) error {
	ps := s.Config.PlayStore
	if !ps.ServiceAccount.IsSet() {
		for _, a := range s.Config.Apps {
			if a.Android.Enabled {
				s.Log.Warn("playstore.service_account is not set: Android store lanes will wait", "app", a.Name)
			}
		}
		return nil
	}
	client, err := playstore.New(ctx, playstore.Config{
		CredentialsJSON:   []byte(ps.ServiceAccount.Value()),
		Endpoint:          ps.Endpoint,
		ReportingEndpoint: ps.ReportingEndpoint,
		// Every replica shares one versionCode ratchet through the database.
		Ledger: s.Store.VersionCodes(),
		Logger: s.Log.With("component", "playstore"),
	})
	if err != nil {
		return fmt.Errorf("playstore: %w", err)
	}
	apps := map[string]config.App{}
	needAssets := false
	for _, a := range s.Config.Apps {
		apps[a.Name] = a
		needAssets = needAssets || (a.Android.Enabled && a.Android.AABAsset != "")
	}
	android := &jobs.Android{
		Store:  s.Store,
		Play:   client,
		Apps:   apps,
		Vitals: &gate.PlayVitals{Reader: client},
		Log:    s.Log.With("component", "android"),
	}
	if needAssets {
		gh, err := github.NewClient(github.ClientOptions{BaseURL: s.Config.GitHub.APIURL, Token: s.Config.GitHub.Token.Value()})
		if err != nil {
			return fmt.Errorf("github.api_url: %w", err)
		}
		// The GitHub client fetches release assets once it implements
		// jobs.Assets; until then a lane with android.aab_asset fails with
		// a reason that says so.
		if assets, ok := any(gh).(jobs.Assets); ok {
			android.Assets = assets
		} else {
			s.Log.Warn("android.aab_asset is set but this build cannot fetch GitHub release assets: those lanes will fail; let CI upload the bundle instead")
		}
	}
	addLaneWorker(s, &jobs.AndroidLaneWorker{Android: android})
	s.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindStore, Platform: release.Android}] = android
	return nil
}
