package release

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func f(v float64) *float64 { return &v }

var (
	sentrySessions = GateRule{Provider: ProviderSentry, Metric: "crash_free_rate(session)", Min: f(0.99), NoMax: true, MinSamples: 100, FailureLimit: 2, Interval: Duration(5 * time.Minute)}
	sentryUsers    = GateRule{Provider: ProviderSentry, Metric: "crash_free_rate(user)", Min: f(0.98), NoMax: true}
	promErrors     = GateRule{Provider: ProviderPrometheus, Metric: "error ratio", Query: `sum(rate(errors{release="{{.Release}}"}[5m]))`, Max: 0.05}
)

func TestJudge(t *testing.T) {
	t.Parallel()
	between := GateRule{Provider: ProviderPrometheus, Query: "q", Min: f(0.1), Max: 0.2}
	tests := []struct {
		name   string
		rule   GateRule
		rd     Reading
		phase  Phase
		reason string
	}{
		{"min passes", sentrySessions, Reading{Value: 0.995, Samples: 500}, PhaseSuccessful, "0.995 is ≥ 0.99 over 500 samples"},
		{"below min fails", sentrySessions, Reading{Value: 0.962, Samples: 5120}, PhaseFailed, "0.962 is below min 0.99 over 5120 samples"},
		{"max passes", promErrors, Reading{Value: 0.01, Samples: 1}, PhaseSuccessful, "0.01 is ≤ 0.05"},
		{"above max fails", promErrors, Reading{Value: 0.5, Samples: 1}, PhaseFailed, "0.5 is above max 0.05"},
		{"max equal passes", promErrors, Reading{Value: 0.05, Samples: 1}, PhaseSuccessful, ""},
		{"between passes", between, Reading{Value: 0.15}, PhaseSuccessful, "between 0.1 and 0.2"},
		{"between below fails", between, Reading{Value: 0.05}, PhaseFailed, "below min 0.1"},
		{"between above fails", between, Reading{Value: 0.25}, PhaseFailed, "above max 0.2"},
		{"too few samples is inconclusive, however bad", sentrySessions, Reading{Value: 0.1, Samples: 99}, PhaseInconclusive, "0.1 over 99 samples, need 100"},
		{"no data is inconclusive", sentrySessions, Reading{Inconclusive: "no sessions of release x yet"}, PhaseInconclusive, "no sessions of release x yet"},
		{"stale wins over everything", sentrySessions, Reading{Value: 0.1, Samples: 9000, Stale: "the data predates the stage"}, PhaseStale, "the data predates the stage"},
		{"NaN is inconclusive", promErrors, Reading{Value: math.NaN()}, PhaseInconclusive, "not a number"},
		{"+Inf is inconclusive", promErrors, Reading{Value: math.Inf(1)}, PhaseInconclusive, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := Judge(tt.rule, tt.rd, t0)
			require.Equal(t, tt.phase, m.Phase)
			require.Contains(t, m.Reason, tt.reason)
			require.Equal(t, tt.rule.Key(), m.Gate)
			require.Equal(t, t0, m.At)
			_, err := json.Marshal(m) // NaN never reaches the store
			require.NoError(t, err)
		})
	}
}

func TestRuleNamesAndDefaults(t *testing.T) {
	t.Parallel()
	legacy := GateRule{Metric: "crash_rate", Max: 0.01}
	require.Equal(t, ProviderPlayVitals, legacy.ProviderName())
	require.Equal(t, "play_vitals:crash_rate", legacy.Key())
	require.Equal(t, "crash_rate ≤ 0.01", legacy.String())
	require.Equal(t, DefaultPlayVitalsInterval, legacy.Every())
	require.Equal(t, ProviderOTA, GateRule{Metric: "ota_failure_rate"}.ProviderName())
	require.Equal(t, "sentry:crash_free_rate(session)", sentrySessions.Key())
	require.Equal(t, "sentry crash_free_rate(session) ≥ 0.99 over ≥ 100 samples (halts after 3 failures in a row)", sentrySessions.String())
	require.Equal(t, `prometheus:sum(rate(errors{release="{{.Release}}"}[5m]))`, promErrors.Key())
	require.Equal(t, "prometheus error ratio", promErrors.Name())
	require.Equal(t, DefaultGateInterval, promErrors.Every())
	require.Equal(t, 5*time.Minute, sentrySessions.Every())
}

