package otalane

import (
	"context"
	"fmt"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
)

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
	// Only the lane's label: not the deployment's history, nor its other
	// labels' counters.
	m, err := o.CodePush.LabelMetrics(ctx, data.CodePushApp, codepush.Production, data.ProductionLabel)
	if err != nil {
		return release.Observations{}, err
	}
	return release.Observations{Metrics: map[string]release.Observation{gate.OTAFailureRate: gate.OTAObservation(m[data.ProductionLabel])}}, nil
}

// GateTarget fills in what the lane's gates measure: its Production
// release (CodePush app and label) and the store binaries its target range
// covers, whose devices report on it.
func (o *OTA) GateTarget(ctx context.Context, l release.Lane, t *gate.Target) error {
	var data otaLaneData
	if err := o.Store.LaneData(ctx, l.ID, &data); err != nil {
		return err
	}
	t.CodePushApp, t.Label = data.CodePushApp, data.ProductionLabel
	if data.TargetRange == "" {
		return nil
	}
	rng, ok := codepush.ParseRange(data.TargetRange)
	if !ok {
		return fmt.Errorf("lane %s: target range %q is not a semver range", l.ID, data.TargetRange)
	}
	bins, err := o.Store.Binaries(ctx, t.App, l.Platform)
	if err != nil {
		return err
	}
	t.Binaries = gate.Covered(bins, rng)
	return nil
}
