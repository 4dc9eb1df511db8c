// Package hotfix makes OTA releases made by hand — with releasepilot's CLI
// and API or with the CodePush CLI — follow the rules a tagged release
// follows: the native gate on a named commit (fingerprinted through GitHub
// when releasepilot has not seen it yet), code signing, the app's staged
// rollout plan and health gates on Production, and the audit log with the
// caller as actor.
//
// [Releaser] wraps the CodePush server (it implements
// codepush.Operations). What it records about a change — a release and its
// OTA lane, a lane's new status, an audit event — commits in the same
// transaction as the change to the CodePush history (store.WithHistoryHook),
// so neither exists without the other.
package hotfix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Target is the releasepilot app and platform a CodePush app ships.
type Target struct {
	App      config.App
	Platform release.Platform
}

// Fingerprinter records the native fingerprints of a commit of an app, for
// every platform, when releasepilot has none yet.
type Fingerprinter interface {
	Ensure(ctx context.Context, app config.App, commit string) error
}

// Releaser is the CodePush server as people use it: codepush.Operations
// with releasepilot's rules added. The embedded Service is what it calls
// once a change is allowed.
type Releaser struct {
	*codepush.Service
	Store *store.Store
	// Targets maps CodePush app names to what they ship. Apps not in it
	// (made with "code-push app add") pass straight to the Service, whose
	// native gate refuses releases to them.
	Targets map[string]Target
	// Fingerprints computes missing fingerprints; nil: a commit must have
	// been fingerprinted already (by a tagged release).
	Fingerprints Fingerprinter
	Now          func() time.Time
	Log          *slog.Logger
}

var _ codepush.Operations = (*Releaser)(nil)

func (h *Releaser) now() time.Time {
	if h.Now == nil {
		return time.Now().UTC()
	}
	return h.Now().UTC()
}

func (h *Releaser) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func actor(ctx context.Context) string {
	if a := codepush.ActorFrom(ctx).Name; a != "" {
		return a
	}
	return "anonymous"
}

// laneData is an OTA lane's state. Its JSON is the OTA lane's
// (internal/jobs/otalane): its executor drives the lane's Production
// release, named by codepush_app and production_label.
type laneData struct {
	CodePushApp     string    `json:"codepush_app,omitempty"`
	TargetRange     string    `json:"target_range,omitempty"`
	StagingLabel    string    `json:"staging_label,omitempty"`
	StagedAt        time.Time `json:"staged_at,omitzero"`
	ProductionLabel string    `json:"production_label,omitempty"`
	// Source is "hotfix" for lanes made here rather than by a tag.
	Source string `json:"source,omitempty"`
}

const sourceHotfix = "hotfix"

// commitLineRE finds "Commit: <sha>" on a line of its own in a release
// description: how the CodePush CLI, which has no commit option, names one.
var commitLineRE = regexp.MustCompile(`(?im)^[ \t]*commit:[ \t]*([0-9a-f]{7,40})[ \t]*\r?$`)

