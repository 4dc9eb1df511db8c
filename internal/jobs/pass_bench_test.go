package jobs_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// benchProvider is a gate provider that answers at once with a passing
// reading: what is measured is our side (the database, the pass), not a
// provider's latency. It counts the measurements asked of it (a real
// provider shares one answer per question and pass among them).
type benchProvider struct{ calls int }

func (p *benchProvider) Measure(_ context.Context, r release.GateRule, t gate.Target) (release.Reading, error) {
	p.calls++
	return release.Reading{Value: 0.999, Samples: 5000, Source: "bench " + t.App + "@" + t.Version,
		Values: map[string]float64{r.Metric: 0.999}}, nil
}

// BenchmarkReconcilePass is one reconcile pass as the service runs it (the
// gates pass, then the rollouts pass) over N lanes of mixed kinds (Play,
// App Store, OTA; fake executors) with a health gate each:
//
//   - due: every lane has soaked at 10 % and its gate is due, so the pass
//     measures the gate, judges it and advances the lane to 25 %;
//   - soaking: every lane soaks at 10 % for another hour with its gate
//     measured a minute ago, so nothing is due.
//
// Each iteration resets the lanes (untimed). ns/lane is the pass's time per
// lane. Postgres runs when RELEASEPILOT_TEST_POSTGRES_URL is set.
func BenchmarkReconcilePass(b *testing.B) {
	for _, e := range storetest.Engines {
		if e == store.Postgres && os.Getenv(storetest.PostgresEnv) == "" {
			continue
		}
		for _, c := range []struct {
			name string
			n    int
			due  bool
		}{{"due", 1000, true}, {"due", 10000, true}, {"soaking", 10000, false}} {
			b.Run(fmt.Sprintf("%s/%s/lanes=%d", e, c.name, c.n), func(b *testing.B) {
				benchPass(b, e, c.n, c.due)
			})
		}
		b.Run(fmt.Sprintf("%s/reference/lanes=10000", e), func(b *testing.B) { benchFloor(b, e, 10000) })
	}
}

func benchPass(b *testing.B, e store.Engine, n int, due bool) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rule := release.GateRule{Provider: "bench", Metric: "crash_free_rate(session)", Min: fp(0.99), NoMax: true, MinSamples: 100,
		Interval: release.Duration(5 * time.Minute)}
	plan := release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, []release.GateRule{rule})
	st, ro, _, ids := seedFleet(b, e, 0, plan, now)
	ctx := context.Background()
	// Ten apps, the lanes spread over them and over ten versions each.
	apps := 10
	var lanes []release.Lane
	for a := range apps {
		app := fmt.Sprintf("app%02d", a)
		require.NoError(b, st.UpsertApp(ctx, release.App{Name: app, Repository: "acme/" + app}, now))
		rels := storetest.CreateReleases(b, st.DB, app, n/apps, now)
		for i, rel := range rels {
			k := fleetKinds[(a+i)%len(fleetKinds)]
			lanes = append(lanes, release.Lane{ID: fmt.Sprintf("lane_%02d_%05d", a, i), ReleaseID: rel, Platform: k.Platform, Kind: k.Kind, Plan: plan})
		}
	}
	_, err := st.DB.SQL.ExecContext(ctx, `UPDATE releases SET version = '1.4.' || substr(tag, length(tag), 1)`)
	require.NoError(b, err)
	storetest.CreateLanes(b, st.DB, lanes, now)
	_ = ids
	provider := &benchProvider{}
	gates := &jobs.Gates{Store: st, Providers: map[string]jobs.GateProvider{"bench": provider}, Executors: ro.Executors,
		Now: func() time.Time { return now }}
	ro.Gates = gates
	ro.PassBudget = time.Minute

	// reset puts every lane at 10 % on the soak step; due: soaked for two
	// hours, its gate last measured ten minutes ago; soaking: soaking for
	// another hour, its gate measured a minute ago.
	reset := func() {
		stage, measured, next := now.Add(-2*time.Hour), now.Add(-10*time.Minute), now.Add(-time.Minute)
		if !due {
			stage, measured, next = now.Add(-2*time.Minute), now.Add(-time.Minute), now.Add(time.Hour)
		}
		for _, q := range []string{`DELETE FROM gate_measurements`, `DELETE FROM events`, `DELETE FROM lane_leases`} {
			_, err := st.DB.SQL.ExecContext(ctx, q)
			require.NoError(b, err)
		}
		// The gates are next due an interval after their last measurement,
		// as the pass that took it recorded.
		_, err := st.DB.SQL.ExecContext(ctx, `UPDATE rollouts SET state = 'rolling', step_index = 1, percent = 10, reason = '',
			step_started_at = $1, stage_started_at = $1, next_eligible_at = $2, version = version + 1, gates_due_at = $3`,
			stage.UnixMilli(), next.UnixMilli(), measured.Add(rule.Every()).UnixMilli())
		require.NoError(b, err)
		_, err = st.DB.SQL.ExecContext(ctx, `INSERT INTO gate_measurements (lane_id, gate, measured_at, percent, phase, value, samples, reason, source, vals)
			SELECT lane_id, $1, $2, 10, 'successful', 0.999, 5000, '', 'bench', '{}' FROM rollouts`, rule.Key(), measured.UnixMilli())
		require.NoError(b, err)
		if e == store.Postgres {
			_, err = st.DB.SQL.ExecContext(ctx, `ANALYZE`)
			require.NoError(b, err)
		}
	}
	pass := func() error {
		pctx := jobs.WithGatePass(ctx)
		if err := gates.Pass(pctx, ro); err != nil {
			return err
		}
		return ro.Pass(pctx)
	}
	b.ResetTimer()
	var elapsed, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reset()
		provider.calls = 0
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		require.NoError(b, pass())
		elapsed += time.Since(start)
		cpu += processCPU() - cpu0
		b.StopTimer()
		if due {
			dueAfter, err := st.DueLanesAfter(ctx, now, store.DueCursor{}, 10)
			require.NoError(b, err)
			l, err := st.GetLane(ctx, lanes[n/2].ID)
			require.NoError(b, err)
			require.Equal(b, 25, l.Status.Percent, "the pass advanced the lanes")
			_ = dueAfter
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/float64(n), "ns/lane")
	// CPU time of this process (user and system; with SQLite that includes
	// the database, with Postgres not the server's): a figure that the
	// other loads on the machine disturb less than the wall clock.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/pass")
	b.ReportMetric(float64(provider.calls), "measurements/pass")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchFloor is the reference measured beside the pass in the same run:
// the least any pass that records a step for each of n lanes must do — one
// primary-key UPDATE of each lane's status, 200 to a transaction — with no
// reads, gates, leases or events.
func benchFloor(b *testing.B, e store.Engine, n int) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	st, _, _, ids := seedFleet(b, e, n, soakPlan(), now)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for from := 0; from < n; from += 200 {
			tx, err := st.DB.SQL.BeginTx(ctx, nil)
			require.NoError(b, err)
			for _, id := range ids[from:min(from+200, n)] {
				_, err := tx.ExecContext(ctx, `UPDATE rollouts SET percent = $2, version = version + 1 WHERE lane_id = $1`, id, i%100)
				require.NoError(b, err)
			}
			require.NoError(b, tx.Commit())
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/float64(n), "ns/lane")
}
