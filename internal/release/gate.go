package release

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Gate providers: where a gate rule's measurements come from.
const (
	ProviderPlayVitals = "play_vitals" // Play's user-perceived crash and ANR rates (Android store lanes)
	ProviderOTA        = "ota"         // the OTA clients' own install reports (OTA lanes)
	ProviderSentry     = "sentry"      // Sentry release health (every lane)
	ProviderPrometheus = "prometheus"  // an instant PromQL query (every lane)
)

// Providers lists every gate provider.
var Providers = []string{ProviderPlayVitals, ProviderOTA, ProviderSentry, ProviderPrometheus}

// Default measurement intervals. Play processes vitals a few times a day,
// so asking it often buys nothing; the others answer in near real time.
const (
	DefaultGateInterval       = 5 * time.Minute
	DefaultPlayVitalsInterval = time.Hour
)

// Provider is the rule's provider; rules written before providers existed
// name only a metric, which implies one.
func (r GateRule) ProviderName() string {
	if r.Provider != "" {
		return r.Provider
	}
	switch r.Metric {
	case "crash_rate", "anr_rate":
		return ProviderPlayVitals
	case "ota_failure_rate":
		return ProviderOTA
	}
	return ""
}

// Key identifies the rule within a lane: its provider and what it measures
// (the query, for Prometheus). Measurements are stored under it.
func (r GateRule) Key() string {
	what := r.Metric
	if r.ProviderName() == ProviderPrometheus {
		what = r.Query
	}
	return r.ProviderName() + ":" + what
}

// Name is how people read the rule: "sentry crash_free_rate(session)".
func (r GateRule) Name() string {
	p := r.ProviderName()
	switch {
	case p == ProviderPrometheus && r.Metric != "":
		return "prometheus " + r.Metric
	case p == ProviderPrometheus:
		q := r.Query
		if len(q) > 60 {
			q = q[:57] + "..."
		}
		return "prometheus " + strconv.Quote(q)
	case p == "" || (p == ProviderPlayVitals || p == ProviderOTA) && r.Provider == "":
		return r.Metric // a rule from before providers: its metric says it all
	}
	return p + " " + r.Metric
}

// HasMax reports whether Max bounds the rule (a rule bounded by Min only
// sets NoMax).
func (r GateRule) HasMax() bool { return !r.NoMax }

// Bounds says the rule's bounds in words: "≤ 0.01", "≥ 0.99",
// "between 0.1 and 0.2".
func (r GateRule) Bounds() string {
	switch {
	case r.Min != nil && r.HasMax():
		return fmt.Sprintf("between %g and %g", *r.Min, r.Max)
	case r.Min != nil:
		return fmt.Sprintf("≥ %g", *r.Min)
	}
	return fmt.Sprintf("≤ %g", r.Max)
}

// Every is how often the rule is measured.
func (r GateRule) Every() time.Duration {
	if r.Interval > 0 {
		return time.Duration(r.Interval)
	}
	if r.ProviderName() == ProviderPlayVitals {
		return DefaultPlayVitalsInterval
	}
	return DefaultGateInterval
}

// String is the rule as the outlook shows it.
func (r GateRule) String() string {
	s := r.Name() + " " + r.Bounds()
	if r.MinSamples > 0 {
		s += fmt.Sprintf(" over ≥ %d samples", r.MinSamples)
	}
	if r.FailureLimit > 0 {
		s += fmt.Sprintf(" (halts after %d failures in a row)", r.FailureLimit+1)
	}
	return s
}

