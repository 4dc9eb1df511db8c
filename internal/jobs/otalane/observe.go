package otalane

import (
	"context"

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
	m, err := o.CodePush.Metrics(ctx, data.CodePushApp, codepush.Production)
	if err != nil {
		return release.Observations{}, err
	}
	return release.Observations{Metrics: map[string]release.Observation{gate.OTAFailureRate: gate.OTAObservation(m[data.ProductionLabel])}}, nil
}
