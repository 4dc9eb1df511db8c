package otalane

import (
	"context"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/failpoint"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

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
		// The crash tests stop a process here: promoted, not recorded.
		failpoint.Hit(ctx, "ota.promoted")
	}
	data.ProductionLabel = prod.Label
	if err := o.Store.SetLaneData(ctx, l.ID, data, o.now()); err != nil {
		return err
	}
	return lane.Progress(ctx, o.Store, l, "ota.promoted", map[string]any{"codepush_app": data.CodePushApp, "label": prod.Label,
		"from": data.StagingLabel, "rollout": pct}, o.now())
}
