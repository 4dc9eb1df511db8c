package nativecheck_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

func TestRulesValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, nativecheck.Rules{}.Validate())
	require.NoError(t, nativecheck.Rules{Root: "apps/mobile", NativeGlobs: []string{"native/**"}, ForceNative: []string{"@acme/*"}}.Validate())
	require.ErrorContains(t, nativecheck.Rules{Root: "../other"}.Validate(), `rules root "../other" must be a relative path`)
	require.ErrorContains(t, nativecheck.Rules{Root: "/abs"}.Validate(), `rules root "/abs"`)
	err := nativecheck.Rules{NativeGlobs: []string{"ok/**", "bad/[x"}, IgnoredGlobs: []string{""}, ForceJSOnly: []string{"{a"}}.Validate()
	require.ErrorContains(t, err, `rules native_globs[1] "bad/[x" is not a valid glob`)
	require.ErrorContains(t, err, `rules ignored_globs[0] "" is not a valid glob`)
	require.ErrorContains(t, err, `rules force_js_only[0] "{a" is not a valid glob`)

	src := newMemSource()
	src.add("c", baseApp())
	_, err = (&nativecheck.Fingerprinter{Rules: nativecheck.Rules{NativeGlobs: []string{"["}}}).Fingerprint(context.Background(), src, "c")
	require.ErrorContains(t, err, "not a valid glob")
}

// TestRulesPerApp: a monorepo app under apps/mobile with its lockfile at the
// repository root, extra native globs, ignored globs and forced packages.
func TestRulesPerApp(t *testing.T) {
	t.Parallel()
	mono := map[string]string{}
	for p, c := range baseApp() {
		if p == "package-lock.json" {
			mono[p] = c // workspaces share one root lockfile
			continue
		}
		mono["apps/mobile/"+p] = c
	}
	mono["apps/web/ios/not-ours.swift"] = "x"
	mono["apps/mobile/native-libs/scanner/Scanner.swift"] = "v1"
	mono["apps/mobile/ios/Demo/Generated.swift"] = "v1"
	// A workspace native module outside the app root, and a JS-only one.
	mono["packages/scanner/package.json"] = `{"name":"@app/scanner"}`
	mono["packages/scanner/Scanner.podspec"] = "Pod::Spec.new"
	mono["packages/scanner/ios/Scanner.swift"] = "v1"
	mono["packages/scanner/android/build.gradle"] = "apply plugin: 'com.android.library'"
	mono["packages/scanner/android/build/generated/x.java"] = "generated"
	mono["packages/scanner/src/index.ts"] = "v1"
	mono["packages/ui/package.json"] = `{"name":"@app/ui"}`
	mono["packages/ui/src/Button.tsx"] = "v1"
	rules := nativecheck.Rules{
		Root:         "apps/mobile",
		NativeGlobs:  []string{"native-libs/**"},
		IgnoredGlobs: []string{"ios/Demo/Generated.swift"},
		ForceJSOnly:  []string{"react-native-svg"},
		ForceNative:  []string{"lodash"},
	}
	tb := setup(t)
	tb.fp.Rules = rules
	a := tb.fingerprint(t, "a", mono)
	ios := a[nativecheck.IOS]
	var paths []string
	for _, f := range ios.Files {
		paths = append(paths, f.Path)
	}
	require.Contains(t, paths, "apps/mobile/native-libs/scanner/Scanner.swift")
	require.Contains(t, paths, "apps/mobile/ios/Podfile")
	require.NotContains(t, paths, "apps/web/ios/not-ours.swift")
	require.NotContains(t, paths, "apps/mobile/ios/Demo/Generated.swift")
	require.Contains(t, paths, "packages/scanner/Scanner.podspec")
	require.Contains(t, paths, "packages/scanner/ios/Scanner.swift")
	require.NotContains(t, paths, "packages/scanner/android/build.gradle") // Android only
	var pkgs []string
	for _, p := range ios.Packages {
		pkgs = append(pkgs, p.Name+"@"+p.Version+" "+p.Reason)
	}
	require.Equal(t, []string{
		"lodash@4.17.21 forced native by rules",
		"react-native@0.81.0 native runtime package",
		"react-native-mmkv@3.2.0 ships native code: react-native-mmkv.podspec (root podspec: React Native CLI autolinking)",
	}, pkgs)

	for _, tc := range []struct {
		name   string
		change map[string]string
		native bool
	}{
		{"ignored file", map[string]string{"apps/mobile/ios/Demo/Generated.swift": "v2"}, false},
		{"extra native glob", map[string]string{"apps/mobile/native-libs/scanner/Scanner.swift": "v2"}, true},
		{"other app's native dir", map[string]string{"apps/web/ios/not-ours.swift": "y"}, false},
		{"workspace native module's Swift", map[string]string{"packages/scanner/ios/Scanner.swift": "v2"}, true},
		{"workspace native module's JS", map[string]string{"packages/scanner/src/index.ts": "v2"}, false},
		{"workspace native module's build output", map[string]string{"packages/scanner/android/build/generated/x.java": "v2"}, false},
		{"workspace JS package", map[string]string{"packages/ui/src/Button.tsx": "v2"}, false},
	} {
		b := tb.fingerprint(t, "b-"+tc.name, with(mono, func() []string {
			var kv []string
			for k, v := range tc.change {
				kv = append(kv, k, v)
			}
			return kv
		}()...))
		require.Equal(t, tc.native, nativecheck.Explain(a[nativecheck.IOS], b[nativecheck.IOS]).Native, tc.name)
	}
}

// TestRulesForceLocalPackages: force_js_only and force_native apply to
// packages of the repository as to registry ones.
func TestRulesForceLocalPackages(t *testing.T) {
	t.Parallel()
	files := with(baseApp(),
		"packages/scanner/package.json", `{"name":"@app/scanner"}`,
		"packages/scanner/Scanner.podspec", "Pod::Spec.new",
		"packages/scanner/ios/Scanner.swift", "v1",
		"packages/ui/package.json", `{"name":"@app/ui"}`,
		"packages/ui/react-native.config.js", "module.exports = {}\n",
		"packages/ui/src/Button.tsx", "v1",
	)
	tb := setup(t)
	tb.fp.Rules = nativecheck.Rules{ForceJSOnly: []string{"@app/scanner"}, ForceNative: []string{"@app/ui"}}
	a := tb.fingerprint(t, "a", files)
	b := tb.fingerprint(t, "b", with(files, "packages/scanner/ios/Scanner.swift", "v2"))
	require.False(t, nativecheck.Explain(a[nativecheck.IOS], b[nativecheck.IOS]).Native, "forced JS-only")
	c := tb.fingerprint(t, "c", with(files, "packages/ui/src/Button.tsx", "v2"))
	for _, pl := range nativecheck.Platforms {
		ex := nativecheck.Explain(a[pl], c[pl])
		require.Equal(t, string(pl)+": native change\n  file changed: packages/ui/src/Button.tsx (native source of local package packages/ui)", ex.String())
	}
	tb.fp.Rules = nativecheck.Rules{}
	d := tb.fingerprint(t, "d", files)
	e := tb.fingerprint(t, "e", with(files, "packages/scanner/ios/Scanner.swift", "v2"))
	require.True(t, nativecheck.Explain(d[nativecheck.IOS], e[nativecheck.IOS]).Native, "judged native without the rule")
	require.False(t, nativecheck.Explain(d[nativecheck.Android], e[nativecheck.Android]).Native)
}
