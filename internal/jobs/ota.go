package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// OTA ships OTA lanes through the CodePush server: the ota_lane job
// releases the bundle to Staging and promotes it to Production at the
// plan's first percentage; as an Executor it then moves the Production
// release's rollout for the reconciler, and observes its failure rate.
type OTA struct {
	Store    *store.Store
	CodePush *codepush.Service
	Apps     map[string]config.App
	Assets   Assets
	Now      func() time.Time
	Log      *slog.Logger
	// AssetWait is how long after the release was created a missing bundle
	// asset is waited for (CI may still be uploading it); default 2 hours.
	AssetWait time.Duration
}

var _ Executor = (*OTA)(nil)

// otaActor is who the CodePush history names for what lanes do.
const otaActor = "releasepilot"

// otaLaneData is what an OTA lane remembers between retries.
type otaLaneData struct {
	CodePushApp     string    `json:"codepush_app,omitempty"`
	TargetRange     string    `json:"target_range,omitempty"`
	StagingLabel    string    `json:"staging_label,omitempty"`
	StagedAt        time.Time `json:"staged_at,omitzero"`
	ProductionLabel string    `json:"production_label,omitempty"`
}

func (o *OTA) now() time.Time {
	if o.Now == nil {
		return time.Now().UTC()
	}
	return o.Now().UTC()
}

func (o *OTA) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// OTALaneWorker runs the ota_lane job.
type OTALaneWorker struct {
	river.WorkerDefaults[OTALaneArgs]
	OTA *OTA
}

func (w *OTALaneWorker) Work(ctx context.Context, job *river.Job[OTALaneArgs]) error {
	return w.OTA.Run(ctx, job.Args.LaneID)
}

// laneStop marks the lane failed with reason and stops the job for good.
func (o *OTA) laneStop(ctx context.Context, laneID, reason string) error {
	if err := LaneFailed(ctx, o.Store, laneID, reason, o.now()); err != nil {
		return err
	}
	return river.JobCancel(errors.New(reason))
}

// Run takes a pending OTA lane to Production at its first percentage. Each
// remote change is preceded by a read of the CodePush history, so a run
// after a crash finds what the last one did instead of releasing twice.
// A lane that is no longer pending is left alone.
func (o *OTA) Run(ctx context.Context, laneID string) error {
	l, err := o.Store.GetLane(ctx, laneID)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if l.Kind != release.KindOTA {
		return river.JobCancel(fmt.Errorf("lane %s is a %s lane, not an OTA lane", l.ID, l.Kind))
	}
	if l.Status.State != release.StatePending {
		return nil
	}
	rel, err := o.Store.GetRelease(ctx, l.ReleaseID)
	if err != nil {
		return err
	}
	app, ok := o.Apps[rel.App]
	if !ok || !app.OTA.Enabled {
		return o.laneStop(ctx, l.ID, fmt.Sprintf("app %q has no OTA configuration (ota.enabled)", rel.App))
	}
	var data otaLaneData
	if err := o.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	ctx = codepush.WithActor(ctx, codepush.Actor{Name: otaActor})
	pct := otaFirstPercent(l.Plan)
	err = o.toProduction(ctx, l, rel, app, pct, &data)
	var refused *otaRefusal
	if errors.As(err, &refused) {
		return o.laneStop(ctx, l.ID, refused.reason)
	}
	if err != nil {
		return err
	}
	return LaneReady(ctx, o.Store, l.ID, nil, o.now(),
		fmt.Sprintf("%s %s on %s at %d%% for binaries %s", data.CodePushApp, data.ProductionLabel, codepush.Production, pct, data.TargetRange))
}

// otaRefusal ends a lane with a reason people can act on; other errors are
// retried.
type otaRefusal struct{ reason string }

func (e *otaRefusal) Error() string { return e.reason }

func refuseLane(format string, args ...any) error {
	return &otaRefusal{reason: fmt.Sprintf(format, args...)}
}

// toProduction does what is left of target, Staging, soak and promotion.
func (o *OTA) toProduction(ctx context.Context, l release.Lane, rel release.Release, app config.App, pct int, data *otaLaneData) error {
	if data.TargetRange == "" {
		if err := o.target(ctx, l, rel, app, data); err != nil {
			return err
		}
	}
	if data.StagingLabel == "" {
		if err := o.stage(ctx, l, rel, app, data); err != nil {
			return err
		}
	}
	if soak := app.OTA.StagingSoak.D(); soak > 0 && data.ProductionLabel == "" {
		if wait := data.StagedAt.Add(soak).Sub(o.now()); wait > 0 {
			return river.JobSnooze(wait)
		}
	}
	if data.ProductionLabel == "" {
		return o.promote(ctx, l, rel, pct, data)
	}
	return nil
}

