package store_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/codepushtest"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func TestCodePushStoreConforms(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			codepushtest.TestStore(t, func(t *testing.T) codepush.Store { return store.NewCodePush(storetest.Open(t, e)) })
		})
	}
}

func TestCodePushChangeLog(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cp := store.NewCodePush(storetest.Open(t, e))
			seq0, err := cp.LastChange(ctx)
			require.NoError(t, err)
			require.Zero(t, seq0)

			app := codepush.App{Name: "acme-ios", CreatedAt: now, Deployments: []codepush.Deployment{{Name: "Staging", Key: "staging-key-0123456789"}, {Name: "Production", Key: "production-key-0123456789"}}}
			require.NoError(t, cp.SaveApp(ctx, app))
			require.NoError(t, cp.AppendRelease(ctx, "production-key-0123456789", codepush.Release{Label: "v1", AppVersion: "1.4.0"}))
			require.NoError(t, cp.RecordReport(ctx, codepush.ClientReport{DeploymentKey: "production-key-0123456789", ClientID: "device-1", Label: "v1", Status: codepush.StatusSucceeded}))
			// A refused append logs nothing.
			require.Error(t, cp.AppendRelease(ctx, "production-key-0123456789", codepush.Release{Label: "v1", AppVersion: "1.4.0"}))
			// Dropping a deployment logs its key, so followers forget it.
			app.Deployments = app.Deployments[1:]
			require.NoError(t, cp.SaveApp(ctx, app))

			chs, err := cp.ChangesSince(ctx, seq0, 0)
			require.NoError(t, err)
			var keys []string
			for i, ch := range chs {
				keys = append(keys, ch.DeploymentKey)
				if i > 0 {
					require.Greater(t, ch.Seq, chs[i-1].Seq)
				}
			}
			require.Equal(t, []string{"production-key-0123456789", "staging-key-0123456789", "production-key-0123456789",
				"production-key-0123456789", "staging-key-0123456789"}, keys, "counters are not logged")
			last, err := cp.LastChange(ctx)
			require.NoError(t, err)
			require.Equal(t, chs[len(chs)-1].Seq, last)

			n, err := cp.PruneChanges(ctx, time.Now().Add(time.Minute))
			require.NoError(t, err)
			require.EqualValues(t, len(chs), n)
		})
	}
}

// countingStore counts every read the codepush service makes.
type countingStore struct {
	codepush.Store
	reads atomic.Int64
}

func (c *countingStore) Apps(ctx context.Context) ([]codepush.App, error) {
	c.reads.Add(1)
	return c.Store.Apps(ctx)
}

func (c *countingStore) Releases(ctx context.Context, key string) ([]codepush.Release, error) {
	c.reads.Add(1)
	return c.Store.Releases(ctx, key)
}

