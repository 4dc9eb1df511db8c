package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

func TestDashboardQueries(t *testing.T) {
	t.Parallel()
	runConformance(t, dashboardConformance)
}

var dashboardConformance = map[string]func(t *testing.T, s *store.Store){
	"sessions expire and end": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		se := store.Session{IDHash: "h1", Subject: "token:ops", Actor: "token:ops", Role: "operator", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		require.NoError(t, s.CreateSession(ctx, se))
		require.Error(t, s.CreateSession(ctx, se), "an id hash is used once")
		require.Error(t, s.CreateSession(ctx, store.Session{IDHash: "h2"}), "subject and actor are required")
		got, err := s.Session(ctx, "h1", now.Add(59*time.Minute))
		require.NoError(t, err)
		require.Equal(t, se, got)
		_, err = s.Session(ctx, "h1", now.Add(time.Hour))
		require.ErrorIs(t, err, store.ErrNotFound, "expired at its expiry")
		_, err = s.Session(ctx, "nope", now)
		require.ErrorIs(t, err, store.ErrNotFound)

		require.NoError(t, s.CreateSession(ctx, store.Session{IDHash: "h3", Subject: "token:v", Actor: "token:v", Role: "viewer", CreatedAt: now, ExpiresAt: now.Add(3 * time.Hour)}))
		n, err := s.DeleteExpiredSessions(ctx, now.Add(2*time.Hour))
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		require.NoError(t, s.DeleteSession(ctx, "h3"))
		require.NoError(t, s.DeleteSession(ctx, "h3"), "ending a gone session is fine")
		_, err = s.Session(ctx, "h3", now)
		require.ErrorIs(t, err, store.ErrNotFound)
	},
	"releases page by cursor both ways, filtered": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, a := range []string{"acme", "zeta"} {
			require.NoError(t, s.UpsertApp(ctx, release.App{Name: a, Repository: "acme/" + a}, now))
		}
		// Pairs share a creation time, so ids break the ties.
		for i := range 12 {
			app, st := "acme", release.ReleaseActive
			if i%3 == 0 {
				app, st = "zeta", release.ReleaseCompleted
			}
			_, _, err := s.CreateRelease(ctx, release.Release{App: app, Tag: fmt.Sprintf("v%02d", i), Version: "1", Commit: "c", State: st, CreatedAt: now.Add(time.Duration(i/2) * time.Minute)})
			require.NoError(t, err)
		}
		tags := func(p store.ReleasePage) []string {
			var out []string
			for _, r := range p.Releases {
				out = append(out, r.Tag)
			}
			return out
		}
		var all []string
		var f store.ReleaseFilter
		for {
			p, err := s.PageReleases(ctx, f, 5)
			require.NoError(t, err)
			require.Equal(t, len(all) > 0, p.Newer)
			all = append(all, tags(p)...)
			if !p.Older {
				break
			}
			last := p.Releases[len(p.Releases)-1]
			f = store.ReleaseFilter{Before: &store.ReleaseCursor{CreatedAt: last.CreatedAt, ID: last.ID}}
		}
		require.Len(t, all, 12)
		seen := map[string]bool{}
		for _, tag := range all {
			require.False(t, seen[tag], "no release twice")
			seen[tag] = true
		}
		require.ElementsMatch(t, []string{"v10", "v11"}, all[:2], "newest first")

		// Back towards the newest from the last page.
		p, err := s.PageReleases(ctx, f, 5)
		require.NoError(t, err)
		first := p.Releases[0]
		back, err := s.PageReleases(ctx, store.ReleaseFilter{After: &store.ReleaseCursor{CreatedAt: first.CreatedAt, ID: first.ID}}, 5)
		require.NoError(t, err)
		require.Equal(t, all[5:10], tags(back), "the page before, in the same order")
		require.True(t, back.Newer)
		require.True(t, back.Older)

		p, err = s.PageReleases(ctx, store.ReleaseFilter{App: "zeta", State: release.ReleaseCompleted}, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"v09", "v06", "v03", "v00"}, tags(p))
		require.False(t, p.Older)
		p, err = s.PageReleases(ctx, store.ReleaseFilter{State: release.ReleaseFailed}, 10)
		require.NoError(t, err)
		require.Empty(t, p.Releases)

		c := store.ReleaseCursor{CreatedAt: now, ID: "rel_x"}
		parsed, err := store.ParseReleaseCursor(c.String())
		require.NoError(t, err)
		require.Equal(t, c, parsed)
		for _, bad := range []string{"", "x.y", "12", "-1.rel", "12."} {
			_, err := store.ParseReleaseCursor(bad)
			require.Error(t, err, bad)
		}
	},
	"lanes of several releases, recent events, gate verdicts and event heads": func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		r2, _, err := s.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.5.0", Version: "1.5.0", Commit: "def", CreatedAt: now})
		require.NoError(t, err)
		var lanes []release.Lane
		for _, p := range release.Platforms {
			l, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: p, Kind: release.KindStore, Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil)}, now)
			require.NoError(t, err)
			lanes = append(lanes, l)
		}
		byRelease, err := s.LanesOf(ctx, []string{r.ID, r2.ID})
		require.NoError(t, err)
		require.Len(t, byRelease[r.ID], 2)
		require.Empty(t, byRelease[r2.ID])
		empty, err := s.LanesOf(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, empty)

		last, err := s.LastEventID(ctx)
		require.NoError(t, err)
		require.Zero(t, last)
		add := func(rel, lane, kind, reason string) int64 {
			id, err := s.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: rel, LaneID: lane, Kind: kind, Details: map[string]any{"reason": reason}})
			require.NoError(t, err)
			return id
		}
		add(r.ID, lanes[0].ID, "rollout.hold", "gate crash_rate: no fresh data yet")
		want := add(r.ID, lanes[0].ID, "rollout.halt", "gate crash_rate failed: 0.03 is above 0.01")
		add(r.ID, lanes[0].ID, "rollout.hold", "soaking at 10% until later")
		add(r.ID, lanes[1].ID, "command.halt", "gate of a person")
		other := add(r2.ID, "", "release.created", "")

		g, err := s.LatestGateEvent(ctx, r.ID, lanes[0].ID)
		require.NoError(t, err)
		require.Equal(t, want, g.ID, "the newest gate verdict, not the newest hold")
		_, err = s.LatestGateEvent(ctx, r.ID, lanes[1].ID)
		require.ErrorIs(t, err, store.ErrNotFound, "a command's reason is not a gate's")

		recent, err := s.RecentEvents(ctx, r.ID, 0, 3)
		require.NoError(t, err)
		require.Len(t, recent, 3)
		require.Greater(t, recent[0].ID, recent[1].ID, "newest first")
		older, err := s.RecentEvents(ctx, r.ID, recent[2].ID, 10)
		require.NoError(t, err)
		require.Len(t, older, 1)

		all, err := s.EventHeads(ctx, store.EventCursor{}, 10)
		require.NoError(t, err)
		require.Len(t, all, 5)
		require.Equal(t, want, all[1].Cursor.ID)
		heads, err := s.EventHeads(ctx, all[1].Cursor, 10)
		require.NoError(t, err)
		require.Len(t, heads, 3)
		require.Equal(t, other, heads[2].Cursor.ID)
		require.Equal(t, r2.ID, heads[2].ReleaseID)
		last, err = s.LastEventID(ctx)
		require.NoError(t, err)
		require.Equal(t, other, last)
		lastCursor, err := s.LastEventCursor(ctx)
		require.NoError(t, err)
		require.Equal(t, heads[2].Cursor, lastCursor)
	},
}
