package otalane

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
)

// A moved or deleted tag withdraws an OTA lane only before a CodePush
// release exists; jobs.PastPointOfNoReturn reads that from this lane's
// data, so a renamed field fails here.
func TestPointOfNoReturnReadsOTALaneData(t *testing.T) {
	t.Parallel()
	l := release.Lane{Kind: release.KindOTA, Platform: release.IOS, Status: release.Status{State: release.StatePending}}
	for _, tc := range []struct {
		data otaLaneData
		past bool
		why  string
	}{
		{otaLaneData{CodePushApp: "acme-ios", TargetRange: "1.4.0"}, false, ""},
		{otaLaneData{CodePushApp: "acme-ios", StagingLabel: "v2"}, true, "released over the air as v2 on Staging"},
		{otaLaneData{StagingLabel: "v2", ProductionLabel: "v3"}, true, "released over the air as v3 on Production"},
	} {
		b, err := json.Marshal(tc.data)
		require.NoError(t, err)
		past, why := jobs.PastPointOfNoReturn(l, b)
		require.Equal(t, tc.past, past, "%+v", tc.data)
		require.Equal(t, tc.why, why)
	}
}
