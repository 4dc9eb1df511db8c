package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
)

// fixtureApp is a small bare React Native app at release 1.0.0.
func fixtureApp() map[string]string {
	return map[string]string{
		"package.json": `{"name":"demo","version":"1.0.0","dependencies":{"react-native":"0.81.0","react-native-mmkv":"^3.2.0","lodash":"^4.17.21"}}`,
		"package-lock.json": `{"name":"demo","lockfileVersion":3,"requires":true,"packages":{
  "":{"name":"demo","version":"1.0.0"},
  "node_modules/react-native":{"version":"0.81.0","resolved":"https://registry.npmjs.org/react-native/-/react-native-0.81.0.tgz"},
  "node_modules/react-native-mmkv":{"version":"3.2.0","resolved":"https://registry.npmjs.org/react-native-mmkv/-/react-native-mmkv-3.2.0.tgz"},
  "node_modules/lodash":{"version":"4.17.21","resolved":"https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz"}}}`,
		"index.js":                   "import App from './src/App';\n",
		"src/App.tsx":                "export default function App() { return null }\n",
		"ios/Podfile":                "platform :ios, '15.1'\nuse_react_native!\n",
		"ios/Demo/AppDelegate.swift": "class AppDelegate {}\n",
		"ios/Demo/Info.plist":        "<plist><dict><key>CFBundleShortVersionString</key><string>1.0.0</string><key>CFBundleVersion</key><string>1</string></dict></plist>\n",
		"android/app/build.gradle":   "android { defaultConfig { versionCode 1\n versionName \"1.0.0\"\n } }\n",
		"android/app/src/main/java/com/demo/MainActivity.kt": "class MainActivity\n",
		".gitignore": "node_modules/\n",
	}
}

// fixtureRepo is a git checkout made with the git command, as a developer
// or a CI job has it.
type fixtureRepo struct {
	t   *testing.T
	dir string
	env []string
}

