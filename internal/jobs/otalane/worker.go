package otalane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Worker runs the ota_lane job.
type Worker struct {
	river.WorkerDefaults[lane.OTAArgs]
	OTA *OTA
}

// Timeout bounds one run: fetching the bundle from GitHub and storing it.
// A run on a replica that dies is handed over by the heartbeat, not after
// this.
func (w *Worker) Timeout(*river.Job[lane.OTAArgs]) time.Duration { return 10 * time.Minute }

func (w *Worker) Work(ctx context.Context, job *river.Job[lane.OTAArgs]) error {
	return w.OTA.Run(ctx, job.Args.LaneID)
}

// laneStop marks the lane failed with reason and stops the job for good.
func (o *OTA) laneStop(ctx context.Context, laneID, reason string) error {
	if err := lane.Failed(ctx, o.Store, laneID, reason, o.now()); err != nil {
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
	return lane.Ready(ctx, o.Store, l.ID, nil, o.now(),
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
	if app.OTA.Protocol == "expo" && data.StagingLabel == "" {
		if err := o.stageExpo(ctx, l, rel, app, data); err != nil { // targets and stages in one step
			return err
		}
	}
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
			// A soak ends by itself; the status says when.
			reason := fmt.Sprintf("soaking %s on %s for %s, until %s", data.StagingLabel, codepush.Staging, soak, data.StagedAt.Add(soak).UTC().Format(time.RFC3339))
			if err := lane.Waiting(ctx, o.Store, l.ID, reason, o.now()); err != nil {
				return err
			}
			return river.JobSnooze(wait)
		}
	}
	if data.ProductionLabel == "" {
		return o.promote(ctx, l, rel, pct, data)
	}
	return nil
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

func otaFirstPercent(p release.Plan) int {
	for _, s := range p.Steps {
		if s.SetPercent != nil {
			return *s.SetPercent
		}
	}
	return 100
}
