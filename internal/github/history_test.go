package github_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
)

const (
	forkA = "0123456789abcdef0123456789abcdef01234567"
	forkB = "89abcdef0123456789abcdef0123456789abcdef"
)

// historyLock is the app's package-lock.json: registry packages at their
// versions and a git fork at a commit.
func historyLock(versions map[string]string, forkCommit string) string {
	packages := map[string]any{"": map[string]any{"name": "demo", "workspaces": []string{"packages/*"}}}
	for name, v := range versions {
		base := name[strings.LastIndex(name, "/")+1:]
		packages["node_modules/"+name] = map[string]any{"version": v, "resolved": "https://registry.npmjs.org/" + name + "/-/" + base + "-" + v + ".tgz"}
	}
	packages["node_modules/react-native-fork"] = map[string]any{"version": "1.0.0", "resolved": "git+ssh://git@github.com/acme/react-native-fork.git#" + forkCommit}
	packages["node_modules/@acme/kit"] = map[string]any{"resolved": "packages/kit", "link": true}
	packages["packages/kit"] = map[string]any{"name": "@acme/kit", "version": "1.0.0"}
	b, _ := json.MarshalIndent(map[string]any{"name": "demo", "lockfileVersion": 3, "packages": packages}, "", "  ")
	return string(b)
}

// historyApp is release 1.0.0 of an app that depends on a package keeping
// Android in lib/android/app (as react-native-navigation does), a git fork
// and a native workspace package.
func historyApp() githubtest.Files {
	return githubtest.Files{
		"package.json":      `{"name":"demo","version":"1.0.0","workspaces":["packages/*"]}`,
		"package-lock.json": historyLock(map[string]string{"react-native": "0.81.0", "react-native-navigation": "7.44.0", "lodash": "4.17.21"}, forkA),
		"src/App.tsx":       "export default 1\n",
		"ios/Podfile":       "use_react_native!\n",
		"ios/Podfile.lock":  "PODS:\n  - boost (1.84.0)\n\nPODFILE CHECKSUM: aaaa1111\n\nCOCOAPODS: 1.15.2\n",
		"ios/Demo/Info.plist": "<plist><dict><key>CFBundleShortVersionString</key><string>1.0.0</string>" +
			"<key>CFBundleVersion</key><string>1</string></dict></plist>",
		"android/app/build.gradle":                                  "android { defaultConfig { versionCode 1\n versionName \"1.0.0\"\n } }\n",
		"packages/kit/package.json":                                 `{"name":"@acme/kit","version":"1.0.0"}`,
		"packages/kit/react-native.config.js":                       "module.exports = { dependency: { platforms: { ios: null } } }\n",
		"packages/kit/android/build.gradle":                         "apply plugin: 'com.android.library'\n",
		"packages/kit/android/src/main/java/com/acme/KitPackage.kt": "class KitPackage : ReactPackage\n",
		"packages/kit/src/index.ts":                                 "export const kit = 1\n",
	}
}

