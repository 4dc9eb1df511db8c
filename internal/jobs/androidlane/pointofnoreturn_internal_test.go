package androidlane

import (
	"testing"

	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/release"
)

// A moved or deleted tag withdraws an Android lane only before a
// versionCode was chosen for Play; jobs.PastPointOfNoReturn reads that from
// this lane's data, so a renamed field fails here.
func TestPointOfNoReturnReadsAndroidLaneData(t *testing.T) {
	t.Parallel()
	pending := release.Lane{Kind: release.KindStore, Platform: release.Android, Status: release.Status{State: release.StatePending}}
	lanetest.CheckPointOfNoReturn(t, []lanetest.PointOfNoReturn{
		{Lane: pending, Data: androidLaneData{Package: "com.acme", Track: "production"}},
		{Lane: pending, Data: androidLaneData{Package: "com.acme", VersionCode: 45}, Past: true, Why: "versionCode 45 is chosen for Google Play"},
		{Lane: pending, Data: androidLaneData{Uploaded: true}, Past: true, Why: "the bundle is in Google Play"},
		{Lane: release.Lane{Kind: release.KindStore, Platform: release.Android, Status: release.Status{State: release.StateRolling, Percent: 25}},
			Data: androidLaneData{}, Past: true, Why: "rolling at 25%"},
	})
}