// target decides the release's binary range: exactly the recorded binaries
// that share its commit's native fingerprint.
func (o *OTA) target(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *otaLaneData) error {
	fp, err := LaneFingerprint(ctx, o.Store, app.Name, l.Platform, rel.Commit)
	if err != nil {
		return err
	}
	if fp == "" {
		return refuseLane("no %s native fingerprint is recorded for commit %s, so no binary can be targeted", l.Platform, rel.Commit)
	}
	bins, err := o.Store.Binaries(ctx, app.Name, l.Platform)
	if err != nil {
		return err
	}
	rng, excluded := gate.MatchingRange(bins, fp)
	if rng == "" {
		return refuseLane("no recorded %s binary has the native fingerprint %s of commit %s; a store release is needed", l.Platform, short(fp), short7(rel.Commit))
	}
	data.CodePushApp = gate.CodePushAppName(app.OTA.AppName, l.Platform)
	data.TargetRange = rng
	if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
		return err
	}
	details := map[string]any{"target_range": rng, "fingerprint": fp, "codepush_app": data.CodePushApp}
	if len(excluded) > 0 {
		details["excluded_versions"] = excluded
	}
	return LaneProgress(ctx, o.Store, l, "ota.target", details, o.now())
}

// stage releases the bundle to Staging, or finds the release an earlier run
// made.
func (o *OTA) stage(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *otaLaneData) error {
	hist, err := o.CodePush.History(ctx, data.CodePushApp, codepush.Staging)
	if err != nil {
		return otaReason("read the Staging history", err)
	}
	var staged *codepush.Release
	for i := len(hist) - 1; i >= 0; i-- {
		if h := hist[i]; h.Commit == rel.Commit && h.Method == codepush.MethodUpload && h.AppVersion == data.TargetRange {
			staged = &hist[i]
			break
		}
	}
	if staged == nil {
		pattern := strings.ReplaceAll(app.OTA.BundleAsset, "{platform}", string(l.Platform))
		if o.Assets == nil {
			return refuseLane("no source of GitHub release assets is configured to fetch %q", pattern)
		}
		f, name, err := o.Assets.FetchAsset(ctx, app.Repository, rel.Tag, pattern)
		if errors.Is(err, fs.ErrNotExist) {
			wait := o.AssetWait
			if wait <= 0 {
				wait = 2 * time.Hour
			}
			if o.now().Sub(rel.CreatedAt) > wait {
				return refuseLane("the GitHub release of %s has no asset matching %q after %s", rel.Tag, pattern, wait)
			}
			return river.JobSnooze(time.Minute)
		}
		if err != nil {
			return fmt.Errorf("fetch %s bundle %q: %w", rel.Tag, pattern, err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		r, err := o.CodePush.Release(ctx, codepush.ReleaseInput{
			App: data.CodePushApp, Deployment: codepush.Staging, AppVersion: data.TargetRange,
			Description: otaDescription(rel), Mandatory: app.OTA.Mandatory, Commit: rel.Commit, Package: f,
		})
		if err != nil {
			return otaReason("release "+name+" to Staging", err)
		}
		staged = &r
	}
	data.StagingLabel, data.StagedAt = staged.Label, staged.UploadTime
	if data.StagedAt.IsZero() {
		data.StagedAt = o.now()
	}
	if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
		return err
	}
	return LaneProgress(ctx, o.Store, l, "ota.staged", map[string]any{"codepush_app": data.CodePushApp, "label": staged.Label,
		"target_range": staged.AppVersion, "package_hash": staged.PackageHash, "size": staged.Size}, o.now())
}

// promote copies the Staging release to Production at pct, or finds the
// copy an earlier run made.
func (o *OTA) promote(ctx context.Context, l release.Lane, rel release.Release, pct int, data *otaLaneData) error {
	hist, err := o.CodePush.History(ctx, data.CodePushApp, codepush.Production)
	if err != nil {
		return otaReason("read the Production history", err)
	}
	var prod *codepush.Release
	for i := len(hist) - 1; i >= 0; i-- {
		if h := hist[i]; h.Method == codepush.MethodPromote && h.OriginalDeployment == codepush.Staging && h.OriginalLabel == data.StagingLabel && h.Commit == rel.Commit {
			prod = &hist[i]
			break
		}
	}
	if prod == nil {
		info := codepush.PackageInfo{Label: data.StagingLabel}
		if pct < 100 {
			info.Rollout = &pct
		}
		r, err := o.CodePush.Promote(ctx, data.CodePushApp, codepush.Staging, codepush.Production, info)
		if err != nil {
			return otaReason("promote "+data.StagingLabel+" to Production", err)
		}
		prod = &r
	}
	data.ProductionLabel = prod.Label
	if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
		return err
	}
	return LaneProgress(ctx, o.Store, l, "ota.promoted", map[string]any{"codepush_app": data.CodePushApp, "label": prod.Label,
		"from": data.StagingLabel, "rollout": pct}, o.now())
}

