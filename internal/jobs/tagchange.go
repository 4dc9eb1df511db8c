package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Tag changes a delivery reported for a tag that already has a release.
const (
	// TagChangeMoved: the tag names another commit (TagChangeArgs.Commit).
	TagChangeMoved = "moved"
	// TagChangeDeleted: the tag was deleted.
	TagChangeDeleted = "deleted"
	// TagChangeCheck: a delivery without a commit (create, release) named
	// the tag again; resolve it and see whether it moved.
	TagChangeCheck = "check"
)

// TagChangeArgs applies what happened to a released tag: the webhook
// records the delivery and the tag's new state, and this job does the rest
// (withdrawing lanes, starting the new release) away from the webhook's
// transaction.
type TagChangeArgs struct {
	ReleaseID string `json:"release_id"`
	Change    string `json:"change"`
	// Commit is where a moved tag points now.
	Commit   string `json:"commit,omitempty"`
	Delivery string `json:"delivery"`
	Event    string `json:"event"`
	// Platforms and OTAOnly are what the tag's name matched, for a restart.
	Platforms []string `json:"platforms"`
	OTAOnly   bool     `json:"ota_only,omitempty"`
}

func (TagChangeArgs) Kind() string { return "tag_change" }

// InsertOpts gives a moved or deleted tag the queue and priority of
// commands: it withdraws lanes, and should stop an upload before it
// starts. A check asks GitHub first and usually finds nothing changed, so
// it waits with the lane steps on the plan queue.
func (a TagChangeArgs) InsertOpts() river.InsertOpts {
	if a.Change == TagChangeCheck {
		return river.InsertOpts{Queue: queue.Plan, Priority: queue.PriorityLane, MaxAttempts: 10}
	}
	return river.InsertOpts{Queue: queue.Control, Priority: queue.PriorityControl, MaxAttempts: 10}
}

// TagResolver resolves a tag to its commit (fs.ErrNotExist when it is gone).
type TagResolver interface {
	ResolveTag(ctx context.Context, tag string) (string, error)
}

// TagChanges applies moved and deleted tags to their releases.
type TagChanges struct {
	Store *store.Store
	Apps  map[string]config.App
	// Repo opens a resolver of the repository "owner/name" (check only).
	Repo func(fullName string) (TagResolver, error)
	// Enqueue inserts the new release's plan_release job in its transaction.
	Enqueue func(ctx context.Context, tx *store.Store, args river.JobArgs, opts *river.InsertOpts) (int64, bool, error)
	// Cancel cancels the unfinished jobs of a withdrawn lane; a running one
	// has its context cancelled.
	Cancel func(ctx context.Context, laneID string) error
	Now    func() time.Time
	Log    *slog.Logger
}

// TagChangeWorker runs TagChanges.Apply.
type TagChangeWorker struct {
	river.WorkerDefaults[TagChangeArgs]
	Changes *TagChanges
}

func (w *TagChangeWorker) Work(ctx context.Context, job *river.Job[TagChangeArgs]) error {
	err := w.Changes.Apply(ctx, job.Args)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	return err
}

func (t *TagChanges) now() time.Time {
	if t.Now == nil {
		return time.Now().UTC()
	}
	return t.Now().UTC()
}

func (t *TagChanges) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

// Apply applies one tag change. Running it again after a crash finishes
// what the last run began and repeats no withdrawal and no restart.
func (t *TagChanges) Apply(ctx context.Context, a TagChangeArgs) error {
	rel, err := t.Store.GetRelease(ctx, a.ReleaseID)
	if err != nil {
		return err
	}
	app, ok := t.Apps[rel.App]
	if !ok {
		return river.JobCancel(fmt.Errorf("app %q is not configured", rel.App))
	}
	switch a.Change {
	case TagChangeCheck:
		return t.check(ctx, app, rel, a)
	case TagChangeMoved:
		if rel.TagState != release.TagMoved {
			return nil // moved back, or deleted since: a later change decides
		}
		if rel.TagCommit != a.Commit {
			a.Commit = rel.TagCommit // moved again since; act on where it is
		}
		return t.moved(ctx, app, rel, a)
	case TagChangeDeleted:
		if rel.TagState != release.TagDeleted {
			return nil // re-created since
		}
		return t.deleted(ctx, rel, a)
	}
	return river.JobCancel(fmt.Errorf("tag change %q is not one of moved, deleted, check", a.Change))
}

