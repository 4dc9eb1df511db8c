package nativecheck_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

type testBundle struct {
	src *memSource
	fp  *nativecheck.Fingerprinter
}

func setup(t *testing.T) testBundle {
	t.Helper()
	reg := registry(t)
	return testBundle{
		src: newMemSource(),
		fp:  &nativecheck.Fingerprinter{Packages: &nativecheck.Registry{URL: reg.BaseURL}},
	}
}

func (tb testBundle) fingerprint(t *testing.T, commit string, files map[string]string) map[nativecheck.Platform]nativecheck.Fingerprint {
	t.Helper()
	tb.src.add(commit, files)
	fps, err := tb.fp.Fingerprint(context.Background(), tb.src, commit)
	require.NoError(t, err)
	require.Len(t, fps, 2)
	return fps
}

func TestFingerprintVerdicts(t *testing.T) {
	t.Parallel()
	base := baseApp()
	nativeDepPatch := with(base, "patches/react-native-mmkv+3.2.0.patch", nativePatch)

	tests := []struct {
		name string
		from map[string]string // default base
		to   map[string]string
		// expected verdicts and the lines each explanation must contain
		ios, android       bool
		iosWhy, androidWhy []string
	}{
		{name: "JS-only edit", to: with(base, "src/App.tsx", "export default function App() { return 'hi' }\n")},
		{name: "JS asset edit", to: with(base, "assets/logo.png", "\x89PNG logo v2")},
		{name: "CI and docs edit", to: with(base, ".github/workflows/ci.yml", "on: [push]\n", "README.md", "# Demo\n")},
		{name: "build output edited", to: with(base, "ios/Pods/Manifest.lock", "regenerated", "android/app/build/outputs/apk/app.apk", "other")},
		{
			name: "ios source edit", to: with(base, "ios/Demo/AppDelegate.swift", "import UIKit\nclass AppDelegate { var x = 1 }\n"),
			ios: true, iosWhy: []string{"file changed: ios/Demo/AppDelegate.swift (iOS project file)"},
		},
		{
			name: "android source added", to: with(base, "android/app/src/main/java/com/demo/Widget.kt", "class Widget\n"),
			android: true, androidWhy: []string{"file added: android/app/src/main/java/com/demo/Widget.kt"},
		},
		{
			name: "Podfile.lock checksum only (the Podfile changed)", to: with(base, "ios/Podfile.lock", fmt.Sprintf(podLock, "1.3.4", "bbbb2222")),
			ios: true, iosWhy: []string{`config changed: ios/Podfile.lock:PODFILE CHECKSUM: "aaaa1111" -> "bbbb2222" (the Podfile changed; counted as native on iOS)`},
		},
		{
			name: "Podfile.lock pod changed", to: with(base, "ios/Podfile.lock", fmt.Sprintf(podLock, "1.3.5", "aaaa1111")),
			ios: true, iosWhy: []string{"file changed: ios/Podfile.lock (CocoaPods lock (pod entries))"},
		},
		{
			name:    "gradle dependency added",
			to:      with(base, "android/app/build.gradle", fmt.Sprintf(appGradle, "42", "1.4.0")+"dependencies { implementation 'com.squareup.okhttp3:okhttp:4.12.0' }\n"),
			android: true, androidWhy: []string{"file changed: android/app/build.gradle"},
		},
		{
			name: "version and build bump only",
			to: with(base,
				"ios/Demo/Info.plist", fmt.Sprintf(infoPlist, "1.5.0", "43"),
				"ios/Demo.xcodeproj/project.pbxproj", fmt.Sprintf(pbxproj, "43", "1.5.0"),
				"android/app/build.gradle", fmt.Sprintf(appGradle, "43", "1.5.0"),
				"app.json", fmt.Sprintf(appJSON, "1.5.0", "43", "43"),
				"package.json", packageJSON(baseDeps)+"\n"),
		},
		{
			name: "gradle.properties version only",
			from: with(base, "android/gradle.properties", "newArchEnabled=true\nVERSION_CODE=42\nVERSION_NAME=1.4.0\n"),
			to:   with(base, "android/gradle.properties", "newArchEnabled=true\nVERSION_CODE=43\nVERSION_NAME=1.5.0\n"),
		},
		{
			name:    "gradle.properties new architecture flag",
			from:    with(base, "android/gradle.properties", "newArchEnabled=true\nVERSION_CODE=42\n"),
			to:      with(base, "android/gradle.properties", "newArchEnabled=false\nVERSION_CODE=42\n"),
			android: true, androidWhy: []string{"file changed: android/gradle.properties (Android project file (version properties ignored))"},
		},
		{
			name: "version bump under runtimeVersion appVersion policy is a new runtime",
			from: with(base, "app.json", `{"expo":{"name":"Demo","version":"1.4.0","runtimeVersion":{"policy":"appVersion"},"ios":{"buildNumber":"42"}}}`),
			to:   with(base, "app.json", `{"expo":{"name":"Demo","version":"1.5.0","runtimeVersion":{"policy":"appVersion"},"ios":{"buildNumber":"43"}}}`),
			ios:  true, android: true, iosWhy: []string{`config changed: app.json:expo.version: "1.4.0" -> "1.5.0"`},
		},
		{
			name:    "build number bump under android nativeVersion policy",
			from:    with(base, "app.json", `{"expo":{"name":"Demo","version":"1.4.0","android":{"runtimeVersion":{"policy":"nativeVersion"},"versionCode":42},"ios":{"buildNumber":"42"}}}`),
			to:      with(base, "app.json", `{"expo":{"name":"Demo","version":"1.4.0","android":{"runtimeVersion":{"policy":"nativeVersion"},"versionCode":43},"ios":{"buildNumber":"43"}}}`),
			android: true, androidWhy: []string{"config changed: app.json:expo.android.versionCode: 42 -> 43"},
		},
		{
			name: "Info.plist permission string", to: with(base, "ios/Demo/Info.plist", fmt.Sprintf(infoPlist, "1.4.0", "42")+"<!-- x -->"),
			ios: true, iosWhy: []string{"file changed: ios/Demo/Info.plist"},
		},
		{name: "app.json JS-only key (extra)", to: with(base, "app.json", `{"expo":{"name":"Demo","slug":"demo","version":"1.4.0","icon":"./assets/icon.png","ios":{"bundleIdentifier":"com.example.demo","buildNumber":"42"},"android":{"package":"com.example.demo","versionCode":42},"plugins":["expo-camera"],"extra":{"apiUrl":"https://staging.example.com"}}}`)},
		{
			name: "app.json ios native key",
			to:   with(base, "app.json", `{"expo":{"name":"Demo","slug":"demo","version":"1.4.0","icon":"./assets/icon.png","ios":{"bundleIdentifier":"com.example.demo2","buildNumber":"42"},"android":{"package":"com.example.demo","versionCode":42},"plugins":["expo-camera"],"extra":{"apiUrl":"https://api.example.com"}}}`),
			ios:  true, iosWhy: []string{`config changed: app.json:expo.ios.bundleIdentifier: "com.example.demo" -> "com.example.demo2"`},
		},
		{
			name: "app.json plugins (both platforms)",
			to:   with(base, "app.json", `{"expo":{"name":"Demo","slug":"demo","version":"1.4.0","icon":"./assets/icon.png","ios":{"bundleIdentifier":"com.example.demo","buildNumber":"42"},"android":{"package":"com.example.demo","versionCode":42},"plugins":["expo-camera","expo-location"],"extra":{"apiUrl":"https://api.example.com"}}}`),
			ios:  true, android: true,
			iosWhy:     []string{`config changed: app.json:expo.plugins: ["expo-camera"] -> ["expo-camera","expo-location"]`},
			androidWhy: []string{`config changed: app.json:expo.plugins`},
		},
		{
			name: "icon referenced by app.json", to: with(base, "assets/icon.png", "\x89PNG icon v2"),
			ios: true, android: true, iosWhy: []string{"file changed: assets/icon.png (referenced by app.json)"},
		},
		{
			name: "google-services.json", to: with(base, "android/app/google-services.json", `{"project_info":{"project_id":"demo2"}}`),
			android: true, androidWhy: []string{"file changed: android/app/google-services.json"},
		},
		{
			name: "GoogleService-Info.plist added outside ios/", to: with(base, "firebase/GoogleService-Info.plist", "<plist/>"),
			ios: true, iosWhy: []string{"file added: firebase/GoogleService-Info.plist (Firebase iOS config)"},
		},
		{name: "JS-only dependency bump", to: withLock(with(base, "package.json", packageJSON(map[string]string{"react-native": "0.81.0", "react-native-mmkv": "^3.2.0", "lodash": "^4.17.22"})), map[string]lockPkg{"lodash": {version: "4.17.22"}})},
		{name: "JS-only dependency added", to: withLock(with(base, "package.json", packageJSON(map[string]string{"react-native": "0.81.0", "react-native-mmkv": "^3.2.0", "lodash": "^4.17.21", "dayjs": "^1.11.13"})), map[string]lockPkg{"dayjs": {version: "1.11.13"}})},
		{
			name: "native dependency bumped within range (lockfile only)", to: withLock(base, map[string]lockPkg{"react-native-mmkv": {version: "3.3.0"}}),
			ios: true, android: true, iosWhy: []string{"native package changed: react-native-mmkv 3.2.0 -> 3.3.0"},
		},
		{
			name: "native dependency added", to: withLock(base, map[string]lockPkg{"@shopify/flash-list": {version: "1.7.0"}}),
			ios: true, android: true,
			iosWhy:     []string{"native package added: @shopify/flash-list@1.7.0 (ships native code: shopify-flash-list.podspec (root podspec: React Native CLI autolinking))"},
			androidWhy: []string{"native package added: @shopify/flash-list@1.7.0 (ships native code: android/ with build.gradle, src/main/AndroidManifest.xml (React Native CLI autolinking))"},
		},
		{
			name: "iOS-only native dependency added", to: withLock(base, map[string]lockPkg{"ios-only-kit": {version: "1.0.0"}}),
			ios: true, iosWhy: []string{"native package added: ios-only-kit@1.0.0"},
		},
		{
			name: "expo module added", to: withLock(base, map[string]lockPkg{"expo-camera": {version: "16.0.0"}}),
			ios: true, android: true,
			iosWhy:     []string{"native package added: expo-camera@16.0.0 (ships native code: expo-module.config.json lists apple, pod ios/ExpoCamera.podspec (Expo autolinking))"},
			androidWhy: []string{"native package added: expo-camera@16.0.0 (ships native code: expo-module.config.json lists android, android/build.gradle (Expo autolinking))"},
		},
		{name: "transitive native dependency becomes direct at the same version", to: with(base, "package.json", packageJSON(map[string]string{"react-native": "0.81.0", "react-native-mmkv": "^3.2.0", "lodash": "^4.17.21", "react-native-svg": "15.2.0"}))},
		{
			name: "react-native upgrade", to: withLock(base, map[string]lockPkg{"react-native": {version: "0.81.1"}}),
			ios: true, android: true, iosWhy: []string{"native package changed: react-native 0.81.0 -> 0.81.1"},
		},
		{
			name: "git dependency counts as native", to: withLock(base, map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: forkAt(commitA)}}),
			ios: true, android: true, iosWhy: []string{"native package added: react-native-fork@1.0.0 (git ssh://git@github.com/acme/react-native-fork.git#" + commitA + ") (resolved from git ssh://git@github.com/acme/react-native-fork.git#" + commitA + "; not inspected, counted as native)"},
		},
		{
			name: "git dependency moves to another commit at the same version",
			from: withLock(base, map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: forkAt(commitA)}}),
			to:   withLock(base, map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: forkAt(commitB)}}),
			ios:  true, android: true,
			iosWhy: []string{"native package changed: react-native-fork 1.0.0 (git ssh://git@github.com/acme/react-native-fork.git#" + commitA + ") -> 1.0.0 (git ssh://git@github.com/acme/react-native-fork.git#" + commitB + ")"},
		},
		{
			name: "git dependency unchanged, JS edit",
			from: withLock(base, map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: forkAt(commitA)}}),
			to:   with(withLock(base, map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: forkAt(commitA)}}), "src/App.tsx", "export default 3\n"),
		},
		{
			name: "git dependency on a branch counts as changed by every commit",
			from: withLock(base, map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: "git+ssh://git@github.com/acme/react-native-fork.git#main"}}),
			to:   withLock(base, map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: "git+ssh://git@github.com/acme/react-native-fork.git#main"}}),
			ios:  true, android: true,
			iosWhy: []string{"git reference git+ssh://git@github.com/acme/react-native-fork.git#main is not a commit id"},
		},
		{
			name: "dependency missing from registry counts as native", to: withLock(base, map[string]lockPkg{"left-pad-private": {version: "9.9.9"}}),
			ios: true, android: true, iosWhy: []string{"native package added: left-pad-private@9.9.9 (cannot inspect (nativecheck: package version not in registry: left-pad-private@9.9.9); counted as native)"},
		},
		{name: "JS-only patch edited", to: with(base, "patches/lodash+4.17.21.patch", jsPatch+"+  var extra = 1;\n")},
		{
			name: "patch to a native package", to: nativeDepPatch,
			ios: true, iosWhy: []string{"file added: patches/react-native-mmkv (patch react-native-mmkv+3.2.0.patch changes native sources: ios/MmkvModule.mm)"},
		},
		{name: "native patch renamed for a new version, same hunks", from: nativeDepPatch, to: with(nativeDepPatch, "patches/react-native-mmkv+3.2.0.patch", "\x00delete", "patches/react-native-mmkv+3.2.1.patch", nativePatch)},
		{name: "native patch moved to pnpm naming, same hunks", from: nativeDepPatch, to: with(nativeDepPatch, "patches/react-native-mmkv+3.2.0.patch", "\x00delete", "patches/react-native-mmkv@3.2.1.patch", nativePatch)},
		{
			name: "yarn patch to a native package", to: with(base, ".yarn/patches/react-native-mmkv-npm-3.2.0-4f1c2a9b0e.patch", nativePatch),
			ios: true, iosWhy: []string{"file added: patches/react-native-mmkv (patch react-native-mmkv-npm-3.2.0-4f1c2a9b0e.patch changes native sources: ios/MmkvModule.mm)"},
		},
		{
			name: "font linked by the expo-font plugin",
			from: with(base, "app.json", `{"expo":{"name":"Demo","plugins":[["expo-font",{"fonts":["./assets/fonts/Inter.ttf"]}]]}}`, "assets/fonts/Inter.ttf", "font v1"),
			to:   with(base, "app.json", `{"expo":{"name":"Demo","plugins":[["expo-font",{"fonts":["./assets/fonts/Inter.ttf"]}]]}}`, "assets/fonts/Inter.ttf", "font v2"),
			ios:  true, android: true, androidWhy: []string{"file changed: assets/fonts/Inter.ttf (referenced by app.json)"},
		},
		{name: "native patch's JS hunk edited", from: nativeDepPatch, to: with(nativeDepPatch, "patches/react-native-mmkv+3.2.0.patch", nativePatch+"+export const y = 3;\n")},
		{
			name: "react-native.config.js linked font", from: with(base, "react-native.config.js", "module.exports = { assets: ['./assets/fonts'] };\n", "assets/fonts/Inter.ttf", "font v1"),
			to:  with(base, "react-native.config.js", "module.exports = { assets: ['./assets/fonts'] };\n", "assets/fonts/Inter.ttf", "font v2"),
			ios: true, android: true, iosWhy: []string{"file changed: assets/fonts/Inter.ttf (asset linked by react-native.config.js)"},
		},
		{
			name: "podspec in repo", to: with(base, "LocalKit.podspec", "Pod::Spec.new"),
			ios: true, iosWhy: []string{"file added: LocalKit.podspec (podspec)"},
		},
		{
			name: "change reverted before the tag",
			from: base,
			to:   with(with(base, "ios/Demo/AppDelegate.swift", "changed"), "ios/Demo/AppDelegate.swift", base["ios/Demo/AppDelegate.swift"]),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			from := tc.from
			if from == nil {
				from = base
			}
			a := tb.fingerprint(t, "live", from)
			b := tb.fingerprint(t, "tag", tc.to)
			for _, c := range []struct {
				pl     nativecheck.Platform
				native bool
				why    []string
			}{{nativecheck.IOS, tc.ios, tc.iosWhy}, {nativecheck.Android, tc.android, tc.androidWhy}} {
				ex := nativecheck.Explain(a[c.pl], b[c.pl])
				require.Equal(t, c.native, ex.Native, "%s: %s", c.pl, ex)
				require.Equal(t, c.native, a[c.pl].Hash != b[c.pl].Hash, c.pl)
				for _, w := range c.why {
					require.Contains(t, ex.String(), w, c.pl)
				}
				if !c.native {
					require.Equal(t, string(c.pl)+": no native change", ex.String())
				}
			}
		})
	}
}