// validate checks one rule of a plan; where names it in errors.
func (r GateRule) validate(where string) error {
	switch p := r.ProviderName(); p {
	case ProviderPlayVitals, ProviderOTA, ProviderSentry:
		if r.Metric == "" {
			return fmt.Errorf("%s.metric: empty", where)
		}
	case ProviderPrometheus:
		if strings.TrimSpace(r.Query) == "" {
			return fmt.Errorf("%s.query: empty (a prometheus rule needs a PromQL query)", where)
		}
	case "":
		if r.Metric == "" {
			return fmt.Errorf("%s.metric: empty", where)
		}
		return fmt.Errorf("%s.provider: empty, and metric %q implies none", where, r.Metric)
	default:
		return fmt.Errorf("%s.provider: %q is not one of %s", where, p, strings.Join(Providers, ", "))
	}
	for name, v := range map[string]float64{"max": r.Max, "min": deref(r.Min)} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s.%s: %v is not a number", where, name, v)
		}
	}
	if r.NoMax && r.Min == nil {
		return fmt.Errorf("%s: neither min nor max is set", where)
	}
	if r.Min != nil && r.HasMax() && *r.Min > r.Max {
		return fmt.Errorf("%s.min: %g is above max %g", where, *r.Min, r.Max)
	}
	if r.MinSamples < 0 {
		return fmt.Errorf("%s.min_samples: %d is negative", where, r.MinSamples)
	}
	if r.FailureLimit < 0 {
		return fmt.Errorf("%s.failure_limit: %d is negative", where, r.FailureLimit)
	}
	if r.Interval < 0 {
		return fmt.Errorf("%s.interval: %s is negative", where, time.Duration(r.Interval))
	}
	return nil
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// Rules returns every distinct gate rule of the plan, in plan order.
func (p Plan) Rules() []GateRule {
	var out []GateRule
	seen := map[string]bool{}
	for _, s := range p.Steps {
		if s.Gate == nil {
			continue
		}
		for _, r := range s.Gate.Rules {
			if !seen[r.Key()] {
				seen[r.Key()] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// Phase is the outcome of one measurement, as the phases of an Argo
// Rollouts analysis measurement, plus stale.
type Phase string

const (
	// PhaseSuccessful: the value is within the rule's bounds over enough
	// samples.
	PhaseSuccessful Phase = "successful"
	// PhaseFailed: the value is outside the bounds over enough samples.
	PhaseFailed Phase = "failed"
	// PhaseInconclusive: nothing to judge — no data, too few samples, a
	// query with no result or several.
	PhaseInconclusive Phase = "inconclusive"
	// PhaseStale: there is data, but it does not describe the current stage.
	PhaseStale Phase = "stale"
	// PhaseError: the provider could not be asked.
	PhaseError Phase = "error"
)

// Reading is what a provider saw for one rule: a value over a number of
// samples, or why it cannot be judged.
type Reading struct {
	Value   float64
	Samples int64
	// Inconclusive, when set, says why nothing can be judged.
	Inconclusive string
	// Stale, when set, says why the data does not describe the current
	// stage (it predates it, or stopped arriving).
	Stale string
	// Values are the figures behind Value as the provider names them, e.g.
	// "crash_free_rate(session)": 0.962 and "sum(session)": 5120.
	Values map[string]float64
	// Source says what was asked: the Sentry release, the PromQL query as
	// sent.
	Source string
}

// Measurement is one judged reading of one gate rule of a lane, as stored.
type Measurement struct {
	ID      int64
	LaneID  string
	Gate    string // GateRule.Key
	At      time.Time
	Percent int // the lane's percentage when it was taken
	Phase   Phase
	Value   float64
	Samples int64
	// Reason says the judgement in words, with the figures.
	Reason string
	Values map[string]float64
	Source string
}

// Judge classifies a reading against a rule, as Argo judges a
// measurement: stale or inconclusive data is never a pass nor a failure;
// too few samples is inconclusive; outside the bounds is a failure.
func Judge(r GateRule, rd Reading, at time.Time) Measurement {
	m := Measurement{Gate: r.Key(), At: at, Value: rd.Value, Samples: rd.Samples, Values: rd.Values, Source: rd.Source}
	switch {
	case rd.Stale != "":
		m.Phase, m.Reason = PhaseStale, rd.Stale
	case rd.Inconclusive != "":
		m.Phase, m.Reason = PhaseInconclusive, rd.Inconclusive
	case math.IsNaN(rd.Value) || math.IsInf(rd.Value, 0):
		m.Phase, m.Reason = PhaseInconclusive, fmt.Sprintf("the value %v is not a number", rd.Value)
		m.Value = 0
	case rd.Samples < r.MinSamples:
		m.Phase, m.Reason = PhaseInconclusive, fmt.Sprintf("%s over %d samples, need %d", fmtValue(rd.Value), rd.Samples, r.MinSamples)
	case r.HasMax() && rd.Value > r.Max:
		m.Phase, m.Reason = PhaseFailed, fmt.Sprintf("%s is above max %g%s", fmtValue(rd.Value), r.Max, over(rd.Samples))
	case r.Min != nil && rd.Value < *r.Min:
		m.Phase, m.Reason = PhaseFailed, fmt.Sprintf("%s is below min %g%s", fmtValue(rd.Value), *r.Min, over(rd.Samples))
	default:
		m.Phase, m.Reason = PhaseSuccessful, fmt.Sprintf("%s is %s%s", fmtValue(rd.Value), r.Bounds(), over(rd.Samples))
	}
	return m
}

// ErrorMeasurement records that the provider could not be asked: err must
// carry no secret.
func ErrorMeasurement(r GateRule, err error, at time.Time) Measurement {
	return Measurement{Gate: r.Key(), At: at, Phase: PhaseError, Reason: err.Error()}
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func over(samples int64) string {
	if samples <= 1 { // one value (a Prometheus query) has no sample count worth saying
		return ""
	}
	return fmt.Sprintf(" over %d samples", samples)
}

// GateReading is what the reconciler knows of one gate rule in the current
// stage (since the lane last changed percentage or resumed).
type GateReading struct {
	// Latest is the newest measurement of the stage; zero when there is
	// none yet.
	Latest Measurement
	// Measurements counts the stage's measurements.
	Measurements int
	// ConsecutiveFailures counts the failed measurements at the end of
	// the stage's history, with no other phase between them.
	ConsecutiveFailures int
}

// Readings folds one lane's measurements of the current stage (any order)
// into a reading per gate key.
func Readings(ms []Measurement) map[string]GateReading {
	sorted := slices.Clone(ms)
	slices.SortStableFunc(sorted, func(a, b Measurement) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	out := map[string]GateReading{}
	for _, m := range sorted {
		rd := out[m.Gate]
		rd.Latest = m
		rd.Measurements++
		if m.Phase == PhaseFailed {
			rd.ConsecutiveFailures++
		} else {
			rd.ConsecutiveFailures = 0
		}
		out[m.Gate] = rd
	}
	return out
}

// Due reports whether the rule should be measured at now: never measured in
// this stage, or its interval has passed since the last measurement.
func (r GateRule) Due(rd GateReading, now time.Time) bool {
	return rd.Measurements == 0 || !now.Before(rd.Latest.At.Add(r.Every()))
}

// staleAfter is how many intervals may pass without a new measurement
// before the last one no longer counts as current.
const staleAfter = 3

// gateHalt returns the halt a failing rule calls for: a rule whose failed
// measurements in a row exceed its failure limit stops the lane at any step,
// as an Argo background analysis aborts a rollout. Gates still halt during
// freezes.
func gateHalt(plan Plan, st Status, obs Observations, now time.Time) (Decision, bool) {
	for _, r := range plan.Rules() {
		rd, ok := obs.Gates[r.Key()]
		if !ok || rd.Latest.Phase != PhaseFailed || rd.ConsecutiveFailures <= r.FailureLimit {
			continue
		}
		next := st
		next.State = StateHalted
		next.UpdatedAt = now
		next.NextEligibleAt = time.Time{}
		times := "once"
		if rd.ConsecutiveFailures > 1 {
			times = fmt.Sprintf("%d times in a row", rd.ConsecutiveFailures)
		}
		next.Reason = fmt.Sprintf("gate %s failed %s (failure_limit %d): %s", r.Name(), times, r.FailureLimit, rd.Latest.Reason)
		if rd.Latest.Source != "" {
			next.Reason += " [" + rd.Latest.Source + "]"
		}
		return Decision{Action: ActionHalt, Percent: st.Percent, Reason: next.Reason, Status: next, Measurements: latest(plan, obs)}, true
	}
	return Decision{}, false
}

// latest lists the newest measurement of every rule that has one, in plan
// order: what the halt event and notification show.
func latest(plan Plan, obs Observations) []Measurement {
	var out []Measurement
	for _, r := range plan.Rules() {
		if rd, ok := obs.Gates[r.Key()]; ok && rd.Measurements > 0 {
			out = append(out, rd.Latest)
		}
	}
	return out
}

// judgeGate decides an inline gate step from the stage's measurements: it
// passes only when every rule's newest measurement is successful and
// current. ok=false with a reason and a time to look again holds the lane.
// Rules without measurements fall back to obs.Metrics (providers observed
// by the lane itself).
func judgeGate(g *Gate, obs Observations, now time.Time) (reason string, until time.Time, halt string, ok bool) {
	for _, r := range g.Rules {
		rd, measured := obs.Gates[r.Key()]
		if !measured {
			reason, until, halt, ok = judgeObservation(r, obs, now)
			if !ok {
				return reason, until, halt, false
			}
			continue
		}
		next := rd.Latest.At.Add(r.Every())
		if !next.After(now) {
			next = now.Add(time.Minute)
		}
		m := rd.Latest
		switch {
		case rd.Measurements == 0:
			return fmt.Sprintf("gate %s: no measurement in this stage yet", r.Name()), now.Add(time.Minute), "", false
		case now.Sub(m.At) > staleAfter*r.Every():
			return fmt.Sprintf("gate %s: stale: last measured %s, more than %d intervals ago", r.Name(), m.At.UTC().Format(time.RFC3339), staleAfter), now.Add(time.Minute), "", false
		case m.Phase == PhaseSuccessful:
			continue
		case m.Phase == PhaseFailed:
			return fmt.Sprintf("gate %s failed %d of %d allowed in a row: %s; measuring again at %s", r.Name(), rd.ConsecutiveFailures, r.FailureLimit, m.Reason, next.UTC().Format(time.RFC3339)), next, "", false
		case m.Phase == PhaseStale:
			return fmt.Sprintf("gate %s: stale: %s", r.Name(), m.Reason), next, "", false
		default:
			return fmt.Sprintf("gate %s %s: %s", r.Name(), m.Phase, m.Reason), next, "", false
		}
	}
	return "", time.Time{}, "", true
}

// judgeObservation judges a rule from the lane's own observation of its
// metric, as before providers were measured apart: a failure halts at once.
func judgeObservation(r GateRule, obs Observations, now time.Time) (reason string, until time.Time, halt string, ok bool) {
	o, found := obs.Metrics[r.Metric]
	switch {
	case !found || !o.Fresh:
		return fmt.Sprintf("gate %s: no fresh data yet", r.Metric), now.Add(time.Minute), "", false
	case o.Samples < r.MinSamples:
		return fmt.Sprintf("gate %s: %d samples, need %d", r.Metric, o.Samples, r.MinSamples), now.Add(time.Minute), "", false
	case r.HasMax() && o.Value > r.Max:
		return "", time.Time{}, fmt.Sprintf("gate %s failed: %.4g is above %.4g", r.Metric, o.Value, r.Max), false
	case r.Min != nil && o.Value < *r.Min:
		return "", time.Time{}, fmt.Sprintf("gate %s failed: %.4g is below %.4g", r.Metric, o.Value, *r.Min), false
	}
	return "", time.Time{}, "", true
}

// GateStatus is one gate rule of a lane as people see it: the rule, its
// newest measurement in the stage and when it is measured next.
type GateStatus struct {
	Gate string `json:"gate"`
	Rule string `json:"rule"`
	// Phase of the newest measurement; empty when none was taken in this
	// stage.
	Phase   Phase              `json:"phase,omitempty"`
	Value   float64            `json:"value"`
	Samples int64              `json:"samples"`
	Values  map[string]float64 `json:"values,omitempty"`
	At      time.Time          `json:"at,omitzero"`
	Reason  string             `json:"reason,omitempty"`
	Source  string             `json:"source,omitempty"`
	// ConsecutiveFailures of FailureLimit allowed before the lane halts.
	ConsecutiveFailures int       `json:"consecutive_failures"`
	FailureLimit        int       `json:"failure_limit"`
	Measurements        int       `json:"measurements"`
	NextAt              time.Time `json:"next_at,omitzero"`
	// Summary says it in one line.
	Summary string `json:"summary"`
}

// GateStatuses describes every gate rule of the plan from the stage's
// readings, in plan order.
func GateStatuses(plan Plan, gates map[string]GateReading, now time.Time) []GateStatus {
	var out []GateStatus
	for _, r := range plan.Rules() {
		rd := gates[r.Key()]
		gs := GateStatus{Gate: r.Key(), Rule: r.String(), FailureLimit: r.FailureLimit, Measurements: rd.Measurements,
			ConsecutiveFailures: rd.ConsecutiveFailures}
		if rd.Measurements == 0 {
			gs.Summary = r.String() + ": not measured in this stage yet"
			out = append(out, gs)
			continue
		}
		m := rd.Latest
		gs.Phase, gs.Value, gs.Samples, gs.At, gs.Reason, gs.Source = m.Phase, m.Value, m.Samples, m.At, m.Reason, m.Source
		if len(m.Values) > 0 {
			gs.Values = maps.Clone(m.Values)
		}
		gs.NextAt = m.At.Add(r.Every())
		gs.Summary = fmt.Sprintf("%s: %s at %s (%s)", r.String(), m.Phase, m.At.UTC().Format(time.RFC3339), m.Reason)
		if rd.ConsecutiveFailures > 0 {
			gs.Summary += fmt.Sprintf("; %d failed in a row of %d allowed", rd.ConsecutiveFailures, r.FailureLimit)
		}
		out = append(out, gs)
	}
	return out
}
