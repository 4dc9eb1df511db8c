package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func TestReconcileRunsAndIsObserved(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, e)
			ran := make(chan struct{}, 10)
			var mu sync.Mutex
			outcomes := map[string]int{}
			r, err := jobs.New(jobs.WithFastPoll(jobs.Config{
				DB: db, ReconcileInterval: time.Second,
				Reconcile: func(context.Context) error { ran <- struct{}{}; return nil },
				Observe: func(kind, outcome string) {
					mu.Lock()
					outcomes[kind+"/"+outcome]++
					mu.Unlock()
				},
			}))
			require.NoError(t, err)
			ctx := context.Background()
			require.NoError(t, r.Start(ctx))
			require.True(t, r.Running())
			select {
			case <-ran:
			case <-time.After(20 * time.Second):
				t.Fatal("the reconcile pass never ran")
			}
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return outcomes["reconcile/completed"] >= 1
			}, 10*time.Second, 50*time.Millisecond)
			stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			require.NoError(t, r.Stop(stopCtx))
			require.False(t, r.Running())
		})
	}
}

// TestPeriodicLeaderOnly starts two runners (two replicas: separate pools,
// separate River clients) on one Postgres schema and shows that each tick
// enqueues one reconcile job: the leader's. Uniqueness is switched off so
// that a second enqueuer would show up as doubled jobs.
func TestPeriodicLeaderOnly(t *testing.T) {
	t.Parallel()
	url := storetest.URL(t, store.Postgres)
	ctx := context.Background()
	var runners []*jobs.Runner
	for _, node := range []string{"replica-a", "replica-b"} {
		db, err := store.Open(ctx, url, "")
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		require.NoError(t, db.Migrate(ctx, nil))
		r, err := jobs.New(jobs.WithoutUniqueTicks(jobs.WithFastPoll(jobs.Config{DB: db, Node: node, ReconcileInterval: time.Second})))
		require.NoError(t, err)
		require.NoError(t, r.Start(ctx))
		runners = append(runners, r)
	}
	time.Sleep(8 * time.Second) // several ticks; the first comes ~3 s after start
	for _, r := range runners {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		require.NoError(t, r.Stop(sctx))
		cancel()
	}
	db, err := store.Open(ctx, url, "")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.SQL.QueryContext(ctx, `SELECT created_at FROM river_job WHERE kind = 'reconcile' ORDER BY created_at`)
	require.NoError(t, err)
	defer rows.Close()
	var times []time.Time
	for rows.Next() {
		var at time.Time
		require.NoError(t, rows.Scan(&at))
		times = append(times, at)
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, len(times), 3, "several ticks ran")
	require.LessOrEqual(t, len(times), 8, "one job per tick, not one per replica")
	// Under heavy load leadership can move once, and the new leader's
	// run-on-start tick may land close to the old leader's last one; every
	// other tick must stand alone. Two enqueuers would pair up every tick.
	short := 0
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 500*time.Millisecond {
			short++
		}
	}
	require.LessOrEqual(t, short, 1, "reconcile jobs enqueued in pairs: more than one replica enqueues each tick (%v)", times)
}
