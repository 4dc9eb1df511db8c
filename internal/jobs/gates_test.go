package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/notify"
	"github.com/swapjoy/releasepilot/internal/release"
)

// scripted is a gate provider whose readings a test sets per rule.
type scripted struct {
	mu       sync.Mutex
	readings map[string]release.Reading
	err      error
	targets  []gate.Target
}

func (s *scripted) Measure(_ context.Context, r release.GateRule, t gate.Target) (release.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = append(s.targets, t)
	if s.err != nil {
		return release.Reading{}, s.err
	}
	return s.readings[r.Metric], nil
}

func (s *scripted) set(metric string, rd release.Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readings[metric] = rd
}

var (
	sessions = release.GateRule{Provider: release.ProviderSentry, Metric: "crash_free_rate(session)", Min: fp(0.99), NoMax: true, MinSamples: 100,
		FailureLimit: 2, Interval: release.Duration(5 * time.Minute)}
	users = release.GateRule{Provider: release.ProviderSentry, Metric: "crash_free_rate(user)", Min: fp(0.98), NoMax: true, Interval: release.Duration(5 * time.Minute)}
)

func fp(v float64) *float64 { return &v }

type gatesBundle struct {
	*rolloutBundle
	provider *scripted
	gates    *jobs.Gates
}

func setupGates(t *testing.T, rules ...release.GateRule) *gatesBundle {
	t.Helper()
	b := &gatesBundle{rolloutBundle: setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, rules)),
		provider: &scripted{readings: map[string]release.Reading{}}}
	b.gates = &jobs.Gates{Store: b.st, Providers: map[string]jobs.GateProvider{release.ProviderSentry: b.provider}, Executors: b.ro.Executors,
		Now: func() time.Time { return b.now }}
	b.ro.Gates = b.gates
	return b
}

func (b *gatesBundle) tick(t *testing.T) release.Status {
	t.Helper()
	ctx := jobs.WithGatePass(context.Background())
	require.NoError(t, b.gates.Pass(ctx, b.ro))
	require.NoError(t, b.ro.Pass(ctx))
	l, err := b.st.GetLane(context.Background(), b.lane.ID)
	require.NoError(t, err)
	return l.Status
}

var good = release.Reading{Value: 0.999, Samples: 5000, Values: map[string]float64{"sum(session)": 5000}}

// TestGatesNoAdvanceWhileInconclusive: one gate passes at every
// measurement, the other stays inconclusive; the lane never advances past
// its first stage and never halts, however long it waits.
func TestGatesNoAdvanceWhileInconclusive(t *testing.T) {
	t.Parallel()
	b := setupGates(t, sessions, users)
	b.provider.set(sessions.Metric, good)
	b.provider.set(users.Metric, release.Reading{Inconclusive: "Sentry has no users of com.acme@1.4.0+42 yet"})
	st := b.tick(t)
	require.Equal(t, 10, st.Percent)
	for range 12 * 8 { // eight hours, every five minutes
		b.now = b.now.Add(5 * time.Minute)
		st = b.tick(t)
		require.Equal(t, 10, st.Percent)
		require.Equal(t, release.StateWaiting, st.State)
	}
	require.Equal(t, "gate sentry crash_free_rate(user) inconclusive: Sentry has no users of com.acme@1.4.0+42 yet", st.Reason)
	ms, err := b.st.Measurements(context.Background(), b.lane.ID, time.Time{}, 0)
	require.NoError(t, err)
	require.Len(t, ms, 2*96, "both gates, every five minutes")

	// Data arrives: the next pass after its measurement advances.
	b.provider.set(users.Metric, good)
	b.now = b.now.Add(5 * time.Minute)
	require.Equal(t, 25, b.tick(t).Percent)
}

