package hotfix_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/hotfix"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// TestExpoExportByHand: `releasepilot ota release --expo-dist` releases
// through the Releaser as a CodePush release by hand does — the commit
// fingerprinted on demand through GitHub and gated against the binaries
// of the update's runtime version (one recorded under an older
// fingerprint algorithm included), Production as a staged rollout starting
// at the app's first stage, Staging as a pending lane, the caller as the
// actor of every audit event.
func TestExpoExportByHand(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := codepush.WithActor(context.Background(), codepush.Actor{Name: "token:ops"})
			now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
			db := storetest.Open(t, e)
			st := store.New(db)
			gh := githubtest.New()
			srv := httptest.NewServer(gh)
			t.Cleanup(srv.Close)
			repo := gh.Repo("acme/mobile")
			files := githubtest.Files{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v1\n", "package.json": `{"name":"acme"}`}
			base := repo.Commit("1.4.0", files)
			fix := repo.Commit("fix", files.With(githubtest.Files{"src/App.tsx": "v2\n"}), base)
			nat := repo.Commit("iOS 17", files.With(githubtest.Files{"ios/Podfile": "platform :ios, '17.0'\n"}), fix)
			client, err := github.NewClient(github.ClientOptions{BaseURL: srv.URL})
			require.NoError(t, err)

			app := config.App{Name: "acme", Repository: "acme/mobile", OTA: config.OTA{Enabled: true, AppName: "acme", Protocol: "expo", Stages: []int{5, 50, 100}},
				Rollout: config.Rollout{Soak: config.Duration(time.Hour)}}
			require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, now))
			cp, err := codepush.New(ctx, codepush.Config{Store: store.NewCodePush(db), Blobs: codepush.DirBlobs{Dir: t.TempDir()}, Now: func() time.Time { return now },
				Gate: &gate.NativeGate{Store: st, Apps: map[string]gate.OTAApp{"acme-ios": {App: "acme", Platform: release.IOS, Expo: true}}}})
			require.NoError(t, err)
			_, err = cp.CreateApp(ctx, "acme-ios", false)
			require.NoError(t, err)
			h := &hotfix.Releaser{Service: cp, Store: st, Targets: map[string]hotfix.Target{"acme-ios": {App: app, Platform: release.IOS}}, Now: func() time.Time { return now },
				Fingerprints: &hotfix.RepoFingerprints{Store: st, Repo: func(n string) (nativecheck.Source, error) { return client.Repo(n) }}}
			// The 1.4.0 binary, built from base, recorded by releasepilot-native/1.
			_, err = st.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: "1.4.0", BuildNumber: "40", Commit: base, Fingerprint: "v1-base", CreatedAt: now})
			require.NoError(t, err)

			dist, err := expoupdates.OpenDist(os.DirFS(filepath.Join("..", "..", "codepush", "expoupdates", "testdata", "expo-export")))
			require.NoError(t, err)
			in := func(dep, commit string, rollout int) expoupdates.ReleaseInput {
				return expoupdates.ReleaseInput{App: "acme-ios", Deployment: dep, Dist: dist, Platform: "ios", RuntimeVersion: "1.4.0", Commit: commit, Rollout: rollout}
			}

			_, _, err = expoupdates.Release(ctx, h, in(codepush.Staging, nat, 0))
			require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "%v", err)
			require.ErrorContains(t, err, "file changed: ios/Podfile")
			_, _, err = expoupdates.Release(ctx, h, in(codepush.Staging, "", 0))
			require.ErrorContains(t, err, "the update names no commit")

			// Straight to Production, asking for everyone: the app's first
			// stage, 5 %, as a lane the reconciler moves on.
			prod, _, err := expoupdates.Release(ctx, h, in(codepush.Production, fix, 100))
			require.NoError(t, err)
			require.Equal(t, 5, prod.Rollout)
			require.Equal(t, "1.4.0", prod.AppVersion)
			require.Equal(t, "token:ops", prod.ReleasedBy)
			for _, c := range []string{fix, base} {
				_, err := st.GetFingerprint(ctx, "acme", release.IOS, c, nativecheck.Algorithm)
				require.NoError(t, err, "%s fingerprinted through GitHub", c)
			}
			l := laneOf(t, st, "hotfix:acme-ios/Production/v1")
			require.Equal(t, release.KindOTA, l.Kind)
			require.Equal(t, release.StateRolling, l.Status.State)
			require.Equal(t, 5, l.Status.Percent)
			require.Equal(t, 1, l.Status.StepIndex, "past the 5 % step: next its soak")

			// To Staging: a lane pending until a promotion starts it.
			staged, _, err := expoupdates.Release(ctx, h, in(codepush.Staging, fix, 0))
			require.NoError(t, err)
			require.Equal(t, "token:ops", staged.ReleasedBy)
			require.Equal(t, release.StatePending, laneOf(t, st, "hotfix:acme-ios/Staging/v1").Status.State)

			evs, err := st.Events(ctx, "", 0, 100)
			require.NoError(t, err)
			var kinds []string
			for _, ev := range evs {
				require.Equal(t, "token:ops", ev.Actor, ev.Kind)
				kinds = append(kinds, ev.Kind)
			}
			require.Equal(t, []string{"ota.promoted", "ota.released"}, kinds)
		})
	}
}

func laneOf(t *testing.T, st *store.Store, tag string) release.Lane {
	t.Helper()
	rel, err := st.ReleaseByTag(context.Background(), "acme", tag)
	require.NoError(t, err)
	ls, err := st.Lanes(context.Background(), rel.ID)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	return ls[0]
}
