//go:build load

package loadtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// haltStore is a store fake that notes when each lane's halt reaches it.
type haltStore struct {
	mu     sync.Mutex
	halted map[string]chan time.Time
}

func (h *haltStore) Execute(_ context.Context, l release.Lane, d release.Decision) error {
	if d.Action != release.ActionHalt {
		return nil
	}
	h.mu.Lock()
	ch := h.halted[l.ID]
	h.mu.Unlock()
	if ch != nil {
		select {
		case ch <- time.Now():
		default:
		}
	}
	return nil
}

func (h *haltStore) Observe(context.Context, release.Lane) (release.Observations, error) {
	return release.Observations{}, nil
}

// failingPlans stands in for planning while GitHub fails: each plan job
// takes a moment and fails, and River retries it (planning's backoff).
type failingPlans struct {
	river.WorkerDefaults[jobs.PlanReleaseArgs]
}

func (*failingPlans) Work(ctx context.Context, _ *river.Job[jobs.PlanReleaseArgs]) error {
	select {
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
	}
	return errors.New("github: 502 Bad Gateway")
}

func (*failingPlans) NextRetry(job *river.Job[jobs.PlanReleaseArgs]) time.Time {
	return (&jobs.PlanReleaseWorker{}).NextRetry(job)
}

// BenchmarkHaltUnderPlanBacklog measures how long a person's halt takes
// to reach the store (from the command's commit to the store fake's halt
// call) while 20,000 plan jobs are queued and failing, beside the same
// halts with no backlog in the same run; and how late reconcile passes
// (1 s interval) start meanwhile. Default queue settings: 5 control
// workers, 10 plan workers, River's production polling (SQLite has no
// LISTEN/NOTIFY: a new job waits for the next 1 s poll).
func BenchmarkHaltUnderPlanBacklog(b *testing.B) {
	for _, e := range storetest.Engines {
		for _, backlog := range []int{0, 20000} {
			b.Run(fmt.Sprintf("%s/backlog=%d", e, backlog), func(b *testing.B) {
				benchHalts(b, e, backlog)
			})
		}
	}
}

func benchHalts(b *testing.B, e store.Engine, backlog int) {
	const interval = time.Second
	const halts = 20
	db := storetest.Open(b, e)
	st := store.New(db)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, now); err != nil {
		b.Fatal(err)
	}
	fake := &haltStore{halted: map[string]chan time.Time{}}
	var lanes []release.Lane
	for i := range halts * b.N {
		rel, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: fmt.Sprintf("v1.%d.0", i), Version: fmt.Sprintf("1.%d.0", i), Commit: "abc", CreatedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		l, err := st.CreateLane(ctx, release.Lane{ReleaseID: rel.ID, Platform: release.Android, Kind: release.KindStore,
			Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, nil),
			Status: release.Status{State: release.StateRolling, Percent: 10, NextEligibleAt: now.Add(24 * time.Hour)}}, now)
		if err != nil {
			b.Fatal(err)
		}
		fake.halted[l.ID] = make(chan time.Time, 1)
		lanes = append(lanes, l)
	}
	ro := &jobs.Rollouts{Store: st, Executors: jobs.Executors{{Kind: release.KindStore, Platform: release.Android}: fake}}
	var mu sync.Mutex
	var passes []time.Time
	r, err := jobs.New(jobs.Config{DB: db, ReconcileInterval: interval, Rollouts: ro,
		Reconcile: func(ctx context.Context) error {
			mu.Lock()
			passes = append(passes, time.Now())
			mu.Unlock()
			return ro.Pass(ctx)
		},
		Register: []func(*river.Workers){func(ws *river.Workers) { river.AddWorker(ws, &failingPlans{}) }}})
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < backlog; start += 1000 {
		var batch []river.InsertManyParams
		for i := start; i < min(backlog, start+1000); i++ {
			batch = append(batch, river.InsertManyParams{Args: jobs.PlanReleaseArgs{App: "burst", Tag: fmt.Sprintf("v0.0.%d", i), ReleaseID: fmt.Sprintf("rel-%d", i)}})
		}
		if _, err := r.Client.InsertMany(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(sctx)
	}()
	// Wait for the leader's passes to start.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(passes)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no reconcile pass in 30 s")
		}
	}
	mu.Lock()
	from := len(passes) - 1
	mu.Unlock()

	b.ResetTimer()
	var took []time.Duration
	for _, l := range lanes {
		var at time.Time
		if err := st.Tx(ctx, func(tx *store.Store) error {
			_, err := r.EnqueueLaneCommand(ctx, tx, &jobs.LaneCommandArgs{LaneID: l.ID, Command: string(release.CmdHalt), Actor: "token:bench", Reason: "bench"})
			at = time.Now()
			return err
		}); err != nil {
			b.Fatal(err)
		}
		select {
		case done := <-fake.halted[l.ID]:
			took = append(took, done.Sub(at))
		case <-time.After(2 * time.Minute):
			b.Fatalf("the halt of lane %s never reached the store", l.ID)
		}
	}
	b.StopTimer()

	mu.Lock()
	ticks := slices.Clone(passes[from:])
	mu.Unlock()
	var late time.Duration
	for i := 1; i < len(ticks); i++ {
		late = max(late, ticks[i].Sub(ticks[i-1])-interval)
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p50, p95, worst := took[len(took)/2], took[len(took)*95/100], took[len(took)-1]
	b.ReportMetric(ms(p50), "halt-p50-ms")
	b.ReportMetric(ms(p95), "halt-p95-ms")
	b.ReportMetric(ms(worst), "halt-max-ms")
	b.ReportMetric(ms(late), "tick-late-max-ms")
	var waiting int
	if err := db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM river_job WHERE kind = 'plan_release' AND state IN ('available', 'retryable', 'scheduled')").Scan(&waiting); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s backlog=%d: %d halts p50 %s p95 %s max %s; %d passes, latest %s after its interval; %d plan jobs still waiting",
		e, backlog, len(took), p50.Round(time.Millisecond), p95.Round(time.Millisecond), worst.Round(time.Millisecond),
		len(ticks), late.Round(time.Millisecond), waiting)
}