// TestCodePushReplicasFollowEachOther runs two codepush services on one
// database, as two replicas would: what one changes, the other serves
// within a bounded time, and update checks never read the database.
func TestCodePushReplicasFollowEachOther(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			url := storetest.URL(t, e)
			open := func() *store.DB {
				db, err := store.Open(ctx, url, "")
				require.NoError(t, err)
				t.Cleanup(func() { _ = db.Close() })
				return db
			}
			dbA, dbB := open(), open()
			require.NoError(t, dbA.Migrate(ctx, nil))
			blobs := codepush.DirBlobs{Dir: t.TempDir()}

			a, err := codepush.New(ctx, codepush.Config{Store: store.NewCodePush(dbA), Blobs: blobs})
			require.NoError(t, err)
			cpB := store.NewCodePush(dbB)
			since, err := cpB.LastChange(ctx)
			require.NoError(t, err)
			countB := &countingStore{Store: cpB}
			b, err := codepush.New(ctx, codepush.Config{Store: countB, Blobs: blobs})
			require.NoError(t, err)
			// On Postgres, notifications alone must bring the changes: the
			// poll interval is far longer than the test.
			interval := 50 * time.Millisecond
			if e == store.Postgres {
				interval = time.Hour
			}
			f := &store.Follower{Store: cpB, Since: since, Interval: interval, Invalidate: b.Invalidate, Reload: b.Reload}
			done := make(chan struct{})
			go func() { f.Run(ctx); close(done) }()

			app, err := a.CreateApp(ctx, "acme-ios", false)
			require.NoError(t, err)
			prodKey := app.Deployments[1].Key
			check := codepush.UpdateRequest{DeploymentKey: prodKey, AppVersion: "1.4.0", ClientUniqueID: "device-1"}

			// B learns of the new app's deployments.
			require.Eventually(t, func() bool { _, err := b.CheckUpdate(check); return err == nil }, 5*time.Second, 10*time.Millisecond)

			start := time.Now()
			_, err = a.Release(ctx, codepush.ReleaseInput{App: "acme-ios", Deployment: codepush.Production, AppVersion: "1.4.0",
				Description: "fix typo", Package: strings.NewReader("bundle v1")})
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				info, err := b.CheckUpdate(check)
				return err == nil && info.IsAvailable && info.Label == "v1"
			}, 5*time.Second, 5*time.Millisecond, "B serves the release made through A")
			t.Logf("%s: a release through A was served by B after %s", e, time.Since(start).Round(time.Millisecond))

			// The hot path reads memory only.
			reads := countB.reads.Load()
			for i := 0; i < 1000; i++ {
				info, err := b.CheckUpdate(check)
				require.NoError(t, err)
				require.True(t, info.IsAvailable)
			}
			require.Equal(t, reads, countB.reads.Load(), "update checks read the database")

			// Disabling through A stops B offering it.
			_, changed, err := a.Patch(ctx, "acme-ios", codepush.Production, codepush.PackageInfo{Disabled: ptr(true)})
			require.NoError(t, err)
			require.True(t, changed)
			require.Eventually(t, func() bool {
				info, err := b.CheckUpdate(check)
				return err == nil && !info.IsAvailable
			}, 5*time.Second, 5*time.Millisecond, "B stops serving a release disabled through A")

			// Counters written through B are read through A.
			require.NoError(t, b.ReportDeploy(ctx, codepush.DeployReport{DeploymentKey: prodKey, AppVersion: "1.4.0", Label: "v1", Status: codepush.StatusFailed, ClientUniqueID: "device-1"}))
			m, err := a.Metrics(ctx, "acme-ios", codepush.Production)
			require.NoError(t, err)
			require.EqualValues(t, 1, m["v1"].Failed)

			// The follower stops at its next poll once its database is closed
			// (shutdown); on Postgres that poll is an hour away here.
			if e == store.SQLite {
				require.NoError(t, dbB.Close())
				require.Eventually(t, func() bool {
					select {
					case <-done:
						return true
					default:
						return false
					}
				}, 5*time.Second, 10*time.Millisecond)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCodePushSetupLockExcludesOtherReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.URL(t, store.Postgres)
	var inside, overlaps atomic.Int64
	errs := make(chan error, 3)
	for range 3 {
		db, err := store.Open(ctx, url, "")
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		go func() {
			errs <- store.NewCodePush(db).SetupLock(ctx, func(context.Context) error {
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(30 * time.Millisecond)
				inside.Add(-1)
				return nil
			})
		}()
	}
	for range 3 {
		require.NoError(t, <-errs)
	}
	require.Zero(t, overlaps.Load(), "two replicas ran setup at once")
}

func TestCodePushFollowerRetriesWhatItCouldNotApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := store.NewCodePush(storetest.Open(t, store.SQLite))
	var seen []string
	fail := true
	f := &store.Follower{Store: cp, Invalidate: func(_ context.Context, key string) error {
		if fail {
			return errors.New("store unavailable")
		}
		seen = append(seen, key)
		return nil
	}}
	require.NoError(t, cp.SaveApp(ctx, codepush.App{Name: "acme-ios", Deployments: []codepush.Deployment{{Name: "Staging", Key: "staging-key-0123456789"}}}))
	require.NoError(t, cp.AppendRelease(ctx, "staging-key-0123456789", codepush.Release{Label: "v1", AppVersion: "1.4.0"}))
	require.ErrorContains(t, f.Poll(ctx), "store unavailable")
	require.Zero(t, f.Since, "the position does not move past what failed")

	fail = false
	require.NoError(t, f.Poll(ctx))
	require.Equal(t, []string{"staging-key-0123456789"}, seen, "each changed deployment once per poll")
	last, err := cp.LastChange(ctx)
	require.NoError(t, err)
	require.Equal(t, last, f.Since)
	require.NoError(t, f.Poll(ctx))
	require.Len(t, seen, 1, "nothing new")
}

