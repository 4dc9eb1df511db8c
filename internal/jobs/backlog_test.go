package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// failingPlanWorker stands in for planning while GitHub fails: every plan
// job takes a moment and fails, and River retries it.
type failingPlanWorker struct {
	river.WorkerDefaults[jobs.PlanReleaseArgs]
}

func (*failingPlanWorker) Work(ctx context.Context, _ *river.Job[jobs.PlanReleaseArgs]) error {
	select {
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
	}
	return errors.New("github: 502 Bad Gateway")
}

// haltWatch is a store fake that notes when a halt reaches it.
type haltWatch struct {
	*remote
	once   sync.Once
	halted chan time.Time
}

func (h *haltWatch) Execute(ctx context.Context, l release.Lane, d release.Decision) error {
	err := h.remote.Execute(ctx, l, d)
	if err == nil && d.Action == release.ActionHalt {
		h.once.Do(func() { h.halted <- time.Now() })
	}
	return err
}

// TestHaltUnderAPlanBacklog: 20,000 plan jobs are queued and failing (a
// burst of tags while GitHub is down); a person halts a rolling lane. The
// halt reaches the store within one reconcile interval, and reconcile
// passes keep their schedule all along.
func TestHaltUnderAPlanBacklog(t *testing.T) {
	const interval = time.Second
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			db := storetest.Open(t, e)
			st := store.New(db)
			ctx := context.Background()
			now := time.Now().UTC()
			require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, now))
			rel, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc", CreatedAt: now})
			require.NoError(t, err)
			// Rolling at 10 %, the next step a day away: passes hold it.
			l, err := st.CreateLane(ctx, release.Lane{ReleaseID: rel.ID, Platform: release.Android, Kind: release.KindStore,
				Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, nil),
				Status: release.Status{State: release.StateRolling, Percent: 10, NextEligibleAt: now.Add(24 * time.Hour)}}, now)
			require.NoError(t, err)
			fake := &haltWatch{remote: &remote{percent: 10}, halted: make(chan time.Time, 1)}
			ro := &jobs.Rollouts{Store: st, Executors: jobs.Executors{{Kind: release.KindStore, Platform: release.Android}: fake}}

			var mu sync.Mutex
			var passes []time.Time
			r, err := jobs.New(jobs.WithFastPoll(jobs.Config{DB: db, ReconcileInterval: interval, Rollouts: ro,
				ControlWorkers: 2, PlanWorkers: 4,
				Reconcile: func(ctx context.Context) error {
					mu.Lock()
					passes = append(passes, time.Now())
					mu.Unlock()
					return ro.Pass(ctx)
				},
				Register: []func(*river.Workers){func(ws *river.Workers) { river.AddWorker(ws, &failingPlanWorker{}) }}}))
			require.NoError(t, err)
			const backlog = 20000
			insertPlanBacklog(t, r, backlog)
			require.NoError(t, r.Start(ctx))
			t.Cleanup(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = r.Stop(sctx)
			})
			passCount := func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(passes)
			}
			// The leader is elected a few seconds after start; then ticks
			// come every interval.
			require.Eventually(t, func() bool { return passCount() >= 2 }, 30*time.Second, 20*time.Millisecond, "reconcile passes run")
			require.Eventually(t, func() bool { return countPlanJobs(t, db, "attempt > 0") >= 20 }, 30*time.Second, 50*time.Millisecond,
				"the plan workers are busy failing plans")
			from := passCount() - 1

			var haltAt time.Time
			require.NoError(t, st.Tx(ctx, func(tx *store.Store) error {
				_, err := r.EnqueueLaneCommand(ctx, tx, &jobs.LaneCommandArgs{LaneID: l.ID, Command: string(release.CmdHalt), Actor: "token:alice", Reason: "crash spike"})
				haltAt = time.Now()
				return err
			}))
			select {
			case at := <-fake.halted:
				took := at.Sub(haltAt)
				t.Logf("%s: halt reached the store %s after the command, under %d queued plan jobs", e, took, backlog)
				require.Less(t, took, interval, "the halt waited behind the plan backlog")
			case <-time.After(30 * time.Second):
				t.Fatal("the halt never reached the store")
			}
			require.Eventually(t, func() bool {
				got, err := st.GetLane(ctx, l.ID)
				return err == nil && got.Status.State == release.StateHalted
			}, 10*time.Second, 10*time.Millisecond, "the lane records the halt")

			// Passes keep their schedule for a few more intervals.
			time.Sleep(4 * interval)
			mu.Lock()
			ticks := append([]time.Time(nil), passes[from:]...)
			mu.Unlock()
			require.GreaterOrEqual(t, len(ticks), 4, "a pass every interval")
			var late time.Duration
			for i := 1; i < len(ticks); i++ {
				late = max(late, ticks[i].Sub(ticks[i-1])-interval)
			}
			t.Logf("%s: %d passes, the latest %s after its interval", e, len(ticks), late)
			require.Less(t, late, interval, "a reconcile pass started more than one interval late")

			// All of this happened while the backlog stood: no plan job
			// finished, and the plan workers kept working.
			require.Equal(t, backlog, countPlanJobs(t, db, "state NOT IN ('completed', 'cancelled', 'discarded')"))
			require.Greater(t, countPlanJobs(t, db, "state IN ('available', 'retryable', 'scheduled')"), backlog/2, "most plans still wait")
		})
	}
}
