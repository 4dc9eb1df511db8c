package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// CommandQueue records a lane command as pending and queues its job inside
// a store transaction; it returns the job's id and sets a.CommandID.
type CommandQueue interface {
	EnqueueLaneCommand(ctx context.Context, tx *store.Store, a *jobs.LaneCommandArgs) (int64, error)
}

type commandRequest struct {
	Reason   string `json:"reason"`
	Platform string `json:"platform"`
}

// DecodeJSON reads a JSON body of at most limit bytes into v, rejecting
// unknown fields; the error names the field or the problem.
func DecodeJSON(r *http.Request, limit int64, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &TooLargeError{Limit: mbe.Limit}
		}
		if errors.As(err, &te) {
			return fmt.Errorf("%s: expected %s, found %s", te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("body is not valid JSON: %v", err)
	}
	if dec.More() {
		return errors.New("body has data after the JSON value")
	}
	return nil
}

// TooLargeError is a request body over its limit (answer 413).
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("body is larger than %d bytes", e.Limit)
}

// WriteDecodeError answers a DecodeJSON error: 413 for a body over the
// limit, 400 for anything else.
func WriteDecodeError(w http.ResponseWriter, err error) {
	var tl *TooLargeError
	if errors.As(err, &tl) {
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	WriteError(w, http.StatusBadRequest, "invalid", err.Error())
}

func (s *Server) registerCommands() {
	s.Handle("GET /v1/lanes/{id}", RoleViewer, http.HandlerFunc(s.getLane))
	s.Handle("POST /v1/lanes/{id}/{command}", RoleOperator, http.HandlerFunc(s.laneCommand))
	s.Handle("POST /v1/releases/{id}/{command}", RoleOperator, http.HandlerFunc(s.releaseCommand))
}

func (s *Server) getLane(w http.ResponseWriter, r *http.Request) {
	l, err := s.deps.Store.GetLane(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	rel, err := s.deps.Store.GetRelease(r.Context(), l.ReleaseID)
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	v := ViewLane(l, s.deps.Now(), release.FreezesFor(s.deps.Freezes, rel.App, l)...)
	cmds, err := s.deps.Store.LaneCommands(r.Context(), l.ID, 10)
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	for _, c := range cmds {
		v.Commands = append(v.Commands, CommandView{ID: c.ID, Command: string(c.Command), Actor: c.Actor, Reason: c.Reason, State: c.State,
			Tries: c.Attempts, LastError: c.LastError, Outcome: c.Outcome, RequestedAt: c.RequestedAt, FinishedAt: c.FinishedAt})
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) laneCommand(w http.ResponseWriter, r *http.Request) {
	var req commandRequest
	if err := DecodeJSON(r, 64<<10, &req); err != nil {
		WriteDecodeError(w, err)
		return
	}
	s.writeQueued(w, r, r.PathValue("id"), r.PathValue("command"), req.Reason)
}

func (s *Server) releaseCommand(w http.ResponseWriter, r *http.Request) {
	var req commandRequest
	if err := DecodeJSON(r, 64<<10, &req); err != nil {
		WriteDecodeError(w, err)
		return
	}
	if req.Platform == "" {
		req.Platform = r.URL.Query().Get("platform")
	}
	l, err := s.releaseLane(r.Context(), r.PathValue("id"), req.Platform)
	if err != nil {
		s.writeCommandError(w, err)
		return
	}
	s.writeQueued(w, r, l.ID, r.PathValue("command"), req.Reason)
}

// writeQueued queues a command and answers 202, or the refusal. With
// ?dry_run=true it answers 200 with the move the command would make and
// changes nothing.
func (s *Server) writeQueued(w http.ResponseWriter, r *http.Request, laneID, name, reason string) {
	ctx := r.Context()
	if dry := r.URL.Query().Get("dry_run"); dry != "" {
		if dry != "true" && dry != "false" {
			WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("dry_run: %q is not true or false", dry))
			return
		}
		if dry == "true" {
			c, err := s.checkCommand(ctx, laneID, name, reason)
			if err != nil {
				s.writeCommandError(w, err)
				return
			}
			WriteJSON(w, http.StatusOK, map[string]any{"lane_id": c.Lane.ID, "release_id": c.Lane.ReleaseID, "platform": c.Lane.Platform,
				"command": c.Command, "action": c.Decision.Action, "dry_run": true,
				"from": map[string]any{"state": c.Lane.Status.State, "percent": c.Lane.Status.Percent},
				"to":   map[string]any{"state": c.Decision.Status.State, "percent": c.Decision.Status.Percent, "reason": c.Decision.Status.Reason}})
			return
		}
	}
	q, err := s.queueCommand(ctx, laneID, name, Actor(ctx), reason)
	if err != nil {
		s.writeCommandError(w, err)
		return
	}
	WriteJSON(w, http.StatusAccepted, map[string]any{"lane_id": q.Lane.ID, "release_id": q.Lane.ReleaseID, "platform": q.Lane.Platform, "command": q.Command,
		"command_id": q.CommandID, "job_id": q.JobID, "event_id": q.EventID, "status": "queued"})
}

// commandRefusal is a command that cannot be queued; status is its HTTP
// answer and msg says why.
type commandRefusal struct {
	status int
	code   string
	msg    string
}

func (e *commandRefusal) Error() string { return e.msg }

func refuse(status int, code, format string, a ...any) error {
	return &commandRefusal{status: status, code: code, msg: fmt.Sprintf(format, a...)}
}

// storeRefusal turns the store's not-found and conflict errors into
// refusals; anything else stays an internal error.
func storeRefusal(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse(http.StatusNotFound, "not_found", "%s", err.Error())
	case errors.Is(err, store.ErrConflict):
		return refuse(http.StatusConflict, "conflict", "%s", err.Error())
	}
	return err
}

func (s *Server) writeCommandError(w http.ResponseWriter, err error) {
	var cr *commandRefusal
	if errors.As(err, &cr) {
		WriteError(w, cr.status, cr.code, cr.msg)
		return
	}
	WriteStoreError(w, s.log, err)
}

// releaseLane picks the lane of release id on platform; platform may be
// empty when the release has one lane.
func (s *Server) releaseLane(ctx context.Context, id, platform string) (release.Lane, error) {
	if _, err := s.deps.Store.GetRelease(ctx, id); err != nil {
		return release.Lane{}, storeRefusal(err)
	}
	lanes, err := s.deps.Store.Lanes(ctx, id)
	if err != nil {
		return release.Lane{}, storeRefusal(err)
	}
	var match []release.Lane
	for _, l := range lanes {
		if platform == "" || string(l.Platform) == platform {
			match = append(match, l)
		}
	}
	switch {
	case platform != "" && len(match) == 0:
		if _, err := release.ParsePlatform(platform); err != nil {
			return release.Lane{}, refuse(http.StatusBadRequest, "invalid", "platform: %v", err)
		}
		return release.Lane{}, refuse(http.StatusNotFound, "not_found", "release %s has no %s lane", id, platform)
	case len(lanes) == 0:
		return release.Lane{}, refuse(http.StatusConflict, "conflict", "release %s has no lanes yet (it is still being planned)", id)
	case len(match) != 1:
		var ps []string
		for _, l := range lanes {
			ps = append(ps, string(l.Platform))
		}
		return release.Lane{}, refuse(http.StatusBadRequest, "invalid", "platform: required; release has lanes %s", strings.Join(ps, ", "))
	}
	return match[0], nil
}

// checkedCommand is a command the lane's state allows now, with the
// decision it would take.
type checkedCommand struct {
	Lane     release.Lane
	Command  release.Command
	Decision release.Decision
	JobID    int64
	EventID  int64
	// CommandID names the durable command (GET /v1/lanes/{id} lists it).
	CommandID int64
}

// checkCommand validates a command against the lane's state now: a
// refusal (400, 404, 409) when it is not allowed, else what it would do.
// It changes nothing.
func (s *Server) checkCommand(ctx context.Context, laneID, name, reason string) (checkedCommand, error) {
	cmd, err := release.ParseCommand(name)
	if err != nil {
		return checkedCommand{}, refuse(http.StatusBadRequest, "invalid", "%v", err)
	}
	if len(reason) > 2000 {
		return checkedCommand{}, refuse(http.StatusBadRequest, "invalid", "reason: %d characters, at most 2000", len(reason))
	}
	l, err := s.deps.Store.GetLane(ctx, laneID)
	if err != nil {
		return checkedCommand{}, storeRefusal(err)
	}
	// Judge it against the lane as it will be once the commands accepted
	// before it are applied: they go first.
	st := l.Status
	if st.PendingCommand != "" {
		pending, err := s.deps.Store.PendingCommands(ctx, l.ID)
		if err != nil {
			return checkedCommand{}, err
		}
		var cmds []release.Command
		for _, p := range pending {
			cmds = append(cmds, p.Command)
		}
		st = release.Projected(l.Plan, st, cmds, s.deps.Now())
	}
	if cmd == release.CmdHalt && st.State == release.StateCompleted && !release.HaltsWhenCompleted(l.Kind, l.Platform) {
		return checkedCommand{}, refuse(http.StatusConflict, "conflict", "halt: the %s %s lane is completed; Apple cannot halt a release that reached everyone", l.Platform, l.Kind)
	}
	d, err := release.ApplyCommand(l.Plan, st, cmd, reason, s.deps.Now())
	if err != nil {
		if l.Status.PendingCommand != "" {
			err = fmt.Errorf("%w (once the pending %s is applied)", err, l.Status.PendingCommand)
		}
		return checkedCommand{}, refuse(http.StatusConflict, "conflict", "%v", err)
	}
	return checkedCommand{Lane: l, Command: cmd, Decision: d}, nil
}

// queueCommand checks a command, then records it as pending on its lane,
// queues its job and writes command.requested, all in one transaction: from
// the commit on, the command survives any process, and the lane shows it
// pending so no scheduled move can pass it. The lane_command job (or the
// reconciler, if that job's replica dies) applies it.
func (s *Server) queueCommand(ctx context.Context, laneID, name, actor, reason string) (checkedCommand, error) {
	q, err := s.checkCommand(ctx, laneID, name, reason)
	if err != nil {
		return q, err
	}
	if s.deps.Commands == nil {
		return q, refuse(http.StatusServiceUnavailable, "unavailable", "jobs are not running")
	}
	l := q.Lane
	err = s.deps.Store.Tx(ctx, func(tx *store.Store) error {
		a := jobs.LaneCommandArgs{LaneID: l.ID, Command: string(q.Command), Actor: actor, Reason: reason}
		var err error
		if q.JobID, err = s.deps.Commands.EnqueueLaneCommand(ctx, tx, &a); err != nil {
			return err
		}
		q.CommandID = a.CommandID
		q.EventID, err = tx.AppendEvent(ctx, release.Event{At: s.deps.Now(), Actor: actor, ReleaseID: l.ReleaseID, LaneID: l.ID,
			Kind: "command.requested", Details: map[string]any{"command": string(q.Command), "command_id": a.CommandID, "reason": reason}})
		return err
	})
	return q, err
}
