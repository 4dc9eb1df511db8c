package playstore

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/api/androidpublisher/v3"
)

// Track names. Custom closed tracks are plain strings too.
const (
	TrackInternal   = "internal"
	TrackAlpha      = "alpha"
	TrackBeta       = "beta"
	TrackProduction = "production"
)

// Status is a release status exactly as Play spells it (case-sensitive).
type Status string

const (
	StatusDraft      Status = "draft"
	StatusInProgress Status = "inProgress"
	StatusHalted     Status = "halted"
	StatusCompleted  Status = "completed"
)

// ReleaseNote is one language's "what's new" text; Language is BCP-47 (en-US).
type ReleaseNote struct {
	Language string
	Text     string
}

// Release is one release on a track.
type Release struct {
	Name         string
	VersionCodes []int64
	Status       Status
	// UserFraction is set, 0 < f < 1, for inProgress and halted; else 0.
	UserFraction float64
	ReleaseNotes []ReleaseNote
	// InAppUpdatePriority is 0..5; Play freezes it once the release rolled out.
	InAppUpdatePriority int
}

// Has reports whether the release contains versionCode.
func (r Release) Has(versionCode int64) bool { return slices.Contains(r.VersionCodes, versionCode) }

// TrackState is a track as Play returned it.
type TrackState struct {
	Track    string
	Releases []Release
}

// Release returns the release holding versionCode.
func (t TrackState) Release(versionCode int64) (Release, bool) {
	for _, r := range t.Releases {
		if r.Has(versionCode) {
			return r, true
		}
	}
	return Release{}, false
}

// Result is what a track operation did.
type Result struct {
	// Track is the track as written (or as read when nothing changed).
	Track TrackState
	// Changed is false when the track was already in the wanted state.
	Changed bool
	// Calls is how many Play API requests the operation cost.
	Calls int
}

func fromAPI(r *androidpublisher.TrackRelease) Release {
	out := Release{Name: r.Name, VersionCodes: slices.Clone(r.VersionCodes), Status: Status(r.Status),
		UserFraction: r.UserFraction, InAppUpdatePriority: int(r.InAppUpdatePriority)}
	for _, n := range r.ReleaseNotes {
		out.ReleaseNotes = append(out.ReleaseNotes, ReleaseNote{Language: n.Language, Text: n.Text})
	}
	return out
}

func toAPI(r Release) *androidpublisher.TrackRelease {
	out := &androidpublisher.TrackRelease{Name: r.Name, VersionCodes: slices.Clone(r.VersionCodes),
		Status: string(r.Status), InAppUpdatePriority: int64(r.InAppUpdatePriority)}
	if r.Status == StatusInProgress || r.Status == StatusHalted {
		out.UserFraction = r.UserFraction
	}
	for _, n := range r.ReleaseNotes {
		out.ReleaseNotes = append(out.ReleaseNotes, &androidpublisher.LocalizedText{Language: n.Language, Text: n.Text})
	}
	return out
}

// merge writes r over orig, keeping what this package does not model (such
// as country targeting, which Play allows on inProgress releases only; a
// halted one keeps it for its resume).
func merge(orig *androidpublisher.TrackRelease, r Release) *androidpublisher.TrackRelease {
	out := toAPI(r)
	if orig == nil {
		return out
	}
	if r.Status == StatusInProgress || r.Status == StatusHalted {
		out.CountryTargeting = orig.CountryTargeting
	}
	return out
}

func stateOf(t *androidpublisher.Track) TrackState {
	ts := TrackState{Track: t.Track}
	for _, r := range t.Releases {
		ts.Releases = append(ts.Releases, fromAPI(r))
	}
	return ts
}

