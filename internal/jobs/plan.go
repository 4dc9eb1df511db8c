package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// PlanReleaseArgs plans a release started by a tag: fingerprint, decide each
// platform's lane, record release notes, start the lanes.
type PlanReleaseArgs struct {
	App       string   `json:"app" river:"unique"`
	Tag       string   `json:"tag" river:"unique"`
	Commit    string   `json:"commit"`
	ReleaseID string   `json:"release_id" river:"unique"` // a restarted tag plans a new release
	Platforms []string `json:"platforms"`
	OTAOnly   bool     `json:"ota_only,omitempty"`
}

func (PlanReleaseArgs) Kind() string { return "plan_release" }

// InsertOpts makes planning unique per app and tag, on the plan queue
// after lane steps. Retries back off from 5 s to 10 min (NextRetry), so 14
// attempts keep trying for 35 to 70 minutes — about as long as River's
// default backoff did with 8.
func (PlanReleaseArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue.Plan, Priority: queue.PriorityPlan, MaxAttempts: 14, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RepoReader is what planning reads from GitHub.
type RepoReader interface {
	nativecheck.Source
	ResolveTag(ctx context.Context, tag string) (string, error)
	ListTags(ctx context.Context) ([]github.Tag, error)
	Compare(ctx context.Context, base, head string) (github.Comparison, error)
}

// Planner plans releases.
type Planner struct {
	Store *store.Store
	Apps  map[string]config.App
	// Repo opens a repository reader ("owner/name").
	Repo func(fullName string) (RepoReader, error)
	// Packages tells native npm packages (nil: every package counts as native).
	Packages nativecheck.Inspector
	// Enqueue inserts a lane's start job in the planning transaction.
	Enqueue func(ctx context.Context, tx *store.Store, args river.JobArgs, opts *river.InsertOpts) (int64, bool, error)
	// CanStart reports whether a worker for a lane job kind is registered
	// (e.g. no App Store Connect credentials: no ios_lane worker).
	CanStart func(kind string) bool
	Now      func() time.Time
	Log      *slog.Logger
}

// PlanReleaseWorker runs Planner.Plan as a River job.
type PlanReleaseWorker struct {
	river.WorkerDefaults[PlanReleaseArgs]
	Planner *Planner
	// PerRepository: a plan_release job snoozes while this many older
	// plan jobs of its repository run, on any replica (0: never). So a
	// repository with a burst of tags, or whose planning keeps failing
	// slowly, leaves the other plan workers to the rest. The bound is
	// checked when a job starts: a newer job that started while older ones
	// were snoozed can take a repository over it until that plan ends.
	PerRepository int
}

// PlanInsertOpts are the insert options of a new plan_release job whose
// repository has waiting plans being planned already, this one's release
// included. Past perRepository, the job is queued at background priority:
// behind every other repository's plans, so a burst of one repository's
// tags (or its planning failing for all of them) does not make the others
// wait until each of its jobs has been fetched and snoozed. nil: the
// kind's own options.
func PlanInsertOpts(waiting, perRepository int) *river.InsertOpts {
	if perRepository <= 0 || waiting <= perRepository {
		return nil
	}
	return &river.InsertOpts{Priority: queue.PriorityBackground}
}

// PlanLookback bounds the releases PlanInsertOpts' count reads: planning
// gives up well within it (14 attempts, 35–70 minutes of backoff).
const PlanLookback = 3 * time.Hour

// Backoffs of planning.
const (
	PlanRetryBase  = 5 * time.Second
	PlanRetryMax   = 10 * time.Minute
	PlanSnoozeBase = 5 * time.Second
	PlanSnoozeMax  = time.Minute
)

// NextRetry backs off: half to all of 5 s·2^(attempt-1), at most 10 min.
// The jitter spreads a burst that failed together (GitHub down) over time.
func (w *PlanReleaseWorker) NextRetry(job *river.Job[PlanReleaseArgs]) time.Time {
	return time.Now().Add(jittered(PlanRetryBase, PlanRetryMax, job.Attempt-1))
}

// jittered is a random duration between half and all of base·2^n, capped
// at limit.
func jittered(base, limit time.Duration, n int) time.Duration {
	d := limit
	if n < 0 {
		n = 0
	}
	if n < 30 {
		d = min(base<<n, limit)
	}
	return d/2 + rand.N(d/2+1)
}

// Timeout bounds planning: a large repository's tree and the npm tarballs
// of its dependencies. A run on a replica that dies is handed over by the
// heartbeat, not after this.
func (w *PlanReleaseWorker) Timeout(*river.Job[PlanReleaseArgs]) time.Duration {
	return 10 * time.Minute
}

func (w *PlanReleaseWorker) Work(ctx context.Context, job *river.Job[PlanReleaseArgs]) error {
	if crowded, err := w.crowded(ctx, job); err != nil {
		return err
	} else if crowded {
		var m struct {
			Snoozes int `json:"snoozes"`
		}
		_ = json.Unmarshal(job.Metadata, &m)
		return river.JobSnooze(jittered(PlanSnoozeBase, PlanSnoozeMax, m.Snoozes))
	}
	err := w.Planner.Plan(ctx, job.Args)
	var perm *permanentError
	if errors.As(err, &perm) {
		return river.JobCancel(err)
	}
	return err
}

// crowded reports whether PerRepository plan_release jobs of job's
// repository that started before it (lower ids) are running: then it waits.
// Only older jobs count, so two jobs never both wait for each other. Every
// replica sees the same running jobs in River's table.
func (w *PlanReleaseWorker) crowded(ctx context.Context, job *river.Job[PlanReleaseArgs]) (bool, error) {
	if w.PerRepository <= 0 {
		return false, nil
	}
	client, err := river.ClientFromContextSafely[*sql.Tx](ctx)
	if err != nil {
		return false, nil // run outside a River client (a test calling Work)
	}
	repo := w.Planner.Apps[job.Args.App].Repository
	if repo == "" {
		return false, nil
	}
	res, err := client.JobList(ctx, river.NewJobListParams().Kinds(PlanReleaseArgs{}.Kind()).
		States(rivertype.JobStateRunning).First(1000))
	if err != nil {
		return false, fmt.Errorf("list running plan jobs: %w", err)
	}
	ahead := 0
	for _, j := range res.Jobs {
		var a PlanReleaseArgs
		if j.ID >= job.ID || json.Unmarshal(j.EncodedArgs, &a) != nil {
			continue
		}
		if w.Planner.Apps[a.App].Repository == repo {
			ahead++
		}
	}
	return ahead >= w.PerRepository, nil
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func (p *Planner) now() time.Time {
	if p.Now == nil {
		return time.Now().UTC()
	}
	return p.Now().UTC()
}

// Plan fingerprints the tagged commit, decides each platform's lane, and
// records everything with its events and the lanes' start jobs in one
// transaction. Planning a release that already has lanes does nothing.
func (p *Planner) Plan(ctx context.Context, a PlanReleaseArgs) error {
	app, ok := p.Apps[a.App]
	if !ok {
		return &permanentError{fmt.Errorf("app %q is not configured", a.App)}
	}
	rel, err := p.Store.GetRelease(ctx, a.ReleaseID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &permanentError{err}
		}
		return err
	}
	if lanes, err := p.Store.Lanes(ctx, rel.ID); err != nil {
		return err
	} else if len(lanes) > 0 {
		return nil // planned before (a retried job)
	}
	repo, err := p.Repo(app.Repository)
	if err != nil {
		return &permanentError{err}
	}
	commit := rel.Commit
	if commit == "" {
		commit = a.Commit
	}
	if commit == "" {
		if commit, err = repo.ResolveTag(ctx, a.Tag); err != nil {
			return fmt.Errorf("resolve tag %s: %w", a.Tag, err)
		}
	}

	fper := p.fingerprinter(app)
	fps, fpErr := fper.Fingerprint(ctx, repo, commit)
	if fpErr != nil && !errors.Is(fpErr, nativecheck.ErrIncomplete) {
		return fmt.Errorf("fingerprint %s: %w", commit, fpErr)
	}
	notes := p.releaseNotes(ctx, repo, app, a.Tag, rel.Version, commit)

	platforms := a.Platforms
	if len(platforms) == 0 {
		platforms = []string{string(release.Android), string(release.IOS)}
	}
	type planned struct {
		lane release.Lane
		fp   *nativecheck.Fingerprint
	}
	var lanes []planned
	now := p.now()
	for _, ps := range platforms {
		plat, err := release.ParsePlatform(ps)
		if err != nil {
			continue
		}
		storeOn, otaOn := platformEnabled(app, plat)
		if !storeOn && !otaOn {
			continue
		}
		in := release.LaneInput{Platform: plat, StoreEnabled: storeOn, OTAEnabled: otaOn, OTAOnly: a.OTAOnly}
		var fp *nativecheck.Fingerprint
		if f, ok := fps[nativecheck.Platform(plat)]; ok && fpErr == nil {
			fp = &f
			in.Fingerprint = f.Hash
		}
		if fpErr != nil {
			in.Difference = fpErr.Error()
		}
		if live, err := p.Store.LatestBinary(ctx, app.Name, plat); err == nil {
			in.LiveFingerprint = p.liveFingerprint(ctx, repo, fper, app.Name, plat, live)
			in.LiveVersion = fmt.Sprintf("%s (%s)", live.Version, live.BuildNumber)
			if fp != nil && in.LiveFingerprint != fp.Hash {
				in.Difference = p.explain(ctx, repo, fper, app.Name, plat, live, *fp)
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		kind, reason := release.DecideLane(in)
		l := release.Lane{Platform: plat, Kind: kind, Reason: reason, Plan: lanePlan(app, plat, kind)}
		if kind == release.KindRefused {
			l.Status = release.Status{State: release.StateCancelled, Reason: reason, UpdatedAt: now}
		}
		lanes = append(lanes, planned{l, fp})
	}

	return p.Store.Tx(ctx, func(tx *store.Store) error {
		if existing, err := tx.Lanes(ctx, rel.ID); err != nil {
			return err
		} else if len(existing) > 0 {
			return nil
		}
		// A release whose tag was deleted or moved while this plan was
		// computed was cancelled or superseded: it gets no lanes.
		if ok, err := tx.ClaimPlanning(ctx, rel.ID, now); err != nil || !ok {
			return err
		}
		for _, pl := range lanes {
			if pl.fp == nil {
				continue
			}
			data, err := json.Marshal(pl.fp)
			if err != nil {
				return err
			}
			if err := tx.SaveFingerprint(ctx, store.Fingerprint{App: app.Name, Platform: pl.lane.Platform, Commit: commit, Algorithm: pl.fp.Algorithm,
				Hash: pl.fp.Hash, Data: data, CreatedAt: now}); err != nil {
				return err
			}
		}
		rel.Commit, rel.Notes, rel.UpdatedAt = commit, notes, now
		rel.State = release.ReleaseActive
		active := 0
		for _, pl := range lanes {
			l := pl.lane
			l.ReleaseID = rel.ID
			if l.Kind != release.KindRefused {
				active++
			}
			canStart := true
			if k := lane.Start(l); k == nil {
				canStart = false
			} else if p.CanStart != nil && !p.CanStart(k.Kind()) {
				l.Reason += fmt.Sprintf(" (waiting: no %s worker is configured — check the store credentials)", k.Kind())
				canStart = false
			}
			stored, err := tx.CreateLane(ctx, l, now)
			if err != nil {
				return err
			}
			details := map[string]any{"platform": string(l.Platform), "kind": string(l.Kind), "reason": l.Reason}
			if pl.fp != nil {
				details["fingerprint"] = pl.fp.Hash
			}
			if _, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: rel.ID, LaneID: stored.ID, Kind: "lane.planned", Details: details}); err != nil {
				return err
			}
			if canStart && p.Enqueue != nil {
				if _, _, err := p.Enqueue(ctx, tx, lane.Start(stored), lane.StartOpts()); err != nil {
					return err
				}
			}
		}
		if active == 0 {
			rel.State = release.ReleaseFailed
		}
		if err := tx.UpdateRelease(ctx, rel); err != nil {
			return err
		}
		_, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "system", ReleaseID: rel.ID, Kind: "release.planned",
			Details: map[string]any{"commit": commit, "lanes": len(lanes), "state": string(rel.State)}})
		return err
	})
}

