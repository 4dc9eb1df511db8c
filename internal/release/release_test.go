package release

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func TestTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to State
		ok       bool
	}{
		{StatePending, StateRolling, true},
		{StatePending, StateCompleted, false},
		{StateRolling, StateWaiting, true},
		{StateRolling, StateHalted, true},
		{StateWaiting, StatePaused, true},
		{StatePaused, StateRolling, true},
		{StateHalted, StateRolling, true},
		{StateHalted, StatePaused, false},
		{StateCompleted, StateRolling, false},
		{StateCompleted, StateHalted, true},
		{StateFailed, StateRolling, false},
		{StateCancelled, StateHalted, false},
		{StateRolling, State("bogus"), false},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			t.Parallel()
			st := Status{State: tt.from}
			next, err := st.Transition(tt.to, "why", t0)
			if !tt.ok {
				require.Error(t, err)
				require.Equal(t, tt.from, next.State, "status unchanged on error")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.to, next.State)
			require.Equal(t, "why", next.Reason)
			require.Equal(t, t0, next.UpdatedAt)
		})
	}
}

func TestTerminalErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := Status{State: StateCompleted}.Transition(StateRolling, "", t0)
	require.EqualError(t, err, "lane is completed: only a halt can follow (asked for rolling)")
	_, err = Status{State: StateCancelled}.Transition(StateRolling, "", t0)
	require.EqualError(t, err, "lane is cancelled: no further change is possible (asked for rolling)")
}

func TestPlanValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		plan Plan
		err  string
	}{
		{"default", StagedPlan(DefaultStages, Wait{Soak: Duration(24 * time.Hour)}, []GateRule{{Metric: "crash_rate", Max: 0.01}}), ""},
		{"empty", Plan{}, "plan has no steps"},
		{"two kinds", Plan{Steps: []Step{{SetPercent: Pct(100), Approval: &Approval{}}}}, "steps[0]: exactly one of"},
		{"not a percentage", Plan{Steps: []Step{{SetPercent: Pct(120)}}}, "steps[0].set_percent: 120 is not a percentage"},
		{"decreasing", Plan{Steps: []Step{{SetPercent: Pct(50)}, {SetPercent: Pct(25)}}}, "steps[1].set_percent: 25 does not increase on 50"},
		{"not to 100", Plan{Steps: []Step{{SetPercent: Pct(50)}}}, "plan ends at 50%, not 100%"},
		{"bad window", Plan{Steps: []Step{{Wait: &Wait{Window: "not cron"}}, {SetPercent: Pct(100)}}}, "steps[0].wait.window"},
		{"gate without rules", Plan{Steps: []Step{{Gate: &Gate{}}, {SetPercent: Pct(100)}}}, "steps[0].gate: no rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.plan.Validate()
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestPlanJSONRoundTrip(t *testing.T) {
	t.Parallel()
	p := StagedPlan(DefaultStages, Wait{Soak: Duration(2 * time.Hour), Window: "CRON_TZ=UTC * 9-17 * * MON-FRI"}, []GateRule{{Metric: "crash_rate", Max: 0.01, MinSamples: 100}})
	b, err := json.Marshal(p)
	require.NoError(t, err)
	require.Contains(t, string(b), `"soak":"2h0m0s"`)
	var back Plan
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, p, back)
}

func rolling() Status { return Status{State: StateRolling, StepStartedAt: t0} }

func TestReconcile(t *testing.T) {
	t.Parallel()
	gate := []GateRule{{Metric: "crash_rate", Max: 0.02, MinSamples: 100}}
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, gate)
	// steps: 0 set10, 1 wait, 2 gate, 3 set25, 4 wait, 5 gate, 6 set50, 7 wait, 8 gate, 9 set100
	healthy := Observations{Metrics: map[string]Observation{"crash_rate": {Value: 0.001, Samples: 500, Fresh: true}}}
	tests := []struct {
		name    string
		st      Status
		obs     Observations
		now     time.Time
		action  Action
		percent int
		state   State
		step    int
		reason  string
	}{
		{"first step sets 10", rolling(), healthy, t0, ActionAdvance, 10, StateRolling, 1, "rolled out to 10%"},
		{"soaking holds", Status{State: StateRolling, StepIndex: 1, Percent: 10, StepStartedAt: t0}, healthy, t0.Add(30 * time.Minute), ActionHold, 10, StateWaiting, 1, "soaking at 10%"},
		{"soak over and healthy advances to 25", Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0}, healthy, t0.Add(time.Hour), ActionAdvance, 25, StateRolling, 4, "rolled out to 25%"},
		{"no data holds", Status{State: StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: t0}, Observations{}, t0, ActionHold, 10, StateWaiting, 2, "no fresh data"},
		{"stale data holds", Status{State: StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: t0}, Observations{Metrics: map[string]Observation{"crash_rate": {Value: 0.9, Samples: 900, Fresh: false}}}, t0, ActionHold, 10, StateWaiting, 2, "no fresh data"},
		{"too few samples holds", Status{State: StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: t0}, Observations{Metrics: map[string]Observation{"crash_rate": {Value: 0.001, Samples: 5, Fresh: true}}}, t0, ActionHold, 10, StateWaiting, 2, "5 samples, need 100"},
		{"bad health halts", Status{State: StateWaiting, StepIndex: 2, Percent: 25, StepStartedAt: t0}, Observations{Metrics: map[string]Observation{"crash_rate": {Value: 0.05, Samples: 900, Fresh: true}}}, t0, ActionHalt, 25, StateHalted, 2, "gate crash_rate failed: 0.05 is above 0.02"},
		{"last step completes", Status{State: StateRolling, StepIndex: 9, Percent: 50, StepStartedAt: t0}, healthy, t0, ActionComplete, 100, StateCompleted, 10, "rolled out to 100%"},
		{"halted does nothing", Status{State: StateHalted, StepIndex: 3, Percent: 25}, healthy, t0, ActionNone, 0, StateHalted, 3, "lane is halted"},
		{"paused does nothing", Status{State: StatePaused, StepIndex: 3, Percent: 25}, healthy, t0, ActionNone, 0, StatePaused, 3, "lane is paused"},
		{"completed does nothing", Status{State: StateCompleted, StepIndex: 10, Percent: 100}, healthy, t0, ActionNone, 0, StateCompleted, 10, "lane is completed"},
		{"a pending halt stops a due advance", Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0, PendingCommand: CmdHalt}, healthy, t0.Add(time.Hour), ActionNone, 0, StateWaiting, 1, "halt pending"},
		{"a pending resume holds a rolling lane too", Status{State: StateRolling, StepIndex: 0, PendingCommand: CmdAdvance}, healthy, t0, ActionNone, 0, StateRolling, 0, "advance pending"},
		{"a halted lane with a pending resume does nothing on its own", Status{State: StateHalted, StepIndex: 3, Percent: 25, PendingCommand: CmdResume}, healthy, t0, ActionNone, 0, StateHalted, 3, "lane is halted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Reconcile(plan, tt.st, tt.obs, tt.now)
			require.NoError(t, err)
			require.Equal(t, tt.action, d.Action)
			require.Equal(t, tt.percent, d.Percent)
			require.Equal(t, tt.state, d.Status.State)
			require.Equal(t, tt.step, d.Status.StepIndex)
			require.Contains(t, d.Reason, tt.reason)
		})
	}
}

func TestReconcileIdempotent(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, nil)
	d1, err := Reconcile(plan, rolling(), Observations{}, t0)
	require.NoError(t, err)
	require.Equal(t, ActionAdvance, d1.Action)
	// Recorded; the duplicate tick in the same minute only holds.
	d2, err := Reconcile(plan, d1.Status, Observations{}, t0.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, ActionHold, d2.Action)
	require.Equal(t, 10, d2.Status.Percent)
	require.Equal(t, t0.Add(time.Hour), d2.Status.NextEligibleAt)
}

func TestReconcileWholePlan(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, nil)
	st, now := rolling(), t0
	var seen []int
	for i := 0; i < 20 && st.State != StateCompleted; i++ {
		d, err := Reconcile(plan, st, Observations{}, now)
		require.NoError(t, err)
		if d.Action == ActionAdvance || d.Action == ActionComplete {
			seen = append(seen, d.Percent)
		}
		st = d.Status
		now = now.Add(time.Hour)
	}
	require.Equal(t, []int{10, 25, 50, 100}, seen)
	require.Equal(t, StateCompleted, st.State)
}

