package ioslane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
)

// observed is a phased-release read made by Observe for the Execute of the
// same reconcile pass.
type observed struct {
	at  time.Time
	pr  *appstore.PhasedRelease
	err error // nil or an ErrNotFound
}

// observedFresh is how long an Observe read stands in for Execute's.
const observedFresh = 10 * time.Second

func (x *IOS) takeObserved(laneID string) (observed, bool) {
	x.obsMu.Lock()
	defer x.obsMu.Unlock()
	o, ok := x.observed[laneID]
	delete(x.observed, laneID)
	if !ok || x.now().Sub(o.at) > observedFresh || x.now().Before(o.at) {
		return observed{}, false
	}
	return o, true
}

// PhasedDayMetric is the observation that carries Apple's phased-release
// day (1–7; 0 before it starts) of a rolling iOS App Store lane.
const PhasedDayMetric = "apple_phased_day"

// Observe reports Apple's phased-release day as PhasedDayMetric for a
// rolling phased App Store lane, with one read of App Store Connect that
// the pass's Execute reuses. Other lanes cost no call and report nothing.
// The lane's health gates (Sentry, Prometheus) are measured by jobs.Gates.
func (x *IOS) Observe(ctx context.Context, l release.Lane) (release.Observations, error) {
	obs := release.Observations{}
	if x.ASC == nil || (l.Status.State != release.StateRolling && l.Status.State != release.StateWaiting) {
		return obs, nil
	}
	var data iosLaneData
	if err := x.Store.LaneData(ctx, l.ID, &data); err != nil {
		return obs, err
	}
	if !data.AppStore || !data.Phased || data.VersionID == "" || !data.reached(iosStepApproved) {
		return obs, nil
	}
	pr, err := x.ASC.PhasedRelease(ctx, data.VersionID)
	if err != nil && !errors.Is(err, appstore.ErrNotFound) {
		return obs, fmt.Errorf("read the phased release of %s: %w", data.Version, err)
	}
	x.obsMu.Lock()
	if x.observed == nil {
		x.observed = map[string]observed{}
	}
	x.observed[l.ID] = observed{at: x.now(), pr: pr, err: err}
	x.obsMu.Unlock()
	day := 0
	if pr != nil && pr.State != appstore.PhasedInactive {
		day = pr.CurrentDayNumber
		if pr.State == appstore.PhasedComplete {
			day = 7
		}
	}
	obs.Metrics = map[string]release.Observation{PhasedDayMetric: {Value: float64(day), Samples: 1, Fresh: true}}
	return obs, nil
}

// GateTarget fills in what the lane's gates measure: the bundle id, the
// marketing version and the build number the lane ships.
func (x *IOS) GateTarget(ctx context.Context, l release.Lane, t *gate.Target) error {
	var data iosLaneData
	if err := x.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	if data.BundleID != "" {
		t.BundleID = data.BundleID
	}
	if data.Version != "" {
		t.Version = data.Version
	}
	if data.BuildNumber != "" {
		t.Build = data.BuildNumber
	}
	return nil
}
