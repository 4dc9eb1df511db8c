package otalane_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// TestOTALaneTargetsBinariesOfAnOlderAlgorithm: a tagged OTA release
// targets a binary recorded under an older fingerprint algorithm when its
// commit's fingerprint under the current rules (which the planner records
// for the live binary) matches; a binary of the older algorithm whose
// commit has no current fingerprint is left out, not assumed to match.
func TestOTALaneTargetsBinariesOfAnOlderAlgorithm(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	ctx := context.Background()
	base := map[string]string{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v145\n"}
	for _, bin := range [][3]string{{"1.4.5", "45", "c145"}, {"1.4.6", "46", "c146"}} {
		require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: bin[2],
			Algorithm: "releasepilot-native/1", Hash: "v1-" + bin[2], Data: []byte(`{}`), CreatedAt: b.now}))
		_, err := b.st.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: bin[0], BuildNumber: bin[1], Commit: bin[2],
			Fingerprint: "v1-" + bin[2], CreatedAt: b.now})
		require.NoError(t, err)
	}
	b.commit(t, "c145", base) // the planner fingerprinted 1.4.5's commit again

	l := b.lane(t, "v1.4.7", "c147", "bundle 1.4.7\n")
	require.NoError(t, b.work(ctx, l))
	staging := b.history(t, codepush.Staging)
	require.Len(t, staging, 1)
	require.Equal(t, "1.4.0 || 1.4.1 || 1.4.5", staging[0].AppVersion, "1.4.6 has no fingerprint under the current rules")
}
