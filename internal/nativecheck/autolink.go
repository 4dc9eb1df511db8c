package nativecheck

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
)

// The native judgement of one npm package, per platform, as React Native's
// and Expo's autolinking decide what to link, plus what an app can link by
// hand. The rules, from @react-native-community/cli-config-apple and
// cli-config-android (v20) and expo-modules-autolinking:
//
// iOS is linked when
//   - the package root holds a *.podspec (cli-config-apple findPodspec), or
//   - its react-native.config.js names a podspecPath (honoured by the CLI
//     before v7, which apps on React Native 0.68 and older use), or
//   - expo-module.config.json lists apple/ios/macos/tvos in "platforms" and
//     a podspec is declared (apple.podspecPath) or found one directory down;
//
// Android is linked when
//   - react-native.config.js's dependency.platforms.android.sourceDir, or
//     else android/, holds a build.gradle(.kts) at its top or an
//     AndroidManifest.xml (findManifest's exclusions apply), or the pure C++
//     settings (cxxModuleCMakeLists*) are all set, or
//   - expo-module.config.json lists android and a Gradle project is there
//     (android.path, default android/, needs a build.gradle; android.projects;
//     android.gradlePlugins).
//
// dependency.platforms.<platform> = null turns the React Native CLI's
// linking off for that platform (a package that provides platforms of its
// own is linked on none). It does not affect Expo's autolinking.
//
// Fail closed beyond autolinking: a package.json codegenConfig (codegen
// output is compiled into the app), a podspec or Gradle project one or two
// directories down that autolinking does not pick up (apps link those by
// hand), and prebuilt binaries (.a, .framework, .xcframework for iOS; .so,
// .aar, .jar for Android) count as native unless the platform is turned off.
// The CLI's further checks (a ReactPackage class in the Android sources) are
// not made: a Gradle library without one is counted as native.

// pkgFiles is one package's content as far as the judgement needs it.
type pkgFiles struct {
	paths    []string          // regular files relative to the package root, sorted
	contents map[string][]byte // the files needContent selects
}

// needContent reports whether the judgement reads a file's content.
func needContent(rel string) bool {
	switch rel {
	case "package.json", "expo-module.config.json", "unimodule.json":
		return true
	}
	return isRNConfigName(rel)
}

func isRNConfigName(rel string) bool {
	for _, n := range rnConfigNames {
		if rel == n {
			return true
		}
	}
	return false
}

func (pf pkgFiles) has(p string) bool {
	i := sort.SearchStrings(pf.paths, p)
	return i < len(pf.paths) && pf.paths[i] == p
}

// under returns the files below directory d ("." is the root).
func (pf pkgFiles) under(d string) []string {
	if d == "." || d == "" {
		return pf.paths
	}
	prefix := strings.TrimSuffix(d, "/") + "/"
	i := sort.SearchStrings(pf.paths, prefix)
	j := i
	for j < len(pf.paths) && strings.HasPrefix(pf.paths[j], prefix) {
		j++
	}
	return pf.paths[i:j]
}

func (pf pkgFiles) hasDir(d string) bool { return len(pf.under(d)) > 0 }

// skippedDir names top-level directories of a package that never ship into
// an app: examples, tests, docs. Build output directories are skipped at
// any depth.
var skippedDir = map[string]bool{
	"example": true, "examples": true, "Example": true, "Examples": true, "demo": true, "sample": true,
	"samples": true, "test": true, "tests": true, "__tests__": true, "__mocks__": true, "fixtures": true,
	"e2e": true, "playground": true, "docs": true, "website": true, "node_modules": true, ".github": true,
}

func skippedPath(rel string) bool {
	first, _, nested := strings.Cut(rel, "/")
	if nested && skippedDir[first] {
		return true
	}
	return hasDirNamed(rel, outputDir)
}

// outputDir names directories whose files are generated or vendored at
// any depth: they never count as a package's own sources.
var outputDir = map[string]bool{"node_modules": true, "build": true, ".gradle": true, ".cxx": true, "Pods": true, "xcuserdata": true}

// hasDirNamed reports whether a directory component of rel (not its file
// name) is in names. It does not allocate: it runs for every file of every
// package.
func hasDirNamed(rel string, names map[string]bool) bool {
	for {
		i := strings.IndexByte(rel, '/')
		if i < 0 {
			return false
		}
		if names[rel[:i]] {
			return true
		}
		rel = rel[i+1:]
	}
}

