package ioslane

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
)

// A moved or deleted tag withdraws an iOS lane only before anything reached
// App Store Connect; jobs.PastPointOfNoReturn reads that from this lane's
// data, so a renamed field fails here.
func TestPointOfNoReturnReadsIOSLaneData(t *testing.T) {
	t.Parallel()
	l := release.Lane{Kind: release.KindStore, Platform: release.IOS, Status: release.Status{State: release.StatePending}}
	for _, tc := range []struct {
		data iosLaneData
		past bool
		why  string
	}{
		{iosLaneData{BundleID: "com.acme", Source: "upload", Version: "1.4.0", BuildNumber: "45", AppID: "123", Step: iosStepApp}, false, ""},
		{iosLaneData{BundleID: "com.acme", Version: "1.4.0", BuildNumber: "45", Asset: "app.ipa"}, true, "uploading app.ipa to App Store Connect"},
		{iosLaneData{UploadID: "UP-1"}, true, "upload UP-1 is in App Store Connect"},
		{iosLaneData{BuildID: "B-1", Step: iosStepBuild}, true, "build B-1 is in App Store Connect"},
	} {
		b, err := json.Marshal(tc.data)
		require.NoError(t, err)
		past, why := jobs.PastPointOfNoReturn(l, b)
		require.Equal(t, tc.past, past, "%+v", tc.data)
		require.Equal(t, tc.why, why)
	}
}