func TestReconcileWindow(t *testing.T) {
	t.Parallel()
	// Advances only Monday to Friday between 10:00 and 16:59 in Berlin.
	plan := Plan{Steps: []Step{{SetPercent: Pct(10)}, {Wait: &Wait{Window: "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI"}}, {SetPercent: Pct(100)}}}
	st := Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0}
	sat := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) // Saturday
	d, err := Reconcile(plan, st, Observations{}, sat)
	require.NoError(t, err)
	require.Equal(t, ActionHold, d.Action)
	require.Equal(t, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), d.Status.NextEligibleAt.UTC(), "Monday 10:00 Berlin")
	mon := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	d, err = Reconcile(plan, st, Observations{}, mon)
	require.NoError(t, err)
	require.Equal(t, ActionComplete, d.Action)
}

func TestReconcileApproval(t *testing.T) {
	t.Parallel()
	plan := Plan{Steps: []Step{{Approval: &Approval{Reason: "production"}}, {SetPercent: Pct(10)}, {SetPercent: Pct(100)}}}
	d, err := Reconcile(plan, rolling(), Observations{}, t0)
	require.NoError(t, err)
	require.Equal(t, ActionHold, d.Action)
	require.Equal(t, "waiting for approval: production", d.Reason)
	d, err = Reconcile(plan, rolling(), Observations{Approved: map[int]bool{0: true}}, t0)
	require.NoError(t, err)
	require.Equal(t, ActionAdvance, d.Action)
	require.Equal(t, 10, d.Percent)
	require.Empty(t, d.Command, "the reconciler decides on its own schedule")
}

func TestReconcileBadIndex(t *testing.T) {
	t.Parallel()
	_, err := Reconcile(StagedPlan(DefaultStages, Wait{}, nil), Status{State: StateRolling, StepIndex: 99}, Observations{}, t0)
	require.ErrorContains(t, err, "step index 99 is outside the plan")
}

func TestApplyCommand(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, nil)
	at25 := Status{State: StateWaiting, StepIndex: 4, Percent: 25, StepStartedAt: t0}
	tests := []struct {
		name    string
		st      Status
		cmd     Command
		action  Action
		state   State
		percent int
		err     string
	}{
		{"halt", at25, CmdHalt, ActionHalt, StateHalted, 25, ""},
		{"pause", at25, CmdPause, ActionHalt, StatePaused, 25, ""},
		{"resume halted", Status{State: StateHalted, StepIndex: 4, Percent: 25}, CmdResume, ActionAdvance, StateRolling, 25, ""},
		{"resume rolling", at25, CmdResume, "", "", 0, "resume: lane is waiting, not halted or paused"},
		{"advance skips the wait", at25, CmdAdvance, ActionAdvance, StateRolling, 50, ""},
		{"advance halted", Status{State: StateHalted, StepIndex: 4, Percent: 25}, CmdAdvance, "", "", 0, "advance: lane is halted; resume it first"},
		{"complete", at25, CmdComplete, ActionComplete, StateCompleted, 100, ""},
		{"complete completed", Status{State: StateCompleted, Percent: 100}, CmdComplete, "", "", 0, "lane is completed"},
		{"halt completed", Status{State: StateCompleted, StepIndex: 10, Percent: 100}, CmdHalt, ActionHalt, StateHalted, 100, ""},
		{"resume halted at 100", Status{State: StateHalted, StepIndex: 10, Percent: 100}, CmdResume, ActionComplete, StateCompleted, 100, ""},
		{"pause completed", Status{State: StateCompleted, StepIndex: 10, Percent: 100}, CmdPause, "", "", 0, "only a halt can follow"},
		{"rollback", at25, CmdRollback, ActionRollback, StateHalted, 25, ""},
		{"approve without approval step", at25, CmdApprove, "", "", 0, "approve: step 4 is not waiting for approval"},
		{"cancel", at25, CmdCancel, ActionHalt, StateCancelled, 25, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := ApplyCommand(plan, tt.st, tt.cmd, "", t0)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.action, d.Action)
			require.Equal(t, tt.state, d.Status.State)
			require.Equal(t, tt.percent, d.Status.Percent)
			require.Equal(t, string(tt.cmd)+" by operator", d.Reason)
			require.Equal(t, tt.cmd, d.Command, "executors can tell a person's command from the schedule")
		})
	}
}

