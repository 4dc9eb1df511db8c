package github_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
)

func smallApp() githubtest.Files {
	return githubtest.Files{
		"package.json":      `{"name":"demo","dependencies":{"react-native":"0.81.0","lodash":"^4.17.21"}}`,
		"package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"demo"},"node_modules/react-native":{"version":"0.81.0","resolved":"https://registry.npmjs.org/react-native/-/react-native-0.81.0.tgz"},"node_modules/lodash":{"version":"4.17.21","resolved":"https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz"}}}`,
		"src/App.tsx":       "export default 1\n",
		"ios/Demo/Info.plist": "<plist><dict><key>CFBundleShortVersionString</key><string>1.0.0</string>" +
			"<key>CFBundleVersion</key><string>1</string></dict></plist>",
		"ios/Demo/AppDelegate.swift":   "class AppDelegate {}\n",
		"android/app/build.gradle":     "android { defaultConfig { versionCode 1\n versionName \"1.0.0\"\n } }\n",
		"android/app/src/Main.kt":      "class Main\n",
		"app.json":                     `{"name":"Demo","displayName":"Demo"}`,
		"patches/lodash+4.17.21.patch": "diff --git a/node_modules/lodash/a.js b/node_modules/lodash/a.js\n+x\n",
	}
}

func fingerprinter(t *testing.T) *nativecheck.Fingerprinter {
	t.Helper()
	reg := npmtest.New()
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	reg.BaseURL = srv.URL
	reg.AddJS("lodash", "4.17.21")
	reg.AddJS("lodash", "4.17.22")
	return &nativecheck.Fingerprinter{Packages: &nativecheck.Registry{URL: srv.URL}}
}

// TestFingerprintThroughGitHub runs the classifier on commits served by the
// GitHub fake through the go-github reader, as plan_release will.
func TestFingerprintThroughGitHub(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	fp := fingerprinter(t)
	live := tb.repo.Commit("1.0.0", smallApp())
	tb.repo.AnnotatedTag("v1.0.0", live, "1.0.0")

	jsOnly := tb.repo.Commit("js fix", tb.repo.Files(live).With(githubtest.Files{"src/App.tsx": "export default 2\n"}), live)
	bump := tb.repo.Commit("bump", tb.repo.Files(jsOnly).With(githubtest.Files{
		"ios/Demo/Info.plist":      strings.NewReplacer("1.0.0", "1.1.0", "<string>1<", "<string>2<").Replace(smallApp()["ios/Demo/Info.plist"]),
		"android/app/build.gradle": "android { defaultConfig { versionCode 2\n versionName \"1.1.0\"\n } }\n",
		"package-lock.json":        strings.ReplaceAll(smallApp()["package-lock.json"], "4.17.21", "4.17.22"),
	}), jsOnly)
	tb.repo.LightweightTag("v1.1.0", bump)
	native := tb.repo.Commit("swift", tb.repo.Files(bump).With(githubtest.Files{"ios/Demo/Push.swift": "class Push {}\n"}), bump)
	tb.repo.AnnotatedTag("v1.2.0", native, "1.2.0")

	fingerprintTag := func(tag string) map[nativecheck.Platform]nativecheck.Fingerprint {
		commit, err := tb.gh.ResolveTag(t.Context(), tag)
		require.NoError(t, err)
		fps, err := fp.Fingerprint(t.Context(), tb.gh, commit)
		require.NoError(t, err)
		return fps
	}
	v100, v110, v120 := fingerprintTag("v1.0.0"), fingerprintTag("v1.1.0"), fingerprintTag("v1.2.0")
	for _, pl := range nativecheck.Platforms {
		require.False(t, nativecheck.Explain(v100[pl], v110[pl]).Native, "JS fix + version bump + JS dep bump is OTA-safe (%s)", pl)
	}
	ex := nativecheck.Explain(v110[nativecheck.IOS], v120[nativecheck.IOS])
	require.True(t, ex.Native)
	require.Equal(t, "ios: native change\n  file added: ios/Demo/Push.swift (iOS project file)", ex.String())
	require.False(t, nativecheck.Explain(v110[nativecheck.Android], v120[nativecheck.Android]).Native)

	// Release notes come from compare, never the native decision.
	cmp, err := tb.gh.Compare(t.Context(), live, native)
	require.NoError(t, err)
	require.Equal(t, []string{"js fix", "bump", "swift"}, []string{cmp.Commits[0].Message, cmp.Commits[1].Message, cmp.Commits[2].Message})
}