// check resolves the tag of a delivery that carried no commit. A tag that
// is gone counts as deleted, one that names another commit as moved.
func (t *TagChanges) check(ctx context.Context, app config.App, rel release.Release, a TagChangeArgs) error {
	if rel.SupersededBy != "" || rel.TagState == release.TagDeleted {
		return nil
	}
	if t.Repo == nil {
		return nil
	}
	repo, err := t.Repo(app.Repository)
	if err != nil {
		return river.JobCancel(err)
	}
	commit, err := repo.ResolveTag(ctx, rel.Tag)
	if errors.Is(err, fs.ErrNotExist) {
		changed, err := t.Store.SetTagState(ctx, rel.ID, release.TagDeleted, "", t.now())
		if err != nil || !changed {
			return err
		}
		rel.TagState = release.TagDeleted
		return t.deleted(ctx, rel, a)
	}
	if err != nil {
		return fmt.Errorf("resolve tag %s: %w", rel.Tag, err)
	}
	known := rel.Commit
	if rel.TagState == release.TagMoved {
		known = rel.TagCommit
	}
	if commit == known || rel.Commit == "" {
		return nil
	}
	state, to := release.TagMoved, commit
	if commit == rel.Commit {
		state, to = "", ""
	}
	changed, err := t.Store.SetTagState(ctx, rel.ID, state, to, t.now())
	if err != nil || !changed || state == "" {
		return err
	}
	rel.TagState, rel.TagCommit = state, to
	a.Commit = commit
	return t.moved(ctx, app, rel, a)
}

// laneOutcome is what a tag change did to one lane.
type laneOutcome struct {
	cancelled  []string // platforms withdrawn now or before
	continuing map[string]string
	finished   map[string]string
}

func (o laneOutcome) details() map[string]any {
	sort.Strings(o.cancelled)
	d := map[string]any{"cancelled": o.cancelled}
	if o.cancelled == nil {
		d["cancelled"] = []string{}
	}
	if len(o.continuing) > 0 {
		d["continuing"] = o.continuing
	}
	if len(o.finished) > 0 {
		d["finished"] = o.finished
	}
	return d
}

// withdrawLanes cancels every lane of rel that has not passed its point of
// no return, each in a transaction that locks it first, and cancels their
// jobs. A release still planning (no lanes yet) is cancelled instead, and
// reported through planningCancelled.
func (t *TagChanges) withdrawLanes(ctx context.Context, rel release.Release, reason string) (laneOutcome, bool, error) {
	out := laneOutcome{continuing: map[string]string{}, finished: map[string]string{}}
	lanes, err := t.Store.Lanes(ctx, rel.ID)
	if err != nil {
		return out, false, err
	}
	if len(lanes) == 0 && rel.State == release.ReleasePlanning {
		// The planner claims the release in its own transaction before it
		// writes lanes; whichever commits first wins.
		claimed := false
		err := t.Store.Tx(ctx, func(tx *store.Store) error {
			ok, err := tx.ClaimPlanning(ctx, rel.ID, t.now())
			if err != nil || !ok {
				return err
			}
			claimed = true
			return tx.SetReleaseState(ctx, rel.ID, release.ReleaseCancelled, t.now())
		})
		if err != nil {
			return out, false, err
		}
		if claimed {
			return out, true, nil
		}
		if lanes, err = t.Store.Lanes(ctx, rel.ID); err != nil {
			return out, false, err
		}
	}
	var withdrawn []string
	for _, l := range lanes {
		var now time.Time
		err := t.Store.Tx(ctx, func(tx *store.Store) error {
			now = t.now()
			cur, data, already, err := tx.LockLane(ctx, l.ID)
			if err != nil {
				return err
			}
			p := string(cur.Platform)
			switch {
			case already:
				out.cancelled = append(out.cancelled, p)
				withdrawn = append(withdrawn, cur.ID)
				return nil
			case cur.Kind == release.KindRefused:
				return nil
			case cur.Status.State.Terminal():
				out.finished[p] = string(cur.Status.State)
				return nil
			}
			if past, why := PastPointOfNoReturn(cur, data); past {
				out.continuing[p] = why
				return nil
			}
			if _, err := tx.WithdrawLane(ctx, cur, reason, now); err != nil {
				return err
			}
			out.cancelled = append(out.cancelled, p)
			withdrawn = append(withdrawn, cur.ID)
			_, err = tx.AppendEvent(ctx, release.Event{At: now, Actor: "github", ReleaseID: rel.ID, LaneID: cur.ID, Kind: "lane.cancelled",
				Details: map[string]any{"platform": p, "reason": reason}})
			return err
		})
		if err != nil {
			return out, false, fmt.Errorf("withdraw lane %s: %w", l.ID, err)
		}
	}
	// Cancel the withdrawn lanes' jobs; a job already past its last record
	// has its context cancelled, and any write it tries is refused.
	for _, id := range withdrawn {
		if t.Cancel != nil {
			if err := t.Cancel(ctx, id); err != nil {
				return out, false, fmt.Errorf("cancel jobs of lane %s: %w", id, err)
			}
		}
	}
	return out, false, nil
}

