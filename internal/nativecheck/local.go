package nativecheck

import (
	"path"
	"sort"
	"strings"
)

// Packages that live in the repository itself — workspaces, file: and
// link: dependencies, local modules — are judged from the tree with the
// same rules as registry tarballs, and their native files are inputs of the
// fingerprint: a change to one of them is a native change even though no
// version moves.

// localPackage is one package directory of the repository.
type localPackage struct {
	dir   string   // repository-relative, with a trailing slash
	files []string // paths relative to dir, sorted
	shas  []string // blob shas, index by index with files
	name  string   // from its package.json
	j     judgement
	pn    PackageNative
}

// localScan finds the package directories worth judging: those with a
// package.json and a sign of native code (a podspec at the top or one
// level down, an Expo module config, a react-native.config.*, an
// android/build.gradle), plus every directory the lockfile installs from
// the repository. Directories inside node_modules or the app's own ios/
// and android/ are not packages; another app of a monorepo (with
// ios/Podfile or android/app/build.gradle) is skipped unless the lockfile
// installs it.
func localScan(entries []Entry, root string, lockDirs map[string]bool) []string {
	hasPkgJSON := map[string]bool{}
	marker := map[string]bool{}
	app := map[string]bool{}
	for _, e := range entries {
		p := e.Path
		// Cheap suffix tests first: this loop sees every entry of the tree.
		if e.Type == "tree" || !(strings.HasSuffix(p, "package.json") || strings.HasSuffix(p, ".podspec") ||
			strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".gradle") || strings.HasSuffix(p, ".gradle.kts") ||
			strings.HasSuffix(p, "Podfile") || strings.Contains(p, "react-native.config.")) ||
			strings.Contains(p, "node_modules/") {
			continue
		}
		dir, base := path.Split(p)
		switch {
		case base == "package.json":
			hasPkgJSON[dir] = true
		case strings.HasSuffix(base, ".podspec"):
			marker[dir] = true
			marker[parentDir(dir)] = true
		case base == "expo-module.config.json", base == "unimodule.json", isRNConfigName(base):
			marker[dir] = true
		case base == "build.gradle" || base == "build.gradle.kts":
			if d, ok := strings.CutSuffix(dir, "android/app/"); ok {
				app[d] = true
			} else if d, ok := strings.CutSuffix(dir, "android/"); ok {
				marker[d] = true
			}
		case base == "Podfile":
			if d, ok := strings.CutSuffix(dir, "ios/"); ok {
				app[d] = true
			}
		}
	}
	var dirs []string
	for d := range hasPkgJSON {
		if d == root || strings.HasPrefix(d, root+"ios/") || strings.HasPrefix(d, root+"android/") {
			continue
		}
		if lockDirs[d] || (marker[d] && !app[d]) {
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	return dirs
}

func parentDir(dir string) string {
	d := strings.TrimSuffix(dir, "/")
	i := strings.LastIndexByte(d, '/')
	if i < 0 {
		return ""
	}
	return d[:i+1]
}

// collectLocal assigns every tree entry to the deepest package directory
// holding it.
func collectLocal(entries []Entry, dirs []string) map[string]*localPackage {
	out := make(map[string]*localPackage, len(dirs))
	first := map[string]bool{}
	for _, d := range dirs {
		out[d] = &localPackage{dir: d}
		f, _, _ := strings.Cut(d, "/")
		first[f] = true
	}
	if len(dirs) == 0 {
		return out
	}
	for _, e := range entries {
		p := e.Path
		if e.Type == "tree" || strings.Contains(p, "node_modules/") {
			continue
		}
		f, _, _ := strings.Cut(p, "/")
		if !first[f] {
			continue
		}
		// Walk up the parent directories without allocating.
		for j := strings.LastIndexByte(p, '/'); ; j = strings.LastIndexByte(p[:j], '/') {
			key := p[:j+1]
			if lp, ok := out[key]; ok {
				rel := p[len(key):]
				lp.files = append(lp.files, rel)
				lp.shas = append(lp.shas, e.SHA)
				break
			}
			if j < 0 {
				break
			}
		}
	}
	for _, lp := range out {
		if !sort.StringsAreSorted(lp.files) {
			sort.Sort(byFile{lp})
		}
	}
	return out
}

type byFile struct{ lp *localPackage }

func (b byFile) Len() int           { return len(b.lp.files) }
func (b byFile) Less(i, j int) bool { return b.lp.files[i] < b.lp.files[j] }
func (b byFile) Swap(i, j int) {
	b.lp.files[i], b.lp.files[j] = b.lp.files[j], b.lp.files[i]
	b.lp.shas[i], b.lp.shas[j] = b.lp.shas[j], b.lp.shas[i]
}

// nativeFiles returns the indexes of the files of a local package that
// build into pl.
func (lp *localPackage) nativeFiles(pl Platform) []int {
	var dirs []string
	switch pl {
	case IOS:
		if !lp.pn.IOS {
			return nil
		}
		dirs = lp.j.iosDirs
	case Android:
		if !lp.pn.Android {
			return nil
		}
		dirs = lp.j.androidDirs
	}
	var out []int
	for i, rel := range lp.files {
		if rel == "package.json" {
			continue // its native part (codegenConfig) is a config input
		}
		if skippedPath(rel) && !underAny(rel, dirs) {
			continue
		}
		if buildOutput(rel) {
			continue
		}
		if underAny(rel, dirs) || nativeSource(rel, pl) || needContent(rel) || prebuilt(rel).has(pl) {
			out = append(out, i)
		}
	}
	return out
}

// buildOutput reports generated files inside a package's native folders.
func buildOutput(rel string) bool {
	return hasDirNamed(rel, outputDir) || strings.HasSuffix(rel, ".DS_Store")
}

// nativeSource reports files that compile into pl wherever they are.
func nativeSource(rel string, pl Platform) bool {
	base := path.Base(rel)
	ext := path.Ext(base)
	switch ext {
	case ".c", ".cc", ".cpp", ".cxx", ".h", ".hpp", ".hh", ".ipp":
		return true
	}
	if base == "CMakeLists.txt" {
		return true
	}
	switch pl {
	case IOS:
		switch ext {
		case ".m", ".mm", ".swift", ".podspec", ".modulemap", ".xcconfig", ".xcprivacy", ".xib", ".storyboard":
			return true
		}
	case Android:
		switch ext {
		case ".java", ".kt", ".gradle", ".kts", ".pro":
			return true
		}
		return base == "AndroidManifest.xml"
	}
	return false
}