// recordingSource remembers the last tree it returned.
type recordingSource struct {
	nativecheck.Source
	entries   []nativecheck.Entry
	truncated bool
}

func (r *recordingSource) Tree(ctx context.Context, commit string) ([]nativecheck.Entry, bool, error) {
	e, tr, err := r.Source.Tree(ctx, commit)
	r.entries, r.truncated = e, tr
	return e, tr, err
}

// TestTreeOver100kEntries: GitHub truncates a recursive tree at 100,000
// entries; the reader must walk subtrees and still see every entry, and the
// fingerprint must see a native file listed after the cut. The big commit
// adds 100,500 JS files and one Swift file to a small app: only the Swift
// file may differ.
func TestTreeOver100kEntries(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	small := tb.repo.Commit("small", smallApp())
	files := smallApp()
	const dirs, perDir = 201, 500 // 100,500 generated files
	for d := range dirs {
		top := "src" // two wide top-level trees, as in a monorepo
		if d%2 == 1 {
			top = "packages"
		}
		for f := range perDir {
			files[fmt.Sprintf("%s/generated/d%03d/f%03d.ts", top, d, f)] = fmt.Sprintf("export const v = %d\n", d*perDir+f)
		}
	}
	// "zz/" sorts after src/, so it lies beyond the recursive listing's cut.
	files["zz/ios/Widget.swift"] = "x"
	files["zz/ios/Late.podspec"] = "y"
	big := tb.repo.Commit("big", files, small)

	fp := fingerprinter(t)
	a, err := fp.Fingerprint(t.Context(), tb.gh, small)
	require.NoError(t, err)
	rec := &recordingSource{Source: tb.gh}
	b, err := fp.Fingerprint(t.Context(), rec, big)
	require.NoError(t, err)

	require.False(t, rec.truncated)
	blobs, trees := 0, 0
	seen := make(map[string]bool, len(rec.entries))
	for _, e := range rec.entries {
		require.False(t, seen[e.Path], "duplicate %s", e.Path)
		seen[e.Path] = true
		if e.Type == "blob" {
			blobs++
		} else {
			trees++
		}
	}
	require.Equal(t, len(files), blobs)
	require.Equal(t, 4+dirs+2+3+1+2, trees) // {src,packages}{,/generated}, d000..d200, ios{,/Demo}, android{,/app,/app/src}, patches, zz{,/ios}
	require.True(t, seen["src/generated/d200/f499.ts"])
	require.True(t, seen["packages/generated/d199/f499.ts"])
	var truncatedListing bool
	for _, r := range tb.fake.Requests() {
		truncatedListing = truncatedListing || strings.Contains(r, "/git/trees/"+big+"?recursive=1")
	}
	require.True(t, truncatedListing)

	ex := nativecheck.Explain(a[nativecheck.IOS], b[nativecheck.IOS])
	require.Equal(t, "ios: native change\n  file added: zz/ios/Late.podspec (podspec)", ex.String())
	require.False(t, nativecheck.Explain(a[nativecheck.Android], b[nativecheck.Android]).Native)
}

// TestTreeSingleDirectoryTooLarge: a directory that cannot be listed even
// non-recursively stays truncated, and the fingerprint fails closed.
func TestTreeSingleDirectoryTooLarge(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	tb.fake.TreeLimit = 50
	files := smallApp()
	for i := range 60 {
		files[fmt.Sprintf("flat/f%02d", i)] = "x"
	}
	c := tb.repo.Commit("flat", files)
	_, truncated, err := tb.gh.Tree(t.Context(), c)
	require.NoError(t, err)
	require.True(t, truncated)
	_, err = fingerprinter(t).Fingerprint(t.Context(), tb.gh, c)
	require.ErrorIs(t, err, nativecheck.ErrIncomplete)
}