// TestReleaseHistoryThroughGitHub walks a labelled release history through
// the GitHub reader: every step is labelled by hand, and no native change
// may come out JS-only. The steps marked "hole" were judged JS-only on a
// platform by the first version of the rules.
func TestReleaseHistoryThroughGitHub(t *testing.T) {
	t.Parallel()
	reg := npmtest.New()
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	reg.BaseURL = srv.URL
	rnn := map[string]string{
		"ReactNativeNavigation.podspec":                "Pod::Spec.new\n",
		"react-native.config.js":                       "module.exports = { dependency: { platforms: { ios: {}, android: { sourceDir: './lib/android/app/' } } } };\n",
		"lib/android/app/build.gradle":                 "apply plugin: 'com.android.library'\n",
		"lib/android/app/src/main/AndroidManifest.xml": "<manifest/>\n",
		"lib/dist/index.js":                            "module.exports = {}\n",
	}
	reg.Add("react-native-navigation", "7.44.0", rnn, nil)
	reg.Add("react-native-navigation", "7.45.0", rnn, nil)
	reg.Add("react-native-picker-off", "2.0.2", map[string]string{
		"RNPicker.podspec": "Pod::Spec.new\n", "ios/Picker.swift": "class P {}\n",
		"react-native.config.js": "module.exports = { dependency: { platforms: { ios: null, android: null } } };\n",
	}, nil)
	reg.AddJS("lodash", "4.17.21")
	reg.AddJS("lodash", "4.17.22")
	fp := &nativecheck.Fingerprinter{Packages: &nativecheck.Registry{URL: srv.URL}}

	tb := setupRepo(t)
	versions := map[string]string{"react-native": "0.81.0", "react-native-navigation": "7.44.0", "lodash": "4.17.21"}
	lock := func(change map[string]string, fork string) string {
		v := map[string]string{}
		for k, x := range versions {
			v[k] = x
		}
		for k, x := range change {
			v[k] = x
		}
		return historyLock(v, fork)
	}
	steps := []struct {
		name         string
		change       githubtest.Files
		ios, android bool
	}{
		{"JS fix, version bump, JS dependency bump", githubtest.Files{
			"src/App.tsx":         "export default 2\n",
			"ios/Demo/Info.plist": strings.NewReplacer("1.0.0", "1.0.1", "<string>1<", "<string>2<").Replace(historyApp()["ios/Demo/Info.plist"]),
			"package-lock.json":   lock(map[string]string{"lodash": "4.17.22"}, forkA),
		}, false, false},
		{"hole: a package with lib/android/app bumped", githubtest.Files{"package-lock.json": lock(map[string]string{"lodash": "4.17.22", "react-native-navigation": "7.45.0"}, forkA)}, true, true},
		{"hole: the git fork moved to another commit", githubtest.Files{"package-lock.json": lock(map[string]string{"lodash": "4.17.22", "react-native-navigation": "7.45.0"}, forkB)}, true, true},
		{"hole: the Podfile changed (checksum only)", githubtest.Files{"ios/Podfile.lock": strings.Replace(historyApp()["ios/Podfile.lock"], "aaaa1111", "bbbb2222", 1)}, true, false},
		{"workspace package's Kotlin", githubtest.Files{"packages/kit/android/src/main/java/com/acme/KitPackage.kt": "class KitPackage : ReactPackage { }\n"}, false, true},
		{"workspace package's JS", githubtest.Files{"packages/kit/src/index.ts": "export const kit = 2\n"}, false, false},
		{"a package with both platforms switched off", githubtest.Files{"package-lock.json": lock(map[string]string{"lodash": "4.17.22", "react-native-navigation": "7.45.0", "react-native-picker-off": "2.0.2"}, forkB)}, false, false},
		{"... linked by hand in the Podfile", githubtest.Files{"ios/Podfile": "use_react_native!\npod 'RNPicker', :path => '../node_modules/react-native-picker-off'\n"}, true, false},
	}
	files := historyApp()
	prev := tb.repo.Commit("1.0.0", files)
	tb.repo.AnnotatedTag("v1.0.0", prev, "1.0.0")
	fingerprint := func(commit string) map[nativecheck.Platform]nativecheck.Fingerprint {
		fps, err := fp.Fingerprint(t.Context(), tb.gh, commit)
		require.NoError(t, err)
		return fps
	}
	last := fingerprint(prev)
	for i, s := range steps {
		files = files.With(s.change)
		c := tb.repo.Commit(s.name, files, prev)
		tb.repo.LightweightTag(fmt.Sprintf("v1.0.%d", i+1), c)
		next := fingerprint(c)
		for _, want := range []struct {
			pl     nativecheck.Platform
			native bool
		}{{nativecheck.IOS, s.ios}, {nativecheck.Android, s.android}} {
			ex := nativecheck.Explain(last[want.pl], next[want.pl])
			require.Equal(t, want.native, ex.Native, "%s (%s): %s", s.name, want.pl, ex)
		}
		prev, last = c, next
	}
}
