package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/ioslane"
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
			Lanes: &ioslane.Waker{Store: s.Store, Log: s.Log.With("component", "appstore_webhook"),
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
	var client *appstore.Client
	var sandbox *sandboxASC
	switch {
	case as.PrivateKey.IsSet():
		var err error
		if client, err = newAppStoreClient(as); err != nil {
			return err
		}
	case s.Config.Sandbox:
		var err error
		if sandbox, err = startSandboxASC(s.bg, s.Config.Apps, func(h http.Handler) http.Handler { return s.sandboxHandler("appstore", h) }); err != nil {
			return fmt.Errorf("sandbox App Store Connect: %w", err)
		}
		client = &appstore.Client{BaseURL: sandbox.url, Tokens: appstore.NewTokenSource(sandbox.key)}
		s.Log.Info("sandbox: App Store Connect is an in-process fake", "url", sandbox.url)
	default:
		for _, a := range s.Config.Apps {
			if a.IOS.Enabled {
				s.Log.Warn("appstore.private_key is not set: iOS store lanes will wait", "app", a.Name)
			}
		}
		return nil
	}
	client.Logger = s.Log.With("component", "appstore")
	apps := map[string]config.App{}
	for _, a := range s.Config.Apps {
		apps[a.Name] = a
	}
	ios := &ioslane.IOS{
		Store:  s.Store,
		ASC:    client,
		Apps:   apps,
		Assets: s.Assets, // GitHub release assets, for ios.ipa_asset
		Log:    s.Log.With("component", "ios"),
	}
	if sandbox != nil {
		// No CI uploads to the fake: releasepilot uploads an IPA made up
		// on the spot for every release, with the next build number.
		for name, a := range apps {
			if a.IOS.Enabled {
				a.IOS.BuildSource, a.IOS.IPAAsset = "upload", "*.ipa"
				apps[name] = a
			}
		}
		ios.Assets = sandbox
	}
	addLaneWorker(s, &ioslane.Worker{IOS: ios})
	s.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindStore, Platform: release.IOS}] = ios
	return nil
}

// newAppStoreClient builds the App Store Connect client from its key. Errors
// name the config key, never the key material.
func newAppStoreClient(as config.AppStore) (*appstore.Client, error) {
	if as.KeyID == "" {
		return nil, config.Invalid("appstore.key_id", errors.New("empty while appstore.private_key is set"))
	}
	issuer := as.IssuerID
	if as.Individual {
		issuer = ""
	} else if issuer == "" {
		return nil, config.Invalid("appstore.issuer_id", errors.New("empty for a team key (set appstore.individual: true for an individual key)"))
	}
	key, err := appstore.NewKey(as.KeyID, issuer, []byte(as.PrivateKey.Value()))
	if err != nil {
		return nil, config.Invalid("appstore.private_key", err)
	}
	return &appstore.Client{BaseURL: as.BaseURL, Tokens: appstore.NewTokenSource(key)}, nil
}

// sandboxASC is the sandbox's App Store Connect: the appstoretest fake on a
// loopback listener, closed when ctx ends, with beta and App Review that
// approve within seconds. It doubles as the GitHub asset source of IPAs.
type sandboxASC struct {
	fake    *appstoretest.Fake
	url     string
	key     appstore.Key
	bundles map[string]string // repository → bundle id
	apps    map[string]string // bundle id → App Store Connect app id
}

// Sandbox review times: long enough to see each state go by, short enough
// for a demo.
const (
	sandboxBetaReview = 2 * time.Second
	sandboxAppReview  = 3 * time.Second
)

func startSandboxASC(ctx context.Context, apps []config.App, wrap func(http.Handler) http.Handler) (*sandboxASC, error) {
	sa := &sandboxASC{bundles: map[string]string{}, apps: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sa.url = "http://" + ln.Addr().String()
	sa.fake = appstoretest.New(appstoretest.Options{
		PublicURL:             sa.url,
		ProcessingPolls:       2,
		UploadProcessingPolls: 2,
		BetaReviewTime:        sandboxBetaReview,
		AppReviewTime:         sandboxAppReview,
		DistributionPolls:     1,
	})
	for _, a := range apps {
		if !a.IOS.Enabled || a.IOS.BundleID == "" {
			continue
		}
		id, ok := sa.apps[a.IOS.BundleID]
		if !ok {
			id = sa.fake.AddApp(appstoretest.App{ID: a.IOS.AppID, BundleID: a.IOS.BundleID, Name: a.Name, SKU: a.Name})
			sa.apps[a.IOS.BundleID] = id
			// The test information Beta App Review needs is filled in,
			// as a team does once in App Store Connect.
			sa.fake.CompleteBetaAppInfo(id)
			// A first version is on sale, as in any app that ships (and
			// Apple allows no phased release for an app's first version).
			sa.fake.AddAppStoreVersion(id, appstore.PlatformIOS, "0.9.0", appstore.VersionReadyForDistribution)
		}
		for _, g := range a.IOS.InternalGroups {
			// Internal groups get every build by themselves, as App Store
			// Connect's automatic distribution does: the lane adds none.
			sa.fake.AddGroup(appstoretest.BetaGroup{AppID: id, Name: g, Internal: true, AllBuilds: true})
		}
		for _, g := range a.IOS.ExternalGroups {
			sa.fake.AddBetaGroup(id, g, false)
		}
		sa.bundles[a.Repository] = a.IOS.BundleID
	}
	if sa.key, _, err = sa.fake.NewKey("SANDBOX001", "69a6de70-0000-47e3-e053-5b8c7c11a4d1"); err != nil {
		_ = ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: wrap(sa.fake), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	return sa, nil
}

// FetchAsset makes up the IPA of a release: the tag's marketing version
// and the build number its semver build metadata names, else the next
// one the app has not used.
func (sa *sandboxASC) FetchAsset(_ context.Context, repository, tag, _ string) (*os.File, string, error) {
	bundle, ok := sa.bundles[repository]
	if !ok {
		return nil, "", fmt.Errorf("sandbox: no iOS app for %s: %w", repository, fs.ErrNotExist)
	}
	v, err := semver.NewVersion(strings.TrimPrefix(tag[strings.LastIndexByte(tag, '/')+1:], "v"))
	if err != nil {
		return nil, "", fmt.Errorf("sandbox: tag %q is not a version: %w", tag, fs.ErrNotExist)
	}
	build := v.Metadata()
	if build == "" {
		next := 1
		for _, id := range sa.fake.Builds() {
			if b, ok := sa.fake.Build(id); ok && b.AppID == sa.apps[bundle] {
				if n, err := strconv.Atoi(b.BuildNumber); err == nil {
					next = max(next, n+1)
				}
			}
		}
		build = strconv.Itoa(next)
	}
	ipa, err := appstoretest.FakeIPA(bundle, fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch()), build, 64<<10)
	if err != nil {
		return nil, "", err
	}
	return tempAsset("releasepilot-sandbox-*.ipa", ipa, "app-"+path.Base(tag)+".ipa")
}
