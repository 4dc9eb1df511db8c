package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// v1Binary records a binary as releasepilot-native/1 recorded it: a hash no
// fingerprint of the current algorithm can equal, and its inputs under
// the old rules only.
func (b *gateBundle) v1Binary(t *testing.T, version, build, commit string) {
	t.Helper()
	ctx := context.Background()
	old := "v1-" + commit
	require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: commit,
		Algorithm: "releasepilot-native/1", Hash: old, Data: []byte(`{"algorithm":"releasepilot-native/1"}`), CreatedAt: time.Now()}))
	_, err := b.st.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: version, BuildNumber: build,
		Commit: commit, Fingerprint: old, CreatedAt: time.Now()})
	require.NoError(t, err)
}

// TestGateAfterAlgorithmUpgrade: an OTA release to a binary recorded under
// an older fingerprint algorithm is judged under the current rules — by
// the fingerprint of the binary's commit under them, once recorded — and
// neither refused because the algorithms differ nor accepted blindly:
// without that fingerprint it is refused, saying why.
func TestGateAfterAlgorithmUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, expo := range []bool{false, true} {
		b := setupGate(t)
		if expo {
			b.gate.Apps["acme-ios"] = gate.OTAApp{App: "acme", Platform: release.IOS, Expo: true}
		}
		check := func(commit string) error {
			return b.gate.CheckRelease(ctx, "acme-ios", codepush.Production, "1.4.0", commit)
		}
		b.repo["base"] = baseTree()
		b.v1Binary(t, "1.4.0", "40", "base")
		b.commit(t, "jsfix", with(baseTree(), map[string]string{"src/App.tsx": "export const App = () => 1\n"}))
		b.commit(t, "native", with(baseTree(), map[string]string{"ios/Podfile": "platform :ios, '17.0'\n"}))

		// The binary's commit has no fingerprint under the current rules
		// yet: nothing shows the binary matches, so the release is refused.
		err := check("jsfix")
		require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "expo %v: %v", expo, err)
		require.ErrorContains(t, err, "binary 1.4.0 (build 40, commit base)")
		require.ErrorContains(t, err, "inputs are not recorded under the current rules, releasepilot-native/2 — it was fingerprinted under older rules")

		// Fingerprinted again under the current rules (as the planner and
		// a hand-made release do): a JS-only commit matches it...
		b.commit(t, "base", baseTree())
		require.NoError(t, check("jsfix"), "expo %v", expo)
		// ...and a native one is refused with the files that differ.
		err = check("native")
		require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "expo %v: %v", expo, err)
		require.ErrorContains(t, err, "file changed: ios/Podfile")

		// The range an OTA lane targets counts the binary under the
		// current rules too.
		bins, err := b.st.Binaries(ctx, "acme", release.IOS)
		require.NoError(t, err)
		rng, _ := gate.MatchingRange(bins, b.fps["jsfix"])
		require.Empty(t, rng, "recorded hashes alone match nothing")
		cur, err := gate.CurrentFingerprints(ctx, b.st, "acme", release.IOS, bins)
		require.NoError(t, err)
		rng, _ = gate.MatchingRange(cur, b.fps["jsfix"])
		require.Equal(t, "1.4.0", rng)
		require.Equal(t, "v1-base", bins[0].Fingerprint, "the input is not changed")
	}
}

// TestCurrentFingerprintsIgnoresDamagedRecords: a current-algorithm record
// that does not verify does not stand in for a binary's hash.
func TestCurrentFingerprintsIgnoresDamagedRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupGate(t)
	b.v1Binary(t, "1.4.0", "40", "base")
	b.commit(t, "jsfix", with(baseTree(), map[string]string{"src/App.tsx": "export const App = () => 1\n"}))
	require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: "base",
		Algorithm: nativecheck.Algorithm, Hash: b.fps["jsfix"], Data: []byte(`{}`), CreatedAt: time.Now()}))
	bins, err := b.st.Binaries(ctx, "acme", release.IOS)
	require.NoError(t, err)
	cur, err := gate.CurrentFingerprints(ctx, b.st, "acme", release.IOS, bins)
	require.NoError(t, err)
	require.Equal(t, "v1-base", cur[0].Fingerprint)
	require.Error(t, b.gate.CheckRelease(ctx, "acme-ios", codepush.Production, "1.4.0", "jsfix"))
}