// prebuilt reports the platforms a prebuilt binary at rel links into.
func prebuilt(rel string) platforms {
	base := path.Base(rel)
	switch {
	case strings.Contains(rel, ".xcframework/") || strings.HasSuffix(rel, ".xcframework"),
		strings.Contains(rel, ".framework/") || strings.HasSuffix(rel, ".framework"):
		return onIOS
	case strings.HasSuffix(base, ".aar"), strings.HasSuffix(base, ".so"),
		strings.HasSuffix(base, ".jar") && base != "gradle-wrapper.jar":
		return onAndroid
	case strings.HasSuffix(base, ".a") && len(base) > 2:
		if strings.Contains("/"+rel, "/android/") || strings.Contains("/"+rel, "/jni/") {
			return onAndroid
		}
		return onIOS
	}
	return 0
}

// binaryRoot shortens a path inside a framework bundle to the bundle.
func binaryRoot(rel string) string {
	for _, ext := range []string{".xcframework/", ".framework/"} {
		if i := strings.Index(rel, ext); i >= 0 {
			return rel[:i+len(ext)-1]
		}
	}
	return rel
}

// judgement is the verdict on one package, with what the local-package
// fingerprint needs to pick its native files.
type judgement struct {
	ios, android []string // evidence: what links each platform
	// Directories whose files build into each platform.
	iosDirs, androidDirs []string
	codegen              string // canonical codegenConfig, "" if none
	jsSrcsDir            string // codegen spec sources, relative
}

func (j judgement) native() PackageNative {
	pn := PackageNative{IOS: len(j.ios) > 0, Android: len(j.android) > 0}
	pn.IOSEvidence = strings.Join(j.ios, "; ")
	pn.AndroidEvidence = strings.Join(j.android, "; ")
	switch {
	case pn.IOS && pn.Android && pn.IOSEvidence == pn.AndroidEvidence:
		pn.Evidence = pn.IOSEvidence
	case pn.IOS && pn.Android:
		pn.Evidence = "ios: " + pn.IOSEvidence + "; android: " + pn.AndroidEvidence
	case pn.IOS:
		pn.Evidence = "ios: " + pn.IOSEvidence
	case pn.Android:
		pn.Evidence = "android: " + pn.AndroidEvidence
	}
	return pn
}