// TestGatesFailureLimit counts failures in a row: a success in between
// starts again, and the lane halts on the third failure in a row of a gate
// with failure_limit 2, with the values in the event and the notification.
func TestGatesFailureLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupGates(t, sessions)
	b.provider.set(sessions.Metric, good)
	require.Equal(t, 10, b.tick(t).Percent)
	bad := release.Reading{Value: 0.962, Samples: 5120, Values: map[string]float64{"crash_free_rate(session)": 0.962, "sum(session)": 5120},
		Source: `sentry acme project acme-mobile, release:"com.acme@1.4.0+42"`}
	for i, rd := range []release.Reading{bad, bad, good, bad, bad} {
		b.provider.set(sessions.Metric, rd)
		b.now = b.now.Add(5 * time.Minute)
		st := b.tick(t)
		require.Equal(t, release.StateWaiting, st.State, "measurement %d", i)
	}
	b.provider.set(sessions.Metric, bad)
	b.now = b.now.Add(5 * time.Minute)
	st := b.tick(t)
	require.Equal(t, release.StateHalted, st.State)
	require.True(t, b.remote.halted, "halted remotely")
	want := `gate sentry crash_free_rate(session) failed 3 times in a row (failure_limit 2): 0.962 is below min 0.99 over 5120 samples [sentry acme project acme-mobile, release:"com.acme@1.4.0+42"]`
	require.Equal(t, want, st.Reason)

	evs, err := b.st.Events(ctx, b.lane.ReleaseID, 0, 100)
	require.NoError(t, err)
	halt := evs[len(evs)-1]
	require.Equal(t, "rollout.halt", halt.Kind)
	m := halt.Details["measurements"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"gate": "sentry:crash_free_rate(session)", "phase": "failed", "value": 0.962, "samples": 5120.0,
		"at": b.now.Format(time.RFC3339), "reason": "0.962 is below min 0.99 over 5120 samples", "source": bad.Source,
		"values": map[string]any{"crash_free_rate(session)": 0.962, "sum(session)": 5120.0}}, m)
	rel, err := b.st.GetRelease(ctx, b.lane.ReleaseID)
	require.NoError(t, err)
	require.Equal(t, "🛑 acme v1.4.0 [android]: halt by system — "+want, notify.Text(halt, rel), "the notification says what was measured")

	// Halted: no more measurements, and no halt on the next pass either.
	n, err := b.st.Measurements(ctx, b.lane.ID, time.Time{}, 0)
	require.NoError(t, err)
	b.now = b.now.Add(time.Hour)
	b.tick(t)
	after, err := b.st.Measurements(ctx, b.lane.ID, time.Time{}, 0)
	require.NoError(t, err)
	require.Len(t, after, len(n))
}

// TestGatesStaleHolds: stale data holds a lane and never halts it.
func TestGatesStaleHolds(t *testing.T) {
	t.Parallel()
	b := setupGates(t, sessions)
	b.provider.set(sessions.Metric, release.Reading{Value: 0.1, Samples: 9000, Stale: "Play has not processed a whole day of this stage yet"})
	b.tick(t)
	for range 24 {
		b.now = b.now.Add(5 * time.Minute)
		st := b.tick(t)
		require.Equal(t, release.StateWaiting, st.State)
		require.Equal(t, 10, st.Percent)
	}
	l, err := b.st.GetLane(context.Background(), b.lane.ID)
	require.NoError(t, err)
	require.Equal(t, "gate sentry crash_free_rate(session): stale: Play has not processed a whole day of this stage yet", l.Status.Reason)
}

// TestGatesProviderProblemsHold: a provider error, or no provider at all,
// is measured as an error; the gate holds and says why.
func TestGatesProviderProblemsHold(t *testing.T) {
	t.Parallel()
	b := setupGates(t, sessions)
	b.provider.err = errors.New("sentry answered 503")
	b.tick(t)
	b.now = b.now.Add(time.Hour)
	st := b.tick(t)
	require.Equal(t, release.StateWaiting, st.State)
	require.Equal(t, "gate sentry crash_free_rate(session) error: sentry answered 503", st.Reason)

	delete(b.gates.Providers, release.ProviderSentry)
	b.now = b.now.Add(5 * time.Minute)
	st = b.tick(t)
	require.Equal(t, "gate sentry crash_free_rate(session) error: no sentry provider is configured", st.Reason)
	require.Equal(t, 10, st.Percent)
}

// TestGatesMeasureOnTheirInterval: a rule is measured once per interval
// whatever the reconcile cadence, not before the first percentage, and the
// target carries the lane's stage and release.
func TestGatesMeasureOnTheirInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupGates(t, sessions)
	b.provider.set(sessions.Metric, good)
	l, err := b.st.GetLane(ctx, b.lane.ID)
	require.NoError(t, err)
	rd, err := b.gates.Observe(ctx, l)
	require.NoError(t, err)
	require.Equal(t, map[string]release.GateReading{sessions.Key(): {}}, rd, "nothing measured before the first percentage")
	require.Empty(t, b.provider.targets)

	b.tick(t) // 10 %
	for range 9 {
		b.now = b.now.Add(time.Minute)
		b.tick(t)
	}
	require.Len(t, b.provider.targets, 2, "at 10:01 and 10:06")
	tg := b.provider.targets[0]
	require.Equal(t, "acme", tg.App)
	require.Equal(t, "v1.4.0", tg.Tag)
	require.Equal(t, "1.4.0", tg.Version)
	require.Equal(t, release.Android, tg.Platform)
	require.Equal(t, 10, tg.Percent)
	require.Equal(t, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), tg.StageStarted)
	require.Equal(t, time.Date(2026, 11, 25, 10, 1, 0, 0, time.UTC), tg.Now)
	require.Nil(t, tg.Baseline, "the stage's first measurement has no baseline")
	require.NotNil(t, b.provider.targets[1].Baseline, "later ones get the first's raw figures")
}