// settle cancels a release none of whose lanes is left running.
func (t *TagChanges) settle(ctx context.Context, tx *store.Store, rel release.Release, out laneOutcome) error {
	if len(out.continuing) > 0 || len(out.cancelled) == 0 || rel.State != release.ReleaseActive {
		return nil
	}
	for _, st := range out.finished {
		if st == string(release.StateCompleted) {
			return nil
		}
	}
	return tx.SetReleaseState(ctx, rel.ID, release.ReleaseCancelled, t.now())
}

func (t *TagChanges) deleted(ctx context.Context, rel release.Release, a TagChangeArgs) error {
	reason := fmt.Sprintf("tag %s was deleted before this lane passed its point of no return", rel.Tag)
	out, planning, err := t.withdrawLanes(ctx, rel, reason)
	if err != nil {
		return err
	}
	details := out.details()
	details["delivery"], details["event"], details["tag"], details["commit"] = a.Delivery, a.Event, rel.Tag, rel.Commit
	switch {
	case planning:
		details["outcome"] = "the release was still planning; it was cancelled and no lane starts"
	case len(out.continuing) > 0:
		details["outcome"] = fmt.Sprintf("lanes past their point of no return continue: %s", describe(out.continuing))
	case len(out.cancelled) > 0:
		details["outcome"] = "every lane was cancelled"
	default:
		details["outcome"] = "no lane was running"
	}
	return t.Store.Tx(ctx, func(tx *store.Store) error {
		if err := t.settle(ctx, tx, rel, out); err != nil {
			return err
		}
		_, err := tx.AppendEvent(ctx, release.Event{At: t.now(), Actor: "github", ReleaseID: rel.ID, Kind: "tag.deleted", Details: details})
		return err
	})
}