// validate checks a release before anything is sent, naming field and value.
func (r Release) validate() error {
	if len(r.VersionCodes) == 0 {
		return invalid("release %q: versionCodes is empty", r.Name)
	}
	for _, vc := range r.VersionCodes {
		if vc <= 0 {
			return invalid("release %q: versionCode %d must be positive", r.Name, vc)
		}
	}
	switch r.Status {
	case StatusInProgress, StatusHalted:
		if err := checkFraction(r.UserFraction); err != nil {
			return err
		}
	case StatusDraft, StatusCompleted:
		if r.UserFraction != 0 {
			return invalid("userFraction %g with status %s: only inProgress and halted releases have a fraction", r.UserFraction, r.Status)
		}
	default:
		return invalid("status %q: want draft, inProgress, halted or completed (case-sensitive)", r.Status)
	}
	if r.InAppUpdatePriority < 0 || r.InAppUpdatePriority > 5 {
		return invalid("inAppUpdatePriority %d: must be between 0 and 5", r.InAppUpdatePriority)
	}
	for _, n := range r.ReleaseNotes {
		if n.Language == "" {
			return invalid("release note with text %q has no language", n.Text)
		}
	}
	return nil
}

func checkFraction(f float64) error {
	if !(f > 0 && f < 1) {
		return invalid("userFraction %g: must be strictly between 0 and 1 (complete the release for 100%%)", f)
	}
	return nil
}

// trackChange gets the track's releases and returns the releases to write,
// or nil when the track is already as wanted.
type trackChange func(ts TrackState, rels []*androidpublisher.TrackRelease) ([]*androidpublisher.TrackRelease, error)

// changeTrack is the read-modify-write of one track in one edit. Releases
// the change does not touch go back exactly as read.
func (c *Client) changeTrack(ctx context.Context, name, pkg, track string, change trackChange) (Result, error) {
	return c.changeTrackOp(ctx, &op{name: name}, pkg, track, change)
}

// moveRollout is changeTrack for an operation that only moves a rollout:
// its commit sends changesInReviewBehavior=ERROR_IF_IN_REVIEW, so a
// scheduled step never cancels changes someone else has in review; Play's
// refusal comes back as ErrChangesInReview.
func (c *Client) moveRollout(ctx context.Context, name, pkg, track string, change trackChange) (Result, error) {
	return c.changeTrackOp(ctx, &op{name: name, rolloutOnly: true}, pkg, track, change)
}

func (c *Client) changeTrackOp(ctx context.Context, o *op, pkg, track string, change trackChange) (Result, error) {
	defer c.finish(o)
	var res Result
	changed, err := c.mutate(ctx, o, pkg, func(ctx context.Context, e *edit) (bool, error) {
		t, err := e.getTrack(ctx, track)
		if err != nil {
			return false, err
		}
		next, err := change(stateOf(t), t.Releases)
		if err != nil {
			return false, err
		}
		if next == nil {
			res.Track = stateOf(t)
			return false, nil
		}
		nt := &androidpublisher.Track{Track: track, Releases: next}
		if err := e.putTrack(ctx, nt); err != nil {
			return true, err
		}
		res.Track = stateOf(nt)
		return true, nil
	})
	res.Changed, res.Calls = changed, o.calls
	return res, err
}

// find returns the index of the release holding vc, or -1.
func find(rels []*androidpublisher.TrackRelease, vc int64) int {
	return slices.IndexFunc(rels, func(r *androidpublisher.TrackRelease) bool { return slices.Contains(r.VersionCodes, vc) })
}

// blocking returns the first release other than ours that is in progress or
// halted: users are on it, and only its owner may decide its fate.
func blocking(rels []*androidpublisher.TrackRelease, vc int64) *androidpublisher.TrackRelease {
	for _, r := range rels {
		if !slices.Contains(r.VersionCodes, vc) && (r.Status == string(StatusInProgress) || r.Status == string(StatusHalted)) {
			return r
		}
	}
	return nil
}

