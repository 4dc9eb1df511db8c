package otalane_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
)

// recordTargets is a gate provider that records what it was asked about.
type recordTargets struct{ targets []gate.Target }

func (r *recordTargets) Measure(_ context.Context, _ release.GateRule, t gate.Target) (release.Reading, error) {
	r.targets = append(r.targets, t)
	return release.Reading{Inconclusive: "recorded"}, nil
}

// TestOTAGatesThroughGates: measured as a gate provider, the OTA reports
// of the stage (not the release's whole life) halt the lane and disable
// its release; a Sentry gate of the lane is asked about its Production
// label and the binaries its range targets.
func TestOTAGatesThroughGates(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	l := b.lane(t, "v1.4.2", "c142", "bundle 1.4.2\n")
	sentry := &recordTargets{}
	gates := &jobs.Gates{Store: b.st, Executors: b.ro.Executors, Now: func() time.Time { return b.now },
		Providers: map[string]jobs.GateProvider{release.ProviderOTA: &gate.OTAReports{Counters: b.cp}, release.ProviderSentry: sentry}}
	b.ro.Gates = gates
	tick := func() {
		t.Helper()
		require.NoError(t, gates.Pass(ctx, b.ro))
		require.NoError(t, b.ro.Pass(ctx))
	}
	require.NoError(t, b.work(ctx, l))
	tick() // 10 %

	// Reports before the stage's first measurement are its baseline.
	b.report(t, "v1", 40, 10)
	b.now = b.now.Add(time.Minute)
	tick()
	require.Equal(t, release.StateWaiting, b.laneStatus(t, l).State)
	ms, err := b.st.Measurements(ctx, l.ID, time.Time{}, 0)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, release.PhaseStale, ms[0].Phase)
	require.Equal(t, "first measurement of this stage: 50 devices (40 installs, 10 rollbacks) so far are its baseline; the stage is judged on reports after it", ms[0].Reason)

	// The stage's own reports: 3 rollbacks of 12 halt it.
	b.report(t, "v1", 9, 3)
	b.now = b.now.Add(5 * time.Minute)
	tick()
	st := b.laneStatus(t, l)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, "gate ota_failure_rate failed once (failure_limit 0): 0.25 is above max 0.05 over 12 samples [install reports of acme-ios Production v1]", st.Reason)
	require.True(t, b.history(t, codepush.Production)[0].Disabled)

	// A Sentry rule of an OTA lane measures its label on its binaries.
	l2 := b.lane(t, "v1.4.3", "c143", "bundle 1.4.3\n")
	rule := release.GateRule{Provider: release.ProviderSentry, Metric: gate.CrashFreeSessions, Min: fp(0.99), NoMax: true}
	require.NoError(t, b.work(ctx, l2))
	l2, err = b.st.GetLane(ctx, l2.ID)
	require.NoError(t, err)
	l2.Plan = release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, []release.GateRule{rule})
	l2.Status.Percent, l2.Status.StageStartedAt = 10, b.now
	b.now = b.now.Add(time.Minute)
	_, err = gates.Observe(ctx, l2)
	require.NoError(t, err)
	require.Len(t, sentry.targets, 1)
	tg := sentry.targets[0]
	require.Equal(t, "acme-ios", tg.CodePushApp)
	require.Equal(t, "v2", tg.Label)
	var versions []string
	for _, bin := range tg.Binaries {
		versions = append(versions, bin.Version)
	}
	require.ElementsMatch(t, []string{"1.4.0", "1.4.1"}, versions, "not 1.3.0, older native code")
	require.Equal(t, release.KindOTA, tg.Kind)
}

func fp(v float64) *float64 { return &v }
