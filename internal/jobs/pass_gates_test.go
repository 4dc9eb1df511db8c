package jobs_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/gate/sentrytest"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// TestGatesOfManyLanesShareOneSentryQuery: 30 lanes of one app and version
// measured in one reconcile pass ask Sentry once, even with the clock
// moving on between lanes as it does in a real pass; the next pass asks
// again.
func TestGatesOfManyLanesShareOneSentryQuery(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	stage := now.Add(-3 * time.Hour)
	rule := release.GateRule{Provider: release.ProviderSentry, Metric: "crash_free_rate(session)", Min: fp(0.99), NoMax: true, MinSamples: 100,
		Interval: release.Duration(5 * time.Minute)}
	plan := release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, []release.GateRule{rule})

	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, now))
	const n = 30
	rels := storetest.CreateReleases(t, db, "acme", n, now)
	_, err := db.SQL.ExecContext(ctx, `UPDATE releases SET version = '1.4.0'`)
	require.NoError(t, err)
	var lanes []release.Lane
	for i := range n {
		lanes = append(lanes, release.Lane{ID: fmt.Sprintf("lane_%02d", i), ReleaseID: rels[i], Platform: release.IOS, Kind: release.KindStore, Plan: plan,
			Status: release.Status{State: release.StateRolling, StepIndex: 1, Percent: 10, StepStartedAt: stage, StageStartedAt: stage, NextEligibleAt: now.Add(-time.Minute)}})
	}
	storetest.CreateLanes(t, db, lanes, now)

	fake := sentrytest.New("acme-org", func() time.Time { return now })
	fake.AddToken("sntrys_test")
	fake.AddProject("acme-mobile")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	name, err := gate.ParseTemplate("release", "{{.BundleID}}@{{.Version}}")
	require.NoError(t, err)
	sentry := &gate.Sentry{BaseURL: srv.URL + "/", Org: "acme-org", Token: "sntrys_test",
		Apps: map[string]gate.SentryApp{"acme": {Project: "acme-mobile", Environment: "production", Release: name}}}

	// The gates' clock moves a second every time it is read, as a pass
	// over many lanes takes time.
	var mu sync.Mutex
	clock := now
	tick := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	f := newFleet()
	ex := jobs.Executors{{Kind: release.KindStore, Platform: release.IOS}: f}
	app := config.App{Name: "acme"}
	app.IOS.BundleID = "com.acme.mobile"
	gates := &jobs.Gates{Store: st, Providers: map[string]jobs.GateProvider{release.ProviderSentry: sentry}, Executors: ex,
		Apps: map[string]config.App{"acme": app}, Now: tick}
	ro := &jobs.Rollouts{Store: st, Executors: ex, Gates: gates, Now: func() time.Time { return now }, PassBudget: time.Hour}

	require.NoError(t, ro.Pass(ctx))
	require.Equal(t, 1, len(fake.Requests()), "one Sentry query for 30 lanes of one app and version")
	for _, l := range lanes {
		ms, err := st.Measurements(ctx, l.ID, time.Time{}, 0)
		require.NoError(t, err)
		require.Len(t, ms, 1, "lane %s was measured", l.ID)
		require.Equal(t, release.PhaseInconclusive, ms[0].Phase, "Sentry has no sessions of the release: %s", ms[0].Reason)
	}

	// The next pass, five minutes on, asks again (once).
	mu.Lock()
	clock = clock.Add(5 * time.Minute)
	mu.Unlock()
	now = now.Add(5 * time.Minute)
	require.NoError(t, gates.Pass(ctx, ro))
	require.Equal(t, 2, len(fake.Requests()), "a new pass asks anew, once for every lane")
	require.Empty(t, fake.Violations())
}
