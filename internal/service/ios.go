package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
)

// setupIOS wires the iOS lane: App Store Connect client, lane jobs, the phased-release executor and the App Store Connect webhook.
//
// Without appstore.private_key no worker or executor is registered: planned
// iOS store lanes then wait, and their reason says that no ios_lane worker
// is configured. Without appstore_webhook.secret the webhook route is not
// registered at all (404), and lanes rely on polling alone.
func (s *Service) setupIOS(ctx context.Context) error {
	if secret := s.Config.AppStoreHook.Secret; secret.IsSet() {
		s.addRoute("POST /webhooks/appstoreconnect", httpapi.RoleNone, &httpapi.AppStoreWebhook{
			Secret: []byte(secret.Value()),
			Lanes: &jobs.IOSWaker{Store: s.Store, Log: s.Log.With("component", "appstore_webhook"),
				// River is built after the routes; look it up per request.
				Client: func() *river.Client[*sql.Tx] {
					if s.Jobs == nil {
						return nil
					}
					return s.Jobs.Client
				}},
			Log: s.Log.With("component", "appstore_webhook"),
		})
	}
	as := s.Config.AppStore
	if !as.PrivateKey.IsSet() {
		for _, a := range s.Config.Apps {
			if a.IOS.Enabled {
				s.Log.Warn("appstore.private_key is not set: iOS store lanes will wait", "app", a.Name)
			}
		}
		return nil
	}
	client, err := newAppStoreClient(as)
	if err != nil {
		return err
	}
	client.Logger = s.Log.With("component", "appstore")
	apps := map[string]config.App{}
	for _, a := range s.Config.Apps {
		apps[a.Name] = a
	}
	ios := &jobs.IOS{
		Store:  s.Store,
		ASC:    client,
		Apps:   apps,
		Assets: s.Assets, // GitHub release assets, for ios.ipa_asset
		Log:    s.Log.With("component", "ios"),
	}
	addLaneWorker(s, &jobs.IOSLaneWorker{IOS: ios})
	s.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindStore, Platform: release.IOS}] = ios
	return nil
}

// newAppStoreClient builds the App Store Connect client from its key. Errors
// name the config key, never the key material.
func newAppStoreClient(as config.AppStore) (*appstore.Client, error) {
	if as.KeyID == "" {
		return nil, errors.New("appstore.key_id: empty while appstore.private_key is set")
	}
	issuer := as.IssuerID
	if as.Individual {
		issuer = ""
	} else if issuer == "" {
		return nil, errors.New("appstore.issuer_id: empty for a team key (set appstore.individual: true for an individual key)")
	}
	key, err := appstore.NewKey(as.KeyID, issuer, []byte(as.PrivateKey.Value()))
	if err != nil {
		return nil, fmt.Errorf("appstore.private_key: %w", err)
	}
	return &appstore.Client{BaseURL: as.BaseURL, Tokens: appstore.NewTokenSource(key)}, nil
}
