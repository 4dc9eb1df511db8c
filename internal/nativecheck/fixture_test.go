package nativecheck_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
)

const infoPlist = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>CFBundleDisplayName</key>
	<string>Demo</string>
	<key>CFBundleShortVersionString</key>
	<string>%s</string>
	<key>CFBundleVersion</key>
	<string>%s</string>
	<key>NSCameraUsageDescription</key>
	<string>Scan receipts</string>
</dict>
</plist>
`

const pbxproj = `// !$*UTF8*$!
{
	objects = {
		13B07F941A680F5B00A75B9A /* Debug */ = {
			buildSettings = {
				CURRENT_PROJECT_VERSION = %s;
				MARKETING_VERSION = %s;
				PRODUCT_BUNDLE_IDENTIFIER = com.example.demo;
			};
		};
	};
}
`

const appGradle = `apply plugin: "com.android.application"
android {
    namespace "com.example.demo"
    defaultConfig {
        applicationId "com.example.demo"
        minSdkVersion rootProject.ext.minSdkVersion
        versionCode %s
        versionName "%s"
    }
}
dependencies {
    implementation("com.facebook.react:react-android")
}
`

const podLock = `PODS:
  - boost (1.84.0)
  - MMKV (%s)
  - react-native-mmkv (3.2.0):
    - MMKV

DEPENDENCIES:
  - react-native-mmkv (from ` + "`../node_modules/react-native-mmkv`" + `)

SPEC CHECKSUMS:
  boost: 1dca942403ed9342f98334bf4c3621f011aa7946

PODFILE CHECKSUM: %s

COCOAPODS: 1.15.2
`

const appJSON = `{
  "expo": {
    "name": "Demo",
    "slug": "demo",
    "version": "%s",
    "icon": "./assets/icon.png",
    "ios": {"bundleIdentifier": "com.example.demo", "buildNumber": "%s"},
    "android": {"package": "com.example.demo", "versionCode": %s},
    "plugins": ["expo-camera"],
    "extra": {"apiUrl": "https://api.example.com"}
  }
}
`

const jsPatch = `diff --git a/node_modules/lodash/lodash.js b/node_modules/lodash/lodash.js
index 4131e93..5b1b0b2 100644
--- a/node_modules/lodash/lodash.js
+++ b/node_modules/lodash/lodash.js
@@ -10,7 +10,7 @@
   var VERSION = '4.17.21';
