package release

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestActiveFreeze(t *testing.T) {
	t.Parallel()
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	holidays := Freeze{From: day(20), To: day(27), Reason: "holidays"}
	newYear := Freeze{From: day(27), To: day(29), Reason: "new year"} // touches holidays
	launch := Freeze{From: day(24), To: day(26), Reason: "launch"}    // inside holidays
	later := Freeze{From: day(30), To: day(31)}
	all := []Freeze{launch, holidays, newYear, later}
	tests := []struct {
		name   string
		at     time.Time
		ok     bool
		to     time.Time
		reason string
	}{
		{"before", day(19), false, time.Time{}, ""},
		{"first moment", day(20), true, day(29), "holidays"},
		{"inside two: the chain ends when no freeze holds", day(25), true, day(29), "launch"},
		{"in the touching one", day(28), true, day(29), "new year"},
		{"end is open", day(29), false, time.Time{}, ""},
		{"a gap", day(29).Add(12 * time.Hour), false, time.Time{}, ""},
		{"a freeze alone", day(30), true, day(31), ""},
	}
	for _, tt := range tests {
		f, ok := ActiveFreeze(all, tt.at)
		require.Equal(t, tt.ok, ok, tt.name)
		require.True(t, tt.to.Equal(f.To), "%s: to %s, want %s", tt.name, f.To, tt.to)
		require.Equal(t, tt.reason, f.Reason, tt.name)
	}
	fs := []Freeze{{Reason: "all"}, {Reason: "acme", Apps: []string{"acme"}}, {Reason: "other", Apps: []string{"other"}}}
	android := Lane{Platform: Android, Kind: KindStore}
	require.Len(t, FreezesFor(fs, "acme", android), 2)
	require.Len(t, FreezesFor(fs, "acme", Lane{Platform: IOS, Kind: KindOTA}), 2)
	require.Empty(t, FreezesFor(fs, "acme", Lane{Platform: IOS, Kind: KindStore}), "Apple's phased release runs its own days")
}

func TestReconcileRespectsWindowsAndFreezes(t *testing.T) {
	t.Parallel()
	window := "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI"
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour), Window: window}, []GateRule{{Metric: "crash_rate", Max: 0.01}})
	healthy := Observations{Metrics: map[string]Observation{"crash_rate": {Value: 0.001, Samples: 10, Fresh: true}}}
	sick := Observations{Metrics: map[string]Observation{"crash_rate": {Value: 0.05, Samples: 10, Fresh: true}}}
	// At the gate (step 2) after the soak passed inside Wednesday's window.
	atGate := Status{State: StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)}

	// The gate's data arrives at 22:00 Berlin: the advance waits for
	// Thursday 10:00 Berlin instead of going out at night.
	night := time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	d, err := Reconcile(plan, atGate, healthy, night)
	require.NoError(t, err)
	require.Equal(t, ActionHold, d.Action)
	require.Equal(t, "outside the rollout window; next opening 2026-11-26T09:00:00Z", d.Reason)
	require.True(t, d.Status.NextEligibleAt.Equal(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)))
	require.Equal(t, 2, d.Status.StepIndex, "the gate is judged again when the window opens")
	d, err = Reconcile(plan, atGate, healthy, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, ActionAdvance, d.Action)
	require.Equal(t, 25, d.Percent)

	// A freeze holds the advance until it ends, and the window after that.
	freeze := []Freeze{{From: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), Reason: "Black Friday"}}
	frozen := healthy
	frozen.Freezes = freeze
	d, err = Reconcile(plan, atGate, frozen, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, ActionHold, d.Action)
	require.Equal(t, "frozen until 2026-11-28T00:00:00Z: Black Friday", d.Reason)
	d, err = Reconcile(plan, atGate, frozen, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) // Saturday
	require.NoError(t, err)
	require.Equal(t, ActionHold, d.Action)
	require.Equal(t, "outside the rollout window; next opening 2026-11-30T09:00:00Z", d.Reason)

	// Bad health still halts during a freeze.
	sickFrozen := sick
	sickFrozen.Freezes = freeze
	d, err = Reconcile(plan, atGate, sickFrozen, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, ActionHalt, d.Action)

	// The first percentage is frozen too.
	d, err = Reconcile(plan, Status{State: StateRolling}, frozen, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, ActionHold, d.Action)

	// The outlook says so, and agrees with Reconcile.
	o := Next(plan, atGate, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), freeze...)
	require.Equal(t, []string{"gate crash_rate ≤ 0.01 on fresh data", "frozen until 2026-11-28T00:00:00Z: Black Friday", "window opens 2026-11-30T09:00:00Z"}, o.Before)
	require.True(t, o.NotBefore.Equal(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)))
	d, err = Reconcile(plan, atGate, frozen, o.NotBefore)
	require.NoError(t, err)
	require.Equal(t, ActionAdvance, d.Action)
}