// CommitFromDescription returns the commit a "Commit: <sha>" line of a
// release description names, or "".
func CommitFromDescription(d string) string {
	if m := commitLineRE.FindStringSubmatch(d); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// maxRefingerprint bounds how many binaries a release without a target
// range fingerprints again under the current rules (each reads its commit
// from GitHub once; the result is recorded).
const maxRefingerprint = 20

// lanePlan is the plan of an app's OTA lane, as a tagged release gets it
// (internal/jobs' planner builds the same); start below the first stage adds a stage
// at start in front.
func lanePlan(app config.App, start int) release.Plan {
	stages := app.OTA.Stages
	if len(stages) == 0 {
		stages = release.DefaultStages
	}
	if start > 0 && start < stages[0] {
		stages = append([]int{start}, stages...)
	}
	var rules []release.GateRule
	for _, g := range app.Rollout.Gates {
		if g.AppliesTo(config.LaneOTA) {
			rules = append(rules, jobs.GateRule(g))
		}
	}
	return release.StagedPlan(stages, release.Wait{Soak: release.Duration(app.Rollout.Soak.D()), Window: app.Rollout.Window}, rules)
}

func firstPercent(app config.App) int {
	if len(app.OTA.Stages) == 0 {
		return release.DefaultStages[0]
	}
	return app.OTA.Stages[0]
}

// statusAt is where a lane stands once its release is rolled out to pct:
// past every percentage step at or below pct, so that the next move waits
// for the soak and the gates before the next stage.
func statusAt(plan release.Plan, st release.Status, pct int, reason string, now time.Time) release.Status {
	idx := 0
	for i, s := range plan.Steps {
		if s.SetPercent != nil && *s.SetPercent <= pct {
			idx = i + 1
		}
	}
	st.State, st.StepIndex, st.Percent, st.Reason = release.StateRolling, idx, pct, reason
	st.StepStartedAt, st.NextEligibleAt, st.UpdatedAt = now, time.Time{}, now
	if pct >= 100 {
		st.State, st.StepIndex = release.StateCompleted, len(plan.Steps)
	}
	return st
}

// prepare makes sure the native gate can judge commit against the binaries
// rng covers (a semver range; an Expo app's runtime version; "" for every
// recorded binary): it fingerprints the commit through GitHub when
// releasepilot has no fingerprint of it, and the covered binaries' commits
// too when they have none under the current rules — a binary recorded
// before the fingerprint algorithm changed is then judged under the
// current rules, as the planner judges the live binary, and a refusal can
// name the files and packages that differ. Without a commit there is
// nothing to prepare; the gate decides.
func (h *Releaser) prepare(ctx context.Context, t Target, commit, rng string) error {
	if commit == "" {
		return nil
	}
	known := func(c string) (bool, error) {
		_, err := h.Store.GetFingerprint(ctx, t.App.Name, t.Platform, c, nativecheck.Algorithm)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	ok, err := known(commit)
	if err != nil {
		return err
	}
	if !ok {
		if !fullSHA.MatchString(commit) {
			return &codepush.Error{Kind: codepush.KindInvalid, Field: "commit", Value: commit,
				Message: "name the commit by its full 40-character SHA (git rev-parse HEAD), so that releasepilot can fingerprint it"}
		}
		if h.Fingerprints == nil {
			return &codepush.Error{Kind: codepush.KindConflict, Field: "commit", Value: commit,
				Message: "releasepilot has no native fingerprint of this commit and cannot compute one (no GitHub access is configured)"}
		}
		if err := h.Fingerprints.Ensure(ctx, t.App, commit); err != nil {
			return err
		}
	}
	bins, err := h.Store.Binaries(ctx, t.App.Name, t.Platform)
	if err != nil {
		return err
	}
	var covered []release.Binary
	switch {
	case t.App.OTA.Protocol == "expo":
		covered = gate.WithRuntimeVersion(bins, rng)
	case rng == "":
		// The default range may name any binary; the newest matter, and
		// an older one left under older rules is only left out of it.
		covered = slices.SortedFunc(slices.Values(bins), func(a, b release.Binary) int { return b.CreatedAt.Compare(a.CreatedAt) })
		covered = covered[:min(len(covered), maxRefingerprint)]
	default:
		r, ok := codepush.ParseRange(rng)
		if !ok {
			return nil // the Service names the bad range
		}
		covered = gate.Covered(bins, r)
	}
	seen := map[string]bool{commit: true}
	for _, b := range covered {
		if seen[b.Commit] || b.Commit == "" || !fullSHA.MatchString(b.Commit) || h.Fingerprints == nil {
			continue
		}
		seen[b.Commit] = true
		if ok, err := known(b.Commit); err != nil || ok {
			continue
		}
		// A failure here is not the release's to report: the gate then
		// cannot show that the binary matches, and refuses it (fail
		// closed), saying why.
		if err := h.Fingerprints.Ensure(ctx, t.App, b.Commit); err != nil {
			h.log().Warn("hotfix: cannot fingerprint a binary's commit under the current rules; the gate will refuse that binary", "commit", b.Commit, "version", b.Version, "err", err)
		}
	}
	return nil
}

// Release implements codepush.Operations: a release to Production starts at
// the plan's first stage (or lower, when asked) and becomes a lane the
// reconciler moves through the plan's waits and gates; a release to another
// deployment is recorded with a pending lane that a promotion to Production
// starts.
func (h *Releaser) Release(ctx context.Context, in codepush.ReleaseInput) (codepush.Release, error) {
	t, ok := h.Targets[in.App]
	if !ok {
		return h.Service.Release(ctx, in)
	}
	if in.Commit == "" {
		in.Commit = CommitFromDescription(in.Description)
	}
	in.Commit = strings.ToLower(strings.TrimSpace(in.Commit))
	if err := h.prepare(ctx, t, in.Commit, in.AppVersion); err != nil {
		return codepush.Release{}, err
	}
	start := 0
	if in.Deployment == codepush.Production {
		first := firstPercent(t.App)
		// Asking for more than the first stage starts there; a value no
		// CodePush server accepts (above 100) is left for the Service to
		// refuse, naming it.
		if in.Rollout == 0 || (in.Rollout > first && in.Rollout <= 100) {
			in.Rollout = first
		}
		start = in.Rollout
	}
	who := actor(ctx)
	ctx = store.WithHistoryHook(ctx, func(ctx context.Context, tx *store.Store, ch store.HistoryChange) error {
		if ch.Op != store.HistoryAppend {
			return nil
		}
		if in.Deployment == codepush.Production {
			return h.startLane(ctx, tx, t, in.App, ch.Release, nil, who, start)
		}
		return h.stageLane(ctx, tx, t, in.App, in.Deployment, ch.Release, who)
	})
	return h.Service.Release(ctx, in)
}

// newRelease records a releasepilot release for a release made by hand.
// Its tag cannot collide with a git tag: git refs cannot contain ':'.
func (h *Releaser) newRelease(ctx context.Context, tx *store.Store, t Target, app, dep string, r codepush.Release) (release.Release, error) {
	tag := fmt.Sprintf("hotfix:%s/%s/%s", app, dep, r.Label)
	now := h.now()
	for attempt := 0; ; attempt++ {
		rel, created, err := tx.CreateRelease(ctx, release.Release{App: t.App.Name, Tag: tag, Version: r.AppVersion, Commit: r.Commit,
			State: release.ReleaseActive, Notes: r.Description, CreatedAt: now, UpdatedAt: now})
		if err != nil || created {
			return rel, err
		}
		if attempt > 3 {
			return rel, fmt.Errorf("release tag %s is taken", tag)
		}
		// The label was used before the deployment's history was cleared.
		tag = fmt.Sprintf("hotfix:%s/%s/%s@%d", app, dep, r.Label, now.UnixMilli()+int64(attempt))
	}
}

// stageLane records a release made to a deployment other than Production:
// a releasepilot release with an OTA lane pending until a promotion to
// Production. Older pending lanes of the app made by hand are superseded.
func (h *Releaser) stageLane(ctx context.Context, tx *store.Store, t Target, app, dep string, r codepush.Release, who string) error {
	now := h.now()
	details := map[string]any{"codepush_app": app, "deployment": dep, "label": r.Label,
		"commit": r.Commit, "target_range": r.AppVersion, "package_hash": r.PackageHash, "verified": r.Commit != ""}
	if dep != codepush.Staging {
		// A deployment releasepilot does not roll out (QA, Beta…): the
		// audit log records it; no release or lane follows it.
		return h.event(ctx, tx, who, release.Lane{}, "ota.released", details)
	}
	if err := h.supersede(ctx, tx, t, app, who, func(d laneData, l release.Lane) bool {
		return d.Source == sourceHotfix && l.Status.State == release.StatePending && d.StagingLabel != r.Label
	}, "superseded by "+r.Label+" on Staging"); err != nil {
		return err
	}
	rel, err := h.newRelease(ctx, tx, t, app, dep, r)
	if err != nil {
		return err
	}
	l := release.Lane{ReleaseID: rel.ID, Platform: t.Platform, Kind: release.KindOTA, Plan: lanePlan(t.App, 0),
		Reason: fmt.Sprintf("released by hand by %s: %s %s on %s for binaries %s", who, app, r.Label, dep, r.AppVersion),
		Status: release.Status{State: release.StatePending, Reason: fmt.Sprintf("%s is on %s; promote it to Production to start the rollout", r.Label, dep), UpdatedAt: now}}
	stored, err := tx.CreateLane(ctx, l, now)
	if err != nil {
		return err
	}
	data := laneData{CodePushApp: app, TargetRange: r.AppVersion, StagingLabel: r.Label, StagedAt: r.UploadTime, Source: sourceHotfix}
	if err := tx.SetLaneData(ctx, stored.ID, data, now); err != nil {
		return err
	}
	return h.event(ctx, tx, who, stored, "ota.released", details)
}

// startLane records a release that reached Production at pct: the lane
// pending on Staging (when the release was promoted from it), or a new
// release and lane, now rolling.
func (h *Releaser) startLane(ctx context.Context, tx *store.Store, t Target, app string, r codepush.Release, staged *store.LaneWithData, who string, pct int) error {
	now := h.now()
	if pct <= 0 || pct > 100 {
		pct = 100
	}
	var l release.Lane
	var data laneData
	if staged != nil {
		l = staged.Lane
		if err := json.Unmarshal(staged.Data, &data); err != nil {
			return fmt.Errorf("lane %s data: %w", l.ID, err)
		}
		if pct < firstPercent(t.App) && data.Source == sourceHotfix {
			// The plan gets a first stage at pct; the lane was made by hand.
			l.Plan = lanePlan(t.App, pct)
			if err := tx.SetLanePlan(ctx, l.ID, l.Plan, now); err != nil {
				return err
			}
		}
	} else {
		rel, err := h.newRelease(ctx, tx, t, app, codepush.Production, r)
		if err != nil {
			return err
		}
		l = release.Lane{ReleaseID: rel.ID, Platform: t.Platform, Kind: release.KindOTA, Plan: lanePlan(t.App, pct),
			Reason: fmt.Sprintf("released by hand by %s: %s %s on Production for binaries %s", who, app, r.Label, r.AppVersion),
			Status: release.Status{State: release.StatePending, UpdatedAt: now}}
		if l, err = tx.CreateLane(ctx, l, now); err != nil {
			return err
		}
		data = laneData{CodePushApp: app, Source: sourceHotfix}
	}
	data.TargetRange, data.ProductionLabel = r.AppVersion, r.Label
	if err := tx.SetLaneData(ctx, l.ID, data, now); err != nil {
		return err
	}
	next := statusAt(l.Plan, l.Status, pct, fmt.Sprintf("%s %s on Production at %d%% (by %s)", app, r.Label, pct, who), now)
	if _, err := tx.UpdateStatus(ctx, l.ID, next); err != nil {
		return err
	}
	return h.event(ctx, tx, who, l, "ota.promoted", map[string]any{"codepush_app": app, "label": r.Label, "from": r.OriginalDeployment,
		"source_label": r.OriginalLabel, "commit": r.Commit, "target_range": r.AppVersion, "rollout": pct, "state": string(next.State)})
}

func (h *Releaser) event(ctx context.Context, tx *store.Store, who string, l release.Lane, kind string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	if l.ID != "" {
		details["platform"] = string(l.Platform)
	}
	_, err := tx.AppendEvent(ctx, release.Event{At: h.now(), Actor: who, ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: kind, Details: details})
	return err
}

// lanes lists the app's OTA lanes for CodePush app app whose data match.
func (h *Releaser) lanes(ctx context.Context, q *store.Store, t Target, app string, match func(laneData, release.Lane) bool) ([]store.LaneWithData, error) {
	all, err := q.OTALanes(ctx, t.App.Name, t.Platform, 200)
	if err != nil {
		return nil, err
	}
	var out []store.LaneWithData
	for _, l := range all {
		var d laneData
		if json.Unmarshal(l.Data, &d) != nil || d.CodePushApp != app {
			continue
		}
		if match(d, l.Lane) {
			out = append(out, l)
		}
	}
	return out, nil
}

// laneOf finds the lane whose Production release is label (or, on
// Staging, whose staged release is label).
func (h *Releaser) laneOf(ctx context.Context, q *store.Store, t Target, app, dep, label string) (*store.LaneWithData, error) {
	ls, err := h.lanes(ctx, q, t, app, func(d laneData, _ release.Lane) bool {
		switch dep {
		case codepush.Production:
			return d.ProductionLabel == label
		case codepush.Staging:
			return d.StagingLabel == label
		}
		return false
	})
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	return &ls[0], nil
}

// supersede cancels the lanes that match, recording why.
func (h *Releaser) supersede(ctx context.Context, tx *store.Store, t Target, app, who string, match func(laneData, release.Lane) bool, reason string) error {
	ls, err := h.lanes(ctx, tx, t, app, func(d laneData, l release.Lane) bool { return !l.Status.State.Terminal() && match(d, l) })
	if err != nil {
		return err
	}
	for _, l := range ls {
		next, err := l.Status.Transition(release.StateCancelled, reason, h.now())
		if err != nil {
			return err
		}
		if _, err := tx.UpdateStatus(ctx, l.ID, next); err != nil {
			return err
		}
		if err := h.event(ctx, tx, who, l.Lane, "lane.cancelled", map[string]any{"reason": reason}); err != nil {
			return err
		}
	}
	return nil
}

// Promote implements codepush.Operations. A promotion to Production starts
// at the plan's first stage (or lower, when asked) and starts the lane the
// release was staged with, or a new one.
func (h *Releaser) Promote(ctx context.Context, app, from, to string, info codepush.PackageInfo) (codepush.Release, error) {
	t, ok := h.Targets[app]
	if !ok {
		return h.Service.Promote(ctx, app, from, to, info)
	}
	hist, err := h.Service.History(ctx, app, from)
	if err != nil || len(hist) == 0 {
		return h.Service.Promote(ctx, app, from, to, info) // it says what is missing
	}
	src := hist[len(hist)-1]
	if info.Label != "" {
		i := slices.IndexFunc(hist, func(r codepush.Release) bool { return r.Label == info.Label })
		if i < 0 {
			return h.Service.Promote(ctx, app, from, to, info)
		}
		src = hist[i]
	}
	rng := src.AppVersion
	if info.AppVersion != nil && *info.AppVersion != "" {
		rng = *info.AppVersion
	}
	if err := h.prepare(ctx, t, src.Commit, rng); err != nil {
		return codepush.Release{}, err
	}
	start := 0
	if to == codepush.Production {
		first := firstPercent(t.App)
		if info.Rollout == nil || (*info.Rollout > first && *info.Rollout <= 100) { // above 100: the Service refuses it
			info.Rollout = &first
		}
		start = *info.Rollout
	}
	who := actor(ctx)
	ctx = store.WithHistoryHook(ctx, func(ctx context.Context, tx *store.Store, ch store.HistoryChange) error {
		if ch.Op != store.HistoryAppend {
			return nil
		}
		if to != codepush.Production {
			return h.stageLane(ctx, tx, t, app, to, ch.Release, who)
		}
		var staged *store.LaneWithData
		if from == codepush.Staging {
			ls, err := h.lanes(ctx, tx, t, app, func(d laneData, l release.Lane) bool {
				return d.StagingLabel == src.Label && d.ProductionLabel == "" && l.Status.State == release.StatePending
			})
			if err != nil {
				return err
			}
			if len(ls) > 0 {
				staged = &ls[0]
			}
		}
		return h.startLane(ctx, tx, t, app, ch.Release, staged, who, start)
	})
	return h.Service.Promote(ctx, app, from, to, info)
}

// Patch implements codepush.Operations. On a Production release that a
// lane rolls out, a patch is a command to that lane: a higher rollout
// advances it (past the plan's steps up to that percentage, skipping their
// waits and gates, as an operator's advance does), disabling halts it and
// enabling resumes it; each is recorded with the caller as actor.
func (h *Releaser) Patch(ctx context.Context, app, dep string, info codepush.PackageInfo) (codepush.Release, bool, error) {
	t, ok := h.Targets[app]
	if !ok {
		return h.Service.Patch(ctx, app, dep, info)
	}
	hist, err := h.Service.History(ctx, app, dep)
	if err != nil || len(hist) == 0 {
		return h.Service.Patch(ctx, app, dep, info)
	}
	cur := hist[len(hist)-1]
	if info.Label != "" {
		i := slices.IndexFunc(hist, func(r codepush.Release) bool { return r.Label == info.Label })
		if i < 0 {
			return h.Service.Patch(ctx, app, dep, info)
		}
		cur = hist[i]
	}
	if info.AppVersion != nil && *info.AppVersion != "" && *info.AppVersion != cur.AppVersion {
		if err := h.prepare(ctx, t, cur.Commit, *info.AppVersion); err != nil {
			return codepush.Release{}, false, err
		}
	}
	var lane *store.LaneWithData
	if dep == codepush.Production {
		if lane, err = h.laneOf(ctx, h.Store, t, app, dep, cur.Label); err != nil {
			return codepush.Release{}, false, err
		}
		if lane != nil && lane.Status.State.Terminal() {
			lane = nil // a finished lane is history: the patch is only recorded
		}
	}
	if lane != nil {
		st := lane.Status.State
		if info.Rollout != nil && st != release.StateRolling && st != release.StateWaiting {
			return codepush.Release{}, false, &codepush.Error{Kind: codepush.KindConflict, Field: "rollout", Value: fmt.Sprint(*info.Rollout),
				Message: fmt.Sprintf("the rollout of %s is %s in releasepilot (lane %s): re-enable it first (patch --disabled false, or releasepilot resume)", cur.Label, st, lane.ID)}
		}
	}
	who := actor(ctx)
	ctx = store.WithHistoryHook(ctx, func(ctx context.Context, tx *store.Store, ch store.HistoryChange) error {
		if ch.Op != store.HistoryUpdate {
			return nil
		}
		details := map[string]any{"codepush_app": app, "deployment": dep, "label": ch.Release.Label}
		if lane == nil {
			l := release.Lane{}
			if found, err := h.laneOf(ctx, tx, t, app, dep, ch.Release.Label); err == nil && found != nil {
				l = found.Lane
			}
			return h.event(ctx, tx, who, l, "ota.patched", patchDetails(details, ch.Old, ch.Release))
		}
		return h.patchLane(ctx, tx, lane.ID, who, details, ch.Old, ch.Release)
	})
	return h.Service.Patch(ctx, app, dep, info)
}

func patchDetails(d map[string]any, old, r codepush.Release) map[string]any {
	if old.Rollout != r.Rollout {
		d["rollout"] = r.Rollout
	}
	if old.Disabled != r.Disabled {
		d["disabled"] = r.Disabled
	}
	if old.Mandatory != r.Mandatory {
		d["mandatory"] = r.Mandatory
	}
	if old.Description != r.Description {
		d["description"] = r.Description
	}
	if old.AppVersion != r.AppVersion {
		d["target_range"] = r.AppVersion
	}
	return d
}

// patchLane moves a lane to what a patch of its Production release did.
func (h *Releaser) patchLane(ctx context.Context, tx *store.Store, laneID, who string, details map[string]any, old, r codepush.Release) error {
	l, err := tx.GetLane(ctx, laneID)
	if err != nil {
		return err
	}
	now := h.now()
	next, kind := l.Status, "ota.patched"
	switch {
	case r.Disabled && !old.Disabled:
		kind = "command.halt"
		if next, err = l.Status.Transition(release.StateHalted, fmt.Sprintf("%s disabled by %s", r.Label, who), now); err != nil {
			return conflictf("%s: %v", r.Label, err)
		}
	case !r.Disabled && old.Disabled:
		kind = "command.resume"
		if next, err = l.Status.Transition(release.StateRolling, fmt.Sprintf("%s re-enabled by %s", r.Label, who), now); err != nil {
			return conflictf("%s: %v", r.Label, err)
		}
		next.NextEligibleAt = time.Time{}
	}
	if old.Rollout != r.Rollout {
		// Checked again here: the lane may have been halted (a gate, a
		// person) since the patch was allowed.
		if next.State != release.StateRolling && next.State != release.StateWaiting {
			return conflictf("the rollout of %s is %s in releasepilot (lane %s): re-enable it first (patch --disabled false, or releasepilot resume)", r.Label, next.State, l.ID)
		}
		kind = "command.advance"
		pct := r.Rollout
		if pct <= 0 {
			pct = 100
		}
		next = statusAt(l.Plan, next, pct, fmt.Sprintf("%s rolled out to %d%% by %s", r.Label, pct, who), now)
		if pct >= 100 {
			kind = "command.complete"
		}
	}
	if next != l.Status {
		if _, err := tx.UpdateStatus(ctx, l.ID, next); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflictf("the lane of %s moved while it was being patched; try again", r.Label)
			}
			return err
		}
		details["state"], details["percent"] = string(next.State), next.Percent
	}
	return h.event(ctx, tx, who, l, kind, patchDetails(details, old, r))
}

