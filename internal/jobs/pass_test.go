package jobs_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// fleet is the remote rollouts of many lanes in one place, cheap enough for
// 10,000 lanes: like remote, it reads its state before changing it, and it
// keeps the order of every action it was asked for.
type fleet struct {
	mu       sync.Mutex
	percent  map[string]int
	halted   map[string]bool
	executes map[string]int
	order    []string // lane id + ":" + action, in the order asked
	// onExecute runs (outside the lock) after the nth Execute.
	onExecute func(n int)
}

func newFleet() *fleet {
	return &fleet{percent: map[string]int{}, halted: map[string]bool{}, executes: map[string]int{}}
}

func (f *fleet) Execute(_ context.Context, l release.Lane, d release.Decision) error {
	f.mu.Lock()
	f.order = append(f.order, l.ID+":"+string(d.Action))
	f.executes[l.ID]++
	n := len(f.order)
	switch d.Action {
	case release.ActionHalt, release.ActionRollback:
		f.halted[l.ID] = true
	case release.ActionComplete:
		f.percent[l.ID] = 100
	default:
		f.percent[l.ID], f.halted[l.ID] = d.Percent, false
	}
	hook := f.onExecute
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return nil
}

func (f *fleet) Observe(context.Context, release.Lane) (release.Observations, error) {
	return release.Observations{}, nil
}

func (f *fleet) snapshot() (order []string, executes map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	executes = make(map[string]int, len(f.executes))
	for k, v := range f.executes {
		executes[k] = v
	}
	return append([]string(nil), f.order...), executes
}

// fleetKinds are the lanes a fleet mixes: Play, App Store and OTA.
var fleetKinds = []jobs.ExecutorKey{
	{Kind: release.KindStore, Platform: release.Android},
	{Kind: release.KindStore, Platform: release.IOS},
	{Kind: release.KindOTA, Platform: release.IOS},
}

// seedFleet creates n rolling lanes of plan, one per release, due oldest
// first in id order (lane_00000 has waited longest), mixing Play, App Store
// and OTA lanes, all driven by one fleet.
func seedFleet(t testing.TB, e store.Engine, n int, plan release.Plan, now time.Time) (*store.Store, *jobs.Rollouts, *fleet, []string) {
	t.Helper()
	db := storetest.Open(t, e)
	st := store.New(db)
	require.NoError(t, st.UpsertApp(context.Background(), release.App{Name: "acme", Repository: "acme/mobile"}, now))
	rels := storetest.CreateReleases(t, db, "acme", n, now)
	lanes := make([]release.Lane, n)
	ids := make([]string, n)
	for i := range lanes {
		k := fleetKinds[i%len(fleetKinds)]
		ids[i] = fmt.Sprintf("lane_%05d", i)
		lanes[i] = release.Lane{ID: ids[i], ReleaseID: rels[i], Platform: k.Platform, Kind: k.Kind, Plan: plan,
			Status: release.Status{State: release.StateRolling, NextEligibleAt: now.Add(-time.Duration(n-i) * time.Second)}}
	}
	storetest.CreateLanes(t, db, lanes, now)
	f := newFleet()
	ex := jobs.Executors{}
	for _, k := range fleetKinds {
		ex[k] = f
	}
	// A budget no test run reaches, however slow the machine (the race
	// detector, other loads): these tests are about what a whole pass does.
	ro := &jobs.Rollouts{Store: st, Executors: ex, Now: func() time.Time { return now }, PassBudget: time.Hour}
	return st, ro, f, ids
}

func soakPlan() release.Plan {
	return release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil)
}

// TestPassTakesEveryDueLaneOneStep: one pass moves every due lane — far
// more than one batch — exactly one step, and records when each is next
// due, so the next pass at the same time has nothing to do.
func TestPassTakesEveryDueLaneOneStep(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			st, ro, f, ids := seedFleet(t, e, 1000, soakPlan(), now)
			ctx := context.Background()
			require.NoError(t, ro.Pass(ctx))
			_, executes := f.snapshot()
			require.Equal(t, len(ids), len(executes), "every due lane was taken")
			for _, id := range ids {
				require.Equal(t, 1, executes[id], "lane %s moves one step per pass", id)
			}
			lanes, err := st.LanesByID(ctx, ids)
			require.NoError(t, err)
			for _, id := range ids {
				require.Equal(t, 10, lanes[id].Status.Percent, "lane %s", id)
				require.Equal(t, 1, lanes[id].Status.StepIndex, "lane %s", id)
			}
			require.Len(t, events(t, st, lanes[ids[0]].ReleaseID), 1, "one rollout.advance event per lane")

			// Advanced lanes are due again at once: the next pass judges
			// their soak and records when it ends.
			require.NoError(t, ro.Pass(ctx))
			due, err := st.DueLanes(ctx, now, 10)
			require.NoError(t, err)
			require.Empty(t, due, "every lane's next due time is recorded")
			_, executes = f.snapshot()
			for _, id := range ids {
				require.Equal(t, 1, executes[id], "soaking lanes do not move")
			}
			l, err := st.GetLane(ctx, ids[500])
			require.NoError(t, err)
			require.True(t, l.Status.NextEligibleAt.Equal(now.Add(time.Hour)), "due when the soak ends: %s", l.Status.NextEligibleAt)
		})
	}
}