// place puts ours into rels with the rules for its status: an older
// completed release gives way to a new completed one (Play allows one per
// status); anything in progress or halted, or another draft, is a conflict.
func place(pkg, track string, rels []*androidpublisher.TrackRelease, ours Release) ([]*androidpublisher.TrackRelease, error) {
	vc := ours.VersionCodes[0]
	conflict := func(r *androidpublisher.TrackRelease, why string) error {
		return &ReleaseConflictError{Package: pkg, Track: track, VersionCode: vc, Other: fromAPI(r), Reason: why}
	}
	if b := blocking(rels, vc); b != nil {
		return nil, conflict(b, "another release is "+b.Status+" on the track; halt or complete it through its own lane first")
	}
	var out []*androidpublisher.TrackRelease
	var orig *androidpublisher.TrackRelease
	for _, r := range rels {
		if slices.ContainsFunc(ours.VersionCodes, func(v int64) bool { return slices.Contains(r.VersionCodes, v) }) {
			orig = r // ours, replaced below
			continue
		}
		switch {
		case ours.Status == StatusCompleted && r.Status == string(StatusCompleted):
			continue // superseded: only one completed release per track
		case ours.Status == StatusDraft && r.Status == string(StatusDraft):
			return nil, conflict(r, "Play allows one draft per track")
		}
		out = append(out, r)
	}
	return append(out, merge(orig, ours)), nil
}

// sameRelease reports whether the track already holds ours as wanted.
func sameRelease(have Release, want Release) bool {
	return slices.Equal(have.VersionCodes, want.VersionCodes) && have.Status == want.Status &&
		have.UserFraction == want.UserFraction
}

// PutRelease puts a release on a track as draft, inProgress (with a
// fraction) or completed, after its bundles were uploaded. Every other
// release is written back unchanged, except an older completed release that
// a new completed one replaces. It refuses with a *ReleaseConflictError when
// another release is in progress or halted on the track. Running it again
// with the same release changes nothing. A draft of ours may be started
// again with another status; any other existing state of ours is a
// *StateError (use SetFraction, Halt, Resume or Complete).
func (c *Client) PutRelease(ctx context.Context, pkg, track string, r Release) (Result, error) {
	if err := r.validate(); err != nil {
		return Result{}, err
	}
	if r.Status == StatusHalted {
		return Result{}, invalid("status halted: a release starts as draft, inProgress or completed; use Halt")
	}
	vc := r.VersionCodes[0]
	return c.changeTrack(ctx, "PutRelease", pkg, track, func(ts TrackState, rels []*androidpublisher.TrackRelease) ([]*androidpublisher.TrackRelease, error) {
		if have, ok := ts.Release(vc); ok {
			if sameRelease(have, r) {
				return nil, nil
			}
			if have.Status != StatusDraft {
				return nil, &StateError{Package: pkg, Track: track, VersionCode: vc, Status: have.Status, Op: "PutRelease",
					Reason: fmt.Sprintf("already on the track; asked for %s", r.Status)}
			}
		}
		return place(pkg, track, rels, r)
	})
}

// ours finds our release or fails with ErrNotFound.
func ours(pkg, track string, rels []*androidpublisher.TrackRelease, vc int64) (int, error) {
	i := find(rels, vc)
	if i < 0 {
		return -1, fmt.Errorf("%w: %s track %q has no release with versionCode %d", ErrNotFound, pkg, track, vc)
	}
	return i, nil
}

// replaced returns rels with ours at i swapped for r; others are untouched.
func replaced(rels []*androidpublisher.TrackRelease, i int, r Release) []*androidpublisher.TrackRelease {
	out := slices.Clone(rels)
	out[i] = merge(rels[i], r)
	return out
}

