package nativecheck_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

func TestExplainEdgeCases(t *testing.T) {
	t.Parallel()
	base := nativecheck.Fingerprint{
		Algorithm: nativecheck.Algorithm, Platform: nativecheck.IOS, Hash: "h1",
		Files:    []nativecheck.FileInput{{Path: "ios/A.swift", Digest: "1", Reason: "iOS project file"}},
		Packages: []nativecheck.PackageInput{{Name: "dup", Version: "1.0.0"}, {Name: "dup", Version: "2.0.0"}, {Name: "gone", Version: "1.0.0"}},
		Config:   []nativecheck.ConfigInput{{Key: "app.json:expo.name", Value: `"A"`}, {Key: "app.json:expo.scheme", Value: `"a"`}},
	}
	t.Run("no live fingerprint", func(t *testing.T) {
		t.Parallel()
		ex := nativecheck.Explain(nativecheck.Fingerprint{}, base)
		require.True(t, ex.Native)
		require.Contains(t, ex.String(), "fingerprints differ in kind")
	})
	t.Run("other algorithm", func(t *testing.T) {
		t.Parallel()
		old := base
		old.Algorithm = "releasepilot-native/0"
		ex := nativecheck.Explain(old, base)
		require.True(t, ex.Native)
		require.Equal(t, "fingerprints differ in kind (releasepilot-native/0/ios vs releasepilot-native/2/ios)", ex.Incomparable)
	})
	t.Run("equal", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "ios: no native change", nativecheck.Explain(base, base).String())
	})
	t.Run("every kind of difference", func(t *testing.T) {
		t.Parallel()
		next := nativecheck.Fingerprint{
			Algorithm: nativecheck.Algorithm, Platform: nativecheck.IOS, Hash: "h2",
			Files:    []nativecheck.FileInput{{Path: "ios/B.swift", Digest: "2", Reason: "iOS project file"}},
			Packages: []nativecheck.PackageInput{{Name: "dup", Version: "2.0.0"}, {Name: "dup", Version: "3.0.0"}, {Name: "new", Version: "0.1.0", Reason: "ships native code: android/"}},
			Config:   []nativecheck.ConfigInput{{Key: "app.json:expo.name", Value: `"B"`}, {Key: "app.json:expo.plugins", Value: `["x"]`}},
		}
		ex := nativecheck.Explain(base, next)
		require.Equal(t, `ios: native change
  file added: ios/B.swift (iOS project file)
  file removed: ios/A.swift (iOS project file)
  native package added: dup@3.0.0
  native package added: new@0.1.0 (ships native code: android/)
  native package removed: dup@1.0.0
  native package removed: gone@1.0.0
  config changed: app.json:expo.name: "A" -> "B"
  config added: app.json:expo.plugins = ["x"]
  config removed: app.json:expo.scheme`, ex.String())
	})
}
