package jobs

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
)

// PastPointOfNoReturn reads the lanes' own data: these cases marshal the
// lane data types the lane jobs store, so a renamed field fails here.
func TestPastPointOfNoReturnReadsLaneData(t *testing.T) {
	t.Parallel()
	pending := release.Status{State: release.StatePending}
	tests := []struct {
		name string
		lane release.Lane
		data any
		past bool
		why  string
	}{
		{"ios waiting for its build", release.Lane{Kind: release.KindStore, Platform: release.IOS, Status: pending},
			iosLaneData{BundleID: "com.acme", Source: "upload", Version: "1.4.0", BuildNumber: "45", AppID: "123", Step: iosStepApp}, false, ""},
		{"ios asset chosen for upload", release.Lane{Kind: release.KindStore, Platform: release.IOS, Status: pending},
			iosLaneData{BundleID: "com.acme", Version: "1.4.0", BuildNumber: "45", Asset: "app.ipa"}, true, "uploading app.ipa to App Store Connect"},
		{"ios uploaded", release.Lane{Kind: release.KindStore, Platform: release.IOS, Status: pending},
			iosLaneData{UploadID: "UP-1"}, true, "upload UP-1 is in App Store Connect"},
		{"ios build picked up", release.Lane{Kind: release.KindStore, Platform: release.IOS, Status: pending},
			iosLaneData{BuildID: "B-1"}, true, "build B-1 is in App Store Connect"},
		{"android waiting for its bundle", release.Lane{Kind: release.KindStore, Platform: release.Android, Status: pending},
			androidLaneData{Package: "com.acme", Track: "production"}, false, ""},
		{"android versionCode chosen", release.Lane{Kind: release.KindStore, Platform: release.Android, Status: pending},
			androidLaneData{Package: "com.acme", VersionCode: 45}, true, "versionCode 45 is chosen for Google Play"},
		{"ota targeted only", release.Lane{Kind: release.KindOTA, Platform: release.IOS, Status: pending},
			otaLaneData{CodePushApp: "acme-ios", TargetRange: "1.4.0"}, false, ""},
		{"ota on staging", release.Lane{Kind: release.KindOTA, Platform: release.IOS, Status: pending},
			otaLaneData{CodePushApp: "acme-ios", StagingLabel: "v2"}, true, "released over the air as v2 on Staging"},
		{"ota on production", release.Lane{Kind: release.KindOTA, Platform: release.IOS, Status: pending},
			otaLaneData{StagingLabel: "v2", ProductionLabel: "v3"}, true, "released over the air as v3 on Production"},
		{"rolling", release.Lane{Kind: release.KindStore, Platform: release.Android, Status: release.Status{State: release.StateRolling, Percent: 25}},
			androidLaneData{}, true, "rolling at 25%"},
	}
	for _, tc := range tests {
		b, err := json.Marshal(tc.data)
		require.NoError(t, err)
		past, why := PastPointOfNoReturn(tc.lane, b)
		require.Equal(t, tc.past, past, tc.name)
		require.Equal(t, tc.why, why, tc.name)
	}
	past, _ := PastPointOfNoReturn(release.Lane{Kind: release.KindStore, Platform: release.IOS, Status: pending}, json.RawMessage(`{}`))
	require.False(t, past)
}
