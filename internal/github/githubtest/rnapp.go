package githubtest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
)

// RNApp is a small bare React Native app at a version, as the sandbox demo
// and the crash harness commit it to a fake repository: react-native 0.81.0
// and lodash in package.json and its npm lockfile, the version and build
// number in the iOS Info.plist and the Android build.gradle, and Source as
// src/App.tsx.
type RNApp struct {
	Name       string // package.json name, e.g. "demo-app"
	IOSProject string // the folder of ios/<IOSProject>/Info.plist
	Version    string
	Build      string // CFBundleVersion and versionCode
	Lodash     string // lodash's version: a JS-only dependency change
	Source     string // src/App.tsx
}

// Files is the app's snapshot.
func (a RNApp) Files() Files {
	pj, _ := json.Marshal(map[string]any{"name": a.Name, "version": a.Version,
		"dependencies": map[string]string{"react-native": "0.81.0", "lodash": a.Lodash}})
	lock, _ := json.Marshal(map[string]any{"name": a.Name, "lockfileVersion": 3, "requires": true, "packages": map[string]any{
		"":                          map[string]any{"name": a.Name, "version": a.Version},
		"node_modules/react-native": map[string]any{"version": "0.81.0", "resolved": "https://registry.npmjs.org/react-native/-/react-native-0.81.0.tgz"},
		"node_modules/lodash":       map[string]any{"version": a.Lodash, "resolved": "https://registry.npmjs.org/lodash/-/lodash-" + a.Lodash + ".tgz"},
	}})
	return Files{
		"package.json":      string(pj),
		"package-lock.json": string(lock),
		"index.js":          "import App from './src/App';\n",
		"src/App.tsx":       a.Source,
		"ios/" + a.IOSProject + "/Info.plist": "<plist><dict><key>CFBundleShortVersionString</key><string>" + a.Version +
			"</string><key>CFBundleVersion</key><string>" + a.Build + "</string></dict></plist>\n",
		"ios/Podfile":              "platform :ios, '15.1'\nuse_react_native!\n",
		"android/app/build.gradle": "android {\n  defaultConfig {\n    versionCode " + a.Build + "\n    versionName \"" + a.Version + "\"\n  }\n}\n",
	}
}

// Zip is a zip archive of one file, as a JS bundle release asset is
// uploaded.
func Zip(name, content string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, content); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
