package otalane

import (
	"context"
	"errors"
	"fmt"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// errNotPromoted is a lane with no Production release yet.
var errNotPromoted = errors.New("no Production release yet")

// productionRelease reads the lane's Production release from the history.
// A lane whose promotion was made but not recorded (its job died between
// the two) finds it by its Staging label.
func (o *OTA) productionRelease(ctx context.Context, l release.Lane) (otaLaneData, []codepush.Release, int, error) {
	var data otaLaneData
	if err := o.Store.LaneData(ctx, l.ID, &data); err != nil {
		return data, nil, -1, err
	}
	if data.ProductionLabel == "" && data.StagingLabel == "" {
		return data, nil, -1, fmt.Errorf("OTA lane %s: %w", l.ID, errNotPromoted)
	}
	hist, err := o.CodePush.History(ctx, data.CodePushApp, codepush.Production)
	if err != nil {
		return data, nil, -1, err
	}
	for i, r := range hist {
		if data.ProductionLabel != "" && r.Label == data.ProductionLabel {
			return data, hist, i, nil
		}
		if data.ProductionLabel == "" && r.Method == codepush.MethodPromote && r.OriginalDeployment == codepush.Staging && r.OriginalLabel == data.StagingLabel {
			return data, hist, i, nil
		}
	}
	if data.ProductionLabel == "" {
		return data, nil, -1, fmt.Errorf("OTA lane %s: %w", l.ID, errNotPromoted)
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
	if errors.Is(err, errNotPromoted) && (d.Action == release.ActionHalt || d.Action == release.ActionRollback) {
		return nil // nothing in Production: nothing to stop (a cancel before the promotion)
	}
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
			// Only a person re-enables: a resume, or a complete command.
			// A scheduled step (the plan's 100 % too) leaves it disabled.
			if !lane.Resuming(l) && d.Command != release.CmdComplete {
				return &lane.RemoteStoppedError{Reason: fmt.Sprintf("release %s was disabled outside this rollout; resume the lane to re-enable it", r.Label), Percent: otaRollout(r)}
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
