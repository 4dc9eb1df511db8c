package release

import (
	"fmt"
	"time"
)

// Action is what the executor must do after a reconcile pass.
type Action string

const (
	ActionNone     Action = "none"     // nothing to do; status may have moved
	ActionHold     Action = "hold"     // wait; look again at NextEligibleAt
	ActionAdvance  Action = "advance"  // set the rollout to Percent
	ActionHalt     Action = "halt"     // stop the rollout remotely (Play halted, iOS paused, OTA disabled)
	ActionComplete Action = "complete" // go to 100 % and finish
	ActionRollback Action = "rollback" // OTA: roll back to the previous release; stores: halt
)

// Observation is a health metric as a gate provider saw it.
type Observation struct {
	Value   float64
	Samples int64
	// Fresh is false when the provider has no data for the current version yet,
	// or its data is older than the step: gates hold on it, never advance.
	Fresh bool
}

// Observations is what the reconciler knows of the outside world.
type Observations struct {
	Metrics map[string]Observation
	// Approved lists the step indexes a person approved.
	Approved map[int]bool
	// Freezes are the spans in which no scheduled pass moves the lane to a
	// higher percentage (the app's, already filtered).
	Freezes []Freeze
	// Gates holds the current stage's measurements of each gate rule, by
	// GateRule.Key. A rule without an entry is judged from Metrics.
	Gates map[string]GateReading
}

// Decision is the outcome of one reconcile pass: an action for the executor
// and the status to record once the action succeeded.
type Decision struct {
	Action  Action
	Percent int
	Reason  string
	Status  Status
	// Command is the person's command behind the decision; empty when the
	// reconciler decided on its own schedule. Executors use it to tell a
	// person's complete or resume from a scheduled one.
	Command Command
	// Measurements are the gates' newest measurements behind a halt, for
	// the event and the notification.
	Measurements []Measurement
}

// Reconcile re-derives what a lane should do now from its plan, status and
// observations. It returns early at each gate and is idempotent: a second pass
// with the same inputs after the action was recorded decides nothing new.
// At most one external action is returned per pass.
func Reconcile(plan Plan, st Status, obs Observations, now time.Time) (Decision, error) {
	switch st.State {
	case StateRolling, StateWaiting:
	default:
		return Decision{Action: ActionNone, Status: st, Reason: fmt.Sprintf("lane is %s", st.State)}, nil
	}
	if st.PendingCommand != "" {
		// A person's command was accepted: it goes first, whatever the
		// schedule says, so no advance can pass a halt that is on its way.
		return Decision{Action: ActionNone, Status: st, Reason: fmt.Sprintf("%s pending", st.PendingCommand)}, nil
	}
	if st.StepIndex < 0 || st.StepIndex > len(plan.Steps) {
		return Decision{}, fmt.Errorf("step index %d is outside the plan (%d steps)", st.StepIndex, len(plan.Steps))
	}
	if st.StepStartedAt.IsZero() {
		st.StepStartedAt = now
	}
	// A gate failing past its limit halts the lane at any step.
	if d, ok := gateHalt(plan, st, obs, now); ok {
		return d, nil
	}
	// first is where this pass began: a pass that cannot advance leaves
	// the lane there, so the steps it walked (a gate) are judged again.
	first := st
	for st.StepIndex < len(plan.Steps) {
		step := plan.Steps[st.StepIndex]
		if st.StepStartedAt.IsZero() {
			st.StepStartedAt = now
		}
		switch {
		case step.SetPercent != nil:
			// Advances happen only inside the window of the wait before
			// this step and outside every freeze, however long the gates
			// between them held the lane.
			until, why, blocked, err := blockedAt(plan, st.StepIndex, obs.Freezes, now)
			if err != nil {
				return Decision{}, err
			}
			if blocked {
				return hold(first, now, until, why), nil
			}
			n := *step.SetPercent
			next := st
			next.StepIndex++
			next.StepStartedAt = now
			next.Percent = n
			next.StageStartedAt = now
			next.UpdatedAt = now
			next.NextEligibleAt = time.Time{}
			if n >= 100 {
				next.State = StateCompleted
				next.Reason = "rolled out to 100%"
				return Decision{Action: ActionComplete, Percent: 100, Reason: next.Reason, Status: next}, nil
			}
			next.State = StateRolling
			next.Reason = fmt.Sprintf("rolled out to %d%%", n)
			return Decision{Action: ActionAdvance, Percent: n, Reason: next.Reason, Status: next}, nil

		case step.Wait != nil:
			until := st.StepStartedAt.Add(time.Duration(step.Wait.Soak))
			if now.Before(until) {
				return hold(st, now, until, fmt.Sprintf("soaking at %d%% until %s", st.Percent, until.UTC().Format(time.RFC3339))), nil
			}
			if step.Wait.Window != "" {
				sched, err := ParseWindow(step.Wait.Window)
				if err != nil {
					return Decision{}, fmt.Errorf("steps[%d].wait.window: %w", st.StepIndex, err)
				}
				minute := now.Truncate(time.Minute)
				if !sched.Next(minute.Add(-time.Nanosecond)).Equal(minute) {
					open := sched.Next(minute)
					if open.IsZero() {
						return Decision{}, fmt.Errorf("steps[%d].wait.window %q never opens", st.StepIndex, step.Wait.Window)
					}
					return hold(st, now, open, fmt.Sprintf("outside the rollout window; next opening %s", open.UTC().Format(time.RFC3339))), nil
				}
			}
			st = nextStep(st, now)

		case step.Gate != nil:
			reason, until, halt, ok := judgeGate(step.Gate, obs, now)
			if halt != "" {
				next := st
				next.State = StateHalted
				next.Reason = halt
				next.UpdatedAt = now
				next.NextEligibleAt = time.Time{}
				return Decision{Action: ActionHalt, Percent: st.Percent, Reason: next.Reason, Status: next}, nil
			}
			if !ok {
				return hold(st, now, until, reason), nil
			}
			st = nextStep(st, now)

		case step.Approval != nil:
			if !obs.Approved[st.StepIndex] {
				reason := "waiting for approval"
				if step.Approval.Reason != "" {
					reason += ": " + step.Approval.Reason
				}
				d := hold(st, now, time.Time{}, reason)
				return d, nil
			}
			st = nextStep(st, now)

		default:
			return Decision{}, fmt.Errorf("steps[%d]: empty step", st.StepIndex)
		}
	}
	st.State = StateCompleted
	st.UpdatedAt = now
	return Decision{Action: ActionNone, Status: st, Reason: "plan finished"}, nil
}