// SetFraction raises the user fraction of our inProgress release. The same
// fraction is a no-op; a lower one is refused (halt instead); a halted
// release must be resumed with Resume.
//
// SetFraction, Halt, Resume and Complete only move a rollout: their commit
// never cancels changes in review (changesInReviewBehavior=
// ERROR_IF_IN_REVIEW) and fails with ErrChangesInReview while there are
// some; nothing is changed then, and the step can be tried again later.
func (c *Client) SetFraction(ctx context.Context, pkg, track string, versionCode int64, fraction float64) (Result, error) {
	if err := checkFraction(fraction); err != nil {
		return Result{}, err
	}
	return c.moveRollout(ctx, "SetFraction", pkg, track, func(ts TrackState, rels []*androidpublisher.TrackRelease) ([]*androidpublisher.TrackRelease, error) {
		i, err := ours(pkg, track, rels, versionCode)
		if err != nil {
			return nil, err
		}
		r := fromAPI(rels[i])
		if r.Status != StatusInProgress {
			return nil, &StateError{Package: pkg, Track: track, VersionCode: versionCode, Status: r.Status, Op: "SetFraction", Reason: "only an inProgress release has a fraction to raise"}
		}
		switch {
		case r.UserFraction == fraction:
			return nil, nil
		case fraction < r.UserFraction:
			return nil, invalid("userFraction %g is below the current %g of versionCode %d: Play may not lower a rollout; halt it instead", fraction, r.UserFraction, versionCode)
		}
		if b := blocking(rels, versionCode); b != nil {
			return nil, &ReleaseConflictError{Package: pkg, Track: track, VersionCode: versionCode, Other: fromAPI(b), Reason: "another release is " + b.Status + " on the track"}
		}
		r.UserFraction = fraction
		return replaced(rels, i, r), nil
	})
}

// Halt stops serving our release: an inProgress one becomes halted with its
// fraction kept; a completed (fully rolled-out) one becomes halted without
// a fraction, and Play serves the previous fully rolled-out release in its
// place (Play refuses this for the first release of a track and on
// internal testing tracks). An already halted release is a no-op.
func (c *Client) Halt(ctx context.Context, pkg, track string, versionCode int64) (Result, error) {
	return c.moveRollout(ctx, "Halt", pkg, track, func(ts TrackState, rels []*androidpublisher.TrackRelease) ([]*androidpublisher.TrackRelease, error) {
		i, err := ours(pkg, track, rels, versionCode)
		if err != nil {
			return nil, err
		}
		r := fromAPI(rels[i])
		switch r.Status {
		case StatusHalted:
			return nil, nil
		case StatusCompleted:
			if b := blocking(rels, versionCode); b != nil {
				return nil, &ReleaseConflictError{Package: pkg, Track: track, VersionCode: versionCode, Other: fromAPI(b),
					Reason: "another release is " + b.Status + " on the track; a fully rolled-out release is halted only when it is the newest"}
			}
			fallthrough
		case StatusInProgress:
			r.Status = StatusHalted
			return replaced(rels, i, r), nil
		}
		return nil, &StateError{Package: pkg, Track: track, VersionCode: versionCode, Status: r.Status, Op: "Halt", Reason: "only an inProgress or completed release can be halted"}
	})
}

// Resume serves our halted release again at fraction, which must be at least
// the fraction it was halted at; 0 means that same fraction (for a release
// halted after it was fully rolled out, which has none, everyone again), and
// 1 means everyone: the release becomes completed and the older completed
// release leaves the track. A release already inProgress at that fraction
// or higher, or already completed when fraction is 1, is a no-op.
//
// Resume is how a person's decision serves a halted release again; Complete
// refuses to undo a halt.
func (c *Client) Resume(ctx context.Context, pkg, track string, versionCode int64, fraction float64) (Result, error) {
	if fraction != 0 && fraction != 1 {
		if err := checkFraction(fraction); err != nil {
			return Result{}, err
		}
	}
	return c.moveRollout(ctx, "Resume", pkg, track, func(ts TrackState, rels []*androidpublisher.TrackRelease) ([]*androidpublisher.TrackRelease, error) {
		i, err := ours(pkg, track, rels, versionCode)
		if err != nil {
			return nil, err
		}
		r := fromAPI(rels[i])
		switch r.Status {
		case StatusInProgress:
			if fraction < 1 && r.UserFraction >= fraction {
				return nil, nil
			}
			return nil, &StateError{Package: pkg, Track: track, VersionCode: versionCode, Status: r.Status, Op: "Resume", Reason: "already in progress; use SetFraction to raise it or Complete to serve everyone"}
		case StatusCompleted:
			if fraction == 1 {
				return nil, nil
			}
			return nil, &StateError{Package: pkg, Track: track, VersionCode: versionCode, Status: r.Status, Op: "Resume", Reason: "only a halted release can be resumed"}
		case StatusHalted:
		default:
			return nil, &StateError{Package: pkg, Track: track, VersionCode: versionCode, Status: r.Status, Op: "Resume", Reason: "only a halted release can be resumed"}
		}
		if fraction == 1 || fraction == 0 && r.UserFraction == 0 {
			// To everyone: completed, as after a full rollout.
			r.Status, r.UserFraction = StatusCompleted, 0
			return place(pkg, track, rels, r)
		}
		if fraction == 0 {
			fraction = r.UserFraction
		}
		if fraction < r.UserFraction {
			return nil, invalid("userFraction %g is below %g, the fraction versionCode %d was halted at", fraction, r.UserFraction, versionCode)
		}
		if b := blocking(rels, versionCode); b != nil {
			return nil, &ReleaseConflictError{Package: pkg, Track: track, VersionCode: versionCode, Other: fromAPI(b), Reason: "another release is " + b.Status + " on the track"}
		}
		r.Status, r.UserFraction = StatusInProgress, fraction
		return replaced(rels, i, r), nil
	})
}

