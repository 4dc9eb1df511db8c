package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func TestTagsAndDeployments(t *testing.T) {
	t.Parallel()
	runConformance(t, tagConformance)
}

func seedLane(t *testing.T, s *store.Store, rel release.Release, p release.Platform) release.Lane {
	t.Helper()
	l, err := s.CreateLane(context.Background(), release.Lane{ReleaseID: rel.ID, Platform: p, Kind: release.KindStore}, now)
	require.NoError(t, err)
	return l
}

var tagConformance = map[string]func(t *testing.T, s *store.Store){
	"a superseded release frees its tag": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		old := seed(t, s)
		next, err := s.SupersedeRelease(ctx, old.ID, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "def456", CreatedAt: now})
		require.NoError(t, err)
		require.Equal(t, release.ReleasePlanning, next.State)
		cur, err := s.ReleaseByTag(ctx, "acme", "v1.4.0")
		require.NoError(t, err)
		require.Equal(t, next.ID, cur.ID)
		got, err := s.GetRelease(ctx, old.ID)
		require.NoError(t, err)
		require.Equal(t, next.ID, got.SupersededBy)

		// The tag's unique slot is the new release's now.
		dup, created, err := s.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "zzz", CreatedAt: now})
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, next.ID, dup.ID)
		_, err = s.SupersedeRelease(ctx, old.ID, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "x", CreatedAt: now})
		require.ErrorIs(t, err, store.ErrConflict, "a release is superseded once")
		rs, err := s.ListReleases(ctx, "acme", 10)
		require.NoError(t, err)
		require.Len(t, rs, 2, "no half-written release after the refusal")
	},
	"tag state is recorded once per change": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rel := seed(t, s)
		changed, err := s.SetTagState(ctx, rel.ID, release.TagMoved, "def456", now)
		require.NoError(t, err)
		require.True(t, changed)
		changed, err = s.SetTagState(ctx, rel.ID, release.TagMoved, "def456", now)
		require.NoError(t, err)
		require.False(t, changed, "the second delivery of the same move")
		changed, err = s.SetTagState(ctx, rel.ID, release.TagDeleted, "", now)
		require.NoError(t, err)
		require.True(t, changed)
		got, err := s.GetRelease(ctx, rel.ID)
		require.NoError(t, err)
		require.Equal(t, release.TagDeleted, got.TagState)
		_, err = s.SetTagState(ctx, "rel_missing", release.TagDeleted, "", now)
		require.ErrorIs(t, err, store.ErrNotFound)
	},
	"planning is claimed only while planning and current": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rel := seed(t, s)
		ok, err := s.ClaimPlanning(ctx, rel.ID, now)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.SetReleaseState(ctx, rel.ID, release.ReleaseCancelled, now))
		ok, err = s.ClaimPlanning(ctx, rel.ID, now)
		require.NoError(t, err)
		require.False(t, ok)

		other, _, err := s.CreateRelease(ctx, release.Release{App: "acme", Tag: "v2.0.0", Version: "2.0.0", CreatedAt: now})
		require.NoError(t, err)
		_, err = s.SupersedeRelease(ctx, other.ID, release.Release{App: "acme", Tag: "v2.0.0", Version: "2.0.0", Commit: "b", CreatedAt: now})
		require.NoError(t, err)
		ok, err = s.ClaimPlanning(ctx, other.ID, now)
		require.NoError(t, err)
		require.False(t, ok, "superseded")
	},
	"a withdrawn lane refuses its jobs' writes": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rel := seed(t, s)
		l := seedLane(t, s, rel, release.Android)
		require.NoError(t, s.SetLaneData(ctx, l.ID, map[string]any{"package": "com.acme"}, now))
		_, _, _, err := s.LockLane(ctx, l.ID)
		require.Error(t, err, "locking needs a transaction")
		require.NoError(t, s.Tx(ctx, func(tx *store.Store) error {
			got, data, withdrawn, err := tx.LockLane(ctx, l.ID)
			require.NoError(t, err)
			require.False(t, withdrawn)
			require.JSONEq(t, `{"package":"com.acme"}`, string(data))
			st, err := tx.WithdrawLane(ctx, got, "tag deleted", now)
			require.NoError(t, err)
			require.Equal(t, release.StateCancelled, st.State)
			return nil
		}))
		err = s.SetLaneData(ctx, l.ID, map[string]any{"version_code": 45}, now)
		require.ErrorIs(t, err, store.ErrWithdrawn)
		require.ErrorIs(t, err, store.ErrNotFound, "lane jobs stop on it")
		var data map[string]any
		require.NoError(t, s.LaneData(ctx, l.ID, &data))
		require.Equal(t, map[string]any{"package": "com.acme"}, data, "nothing written")
		require.ErrorIs(t, s.SetLaneData(ctx, "lane_missing", map[string]any{}, now), store.ErrNotFound)
		require.NoError(t, s.Tx(ctx, func(tx *store.Store) error {
			got, _, withdrawn, err := tx.LockLane(ctx, l.ID)
			require.NoError(t, err)
			require.True(t, withdrawn)
			_, err = tx.WithdrawLane(ctx, got, "again", now)
			require.Error(t, err, "a cancelled lane cannot be cancelled again")
			return nil
		}))
	},
	"github deployment records": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, err := s.GetGitHubDeployment(ctx, "lane_x")
		require.ErrorIs(t, err, store.ErrNotFound)
		d := store.GitHubDeployment{LaneID: "lane_x", Repository: "acme/mobile", Environment: "android-production", SHA: "abc", UpdatedAt: now}
		require.NoError(t, s.SaveGitHubDeployment(ctx, d))
		d.DeploymentID, d.State, d.EventID = 7, "queued", 12
		require.NoError(t, s.SaveGitHubDeployment(ctx, d))
		got, err := s.GetGitHubDeployment(ctx, "lane_x")
		require.NoError(t, err)
		require.Equal(t, d, got)
		require.NoError(t, s.SaveGitHubDeployment(ctx, store.GitHubDeployment{LaneID: "lane_y", Repository: "acme/mobile", Environment: "android-production", SHA: "def", UpdatedAt: now.Add(time.Second)}))
		all, err := s.GitHubDeploymentsIn(ctx, "acme/mobile", "android-production")
		require.NoError(t, err)
		require.Len(t, all, 2)
		require.Equal(t, "lane_x", all[0].LaneID)
	},
	"leases": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ok, err := s.TryLease(ctx, "pass", "a", now, time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.TryLease(ctx, "pass", "b", now.Add(30*time.Second), time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "a holds it")
		ok, err = s.TryLease(ctx, "pass", "a", now.Add(30*time.Second), time.Minute)
		require.NoError(t, err)
		require.True(t, ok, "renewed by its holder")
		ok, err = s.TryLease(ctx, "pass", "b", now.Add(91*time.Second), time.Minute)
		require.NoError(t, err)
		require.True(t, ok, "expired, so b takes it")
		require.NoError(t, s.ReleaseLease(ctx, "pass", "a"), "a gives up nothing it lost")
		ok, err = s.TryLease(ctx, "pass", "a", now.Add(92*time.Second), time.Minute)
		require.NoError(t, err)
		require.False(t, ok)
		require.NoError(t, s.ReleaseLease(ctx, "pass", "b"))
		ok, err = s.TryLease(ctx, "pass", "a", now.Add(93*time.Second), time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
	},
}