func platformEnabled(app config.App, p release.Platform) (storeOn, otaOn bool) {
	switch p {
	case release.IOS:
		return app.IOS.Enabled, app.OTA.Enabled
	case release.Android:
		return app.Android.Enabled, app.OTA.Enabled
	}
	return false, false
}

// gateRules are the app's gate rules that judge lane (config.LaneIOS,
// LaneAndroid or LaneOTA).
func gateRules(app config.App, lane string) []release.GateRule {
	var out []release.GateRule
	for _, g := range app.Rollout.Gates {
		if g.AppliesTo(lane) {
			out = append(out, GateRule(g))
		}
	}
	return out
}

// GateRule is a configured gate as a plan's rule. A gate written before
// providers keeps an empty provider, which its metric implies.
func GateRule(g config.GateRule) release.GateRule {
	r := release.GateRule{Provider: g.Provider, Metric: g.Metric, Query: g.Query, Min: g.Min, MinSamples: g.MinSamples,
		FailureLimit: g.FailureLimit, Interval: release.Duration(g.Interval.D())}
	if g.Max != nil {
		r.Max = *g.Max
	} else {
		r.NoMax = true
	}
	return r
}

// lanePlan is a lane's default plan from the app's configuration.
func lanePlan(app config.App, p release.Platform, kind release.LaneKind) release.Plan {
	wait := release.Wait{Soak: release.Duration(app.Rollout.Soak.D()), Window: app.Rollout.Window}
	switch {
	case kind == release.KindOTA:
		return release.StagedPlan(app.OTA.Stages, wait, gateRules(app, config.LaneOTA))
	case kind == release.KindStore && p == release.Android:
		pl := release.StagedPlan(app.Android.Stages, wait, gateRules(app, config.LaneAndroid))
		if app.Android.Approval {
			pl.Steps = append([]release.Step{{Approval: &release.Approval{Reason: "start the production rollout"}}}, pl.Steps...)
		}
		return pl
	case kind == release.KindStore && p == release.IOS:
		if !app.IOS.AppStore || !app.IOS.PhasedRelease {
			return release.Plan{Steps: []release.Step{{SetPercent: release.Pct(100)}}}
		}
		// Apple moves the phased release one day at a time; the plan mirrors
		// its days. Its gates (Sentry, Prometheus) cannot hold Apple back,
		// but one failing past its limit halts the lane, which pauses the
		// phased release until a person resumes it.
		return release.StagedPlan(release.ApplePhasedStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, gateRules(app, config.LaneIOS))
	}
	return release.Plan{}
}