// judgePackage decides per platform whether a package ships native code
// an app links.
func judgePackage(pf pkgFiles) judgement {
	var j judgement
	var pj struct {
		CodegenConfig json.RawMessage `json:"codegenConfig"`
	}
	pjErr := ""
	if b, ok := pf.contents["package.json"]; !ok {
		pjErr = "the package has no package.json"
	} else if err := json.Unmarshal(b, &pj); err != nil {
		pjErr = "package.json is not valid JSON"
	}
	if pjErr != "" {
		why := pjErr + "; counted as native"
		j.ios = append(j.ios, why)
		j.android = append(j.android, why)
	}
	hasCfg := false
	var cfg rnConfig
	for _, n := range rnConfigNames {
		if b, ok := pf.contents[n]; ok {
			cfg, hasCfg = readRNConfig(n, b), true
			break
		}
	}
	none := rnPlatform{obj: jsValue{kind: jsUndefined}}
	iosP, androidP := none, none
	if hasCfg {
		iosP, androidP = cfg.dependencyPlatform("ios"), cfg.dependencyPlatform("android")
	}
	expo := readExpoModuleConfig(pf)

	codegen := len(pj.CodegenConfig) > 0 && string(pj.CodegenConfig) != "null"
	if codegen {
		j.codegen = compactJSON(pj.CodegenConfig)
		var cg struct {
			JSSrcsDir string `json:"jsSrcsDir"`
		}
		if json.Unmarshal(pj.CodegenConfig, &cg) == nil && cg.JSSrcsDir != "" {
			if r, ok := pkgRelPath(cg.JSSrcsDir); ok {
				j.jsSrcsDir = r
			}
		}
	}

	// Podspecs and Gradle projects that autolinking links, to tell them
	// from those an app would have to link by hand.
	linkedPods := map[string]bool{}
	linkedGradle := map[string]bool{}

	// iOS, React Native CLI.
	switch {
	case iosP.unsure != "":
		j.ios = append(j.ios, iosP.unsure+"; counted as native")
		j.iosDirs = append(j.iosDirs, ".")
	case iosP.disabled:
	default:
		var root []string
		for _, p := range pf.paths {
			if !strings.Contains(p, "/") && strings.HasSuffix(p, ".podspec") {
				root = append(root, p)
				linkedPods[p] = true
			}
		}
		if len(root) > 0 {
			j.ios = append(j.ios, strings.Join(root, ", ")+" (root podspec: React Native CLI autolinking)")
			j.iosDirs = append(j.iosDirs, "ios", "apple", "macos", "cpp", "common", "shared", "Sources")
		}
		rel, set, unsure := cfg.pathSetting(iosP, "podspecPath")
		switch {
		case unsure != "":
			j.ios = append(j.ios, unsure+"; counted as native")
			j.iosDirs = append(j.iosDirs, ".")
		case set && pf.has(rel):
			linkedPods[rel] = true
			j.ios = append(j.ios, fmt.Sprintf("%s names podspecPath %s (linked by React Native CLI before v7)", cfg.name, rel))
			j.iosDirs = append(j.iosDirs, path.Dir(rel))
		}
	}
	// iOS, Expo.
	switch {
	case expo.err != "":
		j.ios = append(j.ios, expo.err+"; counted as native")
		j.iosDirs = append(j.iosDirs, ".")
	case expo.apple:
		if len(expo.podspecs) > 0 {
			for _, p := range expo.podspecs {
				linkedPods[p] = true
				j.iosDirs = append(j.iosDirs, path.Dir(p))
			}
			j.ios = append(j.ios, fmt.Sprintf("%s lists %s, pod %s (Expo autolinking)", expo.name, expo.applePlatform, strings.Join(expo.podspecs, ", ")))
		}
	}

	// Android, React Native CLI.
	switch {
	case androidP.unsure != "":
		j.android = append(j.android, androidP.unsure+"; counted as native")
		j.androidDirs = append(j.androidDirs, ".")
	case androidP.disabled:
	default:
		src, set, unsure := cfg.pathSetting(androidP, "sourceDir")
		if unsure != "" {
			j.android = append(j.android, unsure+"; counted as native")
			j.androidDirs = append(j.androidDirs, ".")
			break
		}
		declared := set
		if !set && pf.hasDir("android") {
			src = "android"
		}
		if src == "" || !pf.hasDir(src) {
			break
		}
		var found []string
		if pf.has(path.Join(src, "build.gradle")) {
			found = append(found, "build.gradle")
			linkedGradle[path.Join(src, "build.gradle")] = true
		} else if pf.has(path.Join(src, "build.gradle.kts")) {
			found = append(found, "build.gradle.kts")
			linkedGradle[path.Join(src, "build.gradle.kts")] = true
		}
		mrel, mset, munsure := cfg.pathSetting(androidP, "manifestPath")
		switch {
		case munsure != "":
			found = append(found, munsure)
		case mset:
			if pf.has(path.Join(src, mrel)) {
				found = append(found, mrel)
			}
		default:
			if m := findManifest(pf, src); m != "" {
				found = append(found, m)
			}
		}
		if len(found) == 0 {
			cxx := 0
			for _, k := range []string{"cxxModuleCMakeListsModuleName", "cxxModuleCMakeListsPath", "cxxModuleHeaderName"} {
				ok, why := cfg.stringSetting(androidP, k)
				if why != "" {
					found = append(found, why)
				}
				if ok {
					cxx++
				}
			}
			if cxx == 3 {
				found = append(found, "pure C++ module settings")
			}
		}
		if len(found) > 0 {
			where := src + "/"
			if declared {
				where += " (sourceDir in " + cfg.name + ")"
			}
			j.androidDirs = append(j.androidDirs, src, "cpp", "common", "shared")
			if expo.android && expo.err == "" && !declared && expo.linksDir(src) {
				break // an Expo module: Expo's autolinking names it below
			}
			j.android = append(j.android, where+" with "+strings.Join(found, ", ")+" (React Native CLI autolinking)")
		}
	}
	// Android, Expo.
	switch {
	case expo.err != "":
		j.android = append(j.android, expo.err+"; counted as native")
		j.androidDirs = append(j.androidDirs, ".")
	case expo.android:
		var projects []string
		for _, pr := range expo.androidProjects {
			g := ""
			for _, name := range []string{"build.gradle", "build.gradle.kts"} {
				if pf.has(path.Join(pr.dir, name)) {
					g = path.Join(pr.dir, name)
					break
				}
			}
			if g == "" && pr.isDefault {
				continue // expo skips a default project without a build.gradle
			}
			if g != "" {
				linkedGradle[g] = true
				projects = append(projects, g)
			} else {
				projects = append(projects, pr.dir+"/")
			}
			j.androidDirs = append(j.androidDirs, pr.dir)
		}
		if expo.gradlePlugins > 0 {
			projects = append(projects, fmt.Sprintf("%d Gradle plugin(s)", expo.gradlePlugins))
			j.androidDirs = append(j.androidDirs, ".")
		}
		if len(projects) > 0 {
			j.android = append(j.android, fmt.Sprintf("%s lists android, %s (Expo autolinking)", expo.name, strings.Join(projects, ", ")))
		}
	}

	// Fail closed beyond autolinking, for the platforms not turned off.
	if codegen {
		why := "package.json codegenConfig (new-architecture code generation)"
		if !iosP.disabled {
			j.ios = append(j.ios, why)
		}
		if !androidP.disabled {
			j.android = append(j.android, why)
		}
	}
	var handPods, handGradle []string
	pre := map[platforms][]string{}
	seenBundle := map[string]bool{}
	for _, p := range pf.paths {
		if skippedPath(p) {
			continue
		}
		depth := strings.Count(p, "/")
		base := path.Base(p)
		switch {
		case strings.HasSuffix(base, ".podspec") && depth >= 1 && depth <= 2 && !linkedPods[p]:
			handPods = append(handPods, p)
		case (base == "build.gradle" || base == "build.gradle.kts") && depth >= 1 && depth <= 3 && !linkedGradle[p] && !underAny(p, j.androidDirs):
			handGradle = append(handGradle, p)
		}
		if pl := prebuilt(p); pl != 0 {
			b := binaryRoot(p)
			if !seenBundle[b] {
				seenBundle[b] = true
				pre[pl] = append(pre[pl], b)
			}
		}
	}
	// What an app could link by hand is named only when autolinking links
	// nothing on that platform; its directories are native inputs anyway.
	var iosExtra, androidExtra []string
	if len(handPods) > 0 && !iosP.disabled {
		iosExtra = append(iosExtra, strings.Join(handPods, ", ")+" (not autolinked; an app can link it by hand in its Podfile)")
		for _, p := range handPods {
			j.iosDirs = append(j.iosDirs, path.Dir(p))
		}
	}
	if len(handGradle) > 0 && !androidP.disabled {
		androidExtra = append(androidExtra, strings.Join(handGradle, ", ")+" (not autolinked; an app can include it by hand in settings.gradle)")
		for _, p := range handGradle {
			j.androidDirs = append(j.androidDirs, path.Dir(p))
		}
	}
	if b := pre[onIOS]; len(b) > 0 && !iosP.disabled {
		iosExtra = append(iosExtra, "prebuilt "+listSome(b, 3))
	}
	if b := pre[onAndroid]; len(b) > 0 && !androidP.disabled {
		androidExtra = append(androidExtra, "prebuilt "+listSome(b, 3))
	}
	if len(j.ios) == 0 {
		j.ios = iosExtra
	}
	if len(j.android) == 0 {
		j.android = androidExtra
	}
	if len(j.ios) > 0 && j.jsSrcsDir != "" {
		j.iosDirs = append(j.iosDirs, j.jsSrcsDir)
	}
	if len(j.android) > 0 && j.jsSrcsDir != "" {
		j.androidDirs = append(j.androidDirs, j.jsSrcsDir)
	}
	return j
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		d = strings.TrimSuffix(d, "/")
		if d == "." || len(p) > len(d) && p[len(d)] == '/' && strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}