func (t *TagChanges) moved(ctx context.Context, app config.App, rel release.Release, a TagChangeArgs) error {
	policy, err := release.ParseTagMovePolicy(app.OnTagMove)
	if err != nil {
		return river.JobCancel(err)
	}
	details := map[string]any{"delivery": a.Delivery, "event": a.Event, "tag": rel.Tag, "from": rel.Commit, "to": a.Commit, "policy": string(policy)}
	if policy == release.TagMoveRefuse {
		details["outcome"] = fmt.Sprintf("this release stays on %s; tag a new version to ship %s", release.ShortSHA(rel.Commit), release.ShortSHA(a.Commit))
		if a.Commit == rel.Commit {
			details["outcome"] = "the tag was created again at this release's commit; lanes cancelled by its deletion stay cancelled"
		}
		_, err := t.Store.AppendEvent(ctx, release.Event{At: t.now(), Actor: "github", ReleaseID: rel.ID, Kind: "tag.moved", Details: details})
		return err
	}

	reason := fmt.Sprintf("tag %s moved to %s before this lane passed its point of no return; restarted there", rel.Tag, release.ShortSHA(a.Commit))
	out, planning, err := t.withdrawLanes(ctx, rel, reason)
	if err != nil {
		return err
	}
	for k, v := range out.details() {
		details[k] = v
	}
	platforms := append([]string(nil), out.cancelled...)
	if planning {
		platforms = a.Platforms
	}
	if len(platforms) == 0 {
		details["outcome"] = "no lane could be restarted: " + describe(out.continuing)
		if len(out.continuing) == 0 {
			details["outcome"] = "no lane was running; nothing restarted"
		}
		_, err := t.Store.AppendEvent(ctx, release.Event{At: t.now(), Actor: "github", ReleaseID: rel.ID, Kind: "tag.moved", Details: details})
		return err
	}
	return t.Store.Tx(ctx, func(tx *store.Store) error {
		now := t.now()
		next, err := tx.SupersedeRelease(ctx, rel.ID, release.Release{App: rel.App, Tag: rel.Tag, Version: rel.Version, Commit: a.Commit, CreatedAt: now, UpdatedAt: now})
		if errors.Is(err, store.ErrConflict) {
			return nil // restarted by an earlier run of this job
		}
		if err != nil {
			return err
		}
		if err := t.settle(ctx, tx, rel, out); err != nil {
			return err
		}
		details["restarted_as"] = next.ID
		details["restarted_platforms"] = platforms
		if planning {
			details["outcome"] = fmt.Sprintf("the release was still planning; it is planned again at %s as %s", release.ShortSHA(a.Commit), next.ID)
		} else {
			details["outcome"] = fmt.Sprintf("%s planned again at %s as %s", strings.Join(platforms, ", "), release.ShortSHA(a.Commit), next.ID)
			if len(out.continuing) > 0 {
				details["outcome"] = details["outcome"].(string) + "; continuing on " + release.ShortSHA(rel.Commit) + ": " + describe(out.continuing)
			}
		}
		if _, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "github", ReleaseID: rel.ID, Kind: "tag.moved", Details: details}); err != nil {
			return err
		}
		if _, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "github", ReleaseID: next.ID, Kind: "release.created",
			Details: map[string]any{"delivery": a.Delivery, "event": a.Event, "tag": rel.Tag, "commit": a.Commit, "platforms": platforms,
				"ota_only": a.OTAOnly, "supersedes": rel.ID}}); err != nil {
			return err
		}
		if t.Enqueue == nil {
			return nil
		}
		_, _, err = t.Enqueue(ctx, tx, PlanReleaseArgs{App: rel.App, Tag: rel.Tag, Commit: a.Commit, ReleaseID: next.ID, Platforms: platforms, OTAOnly: a.OTAOnly}, nil)
		return err
	})
}

func describe(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" ("+m[k]+")")
	}
	return strings.Join(parts, ", ")
}

// PastPointOfNoReturn reports whether a lane has changed something in a
// store or on the OTA server that withdrawing it would strand — and says
// what. A lane past pending is rolling out. A pending store lane is past
// once a build was chosen for upload or uploaded (iOS: an upload, a build
// or its asset; Android: a versionCode or an upload); a pending OTA lane
// once a release exists on the CodePush server (Staging or Production).
// data is the lane's adapter state as stored; its keys are the lanes' own.
func PastPointOfNoReturn(l release.Lane, data json.RawMessage) (bool, string) {
	if l.Status.State != release.StatePending {
		return true, fmt.Sprintf("%s at %d%%", l.Status.State, l.Status.Percent)
	}
	var d map[string]json.RawMessage
	_ = json.Unmarshal(data, &d)
	get := func(key string) string {
		v, ok := d[key]
		if !ok {
			return ""
		}
		var s any
		if json.Unmarshal(v, &s) != nil {
			return ""
		}
		switch x := s.(type) {
		case string:
			return x
		case float64:
			if x != 0 {
				return fmt.Sprint(int64(x))
			}
		case bool:
			if x {
				return "yes"
			}
		}
		return ""
	}
	switch {
	case l.Kind == release.KindOTA:
		if label := get("production_label"); label != "" {
			return true, "released over the air as " + label + " on Production"
		}
		if label := get("staging_label"); label != "" {
			return true, "released over the air as " + label + " on Staging"
		}
	case l.Kind == release.KindStore && l.Platform == release.IOS:
		if id := get("build_id"); id != "" {
			return true, "build " + id + " is in App Store Connect"
		}
		if id := get("upload_id"); id != "" {
			return true, "upload " + id + " is in App Store Connect"
		}
		if asset := get("asset"); asset != "" {
			return true, "uploading " + asset + " to App Store Connect"
		}
	case l.Kind == release.KindStore && l.Platform == release.Android:
		if vc := get("version_code"); vc != "" {
			return true, "versionCode " + vc + " is chosen for Google Play"
		}
		if get("uploaded") != "" {
			return true, "the bundle is in Google Play"
		}
	}
	return false, ""
}
