package httpapi

import (
	"context"
	"errors"

	"github.com/swapjoy/releasepilot/internal/release"
)

// CommandMove is what a lane command does, or would do: the lane as it
// stands (From) and the status it will have once executed (To).
type CommandMove struct {
	Lane    release.Lane
	Command release.Command
	Action  release.Action
	From    release.Status
	To      release.Status
	// JobID and EventID are set once the command is queued.
	JobID   int64
	EventID int64
}

func moveOf(c checkedCommand) CommandMove {
	return CommandMove{Lane: c.Lane, Command: c.Command, Action: c.Decision.Action, From: c.Lane.Status, To: c.Decision.Status,
		JobID: c.JobID, EventID: c.EventID}
}

// DryRunCommand checks a command against the lane now, with the API's own
// rules, and says what it would do; it changes nothing. A command the lane
// does not allow is a refusal (see Refusal).
func (s *Server) DryRunCommand(ctx context.Context, laneID, name, reason string) (CommandMove, error) {
	c, err := s.checkCommand(ctx, laneID, name, reason)
	if err != nil {
		return CommandMove{}, err
	}
	return moveOf(c), nil
}

// QueueCommand checks a command and records and queues it as actor, as
// POST /v1/lanes/{id}/{command} does.
func (s *Server) QueueCommand(ctx context.Context, laneID, name, actor, reason string) (CommandMove, error) {
	c, err := s.queueCommand(ctx, laneID, name, actor, reason)
	if err != nil {
		return CommandMove{}, err
	}
	return moveOf(c), nil
}

// Refusal reports whether err is a command the core refused, with the HTTP
// status the API answers it with and the message that says why. Any other
// error is internal and its text is not for people.
func Refusal(err error) (status int, message string, ok bool) {
	var cr *commandRefusal
	if errors.As(err, &cr) {
		return cr.status, cr.msg, true
	}
	return 0, "", false
}