func newFixtureRepo(t *testing.T) *fixtureRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("the git command is required for this test")
	}
	home := t.TempDir()
	r := &fixtureRepo{t: t, dir: t.TempDir(), env: append(os.Environ(),
		"HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com",
		"GIT_AUTHOR_DATE=2026-12-01T10:00:00Z", "GIT_COMMITTER_DATE=2026-12-01T10:00:00Z")}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *fixtureRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	require.NoError(r.t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

// write sets files ("" deletes one).
func (r *fixtureRepo) write(files map[string]string) {
	r.t.Helper()
	for p, c := range files {
		full := filepath.Join(r.dir, filepath.FromSlash(p))
		if c == "" {
			require.NoError(r.t, os.Remove(full))
			continue
		}
		require.NoError(r.t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(r.t, os.WriteFile(full, []byte(c), 0o644))
	}
}

func (r *fixtureRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	r.write(files)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func fakeNPM(t *testing.T) string {
	t.Helper()
	reg := npmtest.New()
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	reg.BaseURL = srv.URL
	reg.AddNative("react-native-mmkv", "3.2.0")
	reg.AddNative("react-native-mmkv", "3.3.0")
	reg.AddJS("lodash", "4.17.21")
	reg.AddJS("lodash", "4.17.22")
	return srv.URL
}

// memSource serves files the way the GitHub trees API does: blob shas.
type memSource map[string]string

func (m memSource) Tree(context.Context, string) ([]nativecheck.Entry, bool, error) {
	var out []nativecheck.Entry
	for p, c := range m {
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00%s", len(c), c)
		out = append(out, nativecheck.Entry{Path: p, Type: "blob", Mode: "100644", SHA: hex.EncodeToString(h.Sum(nil)), Size: int64(len(c))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, false, nil
}

func (m memSource) ReadFile(_ context.Context, _, p string) ([]byte, error) {
	c, ok := m[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(c), nil
}

// TestFingerprintCommand runs `releasepilot fingerprint` in a plain git
// checkout of a React Native app, with no service: a JS-only change since
// the release tag exits 0, a native one exits 3 with the service's
// explanation.
func TestFingerprintCommand(t *testing.T) {
	t.Parallel()
	npm := fakeNPM(t)
	repo := newFixtureRepo(t)
	app := fixtureApp()
	v1 := repo.commit("1.0.0", app)
	repo.git("tag", "-a", "v1.0.0", "-m", "1.0.0")

	// A JS fix, a version bump and a JS-only dependency bump.
	bump := map[string]string{
		"src/App.tsx":              "export default function App() { return 'fixed' }\n",
		"ios/Demo/Info.plist":      strings.ReplaceAll(strings.ReplaceAll(app["ios/Demo/Info.plist"], "1.0.0", "1.0.1"), "<string>1</string>", "<string>2</string>"),
		"android/app/build.gradle": "android { defaultConfig { versionCode 2\n versionName \"1.0.1\"\n } }\n",
		"package-lock.json":        strings.ReplaceAll(app["package-lock.json"], "4.17.21", "4.17.22"),
	}
	repo.commit("JS fix", bump)

	code, out, errs := runCmd("fingerprint", "--dir", repo.dir, "--against", "v1.0.0", "--registry", npm)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", out, errs)
	require.Contains(t, out, "android: no native change\nios: no native change\n")
	require.Contains(t, out, "JS-only: this change can ship over the air to binaries built from v1.0.0 (exit 0)")

	// The fingerprint is the one the service computes for the same commit
	// from the GitHub trees API (same blob shas, same rules).
	head := map[string]string{}
	for p, c := range app {
		head[p] = c
	}
	for p, c := range bump {
		head[p] = c
	}
	svc, err := (&nativecheck.Fingerprinter{Packages: &nativecheck.Registry{URL: npm}}).Fingerprint(context.Background(), memSource(head), "x")
	require.NoError(t, err)
	for _, pl := range nativecheck.Platforms {
		require.Regexp(t, regexp.MustCompile(`(?m)^  `+string(pl)+` +`+svc[pl].Hash+`  `), out)
	}

	// A native change on iOS only: a Swift file and a native dependency bump.
	repo.commit("push notifications", map[string]string{
		"ios/Demo/Push.swift": "class Push {}\n",
		"package-lock.json":   strings.ReplaceAll(strings.ReplaceAll(app["package-lock.json"], "4.17.21", "4.17.22"), "3.2.0", "3.3.0"),
	})
	code, out, errs = runCmd("fingerprint", "--dir", repo.dir, "--against", "v1.0.0", "--registry", npm, "--platform", "ios")
	require.Equal(t, 3, code, "stdout=%s stderr=%s", out, errs)
	require.Contains(t, out, "ios: native change\n  file added: ios/Demo/Push.swift (iOS project file)\n"+
		"  native package changed: react-native-mmkv 3.2.0 -> 3.3.0 (ships native code: react-native-mmkv.podspec (root podspec: React Native CLI autolinking))\n")
	require.Contains(t, out, "native change: it needs a store build; it must not ship over the air to binaries built from v1.0.0 (exit 3)")
	require.NotContains(t, out, "android")

	// JSON for CI, from a subdirectory (the app root is found from --dir
	// when --root is not given: here the repository root).
	code, out, errs = runCmd("fingerprint", "--dir", repo.dir, "--against", v1, "--registry", npm, "--json")
	require.Equal(t, 3, code, errs)
	var rep struct {
		Commit       string `json:"commit"`
		Fingerprints map[string]struct {
			Hash string `json:"hash"`
		} `json:"fingerprints"`
		Against struct {
			Commit       string `json:"commit"`
			OTAEligible  bool   `json:"ota_eligible"`
			Explanations []struct {
				Platform string `json:"platform"`
				Native   bool   `json:"native"`
			} `json:"explanations"`
		} `json:"against"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Equal(t, repo.git("rev-parse", "HEAD"), rep.Commit)
	require.Equal(t, v1, rep.Against.Commit)
	require.False(t, rep.Against.OTAEligible)
	require.Len(t, rep.Fingerprints["ios"].Hash, 64)
	require.Equal(t, []struct {
		Platform string `json:"platform"`
		Native   bool   `json:"native"`
	}{{"android", true}, {"ios", true}}, rep.Against.Explanations) // mmkv ships Android code too

	// Uncommitted changes are reported, not fingerprinted.
	repo.write(map[string]string{"ios/Demo/Draft.swift": "class Draft {}\n"})
	code, out, _ = runCmd("fingerprint", "--dir", repo.dir, "--registry", npm)
	require.Equal(t, 0, code)
	require.Contains(t, out, "note: 1 uncommitted change(s) are not included")
}

// TestFingerprintCommandMonorepo: --dir inside a monorepo makes that
// directory the app root; the lockfile at the top is found.
func TestFingerprintCommandMonorepo(t *testing.T) {
	t.Parallel()
	npm := fakeNPM(t)
	repo := newFixtureRepo(t)
	files := map[string]string{"package.json": `{"name":"mono","private":true,"workspaces":["apps/*"]}`}
	for p, c := range fixtureApp() {
		if p == "package-lock.json" {
			files[p] = c
			continue
		}
		files["apps/mobile/"+p] = c
	}
	repo.commit("mono", files)
	repo.git("tag", "v1")
	repo.commit("android", map[string]string{"apps/mobile/android/app/src/main/java/com/demo/Widget.kt": "class Widget\n"})
	code, out, errs := runCmd("fingerprint", "--dir", filepath.Join(repo.dir, "apps", "mobile"), "--against", "v1", "--registry", npm)
	require.Equal(t, 3, code, "stdout=%s stderr=%s", out, errs)
	require.Contains(t, out, ", app root apps/mobile\n")
	require.Contains(t, out, "android: native change\n  file added: apps/mobile/android/app/src/main/java/com/demo/Widget.kt (Android project file)\n")
	require.Contains(t, out, "ios: no native change\n")
}

func TestFingerprintCommandUsageErrors(t *testing.T) {
	t.Parallel()
	repo := newFixtureRepo(t)
	repo.commit("init", fixtureApp())
	notGit := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"fingerprint", "--help"}, 0, ""},
		{[]string{"fingerprint", "--dir", notGit}, 2, "not a git checkout"},
		{[]string{"fingerprint", "--dir", repo.dir, "--against", "v9.9.9"}, 2, `unknown git revision "v9.9.9"`},
		{[]string{"fingerprint", "--dir", repo.dir, "--rev", "--exec=x"}, 2, `unknown git revision "--exec=x"`},
		{[]string{"fingerprint", "--dir", repo.dir, "--platform", "web"}, 2, `--platform: "web" is not ios or android`},
		{[]string{"fingerprint", "--dir", repo.dir, "--registry", "ftp://x"}, 2, `--registry: "ftp://x" is not an http(s) URL`},
		{[]string{"fingerprint", "--dir", repo.dir, "--root", "../elsewhere"}, 2, `rules root "../elsewhere" must be a relative path`},
		{[]string{"fingerprint", "--dir", repo.dir, "--native-glob", "ios/[x"}, 2, `rules native_globs[0] "ios/[x" is not a valid glob`},
		{[]string{"fingerprint", "--bogus"}, 2, "flag provided but not defined: -bogus"},
	} {
		code, out, errs := runCmd(tc.args...)
		require.Equal(t, tc.code, code, "%v: stdout=%s stderr=%s", tc.args, out, errs)
		require.Contains(t, errs, tc.err, tc.args)
	}
}