// TestPassBudgetLeavesNoLaneBehind: lanes that are always due (waiting for
// an approval) come first in due order; a pass whose budget runs out after
// them must not leave the lanes behind them waiting forever: the next pass
// starts where it stopped.
func TestPassBudgetLeavesNoLaneBehind(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ten := 10
	approval := release.Plan{Steps: []release.Step{{Approval: &release.Approval{Reason: "sign-off"}}, {SetPercent: &ten}}}
	st, ro, f, _ := seedFleet(t, store.SQLite, 300, approval, now)
	ro.PassBudget = time.Nanosecond // one batch per pass
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "other", Repository: "acme/other"}, now))
	rels := storetest.CreateReleases(t, st.DB, "other", 100, now)
	var late []release.Lane
	var lateIDs []string
	for i := range rels {
		id := fmt.Sprintf("late_%03d", i)
		lateIDs = append(lateIDs, id)
		late = append(late, release.Lane{ID: id, ReleaseID: rels[i], Platform: release.Android, Kind: release.KindStore, Plan: soakPlan(),
			Status: release.Status{State: release.StateRolling, NextEligibleAt: now.Add(-time.Second)}})
	}
	storetest.CreateLanes(t, st.DB, late, now)

	for pass := 1; pass <= 4; pass++ {
		require.NoError(t, ro.Pass(ctx))
		_, executes := f.snapshot()
		moved := 0
		for _, id := range lateIDs {
			moved += executes[id]
		}
		switch pass {
		case 1:
			require.Zero(t, moved, "the first pass's one batch is all approval lanes")
		default:
			require.Equal(t, len(lateIDs), moved, "pass %d: the lanes behind the always-due ones moved, once each", pass)
		}
	}
	// Pass 3 took the first 200 lanes again (the late ones, advanced, are
	// due again behind them); pass 4 judged the late ones' soak.
	due, err := st.DueLanes(ctx, now, 1000)
	require.NoError(t, err)
	require.Equal(t, 300, len(due), "approval lanes stay due, the rest soak")
}

// TestHaltsFirstWhile10000LanesAreDue: with 10,000 lanes due, a pending
// halt reaches the store before any scheduled step of the pass, and a halt
// a person sends while the pass is under way reaches the store long before
// the pass gets to its lane, which the pass then leaves halted.
func TestHaltsFirstWhile10000LanesAreDue(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 lanes")
	}
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			st, ro, f, ids := seedFleet(t, e, 10000, soakPlan(), now)
			ctx := context.Background()
			pendingLane, liveLane := ids[9999], ids[9000]
			_, err := st.CreateCommand(ctx, store.LaneCommand{LaneID: pendingLane, Command: release.CmdHalt, Actor: "token:alice", Reason: "crash spike", RequestedAt: now})
			require.NoError(t, err)

			type result struct {
				err error
				at  int // Executes before the command returned
			}
			done := make(chan result, 1)
			var once sync.Once
			f.onExecute = func(n int) {
				if n != 1000 {
					return
				}
				once.Do(func() {
					go func() {
						_, err := ro.Command(ctx, liveLane, release.CmdHalt, "token:bob", "bad reviews")
						order, _ := f.snapshot()
						done <- result{err, len(order)}
					}()
				})
			}
			require.NoError(t, ro.Pass(ctx))
			res := <-done
			require.NoError(t, res.err)

			order, executes := f.snapshot()
			require.Equal(t, pendingLane+":halt", order[0], "the pending halt goes before every scheduled step")
			require.Less(t, res.at, 9000, "the halt sent during the pass did not wait for the pass to reach its lane")
			require.Equal(t, 1, executes[pendingLane])
			require.Equal(t, 1, executes[liveLane], "the pass left the halted lane alone")
			for _, id := range []string{pendingLane, liveLane} {
				l, err := st.GetLane(ctx, id)
				require.NoError(t, err)
				require.Equal(t, release.StateHalted, l.Status.State, "lane %s", id)
				require.Zero(t, l.Status.Percent, "lane %s was never advanced", id)
			}
			require.Equal(t, 10000, len(executes))
			for _, id := range ids {
				require.Equal(t, 1, executes[id], "lane %s: one action per pass", id)
			}
		})
	}
}
