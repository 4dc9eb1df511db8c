package jobs_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

type resolver func(tag string) (string, error)

func (r resolver) ResolveTag(_ context.Context, tag string) (string, error) { return r(tag) }

type tagBundle struct {
	st        *store.Store
	changes   *jobs.TagChanges
	app       config.App
	mu        sync.Mutex
	planned   []jobs.PlanReleaseArgs
	cancelled []string
	tagAt     string // what the tag resolves to ("" when deleted)
}

func setupTags(t *testing.T, e store.Engine, policy string) *tagBundle {
	t.Helper()
	b := &tagBundle{st: store.New(storetest.Open(t, e)), tagAt: commitB}
	b.app = config.App{Name: "acme", Repository: "acme/mobile", OnTagMove: policy}
	require.NoError(t, b.st.UpsertApp(context.Background(), release.App{Name: "acme", Repository: "acme/mobile"}, now0))
	b.changes = &jobs.TagChanges{
		Store: b.st, Apps: map[string]config.App{"acme": b.app}, Now: func() time.Time { return now0 },
		Repo: func(string) (jobs.TagResolver, error) {
			return resolver(func(string) (string, error) {
				if b.tagAt == "" {
					return "", fs.ErrNotExist
				}
				return b.tagAt, nil
			}), nil
		},
		Enqueue: func(_ context.Context, tx *store.Store, args river.JobArgs, _ *river.InsertOpts) (int64, bool, error) {
			require.NotNil(t, tx.SQLTx(), "the plan job commits with the new release")
			b.mu.Lock()
			defer b.mu.Unlock()
			b.planned = append(b.planned, args.(jobs.PlanReleaseArgs))
			return 1, false, nil
		},
		Cancel: func(_ context.Context, laneID string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.cancelled = append(b.cancelled, laneID)
			return nil
		},
	}
	return b
}

var now0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// release makes an active release at commitA with lanes as given: kind,
// platform, state and lane data.
type laneSpec struct {
	kind     release.LaneKind
	platform release.Platform
	state    release.State
	percent  int
	data     map[string]any
}

func (b *tagBundle) release(t *testing.T, specs ...laneSpec) (release.Release, map[release.Platform]string) {
	t.Helper()
	ctx := context.Background()
	rel, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: commitA, CreatedAt: now0})
	require.NoError(t, err)
	ids := map[release.Platform]string{}
	for _, s := range specs {
		l, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: rel.ID, Platform: s.platform, Kind: s.kind, Plan: release.StagedPlan([]int{10, 100}, release.Wait{}, nil)}, now0)
		require.NoError(t, err)
		if s.data != nil {
			require.NoError(t, b.st.SetLaneData(ctx, l.ID, s.data, now0))
		}
		if s.state != "" && s.state != release.StatePending {
			st := l.Status
			st.State, st.Percent = s.state, s.percent
			_, err := b.st.UpdateStatus(ctx, l.ID, st)
			require.NoError(t, err)
		}
		ids[s.platform] = l.ID
	}
	if len(specs) > 0 {
		rel.State = release.ReleaseActive
		require.NoError(t, b.st.UpdateRelease(ctx, rel))
	}
	return rel, ids
}

func (b *tagBundle) lastEvent(t *testing.T, releaseID, kind string) release.Event {
	t.Helper()
	evs, err := b.st.Events(context.Background(), releaseID, 0, 100)
	require.NoError(t, err)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == kind {
			return evs[i]
		}
	}
	t.Fatalf("no %s event on release %s", kind, releaseID)
	return release.Event{}
}

func (b *tagBundle) lane(t *testing.T, id string) release.Lane {
	t.Helper()
	l, err := b.st.GetLane(context.Background(), id)
	require.NoError(t, err)
	return l
}

// move records the move as the webhook does, then runs the job.
func (b *tagBundle) move(t *testing.T, rel release.Release, to string) {
	t.Helper()
	ctx := context.Background()
	_, err := b.st.SetTagState(ctx, rel.ID, release.TagMoved, to, now0)
	require.NoError(t, err)
	require.NoError(t, b.changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: rel.ID, Change: jobs.TagChangeMoved, Commit: to, Delivery: "d-move", Event: "push",
		Platforms: []string{"android", "ios"}}))
}

