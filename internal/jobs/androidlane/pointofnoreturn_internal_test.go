package androidlane

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
)

// A moved or deleted tag withdraws an Android lane only before a
// versionCode was chosen for Play; jobs.PastPointOfNoReturn reads that from
// this lane's data, so a renamed field fails here.
func TestPointOfNoReturnReadsAndroidLaneData(t *testing.T) {
	t.Parallel()
	pending := release.Lane{Kind: release.KindStore, Platform: release.Android, Status: release.Status{State: release.StatePending}}
	for _, tc := range []struct {
		lane release.Lane
		data androidLaneData
		past bool
		why  string
	}{
		{pending, androidLaneData{Package: "com.acme", Track: "production"}, false, ""},
		{pending, androidLaneData{Package: "com.acme", VersionCode: 45}, true, "versionCode 45 is chosen for Google Play"},
		{pending, androidLaneData{Uploaded: true}, true, "the bundle is in Google Play"},
		{release.Lane{Kind: release.KindStore, Platform: release.Android, Status: release.Status{State: release.StateRolling, Percent: 25}},
			androidLaneData{}, true, "rolling at 25%"},
	} {
		b, err := json.Marshal(tc.data)
		require.NoError(t, err)
		past, why := jobs.PastPointOfNoReturn(tc.lane, b)
		require.Equal(t, tc.past, past, "%+v", tc.data)
		require.Equal(t, tc.why, why)
	}
}
