package nativecheck

import (
	"path"
	"strings"
)

// platforms is a set of platforms as bits.
type platforms uint8

const (
	onIOS platforms = 1 << iota
	onAndroid
	onBoth = onIOS | onAndroid
)

func (p platforms) has(pl Platform) bool {
	switch pl {
	case IOS:
		return p&onIOS != 0
	case Android:
		return p&onAndroid != 0
	}
	return false
}

// fileKind says how a native file is digested.
type fileKind uint8

const (
	kindBlob        fileKind = iota // git blob sha, no read needed
	kindPlist                       // Info.plist without version keys
	kindPbxproj                     // project.pbxproj without version settings
	kindGradle                      // build.gradle(.kts) without versionCode/versionName
	kindGradleProps                 // gradle.properties without VERSION_CODE/VERSION_NAME
	kindPodLock                     // Podfile.lock by its pod entries
	kindPatch                       // patches/*.patch by native hunks only
	kindAppConfig                   // app.json / app.config.json: fields, not file
	kindPackageJSON                 // package.json: deps and native fields
)

// classifyPath decides whether a path relative to the app root is a native
// input and for which platforms. It avoids globbing on the hot path: it is
// called for every entry of trees with 100,000 entries.
func classifyPath(rel string) (platforms, fileKind, string) {
	first, rest, _ := strings.Cut(rel, "/")
	base := path.Base(rel)
	if first == "node_modules" || base == ".DS_Store" {
		return 0, 0, ""
	}
	switch first {
	case "ios":
		if iosBuildOutput(rest) {
			return 0, 0, ""
		}
		switch {
		case base == "Info.plist":
			return onIOS, kindPlist, "iOS project file"
		case base == "project.pbxproj":
			return onIOS, kindPbxproj, "iOS project file"
		case base == "Podfile.lock":
			return onIOS, kindPodLock, "CocoaPods lock"
		}
		return onIOS, kindBlob, "iOS project file"
	case "android":
		if androidBuildOutput(rest) {
			return 0, 0, ""
		}
		if base == "build.gradle" || base == "build.gradle.kts" {
			return onAndroid, kindGradle, "Android project file"
		}
		if base == "gradle.properties" || base == "version.properties" {
			return onAndroid, kindGradleProps, "Android project file"
		}
		return onAndroid, kindBlob, "Android project file"
	case "patches":
		if strings.HasSuffix(base, ".patch") || strings.HasSuffix(base, ".diff") {
			return onBoth, kindPatch, "patch-package patch"
		}
		return 0, 0, ""
	case ".yarn":
		if strings.HasPrefix(rest, "patches/") && strings.HasSuffix(base, ".patch") {
			return onBoth, kindPatch, "yarn patch"
		}
		return 0, 0, ""
	case "cng-patches":
		return onBoth, kindBlob, "Expo CNG patch"
	case "modules":
		return onBoth, kindBlob, "local native module"
	case "plugins":
		return onBoth, kindBlob, "local config plugin"
	case "cpp":
		return onBoth, kindBlob, "shared C++ source"
	}
	switch {
	case base == "GoogleService-Info.plist":
		return onIOS, kindBlob, "Firebase iOS config"
	case base == "google-services.json":
		return onAndroid, kindBlob, "Firebase Android config"
	case strings.HasSuffix(base, ".podspec"):
		return onIOS, kindBlob, "podspec"
	}
	if rest == "" || first == rel { // root-level files
		switch rel {
		case "app.json", "app.config.json":
			return onBoth, kindAppConfig, "app config"
		case "app.config.js", "app.config.ts", "app.config.mjs", "app.config.cjs":
			// Code cannot be evaluated here: hash it whole (fails closed;
			// a version bump in it counts as native).
			return onBoth, kindBlob, "app config code (not evaluated)"
		case "react-native.config.js", "react-native.config.ts", "react-native.config.mjs", "react-native.config.cjs":
			return onBoth, kindBlob, "react-native autolinking config"
		case "package.json":
			return onBoth, kindPackageJSON, "package.json"
		}
	}
	return 0, 0, ""
}

func iosBuildOutput(rest string) bool {
	return strings.HasPrefix(rest, "Pods/") || strings.HasPrefix(rest, "build/") ||
		rest == ".xcode.env.local" || strings.Contains(rest, "xcuserdata/") ||
		strings.Contains(rest, "project.xcworkspace/") || strings.HasPrefix(rest, "DerivedData/")
}

func androidBuildOutput(rest string) bool {
	// Build output lives in android/<dir> or android/<module>/<dir>; deeper
	// directories of those names (a Java package called "build") are source.
	parts := strings.SplitN(rest, "/", 3)
	for i, p := range parts {
		if i < 2 && i < len(parts)-1 {
			switch p {
			case "build", ".gradle", ".cxx", ".idea":
				return true
			}
		}
	}
	return rest == "local.properties" || rest == "gradlew.bat"
}