func (b *tagBundle) delete(t *testing.T, rel release.Release) {
	t.Helper()
	ctx := context.Background()
	_, err := b.st.SetTagState(ctx, rel.ID, release.TagDeleted, "", now0)
	require.NoError(t, err)
	require.NoError(t, b.changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: rel.ID, Change: jobs.TagChangeDeleted, Delivery: "d-del", Event: "delete"}))
}

func eachEngine(t *testing.T, fn func(t *testing.T, e store.Engine)) {
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, e)
		})
	}
}

func TestTagMovedRefuse(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e store.Engine) {
		b := setupTags(t, e, "") // refuse is the default
		rel, ids := b.release(t, laneSpec{kind: release.KindStore, platform: release.Android})
		b.move(t, rel, commitB)

		got, err := b.st.GetRelease(context.Background(), rel.ID)
		require.NoError(t, err)
		require.Equal(t, commitA, got.Commit, "the release stays on its commit")
		require.Empty(t, got.SupersededBy)
		require.Contains(t, release.TagStatus(got), "tag v1.4.0 moved to bbbbbbbbbbbb; this release stays on aaaaaaaaaaaa (on_tag_move: refuse)")
		ev := b.lastEvent(t, rel.ID, "tag.moved")
		require.Equal(t, "refuse", ev.Details["policy"])
		require.Equal(t, commitA, ev.Details["from"])
		require.Equal(t, commitB, ev.Details["to"])
		require.Equal(t, release.StatePending, b.lane(t, ids[release.Android]).Status.State, "lanes go on")
		require.Empty(t, b.planned)
		require.Empty(t, b.cancelled)
	})
}

func TestTagMovedRestart(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e store.Engine) {
		b := setupTags(t, e, "restart")
		ctx := context.Background()
		rel, ids := b.release(t,
			laneSpec{kind: release.KindStore, platform: release.Android, data: map[string]any{"package": "com.acme", "track": "production"}}, // waiting for its AAB
			laneSpec{kind: release.KindStore, platform: release.IOS, data: map[string]any{"bundle_id": "com.acme", "upload_id": "UP-1", "version": "1.4.0"}},
		)
		b.move(t, rel, commitB)

		android, ios := b.lane(t, ids[release.Android]), b.lane(t, ids[release.IOS])
		require.Equal(t, release.StateCancelled, android.Status.State)
		require.Contains(t, android.Status.Reason, "moved to bbbbbbbbbbbb before this lane passed its point of no return")
		require.Equal(t, release.StatePending, ios.Status.State, "an uploaded build goes on at the old commit")
		require.Equal(t, []string{ids[release.Android]}, b.cancelled, "the withdrawn lane's jobs are cancelled")
		require.ErrorIs(t, b.st.SetLaneData(ctx, ids[release.Android], map[string]any{"version_code": 45}, now0), store.ErrWithdrawn,
			"a job that was already running cannot go on to upload")

		old, err := b.st.GetRelease(ctx, rel.ID)
		require.NoError(t, err)
		require.NotEmpty(t, old.SupersededBy)
		require.Equal(t, commitA, old.Commit)
		next, err := b.st.ReleaseByTag(ctx, "acme", "v1.4.0")
		require.NoError(t, err)
		require.Equal(t, old.SupersededBy, next.ID)
		require.Equal(t, commitB, next.Commit)
		require.Equal(t, release.ReleasePlanning, next.State)
		require.Equal(t, []jobs.PlanReleaseArgs{{App: "acme", Tag: "v1.4.0", Commit: commitB, ReleaseID: next.ID, Platforms: []string{"android"}}}, b.planned)

		ev := b.lastEvent(t, rel.ID, "tag.moved")
		require.Equal(t, "restart", ev.Details["policy"])
		require.Equal(t, []any{"android"}, ev.Details["cancelled"])
		require.Equal(t, map[string]any{"ios": "upload UP-1 is in App Store Connect"}, ev.Details["continuing"])
		require.Equal(t, next.ID, ev.Details["restarted_as"])
		require.Contains(t, ev.Details["outcome"], "android planned again at bbbbbbbbbbbb as "+next.ID+"; continuing on aaaaaaaaaaaa: ios (upload UP-1 is in App Store Connect)")
		created := b.lastEvent(t, next.ID, "release.created")
		require.Equal(t, rel.ID, created.Details["supersedes"])
		lc := b.lastEvent(t, rel.ID, "lane.cancelled")
		require.Equal(t, ids[release.Android], lc.LaneID)

		// The job run again (a crash before River recorded it done)
		// repeats nothing.
		require.NoError(t, b.changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: rel.ID, Change: jobs.TagChangeMoved, Commit: commitB, Platforms: []string{"android", "ios"}}))
		require.Len(t, b.planned, 1)
		rs, err := b.st.ListReleases(ctx, "acme", 10)
		require.NoError(t, err)
		require.Len(t, rs, 2)
	})
}

