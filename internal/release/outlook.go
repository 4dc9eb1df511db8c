package release

import (
	"fmt"
	"strings"
	"time"
)

// Outlook is what comes next for a lane, for the people watching it: the
// next percentage, every step that stands before it and the earliest time
// it can happen. It is derived from the plan and status alone; gate values
// are not known here, only the rules that will judge them.
type Outlook struct {
	// NextPercent is the percentage of the next SetPercent step; 0 when no
	// step of the plan is left or the lane cannot move on its own.
	NextPercent int `json:"next_percent,omitempty"`
	// NotBefore is the earliest time the next percentage can be reached:
	// the end of the soaks and the opening of the windows before it. Zero
	// when nothing but gates or approvals stands before it, or when the
	// lane does not move on its own.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Before lists, in plan order, what must pass before NextPercent.
	Before []string `json:"before,omitempty"`
	// Summary says it all in one line.
	Summary string `json:"summary"`
	// Gates lists every gate rule of the plan with its newest measurement
	// in the current stage (NextGated fills it).
	Gates []GateStatus `json:"gates,omitempty"`
}

// NextGated is Next with the current stage's gate readings: the outlook
// lists every gate rule with its newest measurement, and the summary of a
// moving lane ends with what the gates last measured.
func NextGated(plan Plan, st Status, now time.Time, gates map[string]GateReading, freezes ...Freeze) Outlook {
	o := Next(plan, st, now, freezes...)
	o.Gates = GateStatuses(plan, gates, now)
	if st.State != StateRolling && st.State != StateWaiting {
		return o
	}
	var parts []string
	for i, r := range plan.Rules() {
		gs := o.Gates[i]
		if gs.Phase == "" {
			continue
		}
		part := fmt.Sprintf("%s %s %s", r.Name(), gs.Phase, fmtValue(gs.Value))
		if gs.ConsecutiveFailures > 0 {
			part += fmt.Sprintf(" (%d of %d failures allowed in a row)", gs.ConsecutiveFailures, r.FailureLimit)
		}
		parts = append(parts, part)
	}
	if len(parts) > 0 {
		o.Summary += "; gates last measured: " + strings.Join(parts, ", ")
	}
	return o
}

// Next returns the lane's outlook at now, with the app's freezes. It never
// fails: a plan it cannot read (a step index outside it, a window that
// never opens) is said in the summary.
func Next(plan Plan, st Status, now time.Time, freezes ...Freeze) Outlook {
	if st.PendingCommand != "" && !st.State.Terminal() {
		return Outlook{Summary: fmt.Sprintf("%s pending: a person's %s was accepted and goes before anything scheduled", st.PendingCommand, st.PendingCommand)}
	}
	switch st.State {
	case StatePending:
		return Outlook{Summary: withReason("not started: the lane job has not handed over yet", st.Reason)}
	case StatePaused:
		return Outlook{Summary: withReason(fmt.Sprintf("paused at %d%%; resume to continue", st.Percent), st.Reason)}
	case StateHalted:
		return Outlook{Summary: withReason(fmt.Sprintf("halted at %d%%; resume to continue or roll back", st.Percent), st.Reason)}
	case StateCompleted:
		return Outlook{Summary: fmt.Sprintf("done at %d%%", st.Percent)}
	case StateFailed:
		return Outlook{Summary: withReason("failed", st.Reason)}
	case StateCancelled:
		return Outlook{Summary: withReason("cancelled", st.Reason)}
	case StateRolling, StateWaiting:
	default:
		return Outlook{Summary: fmt.Sprintf("unknown state %q", st.State)}
	}
	if st.StepIndex < 0 || st.StepIndex > len(plan.Steps) {
		return Outlook{Summary: fmt.Sprintf("step index %d is outside the plan (%d steps)", st.StepIndex, len(plan.Steps))}
	}
	var o Outlook
	// at is the earliest time the walk has reached: a soak starts when its
	// step does, and no step of the walk starts before now.
	at := now
	for i := st.StepIndex; i < len(plan.Steps); i++ {
		step := plan.Steps[i]
		switch {
		case step.SetPercent != nil:
			// A freeze may push the advance out, and its end may fall
			// outside the window: follow them until both allow it.
			for range 64 {
				until, why, blocked, err := blockedAt(plan, i, freezes, at)
				if err != nil {
					return Outlook{Summary: err.Error()}
				}
				if !blocked {
					break
				}
				if strings.HasPrefix(why, "outside the rollout window") {
					why = "window opens " + until.UTC().Format(time.RFC3339)
				}
				o.Before = append(o.Before, why)
				at = until
			}
			o.NextPercent = *step.SetPercent
			if at.After(now) {
				o.NotBefore = at
			}
			o.Summary = summary(o, now)
			return o
		case step.Wait != nil:
			start := at
			if i == st.StepIndex && !st.StepStartedAt.IsZero() {
				start = st.StepStartedAt
			}
			if end := start.Add(time.Duration(step.Wait.Soak)); step.Wait.Soak > 0 && end.After(at) {
				o.Before = append(o.Before, fmt.Sprintf("soak %s until %s", time.Duration(step.Wait.Soak), end.UTC().Format(time.RFC3339)))
				at = end
			}
			if step.Wait.Window != "" {
				sched, err := ParseWindow(step.Wait.Window)
				if err != nil {
					return Outlook{Summary: fmt.Sprintf("steps[%d].wait.window: %v", i, err)}
				}
				minute := at.Truncate(time.Minute)
				if !sched.Next(minute.Add(-time.Nanosecond)).Equal(minute) {
					open := sched.Next(minute)
					if open.IsZero() {
						return Outlook{Summary: fmt.Sprintf("steps[%d].wait.window %q never opens", i, step.Wait.Window)}
					}
					o.Before = append(o.Before, fmt.Sprintf("window %q opens %s", step.Wait.Window, open.UTC().Format(time.RFC3339)))
					at = open
				}
			}
		case step.Gate != nil:
			var rules []string
			for _, r := range step.Gate.Rules {
				rules = append(rules, r.String())
			}
			o.Before = append(o.Before, "gate "+strings.Join(rules, ", ")+" on fresh data")
		case step.Approval != nil:
			a := "approval by a person"
			if step.Approval.Reason != "" {
				a += " (" + step.Approval.Reason + ")"
			}
			o.Before = append(o.Before, a)
		}
	}
	o.NotBefore = time.Time{}
	o.Summary = fmt.Sprintf("at %d%%: no percentage left in the plan; it finishes on the next pass", st.Percent)
	if len(o.Before) > 0 {
		o.Summary = fmt.Sprintf("at %d%%: finishes after %s", st.Percent, strings.Join(o.Before, ", then "))
	}
	return o
}

func summary(o Outlook, now time.Time) string {
	s := fmt.Sprintf("next: %d%%", o.NextPercent)
	if !o.NotBefore.IsZero() {
		s += fmt.Sprintf(" not before %s (in %s)", o.NotBefore.UTC().Format(time.RFC3339), o.NotBefore.Sub(now).Round(time.Second))
	}
	switch {
	case len(o.Before) > 0 && !o.NotBefore.IsZero():
		s += ", after " + strings.Join(o.Before, ", then ")
	case len(o.Before) > 0:
		s += " after " + strings.Join(o.Before, ", then ")
	default:
		s += " on the next pass"
	}
	return s
}

func withReason(s, reason string) string {
	if reason == "" {
		return s
	}
	return s + " (" + reason + ")"
}
