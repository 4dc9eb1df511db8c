package release

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNext(t *testing.T) {
	t.Parallel()
	gated := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, []GateRule{{Metric: "crash_rate", Max: 0.01, MinSamples: 1000}})
	windowed := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour), Window: "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI"}, nil)
	approval := Plan{Steps: []Step{{SetPercent: Pct(10)}, {Approval: &Approval{Reason: "production"}}, {SetPercent: Pct(100)}}}
	tail := Plan{Steps: []Step{{SetPercent: Pct(50)}, {Wait: &Wait{Soak: Duration(time.Hour)}}}}
	friday := time.Date(2026, 11, 27, 15, 30, 0, 0, time.UTC) // 16:30 in Berlin
	tests := []struct {
		name      string
		plan      Plan
		st        Status
		now       time.Time
		percent   int
		notBefore time.Time
		before    []string
		summary   string
	}{
		{
			name: "soaking, then a gate", plan: gated,
			st:      Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0},
			now:     t0.Add(20 * time.Minute),
			percent: 25, notBefore: t0.Add(time.Hour),
			before:  []string{"soak 1h0m0s until 2026-11-25T10:00:00Z", "gate crash_rate ≤ 0.01 over ≥ 1000 samples on fresh data"},
			summary: "next: 25% not before 2026-11-25T10:00:00Z (in 40m0s), after soak 1h0m0s until 2026-11-25T10:00:00Z, then gate crash_rate ≤ 0.01 over ≥ 1000 samples on fresh data",
		},
		{
			name: "soak over: only the gate is left", plan: gated,
			st:      Status{State: StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: t0.Add(time.Hour)},
			now:     t0.Add(2 * time.Hour),
			percent: 25,
			before:  []string{"gate crash_rate ≤ 0.01 over ≥ 1000 samples on fresh data"},
			summary: "next: 25% after gate crash_rate ≤ 0.01 over ≥ 1000 samples on fresh data",
		},
		{
			name: "soak ends outside the window: Monday's opening", plan: windowed,
			st:      Status{State: StateWaiting, StepIndex: 3, Percent: 25, StepStartedAt: friday},
			now:     friday.Add(10 * time.Minute),
			percent: 50, notBefore: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC),
			before: []string{"soak 1h0m0s until 2026-11-27T16:30:00Z",
				`window "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI" opens 2026-11-30T09:00:00Z`},
			summary: `next: 50% not before 2026-11-30T09:00:00Z (in 65h20m0s), after soak 1h0m0s until 2026-11-27T16:30:00Z, then window "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI" opens 2026-11-30T09:00:00Z`,
		},
		{
			name: "soak ends inside the window", plan: windowed,
			st:      Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0}, // 10:00 Berlin, Wednesday
			now:     t0,
			percent: 25, notBefore: t0.Add(time.Hour),
			before:  []string{"soak 1h0m0s until 2026-11-25T10:00:00Z"},
			summary: "next: 25% not before 2026-11-25T10:00:00Z (in 1h0m0s), after soak 1h0m0s until 2026-11-25T10:00:00Z",
		},
		{
			name: "approval", plan: approval,
			st:      Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0},
			now:     t0,
			percent: 100,
			before:  []string{"approval by a person (production)"},
			summary: "next: 100% after approval by a person (production)",
		},
		{
			name: "at a percentage step", plan: gated,
			st:      Status{State: StateRolling, StepIndex: 0},
			now:     t0,
			percent: 10,
			summary: "next: 10% on the next pass",
		},
		{
			name: "Apple's phased release: day 2 tomorrow", plan: StagedPlan(ApplePhasedStages, Wait{Soak: Duration(24 * time.Hour)}, nil),
			st:      Status{State: StateRolling, StepIndex: 1, Percent: 1, StepStartedAt: t0},
			now:     t0.Add(90 * time.Minute),
			percent: 2, notBefore: t0.Add(24 * time.Hour),
			before:  []string{"soak 24h0m0s until 2026-11-26T09:00:00Z"},
			summary: "next: 2% not before 2026-11-26T09:00:00Z (in 22h30m0s), after soak 24h0m0s until 2026-11-26T09:00:00Z",
		},
		{
			name: "a wait after the last percentage", plan: tail,
			st:      Status{State: StateWaiting, StepIndex: 1, Percent: 50, StepStartedAt: t0},
			now:     t0,
			before:  []string{"soak 1h0m0s until 2026-11-25T10:00:00Z"},
			summary: "at 50%: finishes after soak 1h0m0s until 2026-11-25T10:00:00Z",
		},
		{
			name: "halted by a gate", plan: gated,
			st:      Status{State: StateHalted, StepIndex: 4, Percent: 25, Reason: "gate crash_rate failed: 0.02 is above 0.01"},
			now:     t0,
			summary: "halted at 25%; resume to continue or roll back (gate crash_rate failed: 0.02 is above 0.01)",
		},
		{
			name: "paused", plan: gated,
			st:      Status{State: StatePaused, StepIndex: 4, Percent: 25},
			now:     t0,
			summary: "paused at 25%; resume to continue",
		},
		{name: "pending", plan: gated, st: Status{State: StatePending, Reason: "waiting for processing"}, now: t0,
			summary: "not started: the lane job has not handed over yet (waiting for processing)"},
		{name: "completed", plan: gated, st: Status{State: StateCompleted, StepIndex: 10, Percent: 100}, now: t0, summary: "done at 100%"},
		{name: "failed", plan: gated, st: Status{State: StateFailed, Reason: "build ended INVALID"}, now: t0, summary: "failed (build ended INVALID)"},
		{name: "cancelled", plan: gated, st: Status{State: StateCancelled}, now: t0, summary: "cancelled"},
		{name: "index outside the plan", plan: approval, st: Status{State: StateRolling, StepIndex: 7}, now: t0,
			summary: "step index 7 is outside the plan (3 steps)"},
		{name: "bad window", plan: Plan{Steps: []Step{{Wait: &Wait{Window: "every tuesday"}}, {SetPercent: Pct(100)}}},
			st: Status{State: StateWaiting}, now: t0,
			summary: `steps[0].wait.window: window "every tuesday": expected exactly 5 fields, found 2: [every tuesday]`},
		{name: "halt pending", plan: gated, st: Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0, PendingCommand: CmdHalt}, now: t0,
			summary: "halt pending: a person's halt was accepted and goes before anything scheduled"},
		{name: "unknown state", plan: gated, st: Status{State: "bogus"}, now: t0, summary: `unknown state "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Next(tt.plan, tt.st, tt.now)
			require.Equal(t, tt.summary, o.Summary)
			require.Equal(t, tt.percent, o.NextPercent)
			require.True(t, tt.notBefore.Equal(o.NotBefore), "not before %s, want %s", o.NotBefore, tt.notBefore)
			require.Equal(t, tt.before, o.Before)
		})
	}
}

// TestNextAgreesWithReconcile: where the outlook says the next percentage
// comes not before T, Reconcile holds until T and advances to it then (with
// the gate passing).
func TestNextAgreesWithReconcile(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour), Window: "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI"},
		[]GateRule{{Metric: "crash_rate", Max: 0.01}})
	healthy := Observations{Metrics: map[string]Observation{"crash_rate": {Value: 0.001, Samples: 10, Fresh: true}}}
	st := Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: time.Date(2026, 11, 27, 15, 30, 0, 0, time.UTC)}
	now := st.StepStartedAt.Add(time.Minute)
	o := Next(plan, st, now)
	require.False(t, o.NotBefore.IsZero())

	d, err := Reconcile(plan, st, healthy, o.NotBefore.Add(-time.Minute))
	require.NoError(t, err)
	require.Equal(t, ActionHold, d.Action, "a minute before the outlook's time nothing moves")
	d, err = Reconcile(plan, st, healthy, o.NotBefore)
	require.NoError(t, err)
	require.Equal(t, ActionAdvance, d.Action)
	require.Equal(t, o.NextPercent, d.Percent)
}