func hold(st Status, now, until time.Time, reason string) Decision {
	st.State = StateWaiting
	st.Reason = reason
	st.NextEligibleAt = until
	st.UpdatedAt = now
	return Decision{Action: ActionHold, Percent: st.Percent, Reason: reason, Status: st}
}

func nextStep(st Status, now time.Time) Status {
	st.StepIndex++
	st.StepStartedAt = now
	st.State = StateRolling
	return st
}

// blockedAt reports whether the SetPercent step at idx may not happen at t:
// t falls in a freeze, or outside the window of the wait that precedes the
// step (since the previous percentage). until is when to look again.
func blockedAt(plan Plan, idx int, freezes []Freeze, t time.Time) (until time.Time, reason string, blocked bool, err error) {
	if f, ok := ActiveFreeze(freezes, t); ok {
		reason := "frozen until " + f.To.UTC().Format(time.RFC3339)
		if f.Reason != "" {
			reason += ": " + f.Reason
		}
		return f.To, reason, true, nil
	}
	for i := idx - 1; i >= 0 && plan.Steps[i].SetPercent == nil; i-- {
		w := plan.Steps[i].Wait
		if w == nil || w.Window == "" {
			continue
		}
		sched, err := ParseWindow(w.Window)
		if err != nil {
			return time.Time{}, "", false, fmt.Errorf("steps[%d].wait.window: %w", i, err)
		}
		minute := t.Truncate(time.Minute)
		if sched.Next(minute.Add(-time.Nanosecond)).Equal(minute) {
			return time.Time{}, "", false, nil
		}
		open := sched.Next(minute)
		if open.IsZero() {
			return time.Time{}, "", false, fmt.Errorf("steps[%d].wait.window %q never opens", i, w.Window)
		}
		return open, fmt.Sprintf("outside the rollout window; next opening %s", open.UTC().Format(time.RFC3339)), true, nil
	}
	return time.Time{}, "", false, nil
}
