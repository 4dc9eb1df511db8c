package release

import (
	"fmt"
	"time"
)

// Command is an instruction a person gives a lane through the API or CLI.
type Command string

const (
	CmdHalt     Command = "halt"
	CmdPause    Command = "pause"
	CmdResume   Command = "resume"
	CmdAdvance  Command = "advance"
	CmdComplete Command = "complete"
	CmdRollback Command = "rollback"
	CmdApprove  Command = "approve"
	CmdCancel   Command = "cancel"
)

// ParseCommand validates a command name.
func ParseCommand(s string) (Command, error) {
	switch c := Command(s); c {
	case CmdHalt, CmdPause, CmdResume, CmdAdvance, CmdComplete, CmdRollback, CmdApprove, CmdCancel:
		return c, nil
	}
	return "", fmt.Errorf("command %q is not one of halt, pause, resume, advance, complete, rollback, approve, cancel", s)
}

// HaltsWhenCompleted reports whether a completed lane of kind k on platform
// p can still be halted: Play serves the previous fully rolled-out release
// in place of a halted one, and an OTA release can be disabled; Apple has
// no way back from a release that reached everyone (and releasepilot never
// removes an app from sale).
func HaltsWhenCompleted(k LaneKind, p Platform) bool {
	return !(k == KindStore && p == IOS)
}

// ApplyCommand decides what a command does to a lane. It returns the action
// the executor must take remotely, the new status to record after it, and an
// error when the command is not allowed in the current state.
func ApplyCommand(plan Plan, st Status, cmd Command, reason string, now time.Time) (d Decision, err error) {
	defer func() {
		if err == nil {
			d.Command = cmd
		}
	}()
	if reason == "" {
		reason = string(cmd) + " by operator"
	}
	to := func(s State, a Action, pct int) (Decision, error) {
		next, err := st.Transition(s, reason, now)
		if err != nil {
			return Decision{}, fmt.Errorf("%s: %w", cmd, err)
		}
		next.NextEligibleAt = time.Time{}
		return Decision{Action: a, Percent: pct, Reason: reason, Status: next}, nil
	}
	switch cmd {
	case CmdHalt:
		return to(StateHalted, ActionHalt, st.Percent)
	case CmdPause:
		return to(StatePaused, ActionHalt, st.Percent)
	case CmdCancel:
		return to(StateCancelled, ActionHalt, st.Percent)
	case CmdResume:
		if st.State != StateHalted && st.State != StatePaused {
			return Decision{}, fmt.Errorf("resume: lane is %s, not halted or paused", st.State)
		}
		if st.Percent >= 100 {
			// Halted after it reached everyone: resuming serves it to
			// everyone again.
			d, err := to(StateCompleted, ActionComplete, 100)
			if err == nil {
				d.Status.StepIndex = len(plan.Steps)
			}
			return d, err
		}
		d, err := to(StateRolling, ActionAdvance, st.Percent)
		if err == nil && st.Percent == 0 {
			d.Action = ActionNone
		}
		// A resumed lane starts a new stage: the failures that halted it
		// no longer count.
		d.Status.StageStartedAt = now
		return d, err
	case CmdComplete:
		d, err := to(StateCompleted, ActionComplete, 100)
		if err == nil {
			d.Status.Percent = 100
			d.Status.StepIndex = len(plan.Steps)
		}
		return d, err
	case CmdAdvance:
		// Skip waits, gates and approvals up to and including the next
		// SetPercent step, and execute it now.
		if st.State != StateRolling && st.State != StateWaiting {
			return Decision{}, fmt.Errorf("advance: lane is %s; resume it first", st.State)
		}
		for i := st.StepIndex; i < len(plan.Steps); i++ {
			if p := plan.Steps[i].SetPercent; p != nil {
				next := st
				next.StepIndex = i + 1
				next.StepStartedAt = now
				next.Percent = *p
				next.StageStartedAt = now
				next.Reason = reason
				next.UpdatedAt = now
				next.NextEligibleAt = time.Time{}
				if *p >= 100 {
					next.State = StateCompleted
					return Decision{Action: ActionComplete, Percent: 100, Reason: reason, Status: next}, nil
				}
				next.State = StateRolling
				return Decision{Action: ActionAdvance, Percent: *p, Reason: reason, Status: next}, nil
			}
		}
		return Decision{}, fmt.Errorf("advance: no percentage step left after step %d", st.StepIndex)
	case CmdApprove:
		if st.StepIndex >= len(plan.Steps) || plan.Steps[st.StepIndex].Approval == nil {
			return Decision{}, fmt.Errorf("approve: step %d is not waiting for approval", st.StepIndex)
		}
		if st.State != StateWaiting && st.State != StateRolling {
			return Decision{}, fmt.Errorf("approve: lane is %s", st.State)
		}
		next := st
		next.StepIndex++
		next.StepStartedAt = now
		next.State = StateRolling
		next.Reason = reason
		next.UpdatedAt = now
		next.NextEligibleAt = time.Time{}
		return Decision{Action: ActionNone, Reason: reason, Status: next}, nil
	case CmdRollback:
		if st.State == StateCancelled || st.State == StateFailed {
			return Decision{}, fmt.Errorf("rollback: lane is %s", st.State)
		}
		next := st
		next.State = StateHalted
		next.Reason = reason
		next.UpdatedAt = now
		next.NextEligibleAt = time.Time{}
		return Decision{Action: ActionRollback, Percent: st.Percent, Reason: reason, Status: next}, nil
	}
	return Decision{}, fmt.Errorf("command %q is not known", cmd)
}

// Projected is the status a lane will have once its pending commands (oldest
// first) are applied: new commands are judged against it, so a resume may
// follow a halt that is still on its way. A pending command the state
// refuses changes nothing (it will be rejected).
func Projected(plan Plan, st Status, pending []Command, now time.Time) Status {
	for _, c := range pending {
		if d, err := ApplyCommand(plan, st, c, "", now); err == nil {
			d.Status.Version, d.Status.PendingCommand = st.Version, st.PendingCommand
			st = d.Status
		}
	}
	return st
}