// Complete serves our inProgress release to everyone (status completed, no
// fraction); the older completed release leaves the track. It refuses when
// another release is in progress or halted. An already completed release
// is a no-op.
//
// A halted release is refused with a *StateError (Status halted): whoever
// halted it — releasepilot, or a person in the Play Console — stopped it on
// purpose, and a scheduled step must not undo that. A person who means to
// serve it to everyone resumes it with fraction 1. The track is read inside
// the edit, so the check costs no call.
func (c *Client) Complete(ctx context.Context, pkg, track string, versionCode int64) (Result, error) {
	return c.moveRollout(ctx, "Complete", pkg, track, func(ts TrackState, rels []*androidpublisher.TrackRelease) ([]*androidpublisher.TrackRelease, error) {
		i, err := ours(pkg, track, rels, versionCode)
		if err != nil {
			return nil, err
		}
		r := fromAPI(rels[i])
		switch r.Status {
		case StatusCompleted:
			return nil, nil
		case StatusHalted:
			return nil, &StateError{Package: pkg, Track: track, VersionCode: versionCode, Status: r.Status, Op: "Complete",
				Reason: "halted releases are not completed by Complete; resume it with fraction 1 to serve it to everyone"}
		}
		r.Status, r.UserFraction = StatusCompleted, 0
		return place(pkg, track, rels, r)
	})
}

// SetReleaseNotes replaces the release notes of our release (all languages).
func (c *Client) SetReleaseNotes(ctx context.Context, pkg, track string, versionCode int64, notes []ReleaseNote) (Result, error) {
	for _, n := range notes {
		if n.Language == "" {
			return Result{}, invalid("release note with text %q has no language", n.Text)
		}
	}
	return c.changeTrack(ctx, "SetReleaseNotes", pkg, track, func(ts TrackState, rels []*androidpublisher.TrackRelease) ([]*androidpublisher.TrackRelease, error) {
		i, err := ours(pkg, track, rels, versionCode)
		if err != nil {
			return nil, err
		}
		r := fromAPI(rels[i])
		if slices.Equal(r.ReleaseNotes, notes) {
			return nil, nil
		}
		r.ReleaseNotes = slices.Clone(notes)
		return replaced(rels, i, r), nil
	})
}