func conflictf(format string, args ...any) error {
	return &codepush.Error{Kind: codepush.KindConflict, Message: fmt.Sprintf(format, args...)}
}

// Rollback implements codepush.Operations: the rolled-back release's lane,
// if one rolls it out, is halted, as releasepilot's rollback command does.
func (h *Releaser) Rollback(ctx context.Context, app, dep, label string) (codepush.Release, error) {
	t, ok := h.Targets[app]
	if !ok {
		return h.Service.Rollback(ctx, app, dep, label)
	}
	hist, err := h.Service.History(ctx, app, dep)
	if err != nil || len(hist) < 2 {
		return h.Service.Rollback(ctx, app, dep, label)
	}
	latest := hist[len(hist)-1]
	// The target, chosen as the Service will choose it, needs its commit
	// fingerprinted for the gate.
	for i := len(hist) - 2; i >= 0; i-- {
		if (label != "" && hist[i].Label == label) || (label == "" && !hist[i].Disabled) {
			if err := h.prepare(ctx, t, hist[i].Commit, hist[i].AppVersion); err != nil {
				return codepush.Release{}, err
			}
			break
		}
	}
	who := actor(ctx)
	ctx = store.WithHistoryHook(ctx, func(ctx context.Context, tx *store.Store, ch store.HistoryChange) error {
		if ch.Op != store.HistoryAppend {
			return nil
		}
		details := map[string]any{"codepush_app": app, "deployment": dep, "from": latest.Label, "to": ch.Release.OriginalLabel, "label": ch.Release.Label}
		found, err := h.laneOf(ctx, tx, t, app, dep, latest.Label)
		if err != nil {
			return err
		}
		if found == nil || found.Status.State.Terminal() {
			l := release.Lane{}
			if found != nil {
				l = found.Lane
			}
			return h.event(ctx, tx, who, l, "ota.rolled_back", details)
		}
		next, err := found.Status.Transition(release.StateHalted, fmt.Sprintf("%s rolled back to %s by %s", latest.Label, ch.Release.OriginalLabel, who), h.now())
		if err != nil {
			return conflictf("%s: %v", latest.Label, err)
		}
		next.NextEligibleAt = time.Time{}
		if _, err := tx.UpdateStatus(ctx, found.ID, next); err != nil {
			return err
		}
		details["state"] = string(next.State)
		return h.event(ctx, tx, who, found.Lane, "command.rollback", details)
	})
	return h.Service.Rollback(ctx, app, dep, label)
}

