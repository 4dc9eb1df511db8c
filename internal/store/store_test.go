package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// TestConformance runs the same behaviour checks on every engine.
func TestConformance(t *testing.T) {
	t.Parallel()
	runConformance(t, conformance)
}

// runConformance runs every check of suite on every engine, each on a
// fresh migrated database, all in parallel.
func runConformance(t *testing.T, suite map[string]func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			for name, fn := range suite {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					fn(t, store.New(storetest.Open(t, e)))
				})
			}
		})
	}
}

func seed(t *testing.T, s *store.Store) release.Release {
	ctx := context.Background()
	require.NoError(t, s.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, now))
	r, created, err := s.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc123", CreatedAt: now})
	require.NoError(t, err)
	require.True(t, created)
	return r
}

var conformance = map[string]func(t *testing.T, s *store.Store){
	"migrate twice is a no-op": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		require.NoError(t, s.DB.Migrate(ctx, nil))
		v, err := s.DB.AppliedMigrations(ctx)
		require.NoError(t, err)
		ms, err := store.Migrations(s.DB.Engine)
		require.NoError(t, err)
		require.Len(t, v, len(ms))
		var n int
		require.NoError(t, s.DB.SQL.QueryRowContext(ctx, `SELECT count(*) FROM river_job`).Scan(&n), "River's tables exist")
	},
	"apps upsert": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		require.NoError(t, s.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/old"}, now))
		require.NoError(t, s.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, now))
		apps, err := s.Apps(ctx)
		require.NoError(t, err)
		require.Equal(t, []release.App{{Name: "acme", Repository: "acme/mobile"}}, apps)
	},
	"release once per app and tag": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		require.Equal(t, release.ReleasePlanning, r.State)
		require.Equal(t, now, r.CreatedAt)
		again, created, err := s.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "other", CreatedAt: now})
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, r.ID, again.ID)
		require.Equal(t, "abc123", again.Commit, "the first write wins")
		got, err := s.GetRelease(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, r, got)
		_, err = s.GetRelease(ctx, "rel_missing")
		require.ErrorIs(t, err, store.ErrNotFound)
		got.State, got.Notes, got.UpdatedAt = release.ReleaseActive, "- fix crash", now.Add(time.Minute)
		require.NoError(t, s.UpdateRelease(ctx, got))
		list, err := s.ListReleases(ctx, "acme", 10)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "- fix crash", list[0].Notes)
	},
	"release needs a known app": func(t *testing.T, s *store.Store) {
		_, _, err := s.CreateRelease(context.Background(), release.Release{App: "ghost", Tag: "v1", Version: "1.0.0", Commit: "x", CreatedAt: now})
		require.Error(t, err)
	},
	"lanes and optimistic status": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		plan := release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil)
		l, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore, Reason: "native", Plan: plan}, now)
		require.NoError(t, err)
		require.Equal(t, int64(1), l.Status.Version)
		_, err = s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindOTA, Plan: plan}, now)
		require.Error(t, err, "one lane per platform")

		got, err := s.GetLane(ctx, l.ID)
		require.NoError(t, err)
		require.Equal(t, plan, got.Plan)
		require.Equal(t, release.StatePending, got.Status.State)

		next := got.Status
		next.State, next.Percent, next.StepIndex, next.UpdatedAt = release.StateRolling, 10, 1, now
		saved, err := s.UpdateStatus(ctx, l.ID, next)
		require.NoError(t, err)
		require.Equal(t, int64(2), saved.Version)

		_, err = s.UpdateStatus(ctx, l.ID, next) // stale version
		require.ErrorIs(t, err, store.ErrConflict)
		_, err = s.UpdateStatus(ctx, "lane_missing", next)
		require.ErrorIs(t, err, store.ErrNotFound)

		lanes, err := s.Lanes(ctx, r.ID)
		require.NoError(t, err)
		require.Len(t, lanes, 1)
		require.Equal(t, 10, lanes[0].Status.Percent)
	},
	"due lanes": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		mk := func(p release.Platform, st release.Status) {
			_, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: p, Kind: release.KindStore, Plan: release.Plan{}, Status: st}, now)
			require.NoError(t, err)
		}
		mk(release.Android, release.Status{State: release.StateWaiting, NextEligibleAt: now.Add(time.Hour)})
		mk(release.IOS, release.Status{State: release.StateRolling})
		due, err := s.DueLanes(ctx, now, 10)
		require.NoError(t, err)
		require.Len(t, due, 1)
		require.Equal(t, release.IOS, due[0].Platform)
		due, err = s.DueLanes(ctx, now.Add(2*time.Hour), 10)
		require.NoError(t, err)
		require.Len(t, due, 2)
	},
	"lane data": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		l, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindStore}, now)
		require.NoError(t, err)
		type data struct{ BuildID string }
		require.NoError(t, s.SetLaneData(ctx, l.ID, data{BuildID: "b-1"}, now))
		var got data
		require.NoError(t, s.LaneData(ctx, l.ID, &got))
		require.Equal(t, "b-1", got.BuildID)
	},
	"binaries": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		_, err := s.LatestBinary(ctx, "acme", release.IOS)
		require.ErrorIs(t, err, store.ErrNotFound)
		b := release.Binary{App: "acme", Platform: release.IOS, Version: "1.4.0", BuildNumber: "7", Commit: "abc", Fingerprint: "fp1", CreatedAt: now}
		ok, err := s.RecordBinary(ctx, b)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.RecordBinary(ctx, b)
		require.NoError(t, err)
		require.False(t, ok, "recorded once")
		b2 := b
		b2.BuildNumber, b2.Fingerprint, b2.CreatedAt = "8", "fp2", now.Add(time.Hour)
		_, err = s.RecordBinary(ctx, b2)
		require.NoError(t, err)
		latest, err := s.LatestBinary(ctx, "acme", release.IOS)
		require.NoError(t, err)
		require.Equal(t, b2, latest)
	},
	"events": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		_, err := s.AppendEvent(ctx, release.Event{At: now, ReleaseID: r.ID, Kind: "x"})
		require.Error(t, err, "actor required")
		id1, err := s.AppendEvent(ctx, release.Event{At: now, Actor: "github", ReleaseID: r.ID, Kind: "release.created", Details: map[string]any{"tag": "v1.4.0"}})
		require.NoError(t, err)
		id2, err := s.AppendEvent(ctx, release.Event{At: now, Actor: "alice", ReleaseID: r.ID, Kind: "lane.halted"})
		require.NoError(t, err)
		require.Greater(t, id2, id1)
		evs, err := s.Events(ctx, r.ID, 0, 10)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		require.Equal(t, "v1.4.0", evs[0].Details["tag"])
		require.Equal(t, now, evs[0].At)
		evs, err = s.Events(ctx, r.ID, id1, 10)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		require.Equal(t, "alice", evs[0].Actor)
	},
	"deliveries are recorded once": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := store.Delivery{Source: "github", ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Event: "push", ReceivedAt: now}
		ok, err := s.RecordDelivery(ctx, d)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.RecordDelivery(ctx, d)
		require.NoError(t, err)
		require.False(t, ok)
		require.NoError(t, s.SetDeliveryOutcome(ctx, "github", d.ID, "release", "rel_1"))
		got, err := s.GetDelivery(ctx, "github", d.ID)
		require.NoError(t, err)
		require.Equal(t, "release", got.Outcome)
	},
	"fingerprints": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		f := store.Fingerprint{App: "acme", Platform: release.IOS, Commit: "abc", Algorithm: "a/1", Hash: "h1", Data: []byte(`{"hash":"h1"}`), CreatedAt: now}
		require.NoError(t, s.SaveFingerprint(ctx, f))
		require.NoError(t, s.SaveFingerprint(ctx, f), "idempotent")
		got, err := s.GetFingerprint(ctx, "acme", release.IOS, "abc", "a/1")
		require.NoError(t, err)
		require.Equal(t, f, got)
		_, err = s.GetFingerprint(ctx, "acme", release.Android, "abc", "a/1")
		require.ErrorIs(t, err, store.ErrNotFound)
	},
	"event ids are visible in commit order": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		// A slow transaction appends first but commits last; a reader paging
		// by id must still see its event after the fast one.
		started := make(chan struct{})
		release1 := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- s.Tx(ctx, func(tx *store.Store) error {
				if _, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "slow", ReleaseID: r.ID, Kind: "slow"}); err != nil {
					return err
				}
				close(started)
				<-release1
				return nil
			})
		}()
		<-started
		fast := make(chan int64, 1)
		go func() {
			id, err := s.AppendEvent(ctx, release.Event{At: now, Actor: "fast", ReleaseID: r.ID, Kind: "fast"})
			if err != nil {
				t.Errorf("append: %v", err)
			}
			fast <- id
		}()
		var seen []string
		fastDone := false
		select {
		case <-fast:
			fastDone = true
			evs, err := s.Events(ctx, r.ID, 0, 10)
			require.NoError(t, err)
			for _, e := range evs {
				seen = append(seen, e.Kind)
			}
		case <-time.After(300 * time.Millisecond):
			// The fast writer waits for the slow one: also correct.
		}
		close(release1)
		require.NoError(t, <-done)
		if !fastDone {
			<-fast
		}
		evs, err := s.Events(ctx, r.ID, 0, 10)
		require.NoError(t, err)
		var all []string
		var last int64
		for _, e := range evs {
			all = append(all, e.Kind)
			require.Greater(t, e.ID, last)
			last = e.ID
		}
		require.ElementsMatch(t, []string{"slow", "fast"}, all)
		if len(seen) > 0 {
			// Whatever a reader saw before the slow commit must come first.
			require.Equal(t, seen, all[:len(seen)])
		}
	},
	"transaction rolls back as a whole": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		boom := errors.New("boom")
		err := s.Tx(ctx, func(tx *store.Store) error {
			require.NotNil(t, tx.SQLTx())
			_, _, err := tx.CreateRelease(ctx, release.Release{App: "acme", Tag: "v2.0.0", Version: "2.0.0", Commit: "c", CreatedAt: now})
			require.NoError(t, err)
			_, err = tx.RecordDelivery(ctx, store.Delivery{Source: "github", ID: "d-1", Event: "push", ReceivedAt: now})
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = s.ReleaseByTag(ctx, "acme", "v2.0.0")
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.GetDelivery(ctx, "github", "d-1")
		require.ErrorIs(t, err, store.ErrNotFound)
	},
	"concurrent status writers: exactly one wins": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		l, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore}, now)
		require.NoError(t, err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				next := l.Status
				next.State, next.Percent = release.StateRolling, 10+i
				if _, err := s.UpdateStatus(ctx, l.ID, next); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, store.ErrConflict) {
					t.Errorf("unexpected error: %v", err)
				}
			}(i)
		}
		wg.Wait()
		require.Equal(t, 1, wins)
	},
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := store.Open(ctx, "mysql://x", "")
	require.ErrorContains(t, err, "database.url: scheme is not")
	_, err = store.Open(ctx, "postgres://user:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2", "passwords stay out of errors")
}

func TestDefaultSQLitePathCreatesDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/nested/data"
	db, err := store.Open(context.Background(), "", dir)
	require.NoError(t, err)
	defer db.Close()
	require.FileExists(t, store.SQLitePath(dir))
}