// explain describes how the live binary's fingerprint differs from fp. The
// live fingerprint is read from the store, or recomputed from its commit.
func (p *Planner) explain(ctx context.Context, repo RepoReader, fper *nativecheck.Fingerprinter, app string, plat release.Platform, live release.Binary, fp nativecheck.Fingerprint) string {
	var liveFP nativecheck.Fingerprint
	stored, err := p.Store.GetFingerprint(ctx, app, plat, live.Commit, fp.Algorithm)
	if err == nil && json.Unmarshal(stored.Data, &liveFP) == nil && liveFP.Verify() {
		return nativecheck.Explain(liveFP, fp).String()
	}
	if live.Commit != "" {
		if all, err := fper.Fingerprint(ctx, repo, live.Commit); err == nil {
			if f, ok := all[nativecheck.Platform(plat)]; ok {
				return nativecheck.Explain(f, fp).String()
			}
		}
	}
	return fmt.Sprintf("fingerprint %s differs from the live binary's %s (its inputs are not recorded, so the files cannot be listed)", short(fp.Hash), short(live.Fingerprint))
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// MaxNotes bounds release notes (App Store "What to Test" takes 4,000).
const MaxNotes = 4000

// releaseNotes lists the commits since the previous version tag of the app.
// Notes are best effort: a failure leaves a note saying so, never a failed plan.
func (p *Planner) releaseNotes(ctx context.Context, repo RepoReader, app config.App, tag, version, commit string) string {
	cur, err := semver.NewVersion(version)
	if err != nil {
		return ""
	}
	rule := github.TagRule{Repository: app.Repository, Pattern: app.TagPattern}
	tags, err := repo.ListTags(ctx)
	if err != nil {
		return "(release notes unavailable: " + err.Error() + ")"
	}
	var prev *semver.Version
	prevTag := ""
	for _, t := range tags {
		if t.Name == tag {
			continue
		}
		m := rule.Match(app.Repository, t.Name)
		if !m.Matched || m.Version == nil || !m.Version.LessThan(cur) {
			continue
		}
		if prev == nil || m.Version.GreaterThan(prev) {
			prev, prevTag = m.Version, t.Name
		}
	}
	if prevTag == "" {
		return "First release."
	}
	cmp, err := repo.Compare(ctx, prevTag, commit)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("(release notes unavailable: %s is not an ancestor)", prevTag)
		}
		return "(release notes unavailable: " + err.Error() + ")"
	}
	var lines []string
	for i := len(cmp.Commits) - 1; i >= 0; i-- {
		c := cmp.Commits[i]
		subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
		if subject == "" || strings.HasPrefix(subject, "Merge ") {
			continue
		}
		lines = append(lines, fmt.Sprintf("- %s (%s)", subject, short7(c.SHA)))
	}
	out := fmt.Sprintf("Changes since %s:\n%s", prevTag, strings.Join(lines, "\n"))
	if cmp.CommitsIncomplete {
		out += "\n- … and more"
	}
	if r := []rune(out); len(r) > MaxNotes {
		out = string(r[:MaxNotes-1]) + "…"
	}
	return out
}

func short7(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