func TestReadings(t *testing.T) {
	t.Parallel()
	m := func(gate string, min int, p Phase) Measurement {
		return Measurement{Gate: gate, At: t0.Add(time.Duration(min) * time.Minute), Phase: p}
	}
	tests := []struct {
		name     string
		ms       []Measurement
		n, fails int
		latest   Phase
	}{
		{"none", nil, 0, 0, ""},
		{"one failure", []Measurement{m("a", 0, PhaseFailed)}, 1, 1, PhaseFailed},
		{"failures in a row", []Measurement{m("a", 0, PhaseFailed), m("a", 5, PhaseFailed), m("a", 10, PhaseFailed)}, 3, 3, PhaseFailed},
		{"a success resets", []Measurement{m("a", 0, PhaseFailed), m("a", 5, PhaseSuccessful), m("a", 10, PhaseFailed)}, 3, 1, PhaseFailed},
		{"inconclusive breaks the row", []Measurement{m("a", 0, PhaseFailed), m("a", 5, PhaseInconclusive), m("a", 10, PhaseFailed)}, 3, 1, PhaseFailed},
		{"order is by time, not input", []Measurement{m("a", 10, PhaseSuccessful), m("a", 0, PhaseFailed), m("a", 5, PhaseFailed)}, 3, 0, PhaseSuccessful},
		{"other gates do not count", []Measurement{m("a", 0, PhaseFailed), m("b", 5, PhaseSuccessful), m("a", 10, PhaseFailed)}, 2, 2, PhaseFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rd := Readings(tt.ms)["a"]
			require.Equal(t, tt.n, rd.Measurements)
			require.Equal(t, tt.fails, rd.ConsecutiveFailures)
			require.Equal(t, tt.latest, rd.Latest.Phase)
		})
	}
}

func TestRuleDue(t *testing.T) {
	t.Parallel()
	require.True(t, sentrySessions.Due(GateReading{}, t0), "never measured in this stage")
	rd := GateReading{Latest: Measurement{At: t0}, Measurements: 1}
	require.False(t, sentrySessions.Due(rd, t0.Add(4*time.Minute)))
	require.True(t, sentrySessions.Due(rd, t0.Add(5*time.Minute)))
}

// history builds the readings of one rule from phases, one measurement per
// interval ending at end.
func history(r GateRule, end time.Time, phases ...Phase) GateReading {
	var ms []Measurement
	for i, p := range phases {
		at := end.Add(-time.Duration(len(phases)-1-i) * r.Every())
		ms = append(ms, Judge(r, readingFor(r, p), at))
	}
	return Readings(ms)[r.Key()]
}

func readingFor(r GateRule, p Phase) Reading {
	switch p {
	case PhaseSuccessful:
		v := r.Max / 2
		if r.Min != nil {
			v = *r.Min + (1-*r.Min)/2
		}
		return Reading{Value: v, Samples: 1000, Values: map[string]float64{"sum(session)": 1000}}
	case PhaseFailed:
		return Reading{Value: 0.962, Samples: 5120, Values: map[string]float64{"crash_free_rate(session)": 0.962, "sum(session)": 5120}, Source: `release:"com.acme@1.4.0+42"`}
	case PhaseStale:
		return Reading{Stale: "no whole hour of this stage has been reported yet"}
	}
	return Reading{Inconclusive: "no sessions yet"}
}