// managed refuses to rename or remove what releasepilot's lanes release to.
func (h *Releaser) managed(app, dep string) error {
	t, ok := h.Targets[app]
	if !ok {
		return nil
	}
	if dep == "" {
		return conflictf("App %q is the OTA app of %s on %s in releasepilot's configuration (ota.app_name); it cannot be removed here", app, t.App.Name, t.Platform)
	}
	if dep == codepush.Staging || dep == codepush.Production {
		return conflictf("Deployment %q of %s is where releasepilot's OTA lanes release; it cannot be renamed or removed", dep, app)
	}
	return nil
}

// audit records a change that belongs to no release.
func (h *Releaser) audit(ctx context.Context, kind string, details map[string]any) {
	if _, err := h.Store.AppendEvent(ctx, release.Event{At: h.now(), Actor: actor(ctx), Kind: kind, Details: details}); err != nil {
		h.log().Error("hotfix: audit event lost", "kind", kind, "err", err)
	}
}

// CreateApp implements codepush.Operations, with an audit event.
func (h *Releaser) CreateApp(ctx context.Context, name string, noDeployments bool) (codepush.App, error) {
	a, err := h.Service.CreateApp(ctx, name, noDeployments)
	if err == nil {
		h.audit(ctx, "codepush.app_created", map[string]any{"codepush_app": name})
	}
	return a, err
}

