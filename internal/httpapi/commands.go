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

// CommandQueue queues lane commands inside a store transaction.
type CommandQueue interface {
	EnqueueLaneCommand(ctx context.Context, tx *store.Store, a jobs.LaneCommandArgs) (int64, error)
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
	WriteJSON(w, http.StatusOK, ViewLane(l, s.deps.Now()))
}

func (s *Server) laneCommand(w http.ResponseWriter, r *http.Request) {
	var req commandRequest
	if err := DecodeJSON(r, 64<<10, &req); err != nil {
		WriteDecodeError(w, err)
		return
	}
	s.command(w, r, r.PathValue("id"), r.PathValue("command"), req.Reason)
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
	lanes, err := s.deps.Store.Lanes(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	if _, err := s.deps.Store.GetRelease(r.Context(), r.PathValue("id")); err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	var match []release.Lane
	for _, l := range lanes {
		if req.Platform == "" || string(l.Platform) == req.Platform {
			match = append(match, l)
		}
	}
	switch {
	case req.Platform != "" && len(match) == 0:
		if _, err := release.ParsePlatform(req.Platform); err != nil {
			WriteError(w, http.StatusBadRequest, "invalid", "platform: "+err.Error())
			return
		}
		WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("release %s has no %s lane", r.PathValue("id"), req.Platform))
		return
	case len(lanes) == 0:
		WriteError(w, http.StatusConflict, "conflict", fmt.Sprintf("release %s has no lanes yet (it is still being planned)", r.PathValue("id")))
		return
	case len(match) != 1:
		var ps []string
		for _, l := range lanes {
			ps = append(ps, string(l.Platform))
		}
		WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("platform: required; release has lanes %s", strings.Join(ps, ", ")))
		return
	}
	s.command(w, r, match[0].ID, r.PathValue("command"), req.Reason)
}

// command validates a command against the lane's state now (409 when it is
// not allowed), then records it and queues it in one transaction (202).
func (s *Server) command(w http.ResponseWriter, r *http.Request, laneID, name, reason string) {
	cmd, err := release.ParseCommand(name)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if len(reason) > 2000 {
		WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("reason: %d characters, at most 2000", len(reason)))
		return
	}
	if s.deps.Commands == nil {
		WriteError(w, http.StatusServiceUnavailable, "unavailable", "jobs are not running")
		return
	}
	ctx := r.Context()
	l, err := s.deps.Store.GetLane(ctx, laneID)
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	if _, err := release.ApplyCommand(l.Plan, l.Status, cmd, reason, s.deps.Now()); err != nil {
		WriteError(w, http.StatusConflict, "conflict", err.Error())
		return
	}
	actor := Actor(ctx)
	var jobID, eventID int64
	err = s.deps.Store.Tx(ctx, func(tx *store.Store) error {
		var err error
		eventID, err = tx.AppendEvent(ctx, release.Event{At: s.deps.Now(), Actor: actor, ReleaseID: l.ReleaseID, LaneID: l.ID,
			Kind: "command.requested", Details: map[string]any{"command": string(cmd), "reason": reason}})
		if err != nil {
			return err
		}
		jobID, err = s.deps.Commands.EnqueueLaneCommand(ctx, tx, jobs.LaneCommandArgs{LaneID: l.ID, Command: string(cmd), Actor: actor, Reason: reason})
		return err
	})
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	WriteJSON(w, http.StatusAccepted, map[string]any{"lane_id": l.ID, "release_id": l.ReleaseID, "platform": l.Platform, "command": cmd,
		"job_id": jobID, "event_id": eventID, "status": "queued"})
}