func TestReconcileGates(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, []GateRule{sentrySessions, promErrors})
	// steps: 0 set10, 1 wait, 2 gate, 3 set25, ...
	atGate := Status{State: StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: t0, StageStartedAt: t0}
	soaking := Status{State: StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0, StageStartedAt: t0}
	now := t0.Add(2 * time.Hour)
	ok := history(promErrors, now, PhaseSuccessful)
	gates := func(sessions GateReading) Observations {
		return Observations{Gates: map[string]GateReading{sentrySessions.Key(): sessions, promErrors.Key(): ok}}
	}
	tests := []struct {
		name   string
		st     Status
		obs    Observations
		action Action
		state  State
		reason string
	}{
		{"all gates successful advance", atGate, gates(history(sentrySessions, now, PhaseSuccessful)), ActionAdvance, StateRolling, "rolled out to 25%"},
		{"a success after failures advances", atGate, gates(history(sentrySessions, now, PhaseFailed, PhaseFailed, PhaseSuccessful)), ActionAdvance, StateRolling, "rolled out to 25%"},
		{"first failure within the limit holds", atGate, gates(history(sentrySessions, now, PhaseFailed)), ActionHold, StateWaiting, "failed 1 of 2 allowed in a row: 0.962 is below min 0.99"},
		{"second failure within the limit holds", atGate, gates(history(sentrySessions, now, PhaseFailed, PhaseFailed)), ActionHold, StateWaiting, "failed 2 of 2 allowed in a row"},
		{"third failure in a row halts", atGate, gates(history(sentrySessions, now, PhaseFailed, PhaseFailed, PhaseFailed)), ActionHalt, StateHalted, "gate sentry crash_free_rate(session) failed 3 times in a row (failure_limit 2): 0.962 is below min 0.99 over 5120 samples"},
		{"failures not in a row hold", atGate, gates(history(sentrySessions, now, PhaseFailed, PhaseFailed, PhaseSuccessful, PhaseFailed)), ActionHold, StateWaiting, "failed 1 of 2"},
		{"failing past the limit halts during a soak", soaking, gates(history(sentrySessions, t0.Add(30*time.Minute), PhaseFailed, PhaseFailed, PhaseFailed)), ActionHalt, StateHalted, "failed 3 times in a row"},
		{"inconclusive holds", atGate, gates(history(sentrySessions, now, PhaseInconclusive)), ActionHold, StateWaiting, "gate sentry crash_free_rate(session) inconclusive: no sessions yet"},
		{"many inconclusive never halt", atGate, gates(history(sentrySessions, now, PhaseInconclusive, PhaseInconclusive, PhaseInconclusive, PhaseInconclusive, PhaseInconclusive)), ActionHold, StateWaiting, "inconclusive"},
		{"stale holds", atGate, gates(history(sentrySessions, now, PhaseStale, PhaseStale, PhaseStale, PhaseStale)), ActionHold, StateWaiting, "stale: no whole hour of this stage"},
		{"provider errors hold", atGate, gates(GateReading{Latest: ErrorMeasurement(sentrySessions, errString("sentry answered 503"), now), Measurements: 1}), ActionHold, StateWaiting, "error: sentry answered 503"},
		{"a measurement three intervals old is stale", atGate, gates(history(sentrySessions, now.Add(-16*time.Minute), PhaseSuccessful)), ActionHold, StateWaiting, "stale: last measured"},
		{"no measurement in the stage holds", atGate, gates(GateReading{}), ActionHold, StateWaiting, "no measurement in this stage yet"},
		{"a rule without any reading holds", atGate, Observations{Gates: map[string]GateReading{sentrySessions.Key(): history(sentrySessions, now, PhaseSuccessful)}}, ActionHold, StateWaiting, "gate error ratio: no fresh data yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Reconcile(plan, tt.st, tt.obs, now)
			require.NoError(t, err)
			require.Equal(t, tt.action, d.Action, d.Reason)
			require.Equal(t, tt.state, d.Status.State)
			require.Contains(t, d.Reason, tt.reason)
			if tt.action == ActionHalt {
				require.Equal(t, tt.st.StepIndex, d.Status.StepIndex, "a halt stays where the lane stood")
				require.Equal(t, 10, d.Percent)
				require.NotEmpty(t, d.Measurements, "the halt carries the measured values")
				require.Equal(t, sentrySessions.Key(), d.Measurements[0].Gate)
				require.Equal(t, 0.962, d.Measurements[0].Values["crash_free_rate(session)"])
				require.Equal(t, 5120.0, d.Measurements[0].Values["sum(session)"])
			}
			if tt.action == ActionHold {
				require.False(t, d.Status.NextEligibleAt.Before(now), "holds look again later")
				require.Equal(t, 10, d.Status.Percent, "never advances while a gate holds")
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestReconcileNoAdvanceWhileInconclusive walks a lane for a day with one
// gate passing and the other inconclusive at every measurement: it never
// advances and never halts.
func TestReconcileNoAdvanceWhileInconclusive(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, []GateRule{sentrySessions, sentryUsers})
	st := Status{State: StateRolling, StepStartedAt: t0}
	var ms []Measurement
	for now := t0; now.Before(t0.Add(24 * time.Hour)); now = now.Add(5 * time.Minute) {
		if st.Percent > 0 {
			ms = append(ms, Judge(sentrySessions, readingFor(sentrySessions, PhaseSuccessful), now),
				Judge(sentryUsers, Reading{Inconclusive: "no users with a session yet"}, now))
		}
		d, err := Reconcile(plan, st, Observations{Gates: Readings(ms)}, now)
		require.NoError(t, err)
		require.NotEqual(t, ActionHalt, d.Action, d.Reason)
		st = d.Status
	}
	require.Equal(t, 10, st.Percent, "held at the first stage all day")
	require.Equal(t, StateWaiting, st.State)
	require.Contains(t, st.Reason, "gate sentry crash_free_rate(user) inconclusive: no users with a session yet")
}

// TestReconcileIOSPhasedPausedByGate: an iOS phased release mirrors Apple's
// days and cannot hold Apple back, but a gate failing past its limit halts
// the lane, which the iOS executor carries out as a PAUSED phased release.
func TestReconcileIOSPhasedPausedByGate(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(ApplePhasedStages, Wait{Soak: Duration(24 * time.Hour)}, []GateRule{sentrySessions})
	day3 := t0.Add(48 * time.Hour)
	st := Status{State: StateWaiting, StepIndex: 7, Percent: 5, StepStartedAt: day3, StageStartedAt: day3} // soaking on day 3
	now := day3.Add(3 * time.Hour)
	d, err := Reconcile(plan, st, Observations{Gates: map[string]GateReading{sentrySessions.Key(): history(sentrySessions, now, PhaseFailed, PhaseFailed, PhaseFailed)}}, now)
	require.NoError(t, err)
	require.Equal(t, ActionHalt, d.Action)
	require.Equal(t, StateHalted, d.Status.State)
	require.Equal(t, 5, d.Percent)

	// A person resumes: a new stage begins, so the failures that halted it
	// no longer count once the lane's readings are taken from it.
	r, err := ApplyCommand(plan, d.Status, CmdResume, "looked into it", now.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Hour), r.Status.StageStartedAt)
	require.Equal(t, StateRolling, r.Status.State)
}

func TestAdvanceStartsAStage(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, nil)
	d, err := Reconcile(plan, rolling(), Observations{}, t0)
	require.NoError(t, err)
	require.Equal(t, t0, d.Status.StageStartedAt)
	d, err = ApplyCommand(plan, d.Status, CmdAdvance, "", t0.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Minute), d.Status.StageStartedAt)
}