-  var LARGE_ARRAY_SIZE = 200;
+  var LARGE_ARRAY_SIZE = 400;
`

const nativePatch = `diff --git a/node_modules/react-native-mmkv/ios/MmkvModule.mm b/node_modules/react-native-mmkv/ios/MmkvModule.mm
index 1111111..2222222 100644
--- a/node_modules/react-native-mmkv/ios/MmkvModule.mm
+++ b/node_modules/react-native-mmkv/ios/MmkvModule.mm
@@ -42,6 +42,7 @@ RCT_EXPORT_MODULE()
 - (void)install {
+  [MMKV setLogLevel:MMKVLogNone];
   installed = YES;
diff --git a/node_modules/react-native-mmkv/src/index.ts b/node_modules/react-native-mmkv/src/index.ts
index 3333333..4444444 100644
--- a/node_modules/react-native-mmkv/src/index.ts
+++ b/node_modules/react-native-mmkv/src/index.ts
@@ -1,3 +1,3 @@
-export const x = 1;
+export const x = 2;
`

const (
	commitA = "0123456789abcdef0123456789abcdef01234567"
	commitB = "89abcdef0123456789abcdef0123456789abcdef"
)

func forkAt(commit string) string {
	return "git+ssh://git@github.com/acme/react-native-fork.git#" + commit
}

// lockPkg is one package of the fixture's package-lock.json.
type lockPkg struct{ version, resolved string }

func packageLock(pkgs map[string]lockPkg) string {
	packages := map[string]any{"": map[string]any{"name": "demo", "version": "1.0.0"}}
	for name, p := range pkgs {
		resolved := p.resolved
		if resolved == "" {
			base := name[strings.LastIndex(name, "/")+1:]
			resolved = "https://registry.npmjs.org/" + name + "/-/" + base + "-" + p.version + ".tgz"
		}
		packages["node_modules/"+name] = map[string]any{"version": p.version, "resolved": resolved}
	}
	b, _ := json.MarshalIndent(map[string]any{"name": "demo", "lockfileVersion": 3, "requires": true, "packages": packages}, "", "  ")
	return string(b)
}

func packageJSON(deps map[string]string) string {
	b, _ := json.MarshalIndent(map[string]any{
		"name": "demo", "version": "1.0.0",
		"scripts":      map[string]string{"start": "react-native start", "test": "jest"},
		"dependencies": deps,
	}, "", "  ")
	return string(b)
}

var baseDeps = map[string]string{"react-native": "0.81.0", "react-native-mmkv": "^3.2.0", "lodash": "^4.17.21"}

var baseLock = map[string]lockPkg{
	"react-native":      {version: "0.81.0"},
	"react-native-mmkv": {version: "3.2.0"},
	"lodash":            {version: "4.17.21"},
	"scheduler":         {version: "0.26.0"},
	"react-native-svg":  {version: "15.2.0"}, // transitive only
}

// baseApp is a bare React Native app with an Expo app.json, at release 1.4.0.
func baseApp() map[string]string {
	return map[string]string{
		"package.json":                             packageJSON(baseDeps),
		"package-lock.json":                        packageLock(baseLock),
		"app.json":                                 fmt.Sprintf(appJSON, "1.4.0", "42", "42"),
		"index.js":                                 "import App from './src/App';\n",
		"src/App.tsx":                              "export default function App() { return null }\n",
		"assets/logo.png":                          "\x89PNG logo v1",
		"assets/icon.png":                          "\x89PNG icon v1",
		"patches/lodash+4.17.21.patch":             jsPatch,
		"ios/Podfile":                              "platform :ios, '15.1'\nuse_react_native!\n",
		"ios/Podfile.lock":                         fmt.Sprintf(podLock, "1.3.4", "aaaa1111"),
		"ios/Demo/Info.plist":                      fmt.Sprintf(infoPlist, "1.4.0", "42"),
		"ios/Demo/AppDelegate.swift":               "import UIKit\nclass AppDelegate {}\n",
		"ios/Demo.xcodeproj/project.pbxproj":       fmt.Sprintf(pbxproj, "42", "1.4.0"),
		"ios/Pods/Manifest.lock":                   "generated",
		"android/build.gradle":                     "buildscript { ext { minSdkVersion = 24 } }\n",
		"android/app/build.gradle":                 fmt.Sprintf(appGradle, "42", "1.4.0"),
		"android/app/google-services.json":         `{"project_info":{"project_id":"demo"}}`,
		"android/app/src/main/AndroidManifest.xml": "<manifest/>\n",
		"android/app/src/main/java/com/demo/MainActivity.kt": "class MainActivity\n",
		"android/app/build/outputs/apk/app.apk":              "binary",
		".github/workflows/ci.yml":                           "on: push\n",
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "\x00delete" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func withLock(base map[string]string, change map[string]lockPkg) map[string]string {
	lock := maps.Clone(baseLock)
	for k, v := range change {
		if v.version == "" {
			delete(lock, k)
			continue
		}
		lock[k] = v
	}
	return with(base, "package-lock.json", packageLock(lock))
}

// registry is the fake npm registry the fixture's packages live in.
func registry(t *testing.T) *npmtest.Registry {
	t.Helper()
	reg := npmtest.New()
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	reg.BaseURL = srv.URL
	reg.AddNative("react-native-mmkv", "3.2.0")
	reg.AddNative("react-native-mmkv", "3.3.0")
	reg.AddNative("react-native-svg", "15.2.0")
	reg.AddNative("@shopify/flash-list", "1.7.0")
	reg.Add("expo-camera", "16.0.0", map[string]string{
		"expo-module.config.json": `{"platforms":["apple","android"]}`, "build/index.js": "",
		"ios/ExpoCamera.podspec": "Pod::Spec.new", "android/build.gradle": "apply plugin: 'com.android.library'",
	}, nil)
	reg.Add("ios-only-kit", "1.0.0", map[string]string{"IOSOnlyKit.podspec": "", "index.js": ""}, nil)
	reg.AddJS("lodash", "4.17.21")
	reg.AddJS("lodash", "4.17.22")
	reg.AddJS("scheduler", "0.26.0")
	reg.AddJS("dayjs", "1.11.13")
	return reg
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