// RemoveApp implements codepush.Operations; configured OTA apps stay.
func (h *Releaser) RemoveApp(ctx context.Context, name string) error {
	if err := h.managed(name, ""); err != nil {
		return err
	}
	err := h.Service.RemoveApp(ctx, name)
	if err == nil {
		h.audit(ctx, "codepush.app_removed", map[string]any{"codepush_app": name})
	}
	return err
}

// AddDeployment implements codepush.Operations, with an audit event.
func (h *Releaser) AddDeployment(ctx context.Context, app, name, key string) (codepush.Deployment, error) {
	d, err := h.Service.AddDeployment(ctx, app, name, key)
	if err == nil {
		h.audit(ctx, "codepush.deployment_added", map[string]any{"codepush_app": app, "deployment": name})
	}
	return d, err
}

// RenameDeployment implements codepush.Operations; Staging and Production
// of configured OTA apps keep their names.
func (h *Releaser) RenameDeployment(ctx context.Context, app, from, to string) (codepush.Deployment, error) {
	if from != to {
		if err := h.managed(app, from); err != nil {
			return codepush.Deployment{}, err
		}
	}
	d, err := h.Service.RenameDeployment(ctx, app, from, to)
	if err == nil && from != to {
		h.audit(ctx, "codepush.deployment_renamed", map[string]any{"codepush_app": app, "from": from, "to": to})
	}
	return d, err
}