func TestPlanValidateGateRules(t *testing.T) {
	t.Parallel()
	plan := func(r GateRule) Plan {
		return Plan{Steps: []Step{{Gate: &Gate{Rules: []GateRule{r}}}, {SetPercent: Pct(100)}}}
	}
	tests := []struct {
		name string
		rule GateRule
		err  string
	}{
		{"legacy", GateRule{Metric: "crash_rate", Max: 0.01}, ""},
		{"sentry min", sentrySessions, ""},
		{"prometheus", promErrors, ""},
		{"negative prometheus bound", GateRule{Provider: ProviderPrometheus, Query: "q", Max: -1}, ""},
		{"unknown provider", GateRule{Provider: "datadog", Metric: "x"}, `steps[0].gate.rules[0].provider: "datadog" is not one of play_vitals, ota, sentry, prometheus`},
		{"no provider", GateRule{Metric: "latency"}, `steps[0].gate.rules[0].provider: empty, and metric "latency" implies none`},
		{"no query", GateRule{Provider: ProviderPrometheus, Max: 1}, "steps[0].gate.rules[0].query: empty"},
		{"no metric", GateRule{Provider: ProviderSentry, Max: 1}, "steps[0].gate.rules[0].metric: empty"},
		{"no bound", GateRule{Provider: ProviderSentry, Metric: "crash_free_rate(session)", NoMax: true}, "steps[0].gate.rules[0]: neither min nor max is set"},
		{"min above max", GateRule{Provider: ProviderPrometheus, Query: "q", Min: f(2), Max: 1}, "steps[0].gate.rules[0].min: 2 is above max 1"},
		{"negative failure limit", GateRule{Provider: ProviderSentry, Metric: "m", Max: 1, FailureLimit: -1}, "failure_limit: -1 is negative"},
		{"negative interval", GateRule{Provider: ProviderSentry, Metric: "m", Max: 1, Interval: Duration(-time.Second)}, "interval: -1s is negative"},
		{"NaN", GateRule{Provider: ProviderSentry, Metric: "m", Max: math.NaN()}, "max: NaN is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := plan(tt.rule).Validate()
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestGateRuleJSON(t *testing.T) {
	t.Parallel()
	// A plan stored before providers existed reads as a Play vitals max rule.
	var old GateRule
	require.NoError(t, json.Unmarshal([]byte(`{"metric":"crash_rate","max":0.01,"min_samples":100}`), &old))
	require.Equal(t, GateRule{Metric: "crash_rate", Max: 0.01, MinSamples: 100}, old)
	require.True(t, old.HasMax())
	b, err := json.Marshal(sentrySessions)
	require.NoError(t, err)
	var back GateRule
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, sentrySessions, back)
}

func TestNextGated(t *testing.T) {
	t.Parallel()
	plan := StagedPlan(DefaultStages, Wait{Soak: Duration(time.Hour)}, []GateRule{sentrySessions, promErrors})
	st := Status{State: StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: t0, StageStartedAt: t0}
	now := t0.Add(2 * time.Hour)
	gates := map[string]GateReading{sentrySessions.Key(): history(sentrySessions, now, PhaseSuccessful, PhaseFailed)}
	o := NextGated(plan, st, now, gates)
	require.Equal(t, 25, o.NextPercent)
	require.Len(t, o.Gates, 2)
	s := o.Gates[0]
	require.Equal(t, sentrySessions.Key(), s.Gate)
	require.Equal(t, PhaseFailed, s.Phase)
	require.Equal(t, 0.962, s.Value)
	require.Equal(t, int64(5120), s.Samples)
	require.Equal(t, 1, s.ConsecutiveFailures)
	require.Equal(t, 2, s.FailureLimit)
	require.Equal(t, 2, s.Measurements)
	require.Equal(t, now.Add(5*time.Minute), s.NextAt)
	require.Contains(t, s.Summary, "sentry crash_free_rate(session) ≥ 0.99 over ≥ 100 samples (halts after 3 failures in a row): failed at")
	require.Contains(t, s.Summary, "1 failed in a row of 2 allowed")
	require.Equal(t, "prometheus error ratio ≤ 0.05: not measured in this stage yet", o.Gates[1].Summary)
	require.Contains(t, o.Summary, "gate sentry crash_free_rate(session) ≥ 0.99 over ≥ 100 samples (halts after 3 failures in a row), prometheus error ratio ≤ 0.05 on fresh data")
	require.Contains(t, o.Summary, "; gates last measured: sentry crash_free_rate(session) failed 0.962 (1 of 2 failures allowed in a row)")

	halted := NextGated(plan, Status{State: StateHalted, Percent: 10, Reason: "gate failed"}, now, gates)
	require.Equal(t, "halted at 10%; resume to continue or roll back (gate failed)", halted.Summary)
	require.Len(t, halted.Gates, 2, "a halted lane still shows what its gates measured")
}