func TestFingerprintInputs(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	fps := tb.fingerprint(t, "c1", baseApp())
	ios, android := fps[nativecheck.IOS], fps[nativecheck.Android]
	require.Equal(t, nativecheck.Algorithm, ios.Algorithm)
	require.Len(t, ios.Hash, 64)
	require.True(t, ios.Verify())
	require.NotEqual(t, ios.Hash, android.Hash)

	paths := func(fp nativecheck.Fingerprint) []string {
		var out []string
		for _, f := range fp.Files {
			out = append(out, f.Path)
		}
		return out
	}
	require.Equal(t, []string{
		"assets/icon.png", "ios/Demo.xcodeproj/project.pbxproj", "ios/Demo/AppDelegate.swift",
		"ios/Demo/Info.plist", "ios/Podfile", "ios/Podfile.lock",
	}, paths(ios))
	require.Equal(t, []string{
		"android/app/build.gradle", "android/app/google-services.json",
		"android/app/src/main/AndroidManifest.xml", "android/app/src/main/java/com/demo/MainActivity.kt",
		"android/build.gradle", "assets/icon.png",
	}, paths(android))
	require.Equal(t, []nativecheck.PackageInput{
		{Name: "react-native", Version: "0.81.0", Reason: "native runtime package"},
		{Name: "react-native-mmkv", Version: "3.2.0", Reason: "ships native code: react-native-mmkv.podspec (root podspec: React Native CLI autolinking)"},
		{Name: "react-native-svg", Version: "15.2.0", Reason: "ships native code: react-native-svg.podspec (root podspec: React Native CLI autolinking)"},
	}, ios.Packages)
	var keys []string
	for _, c := range ios.Config {
		keys = append(keys, c.Key)
	}
	require.Equal(t, []string{"app.json:expo.icon", "app.json:expo.ios.bundleIdentifier", "app.json:expo.name", "app.json:expo.plugins", "app.json:expo.slug", "ios/Podfile.lock:PODFILE CHECKSUM"}, keys)

	// A fingerprint survives a JSON round trip (the store keeps it).
	raw, err := json.Marshal(ios)
	require.NoError(t, err)
	var back nativecheck.Fingerprint
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, ios, back)
	require.True(t, back.Verify())
	back.Files[0].Digest = "tampered"
	require.False(t, back.Verify())
}