// TestMigration0140KeepsData upgrades a database that has releases and
// lanes: the releases table is rebuilt on SQLite, and nothing is lost.
func TestMigration0140KeepsData(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := store.Open(ctx, storetest.URL(t, e), "")
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			ms, err := store.Migrations(e)
			require.NoError(t, err)
			_, err = db.SQL.ExecContext(ctx, `CREATE TABLE releasepilot_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`)
			require.NoError(t, err)
			for _, m := range ms {
				if m.Version >= 140 {
					break
				}
				_, err := db.SQL.ExecContext(ctx, m.SQL)
				require.NoError(t, err, m.Name)
				_, err = db.SQL.ExecContext(ctx, `INSERT INTO releasepilot_migrations VALUES ($1, $2, 0)`, m.Version, m.Name)
				require.NoError(t, err)
			}
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO apps VALUES ('acme', 'acme/mobile', 1, 1)`)
			require.NoError(t, err)
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO releases (id, app, tag, version, commit_sha, state, notes, created_at, updated_at)
				VALUES ('rel_1', 'acme', 'v1.0.0', '1.0.0', 'abc', 'active', 'notes', 5, 6)`)
			require.NoError(t, err)
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO lanes (id, release_id, platform, kind, created_at, updated_at) VALUES ('lane_1', 'rel_1', 'ios', 'store', 1, 1)`)
			require.NoError(t, err)
			// An index a later-numbered migration adds, applied before 0140
			// reached this database.
			_, err = db.SQL.ExecContext(ctx, `CREATE INDEX releases_later_version ON releases (version, id)`)
			require.NoError(t, err)

			require.NoError(t, db.Migrate(ctx, nil))
			if e == store.SQLite {
				var n int
				require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'releases' AND name IN ('releases_later_version', 'releases_app_created', 'releases_current_tag')`).Scan(&n))
				require.Equal(t, 3, n, "the rebuild kept the indexes the table had")
			}
			s := store.New(db)
			rel, err := s.ReleaseByTag(ctx, "acme", "v1.0.0")
			require.NoError(t, err)
			require.Equal(t, release.Release{ID: "rel_1", App: "acme", Tag: "v1.0.0", Version: "1.0.0", Commit: "abc", State: release.ReleaseActive,
				Notes: "notes", CreatedAt: time.UnixMilli(5).UTC(), UpdatedAt: time.UnixMilli(6).UTC()}, rel)
			if e == store.SQLite {
				var problems int
				require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&problems))
				require.Zero(t, problems)
			}
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO lanes (id, release_id, platform, kind, created_at, updated_at) VALUES ('lane_2', 'rel_missing', 'ios', 'store', 1, 1)`)
			require.Error(t, err, "lanes still reference releases")
		})
	}
}