// RemoveDeployment implements codepush.Operations; Staging and Production
// of configured OTA apps stay.
func (h *Releaser) RemoveDeployment(ctx context.Context, app, name string) error {
	if err := h.managed(app, name); err != nil {
		return err
	}
	err := h.Service.RemoveDeployment(ctx, app, name)
	if err == nil {
		h.audit(ctx, "codepush.deployment_removed", map[string]any{"codepush_app": app, "deployment": name})
	}
	return err
}

// ClearHistory implements codepush.Operations: the lanes whose releases
// the clear removes are cancelled with it.
func (h *Releaser) ClearHistory(ctx context.Context, app, dep string) error {
	t, ok := h.Targets[app]
	who := actor(ctx)
	ctx = store.WithHistoryHook(ctx, func(ctx context.Context, tx *store.Store, ch store.HistoryChange) error {
		if ch.Op != store.HistoryClear {
			return nil
		}
		if ok {
			reason := fmt.Sprintf("the %s history of %s was cleared by %s", dep, app, who)
			if err := h.supersede(ctx, tx, t, app, who, func(d laneData, l release.Lane) bool {
				switch dep {
				case codepush.Production:
					return d.ProductionLabel != ""
				case codepush.Staging:
					return d.ProductionLabel == "" && d.StagingLabel != ""
				}
				return false
			}, reason); err != nil {
				return err
			}
		}
		_, err := tx.AppendEvent(ctx, release.Event{At: h.now(), Actor: who, Kind: "codepush.history_cleared",
			Details: map[string]any{"codepush_app": app, "deployment": dep}})
		return err
	})
	return h.Service.ClearHistory(ctx, app, dep)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
