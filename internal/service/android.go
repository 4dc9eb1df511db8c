package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/androidlane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// setupAndroid wires the Android lane: Play client, lane jobs, the staged-rollout executor and the vitals gate.
//
// Without playstore.service_account nothing is registered: planned Android
// store lanes then wait, and their reason says that no android_lane worker
// is configured.
func (s *Service) setupAndroid(ctx context.Context) error {
	ps := s.Config.PlayStore
	creds := []byte(ps.ServiceAccount.Value())
	var sandbox *sandboxPlay
	if len(creds) == 0 {
		if !s.Config.Sandbox {
			for _, a := range s.Config.Apps {
				if a.Android.Enabled {
					s.Log.Warn("playstore.service_account is not set: Android store lanes will wait", "app", a.Name)
				}
			}
			return nil
		}
		var err error
		if sandbox, err = startSandboxPlay(s.bg, s.Config.Apps, func(h http.Handler) http.Handler { return s.sandboxHandler("play", h) }); err != nil {
			return fmt.Errorf("sandbox Google Play: %w", err)
		}
		ps.Endpoint, ps.ReportingEndpoint, creds = sandbox.url+"/", sandbox.url+"/", sandbox.key
		s.Log.Info("sandbox: Google Play is an in-process fake", "url", sandbox.url)
	}
	client, err := playstore.New(ctx, playstore.Config{
		CredentialsJSON:   creds,
		Endpoint:          ps.Endpoint,
		ReportingEndpoint: ps.ReportingEndpoint,
		// Every replica shares one versionCode ratchet through the database.
		Ledger:     s.Store.VersionCodes(),
		Logger:     s.Log.With("component", "playstore"),
		VitalsUnit: playstore.VitalsUnit(ps.VitalsUnit),
	})
	if err != nil {
		if sandbox == nil {
			// The only input is the configured service account.
			return config.Invalid("playstore.service_account", err)
		}
		return fmt.Errorf("playstore: %w", err)
	}
	apps := map[string]config.App{}
	for _, a := range s.Config.Apps {
		apps[a.Name] = a
	}
	android := &androidlane.Android{
		Store:  s.Store,
		Play:   client,
		Apps:   apps,
		Assets: s.Assets, // GitHub release assets, for android.aab_asset
		Log:    s.Log.With("component", "android"),
	}
	if sandbox != nil {
		// No CI uploads to the fake: every release's AAB is made up on the
		// spot, with the next versionCode.
		for name, a := range apps {
			if a.Android.Enabled {
				a.Android.AABAsset = "*.aab"
				apps[name] = a
			}
		}
		android.Assets, android.BundleVersionCode = sandbox, sandbox.versionCode
	}
	addLaneWorker(s, &androidlane.Worker{Android: android})
	s.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindStore, Platform: release.Android}] = android
	// Play vitals gates are measured by s.Gates, on their own interval.
	s.Gates.Providers[release.ProviderPlayVitals] = &gate.PlayVitals{Reader: client}
	return nil
}

// sandboxPlay is the sandbox's Google Play: the playstoretest fake on a
// loopback listener, closed when ctx ends. It doubles as the GitHub asset
// source of Android bundles.
type sandboxPlay struct {
	fake *playstoretest.Server
	url  string
	key  []byte
	pkgs map[string]string // repository → package
}

func startSandboxPlay(ctx context.Context, apps []config.App, wrap func(http.Handler) http.Handler) (*sandboxPlay, error) {
	sp := &sandboxPlay{fake: playstoretest.New(time.Now()), pkgs: map[string]string{}}
	for _, a := range apps {
		if a.Android.Enabled && a.Android.PackageName != "" {
			sp.fake.AddApp(a.Android.PackageName)
			// A first version is live, as in any app that ships.
			sp.fake.ConsoleUpdate(a.Android.PackageName, playstore.TrackProduction,
				playstoretest.Release{Name: "1.0.0 (1)", VersionCodes: []int64{1}, Status: playstoretest.StatusCompleted})
			sp.pkgs[a.Repository] = a.Android.PackageName
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: wrap(sp.fake), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	sp.url = "http://" + ln.Addr().String()
	if sp.key, err = sp.fake.ServiceAccountJSON(sp.url, "releasepilot@sandbox.iam.gserviceaccount.com"); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return sp, nil
}

// FetchAsset makes up the AAB of a release: a fake bundle with the next
// versionCode of the app.
func (sp *sandboxPlay) FetchAsset(_ context.Context, repository, tag, _ string) (*os.File, string, error) {
	pkg, ok := sp.pkgs[repository]
	if !ok {
		return nil, "", fmt.Errorf("sandbox: no Android app for %s: %w", repository, fs.ErrNotExist)
	}
	var next int64 = 1
	for _, vc := range sp.fake.Bundles(pkg) {
		next = max(next, vc+1)
	}
	return tempAsset("releasepilot-sandbox-*.aab", playstoretest.FakeBundle(next, 64<<10), "app-"+tag+".aab")
}

// tempAsset writes data to a new temporary file (pattern as os.CreateTemp)
// and returns it positioned at 0, as lane.Assets does.
func tempAsset(pattern string, data []byte, name string) (*os.File, string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return nil, "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", err
	}
	return f, name, nil
}

// versionCode reads the versionCode of a fake bundle: the number its
// first line ends with, checked against playstoretest.FakeBundle. Anything
// else is read as a real AAB.
func (sp *sandboxPlay) versionCode(r io.ReaderAt, size int64) (int64, error) {
	if vc, ok := fakeBundleVersionCode(r, size); ok {
		return vc, nil
	}
	return androidlane.ManifestVersionCode(r, size)
}

func fakeBundleVersionCode(r io.ReaderAt, size int64) (int64, bool) {
	buf := make([]byte, min(size, 64))
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, false
	}
	line, _, ok := bytes.Cut(buf, []byte("\n"))
	if !ok {
		return 0, false
	}
	vc, err := strconv.ParseInt(string(line[bytes.LastIndexByte(line, '=')+1:]), 10, 64)
	if err != nil || !bytes.HasPrefix(buf, playstoretest.FakeBundle(vc, 0)) {
		return 0, false
	}
	return vc, true
}