// otaReason turns a CodePush refusal (the native gate, an unfinished
// rollout, identical content) into a lane refusal; other errors are
// returned for a retry.
func otaReason(what string, err error) error {
	if codepush.KindOf(err) != "" {
		return refuseLane("could not %s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func otaDescription(rel release.Release) string {
	d := rel.Tag
	if rel.Notes != "" {
		d += "\n\n" + rel.Notes
	}
	return d
}

func otaFirstPercent(p release.Plan) int {
	for _, s := range p.Steps {
		if s.SetPercent != nil {
			return *s.SetPercent
		}
	}
	return 100
}

// productionRelease reads the lane's Production release from the history.
func (o *OTA) productionRelease(ctx context.Context, l release.Lane) (otaLaneData, []codepush.Release, int, error) {
	var data otaLaneData
	if err := o.Store.LaneData(ctx, l.ID, &data); err != nil {
		return data, nil, -1, err
	}
	if data.ProductionLabel == "" {
		return data, nil, -1, fmt.Errorf("OTA lane %s has no Production release yet", l.ID)
	}
	hist, err := o.CodePush.History(ctx, data.CodePushApp, codepush.Production)
	if err != nil {
		return data, nil, -1, err
	}
	for i, r := range hist {
		if r.Label == data.ProductionLabel {
			return data, hist, i, nil
		}
	}
	return data, nil, -1, fmt.Errorf("%s %s is not in the Production history", data.CodePushApp, data.ProductionLabel)
}

// Execute implements Executor on the lane's Production release. It reads
// the release first and patches only what differs: advance raises its
// rollout (a rollout never shrinks), resume and complete also enable it,
// halt disables it, and rollback appends a copy of the newest enabled
// release before it (CodePush disables ours as it does) — or, when there is
// none to go back to or the gate refuses it, disables it.
//
// An advance of a lane that is neither halted nor paused never re-enables
// the release: it was disabled by something else — a halt command racing
// this tick, or an operator through the CodePush API — and undoing that
// silently would serve it again. That advance fails with a reason instead.
func (o *OTA) Execute(ctx context.Context, l release.Lane, d release.Decision) error {
	switch d.Action {
	case release.ActionAdvance, release.ActionComplete, release.ActionHalt, release.ActionRollback:
	default:
		return nil
	}
	data, hist, i, err := o.productionRelease(ctx, l)
	if err != nil {
		return err
	}
	ctx = codepush.WithActor(ctx, codepush.Actor{Name: otaActor})
	r := hist[i]
	info := codepush.PackageInfo{Label: r.Label}
	switch d.Action {
	case release.ActionAdvance, release.ActionComplete:
		want := d.Percent
		if d.Action == release.ActionComplete || want > 100 {
			want = 100
		}
		if r.Disabled {
			resuming := Resuming(l)
			if d.Action != release.ActionComplete && !resuming {
				return fmt.Errorf("release %s was disabled outside this rollout; resume the lane to re-enable it", r.Label)
			}
			info.Disabled = otaBool(false)
		}
		if cur := otaRollout(r); cur < want {
			info.Rollout = &want
		}
	case release.ActionHalt:
		if !r.Disabled {
			info.Disabled = otaBool(true)
		}
	case release.ActionRollback:
		rolledBack := false
		for _, later := range hist[i+1:] {
			rolledBack = rolledBack || later.Method == codepush.MethodRollback
		}
		if !rolledBack && i == len(hist)-1 {
			// Rollback targets the newest enabled earlier release and
			// disables ours; a conflict (nothing enabled to go back to, a
			// different binary range, the gate) leaves disabling ours.
			_, err := o.CodePush.Rollback(ctx, data.CodePushApp, codepush.Production, "")
			if err == nil {
				return nil
			}
			if k := codepush.KindOf(err); k != codepush.KindConflict && k != codepush.KindInvalid {
				return err
			}
			o.log().Info("cannot roll back; disabling instead", "lane", l.ID, "label", r.Label, "reason", err.Error())
		}
		// Rolled back before, superseded, or nothing to go back to: ours
		// must not be served either way. Patch reads the current state, so
		// this is a no-op when the rollback already disabled it.
		info.Disabled = otaBool(true)
	}
	if info.Disabled == nil && info.Rollout == nil {
		return nil // already there
	}
	_, _, err = o.CodePush.Patch(ctx, data.CodePushApp, codepush.Production, info)
	return err
}

func otaRollout(r codepush.Release) int {
	if r.Rollout <= 0 || r.Rollout > 100 {
		return 100
	}
	return r.Rollout
}

func otaBool(v bool) *bool { return &v }

// Observe implements Executor: ota_failure_rate of the lane's Production
// release from the devices' reports. Before the release exists, or before
// any device reported, nothing is observed and gates hold.
func (o *OTA) Observe(ctx context.Context, l release.Lane) (release.Observations, error) {
	var data otaLaneData
	if err := o.Store.LaneData(ctx, l.ID, &data); err != nil {
		return release.Observations{}, err
	}
	if data.ProductionLabel == "" {
		return release.Observations{}, nil
	}
	m, err := o.CodePush.Metrics(ctx, data.CodePushApp, codepush.Production)
	if err != nil {
		return release.Observations{}, err
	}
	return release.Observations{Metrics: map[string]release.Observation{gate.OTAFailureRate: gate.OTAObservation(m[data.ProductionLabel])}}, nil
}
