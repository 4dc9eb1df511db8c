package androidlane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/gate/promtest"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/playstore"
)

// TestAndroidLaneHaltedByPrometheusGate: a Play staged rollout whose
// crash-free ratio in a real Prometheus drops below the gate's minimum is
// halted on Play by the reconciler, in the middle of its soak, once the
// gate has failed more times in a row than its failure_limit — nobody acts.
func TestAndroidLaneHaltedByPrometheusGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Healthy until 18:30 (the rollout starts at 18:00), then crashing.
	var om strings.Builder
	om.WriteString("# TYPE app_crash_free_ratio gauge\n")
	om.WriteString(promtest.Gauge("app_crash_free_ratio", `release="v1.4.0",platform="android"`, androidStart.Add(-time.Hour), androidStart.Add(29*time.Minute), time.Minute, 0.999))
	om.WriteString(promtest.Gauge("app_crash_free_ratio", `release="v1.4.0",platform="android"`, androidStart.Add(30*time.Minute), androidStart.Add(3*time.Hour), time.Minute, 0.95))
	om.WriteString("# EOF\n")
	prom := promtest.Start(t, om.String())

	rule := release.GateRule{Provider: release.ProviderPrometheus, Metric: "crash-free ratio", Query: `app_crash_free_ratio{release="{{.Release}}",platform="{{.Platform}}"}`,
		Min: fp(0.99), NoMax: true, FailureLimit: 1, Interval: release.Duration(5 * time.Minute)}
	b := setupAndroid(t, store.SQLite, nil, release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(6 * time.Hour)}, []release.GateRule{rule}))
	gates := &jobs.Gates{Store: b.st, Providers: map[string]jobs.GateProvider{release.ProviderPrometheus: &gate.Prometheus{URL: prom.URL}},
		Executors: b.ro.Executors, Apps: map[string]config.App{"acme": b.app}, Now: func() time.Time { return b.now }}
	b.ro.Gates = gates
	tick := func() {
		t.Helper()
		require.NoError(t, gates.Pass(ctx, b.ro))
		require.NoError(t, b.ro.Pass(ctx))
	}

	require.NoError(t, b.work(t))
	tick() // 18:00: 10 %, the stage begins
	st := b.status(t)
	require.Equal(t, 10, st.Percent)
	require.Equal(t, androidStart, st.StageStartedAt)

	for _, at := range []time.Duration{5, 10, 15, 20, 25} {
		b.advance(androidStart.Add(at * time.Minute).Sub(b.now))
		tick()
		require.Equal(t, release.StateWaiting, b.status(t).State, "healthy, soaking at %s", b.now)
	}
	b.advance(5 * time.Minute) // 18:30: the first failure is within the limit
	tick()
	require.Equal(t, release.StateWaiting, b.status(t).State)
	require.Contains(t, b.status(t).Reason, "soaking", "a failure within the limit does not change the soak")

	b.advance(5 * time.Minute) // 18:35: the second in a row halts
	tick()
	st = b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, 10, st.Percent)
	require.Equal(t, `gate prometheus crash-free ratio failed 2 times in a row (failure_limit 1): 0.95 is below min 0.99 [promql app_crash_free_ratio{release="v1.4.0",platform="android"}]`, st.Reason)
	androidGolden(t, "production_10_halted.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))

	ms, err := b.st.Measurements(ctx, b.lane.ID, time.Time{}, 0)
	require.NoError(t, err)
	var phases []release.Phase
	for _, m := range ms {
		phases = append(phases, m.Phase)
		require.Equal(t, 10, m.Percent)
	}
	require.Equal(t, []release.Phase{release.PhaseSuccessful, release.PhaseSuccessful, release.PhaseSuccessful, release.PhaseSuccessful,
		release.PhaseSuccessful, release.PhaseFailed, release.PhaseFailed}, phases, "one measurement every 5 minutes, all stored")

	evs, err := b.st.Events(ctx, b.rel.ID, 0, 100)
	require.NoError(t, err)
	var halt *release.Event
	for i := range evs {
		if evs[i].Kind == "rollout.halt" {
			halt = &evs[i]
		}
	}
	require.NotNil(t, halt, "the halt is in the audit log")
	require.Equal(t, "system", halt.Actor)
	mss := halt.Details["measurements"].([]any)
	require.Len(t, mss, 1)
	m := mss[0].(map[string]any)
	require.Equal(t, "failed", m["phase"])
	require.Equal(t, 0.95, m["value"])
	require.Equal(t, map[string]any{"value": 0.95}, m["values"])

	// Halted: the gates stop measuring, and nothing moves on its own.
	b.advance(time.Hour)
	tick()
	after, err := b.st.Measurements(ctx, b.lane.ID, time.Time{}, 0)
	require.NoError(t, err)
	require.Len(t, after, len(ms))
	require.Equal(t, release.StateHalted, b.status(t).State)
}

func fp(v float64) *float64 { return &v }

// TestAndroidLanePlayVitalsThroughGates: as the service wires it, Play
// vitals are a gate provider measured on their own interval, not by the
// lane's Observe: a bad ANR rate halts the rollout during its soak, and
// the halt says what Play measured.
func TestAndroidLanePlayVitalsThroughGates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAndroid(t, store.SQLite, nil)
	b.vitals(0.002, 0.02, 5000)
	clock := func() time.Time { return b.now }
	b.android.Vitals = nil // the lane observes nothing itself
	gates := &jobs.Gates{Store: b.st, Providers: map[string]jobs.GateProvider{release.ProviderPlayVitals: &gate.PlayVitals{Reader: b.play, MaxAge: -1, Now: clock}},
		Executors: b.ro.Executors, Apps: map[string]config.App{"acme": b.app}, Now: clock}
	b.ro.Gates = gates
	require.NoError(t, b.work(t))
	require.NoError(t, b.ro.Pass(ctx)) // 10 %
	b.advance(10 * time.Minute)        // soaking for an hour
	require.NoError(t, gates.Pass(ctx, b.ro))
	st := b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, "gate anr_rate failed once (failure_limit 0): 0.02 is above max 0.005 over 5000 samples [Play vitals of com.acme.mobile versionCode 42]", st.Reason)
	androidGolden(t, "production_10_halted.json", b.fake.TrackJSON(androidPkg, playstore.TrackProduction))
}