// TestCodePushAddCountsNeverNegative: bulk counters (imports, fixtures)
// add up, and none goes below zero.
func TestCodePushAddCountsNeverNegative(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cp := store.NewCodePush(storetest.Open(t, e))
			const key = "production-key-0123456789"
			require.NoError(t, cp.AddCounts(ctx, []codepush.CountDelta{
				{DeploymentKey: key, Label: "v1", Counts: codepush.Counts{Active: 5, Installed: 7, Clients: 7}},
				{DeploymentKey: key, Label: "1.4.0", Counts: codepush.Counts{Active: -3}},
			}))
			require.NoError(t, cp.AddCounts(ctx, []codepush.CountDelta{{DeploymentKey: key, Label: "v1", Counts: codepush.Counts{Active: -9, Failed: 2}}}))
			m, err := cp.Counts(ctx, key)
			require.NoError(t, err)
			require.Equal(t, map[string]codepush.Counts{"v1": {Installed: 7, Failed: 2, Clients: 7}, "1.4.0": {}}, m)
		})
	}
}

// historyCounter counts the reads a per-lane observation should not make.
type historyCounter struct {
	*store.CodePush
	apps, releases atomic.Int64
}

func (h *historyCounter) Apps(ctx context.Context) ([]codepush.App, error) {
	h.apps.Add(1)
	return h.CodePush.Apps(ctx)
}

func (h *historyCounter) Releases(ctx context.Context, key string) ([]codepush.Release, error) {
	h.releases.Add(1)
	return h.CodePush.Releases(ctx, key)
}

// TestCodePushLabelCounts: an OTA lane's observation reads its label's
// counters and nothing else — not the deployment's history, not the apps.
func TestCodePushLabelCounts(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cp := &historyCounter{CodePush: store.NewCodePush(storetest.Open(t, e))}
			const prod, staging = "production-key-0123456789", "staging-key-0123456789"
			require.NoError(t, cp.SaveApp(ctx, codepush.App{Name: "acme-ios", CreatedAt: now,
				Deployments: []codepush.Deployment{{Name: "Staging", Key: staging}, {Name: "Production", Key: prod}}}))
			require.NoError(t, cp.SaveApp(ctx, codepush.App{Name: "other", CreatedAt: now,
				Deployments: []codepush.Deployment{{Name: "Production", Key: "other-production-key-0123"}}}))
			for _, l := range []string{"v1", "v2", "v3"} {
				require.NoError(t, cp.AppendRelease(ctx, prod, codepush.Release{Label: l, AppVersion: "1.4.0"}))
			}
			require.NoError(t, cp.AppendRelease(ctx, "other-production-key-0123", codepush.Release{Label: "v3", AppVersion: "1.4.0"}))
			require.NoError(t, cp.AppendRelease(ctx, staging, codepush.Release{Label: "v3", AppVersion: "1.4.0"}))
			report := func(key, label, client, status string) {
				require.NoError(t, cp.RecordReport(ctx, codepush.ClientReport{DeploymentKey: key, ClientID: client, Label: label, Status: status}))
			}
			report(prod, "v1", "d1", codepush.StatusSucceeded)
			report(prod, "v3", "d2", codepush.StatusSucceeded)
			report(prod, "v3", "d3", codepush.StatusFailed)
			report("other-production-key-0123", "v3", "d9", codepush.StatusFailed)
			report(staging, "v3", "d8", codepush.StatusSucceeded)

			svc, err := codepush.New(ctx, codepush.Config{Store: cp})
			require.NoError(t, err)
			cp.apps.Store(0)
			cp.releases.Store(0)
			all, err := cp.Counts(ctx, prod)
			require.NoError(t, err)

			one, err := svc.LabelMetrics(ctx, "acme-ios", codepush.Production, "v3")
			require.NoError(t, err)
			require.Equal(t, map[string]codepush.Counts{"v3": all["v3"]}, one)
			require.Equal(t, int64(2), one["v3"].Clients)
			require.Equal(t, int64(1), one["v3"].Failed)

			every, err := svc.LabelMetrics(ctx, "acme-ios", codepush.Production)
			require.NoError(t, err)
			require.Equal(t, all, every, "no labels: every label's counters")

			none, err := svc.LabelMetrics(ctx, "acme-ios", codepush.Production, "v7")
			require.NoError(t, err)
			require.Empty(t, none, "a label nobody reported on")
			none, err = svc.LabelMetrics(ctx, "nobody", codepush.Production, "v3")
			require.NoError(t, err)
			require.Empty(t, none, "a deployment that does not exist")

			require.Zero(t, cp.releases.Load(), "no history was read")
			require.Zero(t, cp.apps.Load(), "no app list was read")
		})
	}
}