func TestFingerprintFailsClosed(t *testing.T) {
	t.Parallel()
	t.Run("truncated tree", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.src.truncated = true
		tb.src.add("c", baseApp())
		_, err := tb.fp.Fingerprint(context.Background(), tb.src, "c")
		require.ErrorIs(t, err, nativecheck.ErrIncomplete)
	})
	t.Run("unknown commit", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		_, err := tb.fp.Fingerprint(context.Background(), tb.src, "nope")
		require.Error(t, err)
	})
	t.Run("malformed app.json", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.src.add("c", with(baseApp(), "app.json", "{nope"))
		_, err := tb.fp.Fingerprint(context.Background(), tb.src, "c")
		require.ErrorContains(t, err, "app.json is not a JSON object")
	})
	t.Run("malformed lockfile: native, keyed by the lockfile itself", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		good := tb.fingerprint(t, "good", baseApp())
		bad := tb.fingerprint(t, "bad", with(baseApp(), "package-lock.json", "[1,"))
		for _, pl := range nativecheck.Platforms {
			ex := nativecheck.Explain(good[pl], bad[pl])
			require.True(t, ex.Native, pl)
			require.Contains(t, ex.String(), "file added: package-lock.json (lockfile cannot be parsed (nativecheck: parse package-lock.json: ")
			require.Contains(t, ex.String(), "native package added: lodash@^4.17.21 (the lockfile cannot be parsed; counted as native)")
		}
		// The same unparseable lockfile twice is the same dependency set.
		again := tb.fingerprint(t, "bad-again", with(with(baseApp(), "package-lock.json", "[1,"), "src/App.tsx", "x"))
		require.Equal(t, bad[nativecheck.IOS].Hash, again[nativecheck.IOS].Hash)
		other := tb.fingerprint(t, "bad-other", with(baseApp(), "package-lock.json", "[2,"))
		require.True(t, nativecheck.Explain(bad[nativecheck.Android], other[nativecheck.Android]).Native)
	})
	t.Run("no registry: every package native", func(t *testing.T) {
		t.Parallel()
		src := newMemSource()
		src.add("c", baseApp())
		fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(context.Background(), src, "c")
		require.NoError(t, err)
		require.Len(t, fps[nativecheck.IOS].Packages, 5)
		require.True(t, fps[nativecheck.IOS].Packages[0].Unresolved)
		require.Contains(t, fps[nativecheck.IOS].Packages[0].Reason, "no package registry configured")
	})
	t.Run("registry down: dependency native, not cached", func(t *testing.T) {
		t.Parallel()
		reg := registry(t)
		var down atomic.Bool
		down.Store(true)
		reg.Fail = func(*http.Request) int {
			if down.Load() {
				return http.StatusBadGateway
			}
			return 0
		}
		src := newMemSource()
		src.add("c", baseApp())
		fp := &nativecheck.Fingerprinter{Packages: &nativecheck.Registry{URL: reg.BaseURL}, Concurrency: 1}
		fps, err := fp.Fingerprint(context.Background(), src, "c")
		require.NoError(t, err)
		require.Len(t, fps[nativecheck.Android].Packages, 5) // lodash and scheduler too: fail closed
		require.Contains(t, fps[nativecheck.Android].Packages[0].Reason, "registry answered 502")
		down.Store(false)
		fps2, err := fp.Fingerprint(context.Background(), src, "c")
		require.NoError(t, err)
		require.Len(t, fps2[nativecheck.Android].Packages, 3)
		require.NotEqual(t, fps[nativecheck.Android].Hash, fps2[nativecheck.Android].Hash)
	})
	t.Run("no lockfile: direct dependencies unresolved", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.src.add("c", with(baseApp(), "package-lock.json", "\x00delete"))
		fps, err := tb.fp.Fingerprint(context.Background(), tb.src, "c")
		require.NoError(t, err)
		pk := fps[nativecheck.IOS].Packages
		require.Len(t, pk, 3)
		require.Equal(t, "lodash", pk[0].Name)
		require.Contains(t, pk[0].Reason, "no resolved version")
		require.Equal(t, "native runtime package", pk[1].Reason) // react-native stays forced
	})
}