func listSome(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:n], ", "), len(s)-n)
}

// findManifest follows cli-config-android's findManifest: the first
// **/AndroidManifest.xml under dir outside build, debug, test and example
// folders, preferring one under src/main/.
func findManifest(pf pkgFiles, dir string) string {
	var found []string
	for _, p := range pf.under(dir) {
		rel := strings.TrimPrefix(p, strings.TrimSuffix(dir, "/")+"/")
		if path.Base(rel) != "AndroidManifest.xml" {
			continue
		}
		s := "/" + rel
		if strings.Contains(s, "/build/") || strings.Contains(s, "/debug/") || strings.HasPrefix(rel, "Examples/") ||
			strings.HasPrefix(rel, "examples/") || strings.Contains(s, "/sdks/hermes/android/") ||
			strings.Contains(s, "/src/androidTest/") || strings.Contains(s, "/src/test/") || strings.Contains(s, "/.cxx/") {
			continue
		}
		found = append(found, rel)
	}
	if len(found) > 1 {
		var main []string
		for _, f := range found {
			if strings.Contains(f, "src/main/") {
				main = append(main, f)
			}
		}
		if len(main) == 1 {
			return main[0]
		}
	}
	if len(found) > 0 {
		return found[0]
	}
	return ""
}

// expoModule is what expo-module.config.json (or the older unimodule.json)
// says.
type expoModule struct {
	name            string
	err             string // the file exists but cannot be read
	apple, android  bool   // the platforms it supports
	applePlatform   string // the entry that made apple supported
	podspecs        []string
	androidProjects []expoAndroidProject
	gradlePlugins   int
}

