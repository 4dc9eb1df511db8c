package androidlane

import (
	"context"
	"strconv"
	"time"

	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
)

// Observe reads Play's crash and ANR rates of the lane's versionCode, only
// when this pass can reach a gate (no soak, approval or percentage step
// before it): other passes cost no Play calls. Without vitals (or before the
// rollout began) it reports nothing, and gates hold.
func (a *Android) Observe(ctx context.Context, l release.Lane) (release.Observations, error) {
	if a.Vitals == nil || l.Status.Percent == 0 || !gateDue(l.Plan, l.Status, a.now()) {
		return release.Observations{}, nil
	}
	var data androidLaneData
	if err := a.Store.LaneData(ctx, l.ID, &data); err != nil {
		return release.Observations{}, err
	}
	if data.VersionCode == 0 {
		return release.Observations{}, nil
	}
	since, stage := data.StartedAt, data.StageAt
	if since.IsZero() {
		since = l.Status.StepStartedAt
	}
	if stage.IsZero() {
		stage = since
	}
	return a.Vitals.Observe(ctx, data.Package, data.VersionCode, since, stage)
}

// gateDue reports whether a reconcile pass at now would reach a gate: one
// comes before the next percentage step, and no unfinished soak or approval
// stands before it.
func gateDue(p release.Plan, st release.Status, now time.Time) bool {
	for i := st.StepIndex; i >= 0 && i < len(p.Steps); i++ {
		s := p.Steps[i]
		switch {
		case s.Gate != nil:
			return true
		case s.SetPercent != nil, s.Approval != nil:
			return false
		case s.Wait != nil:
			start := now // a later wait starts when it is reached
			if i == st.StepIndex && !st.StepStartedAt.IsZero() {
				start = st.StepStartedAt
			}
			if now.Before(start.Add(time.Duration(s.Wait.Soak))) {
				return false
			}
		}
	}
	return false
}

// GateTarget fills in what the lane's gates measure on Play: the package
// and versionCode fixed when the lane started, and when its rollout began.
func (a *Android) GateTarget(ctx context.Context, l release.Lane, t *gate.Target) error {
	var data androidLaneData
	if err := a.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	if data.Package != "" {
		t.BundleID = data.Package
	}
	if data.VersionCode != 0 {
		t.VersionCode = data.VersionCode
		t.Build = strconv.FormatInt(data.VersionCode, 10)
	}
	t.RolloutStarted = data.StartedAt
	return nil
}
