package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func init() {
	conformance["due lanes: keyset batches take every due lane once, oldest first"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		rels := storetest.CreateReleases(t, s.DB, "acme", 25, now)
		plan := release.StagedPlan(release.DefaultStages, release.Wait{}, nil)
		var lanes []release.Lane
		for i := range 25 {
			st := release.Status{State: release.StateRolling, NextEligibleAt: now.Add(-time.Duration(i%5) * time.Minute)}
			switch i % 7 {
			case 3:
				st.State = release.StateWaiting
			case 5:
				st.State = release.StateHalted // never due
			case 6:
				st.NextEligibleAt = now.Add(time.Hour) // not yet
			}
			lanes = append(lanes, release.Lane{ID: fmt.Sprintf("lane_%02d", i), ReleaseID: rels[i], Platform: release.Android, Kind: release.KindStore, Plan: plan, Status: st})
		}
		storetest.CreateLanes(t, s.DB, lanes, now)
		all, err := s.DueLanes(ctx, now, 100)
		require.NoError(t, err)
		require.NotEmpty(t, all)
		var walked []string
		var c store.DueCursor
		for {
			batch, err := s.DueLanesAfter(ctx, now, c, 4)
			require.NoError(t, err)
			if len(batch) == 0 {
				break
			}
			require.LessOrEqual(t, len(batch), 4)
			for _, l := range batch {
				walked = append(walked, l.ID)
			}
			last := batch[len(batch)-1]
			c = store.DueCursor{At: last.Status.NextEligibleAt, LaneID: last.ID}
		}
		var want []string
		for _, l := range all {
			want = append(want, l.ID)
		}
		require.Equal(t, want, walked, "the batches walk exactly the due lanes, in (next_eligible_at, id) order")
		got, err := s.GetLane(ctx, "lane_07")
		require.NoError(t, err)
		require.Equal(t, plan, got.Plan, "CreateLanes stores what CreateLane does")
		require.Equal(t, int64(1), got.Status.Version)
	}

	conformance["lane leases: a batch takes the free ones in one statement and gives them back"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		var ids []string
		for i := range 4 {
			l, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Platform([]string{"ios", "android", "web", "tv"}[i]), Kind: release.KindStore,
				Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil), Status: release.Status{State: release.StateRolling}}, now)
			require.NoError(t, err)
			ids = append(ids, l.ID)
		}
		wall := time.Now()
		ok, err := s.AcquireLaneLease(ctx, ids[1], "other", "theirs", wall.Add(time.Minute), wall, wall.Add(-time.Minute))
		require.NoError(t, err)
		require.True(t, ok)
		got, err := s.AcquireLaneLeases(ctx, ids, "me", "batch", wall.Add(time.Minute), wall, wall.Add(-time.Minute))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{ids[0], ids[2], ids[3]}, got, "the lane another action holds is left out")
		again, err := s.AcquireLaneLeases(ctx, ids[:1], "me", "batch", wall.Add(2*time.Minute), wall, wall.Add(-time.Minute))
		require.NoError(t, err)
		require.Equal(t, ids[:1], again, "the same token renews")
		ok, err = s.AcquireLaneLease(ctx, ids[0], "other", "theirs2", wall.Add(time.Minute), wall, wall.Add(-time.Minute))
		require.NoError(t, err)
		require.False(t, ok, "held by the batch")

		byID, err := s.LanesByID(ctx, append([]string{"lane_missing"}, ids...))
		require.NoError(t, err)
		require.Len(t, byID, 4)
		require.Equal(t, ids[2], byID[ids[2]].ID)

		require.NoError(t, s.ReleaseLeases(ctx, "batch"))
		ok, err = s.AcquireLaneLease(ctx, ids[0], "other", "theirs2", wall.Add(time.Minute), wall, wall.Add(-time.Minute))
		require.NoError(t, err)
		require.True(t, ok, "given back")
		ok, err = s.AcquireLaneLease(ctx, ids[1], "me", "mine", wall.Add(time.Minute), wall, wall.Add(-time.Minute))
		require.NoError(t, err)
		require.False(t, ok, "another token's lease stays")
	}

	conformance["gates due: lanes measured within their intervals are not read; a new stage makes them due"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		rels := storetest.CreateReleases(t, s.DB, "acme", 4, now)
		plan := release.StagedPlan(release.DefaultStages, release.Wait{}, nil)
		stage := now.Add(-time.Hour)
		var lanes []release.Lane
		for i := range 4 {
			st := release.Status{State: release.StateRolling, StepIndex: 1, Percent: 10, StageStartedAt: stage}
			if i == 3 {
				st.State = release.StateHalted
			}
			lanes = append(lanes, release.Lane{ID: fmt.Sprintf("lane_%d", i), ReleaseID: rels[i], Platform: release.Android, Kind: release.KindStore, Plan: plan, Status: st})
		}
		storetest.CreateLanes(t, s.DB, lanes, now)
		ids := func(c store.GatesDueCursor, limit int) ([]string, store.GatesDueCursor) {
			ls, next, err := s.GatesDueLanes(ctx, now, c, limit)
			require.NoError(t, err)
			var out []string
			for _, l := range ls {
				out = append(out, l.ID)
			}
			return out, next
		}
		first, c := ids(store.GatesDueCursor{}, 2)
		require.Equal(t, []string{"lane_0", "lane_1"}, first, "new lanes' gates are due; halted lanes are not walked")
		rest, _ := ids(c, 2)
		require.Equal(t, []string{"lane_2"}, rest)

		require.NoError(t, s.SetGatesDue(ctx, []store.GatesDue{
			{LaneID: "lane_0", Stage: stage, At: now.Add(5 * time.Minute)},
			{LaneID: "lane_1", Stage: stage, At: now},
			{LaneID: "lane_2", Stage: stage.Add(-time.Hour), At: now.Add(time.Hour)}, // judged in another stage: ignored
		}))
		all, _ := ids(store.GatesDueCursor{}, 10)
		require.Equal(t, []string{"lane_2", "lane_1"}, all, "lane_0 is measured for five minutes; lane_1 is due now, after lane_2 (due since 0)")

		l, err := s.GetLane(ctx, "lane_0")
		require.NoError(t, err)
		next := l.Status
		next.Reason = "same stage"
		next, err = s.UpdateStatus(ctx, l.ID, next)
		require.NoError(t, err)
		all, _ = ids(store.GatesDueCursor{}, 10)
		require.NotContains(t, all, "lane_0", "a status change in the same stage keeps the due time")
		next.Percent, next.StageStartedAt = 25, now
		_, err = s.UpdateStatus(ctx, l.ID, next)
		require.NoError(t, err)
		all, _ = ids(store.GatesDueCursor{}, 10)
		require.Contains(t, all, "lane_0", "a new stage's gates are due at once")
	}

	conformance["stage measurements: many lanes in one read equal one lane at a time"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		rels := storetest.CreateReleases(t, s.DB, "acme", 130, now)
		var lanes []release.Lane
		var stages []store.LaneStage
		for i := range 130 {
			id := fmt.Sprintf("lane_%03d", i)
			lanes = append(lanes, release.Lane{ID: id, ReleaseID: rels[i], Platform: release.Android, Kind: release.KindStore,
				Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil), Status: release.Status{State: release.StateRolling}})
			stages = append(stages, store.LaneStage{LaneID: id, Since: now.Add(-time.Duration(i%4) * time.Hour)})
		}
		storetest.CreateLanes(t, s.DB, lanes, now)
		var ms []release.Measurement
		for i := range 130 {
			for k := range i % 5 { // none to four, some before the stage
				ms = append(ms, release.Measurement{LaneID: lanes[i].ID, Gate: fmt.Sprintf("g%d", k%2), At: now.Add(-time.Duration(k)*75*time.Minute - time.Minute),
					Phase: release.PhaseSuccessful, Value: float64(k), Samples: 10, Values: map[string]float64{"n": float64(k)}})
			}
		}
		require.NoError(t, s.RecordMeasurements(ctx, ms))
		stage, before, err := s.StageMeasurements(ctx, stages)
		require.NoError(t, err)
		for _, ls := range stages {
			want, err := s.Measurements(ctx, ls.LaneID, ls.Since, 0)
			require.NoError(t, err)
			if len(want) == 0 {
				require.Empty(t, stage[ls.LaneID], ls.LaneID)
			} else {
				require.Equal(t, want, stage[ls.LaneID], ls.LaneID)
			}
			b, err := s.MeasuredBefore(ctx, ls.LaneID, ls.Since)
			require.NoError(t, err)
			require.Equal(t, b, before[ls.LaneID], ls.LaneID)
		}
	}

	conformance["update statuses: many lanes at once, each only at its version"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		rels := storetest.CreateReleases(t, s.DB, "acme", 3, now)
		var lanes []release.Lane
		for i := range 3 {
			lanes = append(lanes, release.Lane{ID: fmt.Sprintf("lane_%d", i), ReleaseID: rels[i], Platform: release.Android, Kind: release.KindStore,
				Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil), Status: release.Status{State: release.StateRolling, StageStartedAt: now}})
		}
		storetest.CreateLanes(t, s.DB, lanes, now)
		require.NoError(t, s.SetGatesDue(ctx, []store.GatesDue{{LaneID: "lane_0", Stage: now, At: now.Add(time.Hour)}, {LaneID: "lane_1", Stage: now, At: now.Add(time.Hour)}}))
		var list []store.LaneStatus
		for i, l := range lanes {
			st, err := s.GetLane(ctx, l.ID)
			require.NoError(t, err)
			next := st.Status
			next.Percent, next.StepIndex, next.Reason, next.UpdatedAt = 10, 1, fmt.Sprintf("step %d", i), now
			if i == 0 {
				next.StageStartedAt = now.Add(time.Minute) // a new stage
			}
			if i == 2 {
				next.Version = 7 // someone moved it meanwhile
			}
			list = append(list, store.LaneStatus{LaneID: l.ID, Next: next})
		}
		list = append(list, store.LaneStatus{LaneID: "lane_gone", Next: release.Status{State: release.StateRolling, Version: 1}})
		got, err := s.UpdateStatuses(ctx, list)
		require.NoError(t, err)
		require.Len(t, got, 2)
		for i := range 2 {
			l, err := s.GetLane(ctx, lanes[i].ID)
			require.NoError(t, err)
			require.Equal(t, got[lanes[i].ID], l.Status, "returned as stored")
			require.Equal(t, int64(2), l.Status.Version)
			require.Equal(t, fmt.Sprintf("step %d", i), l.Status.Reason)
		}
		l, err := s.GetLane(ctx, "lane_2")
		require.NoError(t, err)
		require.Equal(t, int64(1), l.Status.Version, "a lane that moved is not written")
		due, _, err := s.GatesDueLanes(ctx, now, store.GatesDueCursor{}, 10)
		require.NoError(t, err)
		var ids []string
		for _, l := range due {
			ids = append(ids, l.ID)
		}
		require.Equal(t, []string{"lane_0", "lane_2"}, ids, "lane_0's new stage made its gates due; lane_1 kept its due time")
		_, err = s.UpdateStatuses(ctx, []store.LaneStatus{{LaneID: "lane_1", Next: release.Status{State: "exploded"}}})
		require.ErrorContains(t, err, `lane lane_1: state "exploded" is not a known state`)
	}

	conformance["append events: many in order, as AppendEvent stores each"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := seed(t, s)
		one, err := s.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: r.ID, Kind: "rollout.hold", Details: map[string]any{"n": 0}})
		require.NoError(t, err)
		var es []release.Event
		for i := 1; i <= 95; i++ { // more than one statement's worth on either engine
			es = append(es, release.Event{At: now.Add(time.Duration(i) * time.Second), Actor: "system", ReleaseID: r.ID, LaneID: fmt.Sprintf("lane_%d", i),
				Kind: "rollout.advance", Details: map[string]any{"n": i}})
		}
		es = append(es, release.Event{At: now, Actor: "system", ReleaseID: r.ID, Kind: "rollout.hold"})
		require.NoError(t, s.Tx(ctx, func(tx *store.Store) error { return tx.AppendEvents(ctx, es) }))
		got, err := s.Events(ctx, r.ID, one, 1000)
		require.NoError(t, err)
		require.Equal(t, 96, len(got))
		for i, e := range got {
			require.Greater(t, e.ID, one)
			if i > 0 {
				require.Greater(t, e.ID, got[i-1].ID, "in the order given")
			}
		}
		require.Equal(t, "lane_7", got[6].LaneID)
		require.EqualValues(t, 7, got[6].Details["n"])
		require.True(t, got[6].At.Equal(now.Add(7*time.Second)))
		require.Empty(t, got[95].Details)
		require.ErrorContains(t, s.AppendEvents(ctx, []release.Event{{Kind: "x"}}), "event needs a kind and an actor")

		// Each release's events take the next places of its own sequence,
		// in the batch's order, after what AppendEvent gave out.
		other := storetest.CreateReleases(t, s.DB, "acme", 1, now)[0]
		_, err = s.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: other, Kind: "release.created"})
		require.NoError(t, err)
		var mixed []release.Event
		for i := range 90 {
			rel := r.ID
			if i%3 == 0 {
				rel = other
			}
			mixed = append(mixed, release.Event{At: now, Actor: "system", ReleaseID: rel, Kind: "rollout.advance"}, release.Event{At: now, Actor: "system", Kind: "system.note"})
		}
		require.NoError(t, s.AppendEvents(ctx, mixed))
		for rel, want := range map[string]int{r.ID: 1 + 96 + 60, other: 1 + 30} {
			rows, err := s.DB.SQL.QueryContext(ctx, `SELECT seq FROM events WHERE release_id = $1 ORDER BY id`, rel)
			require.NoError(t, err)
			var seqs []int64
			for rows.Next() {
				var seq int64
				require.NoError(t, rows.Scan(&seq))
				seqs = append(seqs, seq)
			}
			require.NoError(t, rows.Close())
			require.Len(t, seqs, want, "release %s", rel)
			for i, seq := range seqs {
				require.EqualValues(t, i+1, seq, "release %s: the sequence follows the ids without a gap", rel)
			}
		}
	}

	conformance["gates due: a lane without a stage start begins a stage at each step"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seed(t, s)
		rels := storetest.CreateReleases(t, s.DB, "acme", 1, now)
		step := now.Add(-time.Hour)
		storetest.CreateLanes(t, s.DB, []release.Lane{{ID: "lane_ota", ReleaseID: rels[0], Platform: release.IOS, Kind: release.KindOTA,
			Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil), Status: release.Status{State: release.StateRolling, StepIndex: 1, Percent: 10, StepStartedAt: step}}}, now)
		due := func() bool {
			ls, _, err := s.GatesDueLanes(ctx, now, store.GatesDueCursor{}, 10)
			require.NoError(t, err)
			return len(ls) == 1
		}
		require.NoError(t, s.SetGatesDue(ctx, []store.GatesDue{{LaneID: "lane_ota", Stage: now, At: now.Add(time.Hour)}}))
		require.True(t, due(), "judged in another stage (the stage starts at the step): not written")
		require.NoError(t, s.SetGatesDue(ctx, []store.GatesDue{{LaneID: "lane_ota", Stage: step, At: now.Add(time.Hour)}}))
		require.False(t, due())
		l, err := s.GetLane(ctx, "lane_ota")
		require.NoError(t, err)
		next := l.Status
		next.StepIndex, next.StepStartedAt = 2, now
		_, err = s.UpdateStatus(ctx, l.ID, next)
		require.NoError(t, err)
		require.True(t, due(), "the next step is a new stage: its gates are due at once")
		require.NoError(t, s.SetGatesDue(ctx, []store.GatesDue{{LaneID: "lane_ota", Stage: now, At: now.Add(time.Hour)}}))
		require.False(t, due())
		l, err = s.GetLane(ctx, "lane_ota")
		require.NoError(t, err)
		next = l.Status
		next.StepIndex, next.StepStartedAt = 3, now.Add(time.Minute)
		got, err := s.UpdateStatuses(ctx, []store.LaneStatus{{LaneID: l.ID, Next: next}, {LaneID: "lane_none", Next: next}})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.True(t, due(), "also when written in a batch")
	}
}