// A release whose plan is still being computed when its tag moves is
// replanned at the new commit, and the old plan, when it finishes, writes
// nothing.
func TestTagMovedRestartWhilePlanning(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e store.Engine) {
		b := setupTags(t, e, "restart")
		ctx := context.Background()
		rel, _ := b.release(t)
		b.move(t, rel, commitB)
		old, err := b.st.GetRelease(ctx, rel.ID)
		require.NoError(t, err)
		require.Equal(t, release.ReleaseCancelled, old.State)
		require.Len(t, b.planned, 1)
		require.Equal(t, []string{"android", "ios"}, b.planned[0].Platforms)
		require.Equal(t, commitB, b.planned[0].Commit)
		ok, err := b.st.ClaimPlanning(ctx, rel.ID, now0)
		require.NoError(t, err)
		require.False(t, ok, "the old release's plan can no longer write lanes")
		ok, err = b.st.ClaimPlanning(ctx, b.planned[0].ReleaseID, now0)
		require.NoError(t, err)
		require.True(t, ok, "the new one plans")
	})
}

// Every lane past its point of no return: restart has nothing to restart,
// and says so.
func TestTagMovedRestartNothingToRestart(t *testing.T) {
	t.Parallel()
	b := setupTags(t, store.SQLite, "restart")
	rel, _ := b.release(t, laneSpec{kind: release.KindStore, platform: release.Android, state: release.StateWaiting, percent: 10})
	b.move(t, rel, commitB)
	ev := b.lastEvent(t, rel.ID, "tag.moved")
	require.Contains(t, ev.Details["outcome"], "no lane could be restarted: android (waiting at 10%)")
	require.Empty(t, b.planned)
	cur, err := b.st.ReleaseByTag(context.Background(), "acme", "v1.4.0")
	require.NoError(t, err)
	require.Equal(t, rel.ID, cur.ID)
}

func TestTagDeletedBeforePointOfNoReturn(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e store.Engine) {
		b := setupTags(t, e, "restart")
		rel, ids := b.release(t,
			laneSpec{kind: release.KindStore, platform: release.Android, data: map[string]any{"package": "com.acme", "waiting_since": now0}},
			laneSpec{kind: release.KindOTA, platform: release.IOS, data: map[string]any{"codepush_app": "acme-ios", "target_range": "1.4.0"}},
		)
		b.delete(t, rel)
		for _, id := range ids {
			require.Equal(t, release.StateCancelled, b.lane(t, id).Status.State)
		}
		require.ElementsMatch(t, []string{ids[release.Android], ids[release.IOS]}, b.cancelled)
		got, err := b.st.GetRelease(context.Background(), rel.ID)
		require.NoError(t, err)
		require.Equal(t, release.ReleaseCancelled, got.State)
		require.Contains(t, release.TagStatus(got), "tag v1.4.0 was deleted")
		ev := b.lastEvent(t, rel.ID, "tag.deleted")
		require.Equal(t, []any{"android", "ios"}, ev.Details["cancelled"])
		require.Equal(t, "every lane was cancelled", ev.Details["outcome"])
		require.Nil(t, ev.Details["continuing"])
		require.Empty(t, b.planned, "a deleted tag starts nothing")
	})
}

