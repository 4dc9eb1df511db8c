package release

import (
	"fmt"
	"time"
)

// State is where a lane's rollout stands. It is kept apart from the plan.
type State string

const (
	StatePending   State = "pending"   // planned, not started
	StateRolling   State = "rolling"   // executing a step
	StateWaiting   State = "waiting"   // held by a wait, gate or approval
	StatePaused    State = "paused"    // paused by a person; resumes where it was
	StateHalted    State = "halted"    // stopped by a failing gate or a person
	StateCompleted State = "completed" // at 100 %
	StateFailed    State = "failed"    // could not continue; reason says why
	StateCancelled State = "cancelled" // abandoned
)

// States lists every state.
var States = []State{StatePending, StateRolling, StateWaiting, StatePaused, StateHalted, StateCompleted, StateFailed, StateCancelled}

// Terminal reports whether a lane in s has finished: nothing moves it on
// its own any more. A completed lane can still be halted by a person, for
// a store that can stop serving a fully rolled-out release.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

var transitions = map[State][]State{
	StatePending:   {StateRolling, StateWaiting, StateFailed, StateCancelled},
	StateRolling:   {StateRolling, StateWaiting, StatePaused, StateHalted, StateCompleted, StateFailed, StateCancelled},
	StateWaiting:   {StateRolling, StateWaiting, StatePaused, StateHalted, StateCompleted, StateFailed, StateCancelled},
	StatePaused:    {StateRolling, StateWaiting, StateHalted, StateCompleted, StateCancelled},
	StateHalted:    {StateRolling, StateWaiting, StateCompleted, StateFailed, StateCancelled},
	StateCompleted: {StateHalted},
}

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TransitionError is returned for an illegal state change.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	if e.From == StateCompleted {
		return fmt.Sprintf("lane is completed: only a halt can follow (asked for %s)", e.To)
	}
	if e.From.Terminal() {
		return fmt.Sprintf("lane is %s: no further change is possible (asked for %s)", e.From, e.To)
	}
	return fmt.Sprintf("cannot go from %s to %s", e.From, e.To)
}

// Status is the observed progress of a lane through its plan.
type Status struct {
	StepIndex     int       `json:"step_index"`
	State         State     `json:"state"`
	Percent       int       `json:"percent"`
	Reason        string    `json:"reason,omitempty"`
	StepStartedAt time.Time `json:"step_started_at"`
	// NextEligibleAt is the durable schedule: the reconciler looks at the lane
	// again at or after this time. Zero means "now".
	NextEligibleAt time.Time `json:"next_eligible_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// StageStartedAt is when the lane last changed percentage, was resumed
	// or handed over: gates count measurements and data from then on, as
	// an Argo analysis run starts with its step.
	StageStartedAt time.Time `json:"stage_started_at,omitzero"`
	// Version is the stored row version, for optimistic concurrency: a write
	// based on a stale status is refused instead of overwriting a newer one.
	Version int64 `json:"version"`
	// PendingCommand is the oldest person's command accepted for the lane
	// and not yet applied or rejected ("halt pending"). While one is
	// pending, no scheduled pass moves the lane: the command goes first.
	PendingCommand Command `json:"pending_command,omitempty"`
}

// StageStart is when the lane's current stage began: StageStartedAt, or
// for a status recorded before stages were, the step's start.
func (s Status) StageStart() time.Time {
	if !s.StageStartedAt.IsZero() {
		return s.StageStartedAt
	}
	return s.StepStartedAt
}

// Transition returns the status moved to state to, or an error when the move
// is illegal. The receiver is not changed.
func (s Status) Transition(to State, reason string, now time.Time) (Status, error) {
	if !to.Valid() {
		return s, fmt.Errorf("state %q is not a known state", to)
	}
	if !CanTransition(s.State, to) {
		return s, &TransitionError{From: s.State, To: to}
	}
	s.State = to
	s.Reason = reason
	s.UpdatedAt = now
	return s, nil
}