func (m expoModule) linksDir(dir string) bool {
	for _, p := range m.androidProjects {
		if p.dir == dir {
			return true
		}
	}
	return false
}

type expoAndroidProject struct {
	dir       string
	isDefault bool
}

func readExpoModuleConfig(pf pkgFiles) expoModule {
	var m expoModule
	var b []byte
	for _, n := range []string{"expo-module.config.json", "unimodule.json"} {
		if c, ok := pf.contents[n]; ok {
			m.name, b = n, c
			break
		}
	}
	if m.name == "" {
		return m
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		m.err = m.name + " is not a JSON object"
		return m
	}
	var platforms []string
	if v, ok := raw["platforms"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &platforms); err != nil {
			m.err = m.name + ` "platforms" is not a list of strings`
			return m
		}
	}
	for _, p := range platforms {
		switch p {
		case "apple", "ios", "macos", "tvos":
			if !m.apple {
				m.apple, m.applePlatform = true, p
			}
		case "android":
			m.android = true
		}
	}
	strs := func(v json.RawMessage) ([]string, bool) {
		if len(v) == 0 || string(v) == "null" {
			return nil, true
		}
		var one string
		if json.Unmarshal(v, &one) == nil {
			return []string{one}, true
		}
		var many []string
		if json.Unmarshal(v, &many) == nil {
			return many, true
		}
		return nil, false
	}
	if m.apple {
		appleRaw, ok := raw["apple"]
		if !ok || string(appleRaw) == "null" {
			appleRaw = raw["ios"]
		}
		var apple struct {
			PodspecPath json.RawMessage `json:"podspecPath"`
		}
		if len(appleRaw) > 0 && string(appleRaw) != "null" {
			if err := json.Unmarshal(appleRaw, &apple); err != nil {
				m.err = m.name + ` "apple" is not an object`
				return m
			}
		}
		declared, ok := strs(apple.PodspecPath)
		if !ok {
			m.err = m.name + ` podspecPath is not a string or a list of strings`
			return m
		}
		for _, d := range declared {
			if r, inside := pkgRelPath(d); inside {
				m.podspecs = append(m.podspecs, r)
			}
		}
		if len(declared) == 0 {
			// listFilesInDirectories: *.podspec one directory down.
			for _, p := range pf.paths {
				dir, base := path.Split(p)
				if strings.Count(p, "/") == 1 && strings.HasSuffix(base, ".podspec") && dir != "node_modules/" {
					m.podspecs = append(m.podspecs, p)
				}
			}
		}
	}
	if m.android {
		var android struct {
			Path       *string         `json:"path"`
			GradlePath json.RawMessage `json:"gradlePath"`
			Projects   []struct {
				Path string `json:"path"`
			} `json:"projects"`
			GradlePlugins []json.RawMessage `json:"gradlePlugins"`
		}
		if v, ok := raw["android"]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, &android); err != nil {
				m.err = m.name + ` "android" is not in the expected shape`
				return m
			}
		}
		dir := "android"
		if android.Path != nil {
			dir = *android.Path
		}
		if r, ok := pkgRelPath(dir); ok {
			m.androidProjects = append(m.androidProjects, expoAndroidProject{dir: r, isDefault: android.Path == nil})
		}
		for _, pr := range android.Projects {
			if r, ok := pkgRelPath(pr.Path); ok && pr.Path != "" {
				m.androidProjects = append(m.androidProjects, expoAndroidProject{dir: r})
			}
		}
		gp, ok := strs(android.GradlePath)
		if !ok {
			m.err = m.name + ` gradlePath is not a string or a list of strings`
			return m
		}
		for _, g := range gp {
			if r, inside := pkgRelPath(g); inside {
				m.androidProjects = append(m.androidProjects, expoAndroidProject{dir: path.Dir(r)})
			}
		}
		m.gradlePlugins = len(android.GradlePlugins)
	}
	return m
}