// TestFingerprintFailsClosedOnRegistry: a registry that cannot be reached
// or answers with unreadable metadata leaves each dependency native, with
// the reason in the explanation the plan shows.
func TestFingerprintFailsClosedOnRegistry(t *testing.T) {
	t.Parallel()
	good := setup(t)
	live := good.fingerprint(t, "live", baseApp())
	bump := withLock(baseApp(), map[string]lockPkg{"lodash": {version: "4.17.22"}})
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		reason  string
	}{
		{"unreachable", nil, "cannot inspect (nativecheck: registry: Get"},
		{"metadata not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"lodash","dist":`))
		}, "cannot inspect (nativecheck: registry metadata for lodash@4.17.22: unexpected EOF); counted as native"},
		{"metadata without a tarball", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"name":"lodash","version":"4.17.22"}`))
		}, "cannot inspect (nativecheck: registry metadata for lodash@4.17.22 has no tarball); counted as native"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var url string
			if tc.handler == nil {
				srv := httptest.NewServer(http.NotFoundHandler())
				url = srv.URL
				srv.Close() // connection refused
			} else {
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				url = srv.URL
			}
			src := newMemSource()
			src.add("tag", bump)
			fps, err := (&nativecheck.Fingerprinter{Packages: &nativecheck.Registry{URL: url}}).Fingerprint(context.Background(), src, "tag")
			require.NoError(t, err)
			for _, pl := range nativecheck.Platforms {
				ex := nativecheck.Explain(live[pl], fps[pl])
				require.True(t, ex.Native, pl)
				var lodash *nativecheck.PackageInput
				for i, p := range fps[pl].Packages {
					if p.Name == "lodash" {
						lodash = &fps[pl].Packages[i]
					}
				}
				require.NotNil(t, lodash)
				require.True(t, lodash.Unresolved)
				require.Contains(t, lodash.Reason, tc.reason)
				require.Contains(t, ex.String(), "native package added: lodash@4.17.22 ("+lodash.Reason+")")
			}
		})
	}
}

// TestAppLinkingOverrides: the app's react-native.config.js can switch a
// dependency's platform off (then its bumps are not native there) unless
// the app links it by hand; it can also configure a package for a platform.
func TestAppLinkingOverrides(t *testing.T) {
	t.Parallel()
	off := "module.exports = { dependencies: { 'react-native-mmkv': { platforms: { ios: null } } } };\n"
	base := with(baseApp(), "react-native.config.js", off)
	bump := withLock(base, map[string]lockPkg{"react-native-mmkv": {version: "3.3.0"}})
	tb := setup(t)
	a := tb.fingerprint(t, "a", base)
	b := tb.fingerprint(t, "b", bump)
	require.False(t, nativecheck.Explain(a[nativecheck.IOS], b[nativecheck.IOS]).Native, nativecheck.Explain(a[nativecheck.IOS], b[nativecheck.IOS]).String())
	require.Contains(t, nativecheck.Explain(a[nativecheck.Android], b[nativecheck.Android]).String(), "native package changed: react-native-mmkv 3.2.0 -> 3.3.0")

	// The same, with the pod added by hand in the Podfile.
	pod := "platform :ios, '15.1'\nuse_react_native!\npod 'react-native-mmkv', :path => '../node_modules/react-native-mmkv'\n"
	c := tb.fingerprint(t, "c", with(base, "ios/Podfile", pod))
	d := tb.fingerprint(t, "d", with(bump, "ios/Podfile", pod))
	ex := nativecheck.Explain(c[nativecheck.IOS], d[nativecheck.IOS])
	require.Equal(t, "ios: native change\n  native package changed: react-native-mmkv 3.2.0 -> 3.3.0 (linked by hand in ios/Podfile)", ex.String())

	// Configuring a JS-looking package for iOS links it there.
	forced := with(baseApp(), "react-native.config.js", "module.exports = { dependencies: { lodash: { platforms: { ios: { podspecPath: './vendor/Lodash.podspec' } } } } };\n")
	e := tb.fingerprint(t, "e", forced)
	f := tb.fingerprint(t, "f", withLock(forced, map[string]lockPkg{"lodash": {version: "4.17.22"}}))
	require.Equal(t, "ios: native change\n  native package changed: lodash 4.17.21 -> 4.17.22 (configured for ios in the app's react-native.config.js)",
		nativecheck.Explain(e[nativecheck.IOS], f[nativecheck.IOS]).String())
	require.False(t, nativecheck.Explain(e[nativecheck.Android], f[nativecheck.Android]).Native)
}
