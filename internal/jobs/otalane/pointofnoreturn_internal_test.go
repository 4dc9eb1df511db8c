package otalane

import (
	"testing"

	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/release"
)

// A moved or deleted tag withdraws an OTA lane only before a CodePush
// release exists; jobs.PastPointOfNoReturn reads that from this lane's
// data, so a renamed field fails here.
func TestPointOfNoReturnReadsOTALaneData(t *testing.T) {
	t.Parallel()
	l := release.Lane{Kind: release.KindOTA, Platform: release.IOS, Status: release.Status{State: release.StatePending}}
	lanetest.CheckPointOfNoReturn(t, []lanetest.PointOfNoReturn{
		{Lane: l, Data: otaLaneData{CodePushApp: "acme-ios", TargetRange: "1.4.0"}},
		{Lane: l, Data: otaLaneData{CodePushApp: "acme-ios", StagingLabel: "v2"}, Past: true, Why: "released over the air as v2 on Staging"},
		{Lane: l, Data: otaLaneData{StagingLabel: "v2", ProductionLabel: "v3"}, Past: true, Why: "released over the air as v3 on Production"},
	})
}
