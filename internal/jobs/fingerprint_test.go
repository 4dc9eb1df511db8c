package jobs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// TestPlanAfterAlgorithmUpgrade: a binary recorded with a fingerprint of
// an older algorithm (which no new fingerprint can equal) is compared by
// its commit's fingerprint under the current rules, so a JS-only tag still
// goes over the air; a native one is still refused with the files.
func TestPlanAfterAlgorithmUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupPlan(t)
	deps := map[string]string{"react-native": "0.81.0", "react-native-mmkv": "3.2.0", "lodash": "4.17.21"}
	sha := b.repo.Commit("1.0.0", appFiles("1.0.0", "1", deps, "export default 1\n"))
	b.head = sha
	for _, p := range release.Platforms {
		// As releasepilot-native/1 recorded it: another hash, another algorithm.
		require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: p, Commit: sha, Algorithm: "releasepilot-native/1",
			Hash: "old-" + string(p), Data: []byte(`{}`), CreatedAt: b.now}))
		_, err := b.st.RecordBinary(ctx, release.Binary{App: "acme", Platform: p, Version: "1.0.0", BuildNumber: "1", Commit: sha, Fingerprint: "old-" + string(p), CreatedAt: b.now})
		require.NoError(t, err)
	}

	_, lanes := b.tag(t, "v1.0.1", "1.0.1", appFiles("1.0.1", "2", deps, "export default 2\n"), "js fix", false)
	for _, p := range release.Platforms {
		require.Equal(t, release.KindOTA, lanes[p].Kind, "%s: %s", p, lanes[p].Reason)
		// The live commit's fingerprint by the current rules is recorded.
		stored, err := b.st.GetFingerprint(ctx, "acme", p, sha, nativecheck.Algorithm)
		require.NoError(t, err)
		require.Len(t, stored.Hash, 64)
	}

	deps2 := map[string]string{"react-native": "0.81.0", "react-native-mmkv": "3.3.0", "lodash": "4.17.21"}
	_, lanes = b.tag(t, "v1.1.0", "1.1.0", appFiles("1.1.0", "3", deps2, "export default 2\n"), "mmkv", false)
	for _, p := range release.Platforms {
		require.Equal(t, release.KindStore, lanes[p].Kind, p)
		require.Contains(t, lanes[p].Reason, "native package changed: react-native-mmkv 3.2.0 -> 3.3.0")
	}
}

// TestFingerprintCommit: the on-demand fingerprint of one commit of a
// configured app, by the app's rules.
func TestFingerprintCommit(t *testing.T) {
	t.Parallel()
	b := setupPlan(t)
	deps := map[string]string{"react-native": "0.81.0", "react-native-mmkv": "3.2.0"}
	sha := b.repo.Commit("1.0.0", appFiles("1.0.0", "1", deps, "export default 1\n"))
	fps, err := b.planner.FingerprintCommit(context.Background(), "acme", sha)
	require.NoError(t, err)
	require.Len(t, fps, 2)
	require.True(t, fps[nativecheck.IOS].Verify())
	require.Equal(t, sha, fps[nativecheck.Android].Commit)
	_, err = b.planner.FingerprintCommit(context.Background(), "nope", sha)
	require.ErrorContains(t, err, `app "nope" is not configured`)
	_, err = b.planner.FingerprintCommit(context.Background(), "acme", "0000000000000000000000000000000000000000")
	require.Error(t, err)
}
