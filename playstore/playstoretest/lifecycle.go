package playstoretest

import (
	"net/http"
	"reflect"
	"slices"
)

// Release lifecycle states of applications.tracks.releases.list.
const (
	LifecycleDraft            = "RELEASE_LIFECYCLE_STATE_DRAFT"
	LifecycleNotSentForReview = "RELEASE_LIFECYCLE_STATE_NOT_SENT_FOR_REVIEW"
	LifecycleInReview         = "RELEASE_LIFECYCLE_STATE_IN_REVIEW"
	LifecycleApprovedNotPub   = "RELEASE_LIFECYCLE_STATE_APPROVED_NOT_PUBLISHED"
	LifecycleNotApproved      = "RELEASE_LIFECYCLE_STATE_NOT_APPROVED"
	LifecyclePublished        = "RELEASE_LIFECYCLE_STATE_PUBLISHED"
)

// noteLifecycle gives every release a commit changes a lifecycle state: draft
// stays DRAFT, a commit kept out of review is NOT_SENT_FOR_REVIEW, anything
// else is PUBLISHED at once (the fake has no reviewers; SetLifecycleState
// scripts one). Callers hold s.mu.
func (a *app) noteLifecycle(next map[string][]Release, notSent bool) {
	for name, rels := range next {
		for _, r := range rels {
			if slices.ContainsFunc(a.tracks[name], func(o Release) bool { return sameWire(o, r) }) {
				continue
			}
			state := LifecyclePublished
			switch {
			case r.Status == StatusDraft:
				state = LifecycleDraft
			case notSent:
				state = LifecycleNotSentForReview
			}
			for _, vc := range r.VersionCodes {
				a.lifecycle[vc] = state
			}
		}
	}
}

// inReview reports whether a committed release of the app is in review, so
// that a commit with changesInReviewBehavior=ERROR_IF_IN_REVIEW fails.
// Callers hold s.mu.
func (a *app) inReview() bool {
	for _, rels := range a.tracks {
		for _, r := range rels {
			for _, vc := range r.VersionCodes {
				if a.lifecycle[vc] == LifecycleInReview {
					return true
				}
			}
		}
	}
	return false
}

func sameWire(a, b Release) bool {
	return a.Name == b.Name && a.Status == b.Status && a.UserFraction == b.UserFraction &&
		slices.Equal(a.VersionCodes, b.VersionCodes) && slices.Equal(a.ReleaseNotes, b.ReleaseNotes) &&
		a.InAppUpdatePriority == b.InAppUpdatePriority && reflect.DeepEqual(a.CountryTargeting, b.CountryTargeting)
}

// SetLifecycleState scripts the review state of the release holding
// versionCode (e.g. LifecycleInReview, then LifecycleNotApproved).
func (s *Server) SetLifecycleState(pkg string, versionCode int64, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(pkg).lifecycle[versionCode] = state
}

// listReleases serves applications.tracks.releases.list: the committed
// releases of a track with their lifecycle state, at most 20.
func (s *Server) listReleases(w http.ResponseWriter, pkg, track string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[pkg]
	if !ok {
		writeError(w, newAPIError(404, "androidpublisher", "applicationNotFound", "NOT_FOUND", "Package not found: "+pkg+"."))
		return
	}
	rels, ok := a.tracks[track]
	if !ok {
		writeError(w, notFound("Track not found: "+track+"."))
		return
	}
	type artifact struct {
		VersionCode int64 `json:"versionCode"`
	}
	type summary struct {
		Track                 string     `json:"track"`
		ReleaseName           string     `json:"releaseName,omitempty"`
		ReleaseLifecycleState string     `json:"releaseLifecycleState"`
		ActiveArtifacts       []artifact `json:"activeArtifacts,omitempty"`
	}
	out := []summary{}
	for _, r := range rels {
		sm := summary{Track: track, ReleaseName: r.Name, ReleaseLifecycleState: LifecyclePublished}
		for _, vc := range r.VersionCodes {
			sm.ActiveArtifacts = append(sm.ActiveArtifacts, artifact{vc})
			if st, ok := a.lifecycle[vc]; ok {
				sm.ReleaseLifecycleState = st
			}
		}
		out = append(out, sm)
	}
	if len(out) > 20 {
		out = out[:20]
	}
	writeJSON(w, map[string]any{"releases": out})
}
