package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// ReleaseView is a release as the API shows it.
type ReleaseView struct {
	ID        string     `json:"id"`
	App       string     `json:"app"`
	Tag       string     `json:"tag"`
	Version   string     `json:"version"`
	Commit    string     `json:"commit"`
	State     string     `json:"state"`
	Notes     string     `json:"notes"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	Lanes     []LaneView `json:"lanes,omitempty"`
	// SupersededBy and TagStatus say what became of the release's tag: a
	// restart at a moved tag's new commit, a move refused, a deletion.
	SupersededBy string `json:"superseded_by,omitempty"`
	TagStatus    string `json:"tag_status,omitempty"`
}

// LaneView is a lane as the API shows it.
type LaneView struct {
	ID       string         `json:"id"`
	Platform string         `json:"platform"`
	Kind     string         `json:"kind"`
	Reason   string         `json:"reason"`
	Plan     release.Plan   `json:"plan"`
	Status   release.Status `json:"status"`
	// Next is what comes next, from the plan and status at the time of the
	// answer: the next percentage, what stands before it and when.
	Next release.Outlook `json:"next"`
	// Commands are the lane's latest commands, newest first (GET
	// /v1/lanes/{id} only): pending ones with their last failure, finished
	// ones with their outcome.
	Commands []CommandView `json:"commands,omitempty"`
}

// CommandView is a person's command on a lane as the API shows it.
type CommandView struct {
	ID          int64     `json:"id"`
	Command     string    `json:"command"`
	Actor       string    `json:"actor"`
	Reason      string    `json:"reason,omitempty"`
	State       string    `json:"state"`
	Tries       int       `json:"failed_tries,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	Outcome     string    `json:"outcome,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
}

func viewRelease(r release.Release) ReleaseView {
	return ReleaseView{ID: r.ID, App: r.App, Tag: r.Tag, Version: r.Version, Commit: r.Commit, State: string(r.State),
		Notes: r.Notes, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, SupersededBy: r.SupersededBy, TagStatus: release.TagStatus(r)}
}

// ViewLane converts a lane for the API, with its outlook at now under the
// app's freezes.
func ViewLane(l release.Lane, now time.Time, freezes ...release.Freeze) LaneView {
	return LaneView{ID: l.ID, Platform: string(l.Platform), Kind: string(l.Kind), Reason: l.Reason, Plan: l.Plan, Status: l.Status,
		Next: release.Next(l.Plan, l.Status, now, freezes...)}
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			WriteError(w, http.StatusBadRequest, "invalid", "limit: "+strconv.Quote(v)+" is not a number between 1 and 500")
			return
		}
		limit = n
	}
	rs, err := s.deps.Store.ListReleases(r.Context(), r.URL.Query().Get("app"), limit)
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	out := make([]ReleaseView, 0, len(rs))
	for _, rel := range rs {
		out = append(out, viewRelease(rel))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"releases": out})
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request) {
	rel, err := s.deps.Store.GetRelease(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	lanes, err := s.deps.Store.Lanes(r.Context(), rel.ID)
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	v := viewRelease(rel)
	now := s.deps.Now()
	for _, l := range lanes {
		lv := ViewLane(l, now, release.FreezesFor(s.deps.Freezes, rel.App, l)...)
		if len(l.Plan.Rules()) > 0 {
			// What the gates measured in the current stage.
			gates, err := s.deps.Store.GateReadings(r.Context(), l.ID, l.Status.StageStart())
			if err != nil {
				WriteStoreError(w, s.log, err)
				return
			}
			lv.Next = release.NextGated(l.Plan, l.Status, now, gates, release.FreezesFor(s.deps.Freezes, rel.App, l)...)
		}
		v.Lanes = append(v.Lanes, lv)
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) releaseEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.deps.Store.GetRelease(r.Context(), id); err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			WriteError(w, http.StatusBadRequest, "invalid", "after: "+strconv.Quote(v)+" is not an event id")
			return
		}
		after = n
	}
	evs, err := s.deps.Store.Events(r.Context(), id, after, 500)
	if err != nil {
		WriteStoreError(w, s.log, err)
		return
	}
	type eventView struct {
		ID      int64          `json:"id"`
		At      time.Time      `json:"at"`
		Actor   string         `json:"actor"`
		LaneID  string         `json:"lane_id,omitempty"`
		Kind    string         `json:"kind"`
		Details map[string]any `json:"details,omitempty"`
	}
	out := make([]eventView, 0, len(evs))
	for _, e := range evs {
		out = append(out, eventView{ID: e.ID, At: e.At, Actor: e.Actor, LaneID: e.LaneID, Kind: e.Kind, Details: e.Details})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"events": out})
}