// Promote copies our release (name, versionCodes, notes, priority) from one
// track to another with the given status and fraction, under PutRelease's
// rules on the destination. The source track is left as it is.
func (c *Client) Promote(ctx context.Context, pkg, from, to string, versionCode int64, status Status, fraction float64) (Result, error) {
	if from == to {
		return Result{}, invalid("promote from %q to %q: tracks must differ", from, to)
	}
	if status == StatusHalted {
		return Result{}, invalid("status halted: a promoted release starts as draft, inProgress or completed")
	}
	if err := (Release{VersionCodes: []int64{versionCode}, Status: status, UserFraction: fraction}).validate(); err != nil {
		return Result{}, err
	}
	o := &op{name: "Promote"}
	defer c.finish(o)
	var res Result
	changed, err := c.mutate(ctx, o, pkg, func(ctx context.Context, e *edit) (bool, error) {
		src, err := e.getTrack(ctx, from)
		if err != nil {
			return false, err
		}
		i, err := ours(pkg, from, src.Releases, versionCode)
		if err != nil {
			return false, err
		}
		want := fromAPI(src.Releases[i])
		want.Status, want.UserFraction = status, fraction
		if err := want.validate(); err != nil {
			return false, err
		}
		dst, err := e.getTrack(ctx, to)
		if err != nil {
			return false, err
		}
		ts := stateOf(dst)
		if have, ok := ts.Release(versionCode); ok && sameRelease(have, want) {
			res.Track = ts
			return false, nil
		} else if ok && have.Status != StatusDraft {
			return false, &StateError{Package: pkg, Track: to, VersionCode: versionCode, Status: have.Status, Op: "Promote", Reason: "already on the destination track"}
		}
		next, err := place(pkg, to, dst.Releases, want)
		if err != nil {
			return false, err
		}
		nt := &androidpublisher.Track{Track: to, Releases: next}
		if err := e.putTrack(ctx, nt); err != nil {
			return true, err
		}
		res.Track = stateOf(nt)
		return true, nil
	})
	res.Changed, res.Calls = changed, o.calls
	return res, err
}

// Track reads a track (insert edit, get track, delete edit: three calls).
func (c *Client) Track(ctx context.Context, pkg, track string) (TrackState, error) {
	o := &op{name: "Track"}
	defer c.finish(o)
	var ts TrackState
	_, err := c.mutate(ctx, o, pkg, func(ctx context.Context, e *edit) (bool, error) {
		t, err := e.getTrack(ctx, track)
		if err != nil {
			return false, err
		}
		ts = stateOf(t)
		return false, nil
	})
	return ts, err
}

// LifecycleState is Play's review state of a committed release, e.g.
// "RELEASE_LIFECYCLE_STATE_IN_REVIEW". PUBLISHED also covers a halted release.
type LifecycleState string

const (
	LifecycleDraft            LifecycleState = "RELEASE_LIFECYCLE_STATE_DRAFT"
	LifecycleNotSentForReview LifecycleState = "RELEASE_LIFECYCLE_STATE_NOT_SENT_FOR_REVIEW"
	LifecycleInReview         LifecycleState = "RELEASE_LIFECYCLE_STATE_IN_REVIEW"
	LifecycleApprovedNotPub   LifecycleState = "RELEASE_LIFECYCLE_STATE_APPROVED_NOT_PUBLISHED"
	LifecycleNotApproved      LifecycleState = "RELEASE_LIFECYCLE_STATE_NOT_APPROVED"
	LifecyclePublished        LifecycleState = "RELEASE_LIFECYCLE_STATE_PUBLISHED"
)

// ReleaseSummary is one committed release and whether it is actually live.
type ReleaseSummary struct {
	Name         string
	VersionCodes []int64
	State        LifecycleState
}

// ReleaseSummaries lists a track's committed releases (at most 20) with their
// review state: the only place Play tells "committed" from "live". One call,
// no edit, so it never disturbs an edit in flight.
func (c *Client) ReleaseSummaries(ctx context.Context, pkg, track string) ([]ReleaseSummary, error) {
	o := &op{name: "ReleaseSummaries"}
	defer c.finish(o)
	var resp *androidpublisher.ListReleaseSummariesResponse
	err := c.call(ctx, o, "applications.tracks.releases.list", true, func() error {
		var err error
		resp, err = c.pub.Applications.Tracks.Releases.List("applications/" + pkg + "/tracks/" + track).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("playstore: list releases of %s track %q: %w", pkg, track, err)
	}
	var out []ReleaseSummary
	for _, r := range resp.Releases {
		s := ReleaseSummary{Name: r.ReleaseName, State: LifecycleState(r.ReleaseLifecycleState)}
		for _, a := range r.ActiveArtifacts {
			s.VersionCodes = append(s.VersionCodes, a.VersionCode)
		}
		out = append(out, s)
	}
	return out, nil
}
