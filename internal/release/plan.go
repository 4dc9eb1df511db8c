package release

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Step is one step of a plan. Exactly one field is set, as in Argo Rollouts'
// canary steps.
type Step struct {
	SetPercent *int      `json:"set_percent,omitempty"`
	Wait       *Wait     `json:"wait,omitempty"`
	Gate       *Gate     `json:"gate,omitempty"`
	Approval   *Approval `json:"approval,omitempty"`
}

// Wait holds a lane until the soak time has passed since the step began and,
// when Window is set, until the current minute falls inside the window.
type Wait struct {
	Soak Duration `json:"soak,omitempty"`
	// Window is a cron expression (with CRON_TZ=) whose matching minutes are the
	// minutes in which advances may happen: "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI".
	Window string `json:"window,omitempty"`
}

// Gate is a set of health rules that must all pass before the lane moves on.
type Gate struct {
	Rules []GateRule `json:"rules"`
}

// GateRule bounds one health measurement, as a metric of an Argo Rollouts
// analysis: a provider measures it every Interval; a measurement outside
// Max or Min over at least MinSamples samples fails, and more than
// FailureLimit failures in a row halt the lane. Stale or inconclusive
// measurements hold it: never an advance, never a halt.
type GateRule struct {
	Metric     string  `json:"metric"`      // e.g. crash_rate, anr_rate, ota_failure_rate, crash_free_rate(session)
	Max        float64 `json:"max"`         // fail when the observed value is above (unless NoMax)
	MinSamples int64   `json:"min_samples"` // inconclusive while fewer samples were seen
	// Provider is play_vitals, ota, sentry or prometheus; empty for rules
	// written before providers, whose metric implies one.
	Provider string `json:"provider,omitempty"`
	// Query is the PromQL query of a prometheus rule (a text/template over
	// the lane's release, version and percentage).
	Query string `json:"query,omitempty"`
	// Min fails a measurement below it.
	Min *float64 `json:"min,omitempty"`
	// NoMax: only Min bounds the rule.
	NoMax bool `json:"no_max,omitempty"`
	// FailureLimit is how many failed measurements in a row are tolerated;
	// one more halts the lane (0: the first failure halts).
	FailureLimit int `json:"failure_limit,omitempty"`
	// Interval is how often the rule is measured (0: the provider's default).
	Interval Duration `json:"interval,omitempty"`
}

// Approval holds a lane until a person approves the step.
type Approval struct {
	Reason string `json:"reason,omitempty"`
}

// Plan is the ordered list of steps a lane goes through.
type Plan struct {
	Steps []Step `json:"steps"`
}

// Duration is a time.Duration that reads and writes as "24h" in JSON.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", string(b), err)
	}
	*d = Duration(v)
	return nil
}

// Pct returns a pointer to n, for SetPercent steps.
func Pct(n int) *int { return &n }

// Kind names the step's type.
func (s Step) Kind() string {
	switch {
	case s.SetPercent != nil:
		return "set_percent"
	case s.Wait != nil:
		return "wait"
	case s.Gate != nil:
		return "gate"
	case s.Approval != nil:
		return "approval"
	}
	return "empty"
}

// StagedPlan builds the default staged plan: for each percentage a SetPercent,
// then (except after the last) a wait and, when rules are given, a gate.
func StagedPlan(percents []int, wait Wait, rules []GateRule) Plan {
	var p Plan
	for i, n := range percents {
		p.Steps = append(p.Steps, Step{SetPercent: Pct(n)})
		if i == len(percents)-1 {
			break
		}
		w := wait
		p.Steps = append(p.Steps, Step{Wait: &w})
		if len(rules) > 0 {
			p.Steps = append(p.Steps, Step{Gate: &Gate{Rules: append([]GateRule(nil), rules...)}})
		}
	}
	return p
}

// DefaultStages is the Play and OTA staged rollout.
var DefaultStages = []int{10, 25, 50, 100}

// ApplePhasedStages are the daily percentages of Apple's 7-day phased release,
// which releasepilot can pause, resume and complete but not set.
var ApplePhasedStages = []int{1, 2, 5, 10, 20, 50, 100}

var windowParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseWindow validates a rollout window expression.
func ParseWindow(expr string) (cron.Schedule, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("window is empty")
	}
	s, err := windowParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("window %q: %w", expr, err)
	}
	return s, nil
}

// Validate checks a plan: at least one step, each step exactly one kind,
// percentages in 1..100 and increasing, windows parseable, the last
// SetPercent is 100.
func (p Plan) Validate() error {
	if len(p.Steps) == 0 {
		return errors.New("plan has no steps")
	}
	last := 0
	for i, s := range p.Steps {
		n := 0
		for _, set := range []bool{s.SetPercent != nil, s.Wait != nil, s.Gate != nil, s.Approval != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("steps[%d]: exactly one of set_percent, wait, gate, approval must be set (found %d)", i, n)
		}
		switch {
		case s.SetPercent != nil:
			v := *s.SetPercent
			if v < 1 || v > 100 {
				return fmt.Errorf("steps[%d].set_percent: %d is not a percentage", i, v)
			}
			if v <= last {
				return fmt.Errorf("steps[%d].set_percent: %d does not increase on %d", i, v, last)
			}
			last = v
		case s.Wait != nil:
			if s.Wait.Soak < 0 {
				return fmt.Errorf("steps[%d].wait.soak: %s is negative", i, time.Duration(s.Wait.Soak))
			}
			if s.Wait.Window != "" {
				if _, err := ParseWindow(s.Wait.Window); err != nil {
					return fmt.Errorf("steps[%d].wait.window: %w", i, err)
				}
			}
		case s.Gate != nil:
			if len(s.Gate.Rules) == 0 {
				return fmt.Errorf("steps[%d].gate: no rules", i)
			}
			for j, r := range s.Gate.Rules {
				if err := r.validate(fmt.Sprintf("steps[%d].gate.rules[%d]", i, j)); err != nil {
					return err
				}
			}
		}
	}
	if last != 100 {
		return fmt.Errorf("plan ends at %d%%, not 100%%", last)
	}
	return nil
}