func TestTagDeletedAfterPointOfNoReturn(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e store.Engine) {
		b := setupTags(t, e, "")
		rel, ids := b.release(t,
			laneSpec{kind: release.KindStore, platform: release.Android, state: release.StateWaiting, percent: 10, data: map[string]any{"version_code": 45, "uploaded": true}},
			laneSpec{kind: release.KindOTA, platform: release.IOS, data: map[string]any{"codepush_app": "acme-ios", "staging_label": "v3"}},
		)
		b.delete(t, rel)
		require.Equal(t, release.StateWaiting, b.lane(t, ids[release.Android]).Status.State)
		require.Equal(t, release.StatePending, b.lane(t, ids[release.IOS]).Status.State)
		require.Empty(t, b.cancelled)
		got, err := b.st.GetRelease(context.Background(), rel.ID)
		require.NoError(t, err)
		require.Equal(t, release.ReleaseActive, got.State)
		ev := b.lastEvent(t, rel.ID, "tag.deleted")
		require.Equal(t, []any{}, ev.Details["cancelled"])
		require.Equal(t, map[string]any{"android": "waiting at 10%", "ios": "released over the air as v3 on Staging"}, ev.Details["continuing"])
		require.Equal(t, "lanes past their point of no return continue: android (waiting at 10%), ios (released over the air as v3 on Staging)", ev.Details["outcome"])
	})
}

// A mix: one lane cancelled, one past the point of no return, one
// finished.
func TestTagDeletedMixed(t *testing.T) {
	t.Parallel()
	b := setupTags(t, store.SQLite, "")
	rel, ids := b.release(t,
		laneSpec{kind: release.KindStore, platform: release.Android, state: release.StateCompleted, percent: 100},
		laneSpec{kind: release.KindStore, platform: release.IOS, data: map[string]any{"bundle_id": "com.acme"}},
	)
	b.delete(t, rel)
	require.Equal(t, release.StateCancelled, b.lane(t, ids[release.IOS]).Status.State)
	ev := b.lastEvent(t, rel.ID, "tag.deleted")
	require.Equal(t, map[string]any{"android": "completed"}, ev.Details["finished"])
	got, err := b.st.GetRelease(context.Background(), rel.ID)
	require.NoError(t, err)
	require.Equal(t, release.ReleaseActive, got.State, "a completed lane keeps the release")
}

// A create or release delivery names the tag without a commit: the job
// resolves it.
func TestTagCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	check := func(b *tagBundle, rel release.Release) {
		require.NoError(t, b.changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: rel.ID, Change: jobs.TagChangeCheck, Platforms: []string{"android"}}))
	}
	t.Run("same commit", func(t *testing.T) {
		t.Parallel()
		b := setupTags(t, store.SQLite, "restart")
		b.tagAt = commitA
		rel, _ := b.release(t, laneSpec{kind: release.KindStore, platform: release.Android})
		check(b, rel)
		got, err := b.st.GetRelease(ctx, rel.ID)
		require.NoError(t, err)
		require.Empty(t, got.TagState)
		evs, err := b.st.Events(ctx, rel.ID, 0, 10)
		require.NoError(t, err)
		require.Empty(t, evs)
	})
	t.Run("moved", func(t *testing.T) {
		t.Parallel()
		b := setupTags(t, store.SQLite, "restart")
		rel, ids := b.release(t, laneSpec{kind: release.KindStore, platform: release.Android})
		check(b, rel)
		require.Equal(t, release.StateCancelled, b.lane(t, ids[release.Android]).Status.State)
		require.Len(t, b.planned, 1)
		check(b, rel) // again: superseded, nothing more
		require.Len(t, b.planned, 1)
	})
	t.Run("gone", func(t *testing.T) {
		t.Parallel()
		b := setupTags(t, store.SQLite, "restart")
		b.tagAt = ""
		rel, ids := b.release(t, laneSpec{kind: release.KindStore, platform: release.Android})
		check(b, rel)
		require.Equal(t, release.StateCancelled, b.lane(t, ids[release.Android]).Status.State)
		b.lastEvent(t, rel.ID, "tag.deleted")
		require.Empty(t, b.planned)
	})
}