func TestHaltsWhenCompleted(t *testing.T) {
	t.Parallel()
	require.True(t, HaltsWhenCompleted(KindStore, Android))
	require.True(t, HaltsWhenCompleted(KindOTA, IOS))
	require.False(t, HaltsWhenCompleted(KindStore, IOS))
}

func TestParse(t *testing.T) {
	t.Parallel()
	_, err := ParseCommand("explode")
	require.ErrorContains(t, err, `command "explode" is not one of`)
	_, err = ParsePlatform("windows")
	require.EqualError(t, err, `platform "windows" is not one of ios, android`)
	p, err := ParsePlatform("ios")
	require.NoError(t, err)
	require.Equal(t, IOS, p)
}

func TestDecideLane(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     LaneInput
		kind   LaneKind
		reason string
	}{
		{"first release needs a store binary", LaneInput{Platform: IOS, Fingerprint: "a", StoreEnabled: true, OTAEnabled: true}, KindStore, "no ios binary has been recorded"},
		{"js only goes ota", LaneInput{Platform: Android, Fingerprint: "a", LiveFingerprint: "a", LiveVersion: "1.4.0 (10400)", StoreEnabled: true, OTAEnabled: true}, KindOTA, "JS-only change: native fingerprint equals the live android binary 1.4.0 (10400)"},
		{"native goes to the store", LaneInput{Platform: IOS, Fingerprint: "b", LiveFingerprint: "a", LiveVersion: "1.4.0 (7)", Difference: "changed ios/Podfile.lock", StoreEnabled: true, OTAEnabled: true}, KindStore, "native code differs from the live ios binary 1.4.0 (7): changed ios/Podfile.lock"},
		{"ota-only tag with native change is refused", LaneInput{Platform: IOS, Fingerprint: "b", LiveFingerprint: "a", Difference: "added dependency react-native-mmkv@3.0.0", StoreEnabled: true, OTAEnabled: true, OTAOnly: true}, KindRefused, "OTA refused: native code differs"},
		{"unknown fingerprint fails closed", LaneInput{Platform: IOS, LiveFingerprint: "a", StoreEnabled: false, OTAEnabled: true}, KindRefused, "unknown (fail closed)"},
		{"js only without ota ships a binary", LaneInput{Platform: IOS, Fingerprint: "a", LiveFingerprint: "a", StoreEnabled: true}, KindStore, "OTA is not enabled"},
		{"nothing enabled", LaneInput{Platform: IOS, Fingerprint: "a", LiveFingerprint: "a"}, KindRefused, "neither OTA nor the ios store lane"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, why := DecideLane(tt.in)
			require.Equal(t, tt.kind, k)
			require.True(t, strings.Contains(why, tt.reason), "reason %q lacks %q", why, tt.reason)
		})
	}
}

func TestProjected(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, nil)
	waiting := Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0, Version: 7, PendingCommand: CmdHalt}
	tests := []struct {
		name    string
		pending []Command
		state   State
		percent int
	}{
		{"nothing pending", nil, StateWaiting, 10},
		{"a halt on its way", []Command{CmdHalt}, StateHalted, 10},
		{"halt then resume", []Command{CmdHalt, CmdResume}, StateRolling, 10},
		{"a refused command changes nothing", []Command{CmdResume}, StateWaiting, 10},
		{"advance then complete", []Command{CmdAdvance, CmdComplete}, StateCompleted, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := Projected(plan, waiting, tt.pending, t0)
			require.Equal(t, tt.state, st.State)
			require.Equal(t, tt.percent, st.Percent)
			require.Equal(t, int64(7), st.Version)
			require.Equal(t, CmdHalt, st.PendingCommand)
		})
	}
}
