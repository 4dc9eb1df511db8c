package ioslane

import (
	"testing"

	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/release"
)

// A moved or deleted tag withdraws an iOS lane only before anything reached
// App Store Connect; jobs.PastPointOfNoReturn reads that from this lane's
// data, so a renamed field fails here.
func TestPointOfNoReturnReadsIOSLaneData(t *testing.T) {
	t.Parallel()
	l := release.Lane{Kind: release.KindStore, Platform: release.IOS, Status: release.Status{State: release.StatePending}}
	lanetest.CheckPointOfNoReturn(t, []lanetest.PointOfNoReturn{
		{Lane: l, Data: iosLaneData{BundleID: "com.acme", Source: "upload", Version: "1.4.0", BuildNumber: "45", AppID: "123", Step: iosStepApp}},
		{Lane: l, Data: iosLaneData{BundleID: "com.acme", Version: "1.4.0", BuildNumber: "45", Asset: "app.ipa"}, Past: true, Why: "uploading app.ipa to App Store Connect"},
		{Lane: l, Data: iosLaneData{UploadID: "UP-1"}, Past: true, Why: "upload UP-1 is in App Store Connect"},
		{Lane: l, Data: iosLaneData{BuildID: "B-1", Step: iosStepBuild}, Past: true, Why: "build B-1 is in App Store Connect"},
	})
}
