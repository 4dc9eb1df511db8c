package nativecheck_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
)

// realPackage is a package tarball fetched with `npm pack` and committed
// under testdata/packages (see testdata/README.md at the repository root
// for the source of each, and what was trimmed from the large ones).
type realPackage struct {
	name, version, file string
	want                nativecheck.PackageNative
}

// realPackages covers each layout autolinking knows, judged as it would.
var realPackages = []realPackage{
	{
		// Android lives in lib/android/app, declared by sourceDir in
		// react-native.config.js; a root-folder check misses it.
		name: "react-native-navigation", version: "7.45.0", file: "react-native-navigation-7.45.0-trimmed.tgz",
		want: native(rootPod("ReactNativeNavigation.podspec"),
			"lib/android/app/ (sourceDir in react-native.config.js) with build.gradle, src/main/AndroidManifest.xml (React Native CLI autolinking)"),
	},
	{
		// Android in native/android, declared in react-native.config.js.
		name: "@nozbe/watermelondb", version: "0.28.0", file: "nozbe-watermelondb-0.28.0-trimmed.tgz",
		want: native(rootPod("WatermelonDB.podspec"),
			"native/android/ (sourceDir in react-native.config.js) with build.gradle, src/main/AndroidManifest.xml (React Native CLI autolinking)"),
	},
	{
		// ios/ with a podspec but none at the root: the config's
		// podspecPath (path.join(__dirname, 'ios', …)) links it.
		name: "appcenter-crashes", version: "3.1.2", file: "appcenter-crashes-3.1.2.tgz",
		want: native("react-native.config.js names podspecPath ios/appcenter-crashes.podspec (linked by React Native CLI before v7)",
			androidDir),
	},
	{
		// An Expo module: platforms apple and android, pod in ios/.
		name: "expo-keep-awake", version: "58.0.4", file: "expo-keep-awake-58.0.4.tgz",
		want: native("expo-module.config.json lists apple, pod ios/ExpoKeepAwake.podspec (Expo autolinking)",
			"expo-module.config.json lists android, android/build.gradle (Expo autolinking)"),
	},
	{
		// Only prebuilt binaries: JavaScriptCore's AARs for Android.
		name: "jsc-android", version: "250231.0.0", file: "jsc-android-250231.0.0-trimmed.tgz",
		want: native("", "prebuilt dist/org/webkit/android-jsc-cppruntime/r250231/android-jsc-cppruntime-r250231.aar"),
	},
	{
		// A root podspec and iOS sources, but react-native.config.js sets
		// both platforms to null: autolinking links nothing.
		name: "react-native-segmented-picker", version: "2.0.2", file: "react-native-segmented-picker-2.0.2.tgz",
		want: nativecheck.PackageNative{},
	},
}

func realRegistry(t *testing.T) *npmtest.Registry {
	t.Helper()
	reg := registry(t)
	for _, p := range realPackages {
		b, err := os.ReadFile(filepath.Join("testdata", "packages", p.file))
		require.NoError(t, err)
		reg.AddTarball(p.name, p.version, b)
	}
	return reg
}

func TestRealPackagesJudgedAsAutolinkingWould(t *testing.T) {
	t.Parallel()
	reg := realRegistry(t)
	reg.NoScopedVersionEndpoint = true // as npmjs.org answers
	r := &nativecheck.Registry{URL: reg.BaseURL}
	for _, p := range realPackages {
		got, err := r.Inspect(context.Background(), p.name, p.version)
		require.NoError(t, err, p.name)
		require.Equal(t, p.want, got, p.name)
	}
}

// TestAddingRealPackages: adding each real package to an app is native
// exactly on the platforms autolinking links it on; a package whose
// platforms are switched off becomes native on iOS once the app's Podfile
// links it by hand.
func TestAddingRealPackages(t *testing.T) {
	t.Parallel()
	reg := realRegistry(t)
	fp := &nativecheck.Fingerprinter{Packages: &nativecheck.Registry{URL: reg.BaseURL}}
	src := newMemSource()
	src.add("live", baseApp())
	live, err := fp.Fingerprint(context.Background(), src, "live")
	require.NoError(t, err)
	for _, p := range realPackages {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			commit := "with-" + p.name
			src.add(commit, withLock(baseApp(), map[string]lockPkg{p.name: {version: p.version}}))
			next, err := fp.Fingerprint(context.Background(), src, commit)
			require.NoError(t, err)
			for _, pl := range nativecheck.Platforms {
				want, why := p.want.IOS, p.want.IOSEvidence
				if pl == nativecheck.Android {
					want, why = p.want.Android, p.want.AndroidEvidence
				}
				ex := nativecheck.Explain(live[pl], next[pl])
				require.Equal(t, want, ex.Native, "%s %s: %s", p.name, pl, ex)
				if want {
					require.Equal(t, string(pl)+": native change\n  native package added: "+p.name+"@"+p.version+" (ships native code: "+why+")", ex.String())
				}
			}
		})
	}
	t.Run("switched off, linked by hand", func(t *testing.T) {
		t.Parallel()
		app := withLock(baseApp(), map[string]lockPkg{"react-native-segmented-picker": {version: "2.0.2"}})
		src.add("picker", app)
		handLinked := with(app, "ios/Podfile", baseApp()["ios/Podfile"]+"pod 'RNSegmentedPicker', :path => '../node_modules/react-native-segmented-picker'\n")
		src.add("picker-by-hand", handLinked)
		a, err := fp.Fingerprint(context.Background(), src, "picker")
		require.NoError(t, err)
		b, err := fp.Fingerprint(context.Background(), src, "picker-by-hand")
		require.NoError(t, err)
		require.Equal(t, "ios: native change\n  file changed: ios/Podfile (iOS project file)\n"+
			"  native package added: react-native-segmented-picker@2.0.2 (linked by hand in ios/Podfile)", nativecheck.Explain(a[nativecheck.IOS], b[nativecheck.IOS]).String())
		require.False(t, nativecheck.Explain(a[nativecheck.Android], b[nativecheck.Android]).Native)
	})
}
