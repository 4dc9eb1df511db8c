package nativecheck_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
)

func TestRegistryInspect(t *testing.T) {
	t.Parallel()
	reg := registry(t)
	reg.Add("@acme/web-only", "1.0.0", map[string]string{"expo-module.config.json": `{"platforms":["web"]}`}, nil)
	reg.Add("android-lib", "1.0.0", map[string]string{"android/src/main/AndroidManifest.xml": "<manifest/>"}, nil)
	reg.Add("nested-podspec", "1.0.0", map[string]string{"ios/Nested.podspec": ""}, nil)
	reg.Add("codegen-only", "1.0.0", map[string]string{"src/NativeFoo.ts": ""}, map[string]any{"codegenConfig": map[string]any{"name": "RNFooSpec"}})
	r := &nativecheck.Registry{URL: reg.BaseURL}
	tests := []struct {
		name, version string
		want          nativecheck.PackageNative
	}{
		{"react-native-mmkv", "3.2.0", native(rootPod("react-native-mmkv.podspec"), androidDir)},
		{"@shopify/flash-list", "1.7.0", native(rootPod("shopify-flash-list.podspec"), androidDir)},
		{"expo-camera", "16.0.0", native("expo-module.config.json lists apple, pod ios/ExpoCamera.podspec (Expo autolinking)", "expo-module.config.json lists android, android/build.gradle (Expo autolinking)")},
		{"@acme/web-only", "1.0.0", nativecheck.PackageNative{}},
		// A manifest alone is enough for the CLI (findManifest or build.gradle).
		{"android-lib", "1.0.0", native("", "android/ with src/main/AndroidManifest.xml (React Native CLI autolinking)")},
		// The CLI looks for a root podspec only; one directory down an app
		// can still link it by hand.
		{"nested-podspec", "1.0.0", native("ios/Nested.podspec (not autolinked; an app can link it by hand in its Podfile)", "")},
		{"codegen-only", "1.0.0", native("package.json codegenConfig (new-architecture code generation)", "package.json codegenConfig (new-architecture code generation)")},
		{"lodash", "4.17.21", nativecheck.PackageNative{}},
	}
	for _, tc := range tests {
		got, err := r.Inspect(context.Background(), tc.name, tc.version)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
	_, err := r.Inspect(context.Background(), "lodash", "0.0.404")
	require.ErrorIs(t, err, nativecheck.ErrPackageNotFound)
	_, err = r.Inspect(context.Background(), "", "1.0.0")
	require.ErrorContains(t, err, "invalid package name")
}

const androidDir = "android/ with build.gradle, src/main/AndroidManifest.xml (React Native CLI autolinking)"

func rootPod(name string) string { return name + " (root podspec: React Native CLI autolinking)" }

// native builds the verdict the judgement gives for the evidence of each
// platform ("" when not native there).
func native(ios, android string) nativecheck.PackageNative {
	pn := nativecheck.PackageNative{IOS: ios != "", Android: android != "", IOSEvidence: ios, AndroidEvidence: android}
	switch {
	case ios != "" && ios == android:
		pn.Evidence = ios
	case ios != "" && android != "":
		pn.Evidence = "ios: " + ios + "; android: " + android
	case ios != "":
		pn.Evidence = "ios: " + ios
	case android != "":
		pn.Evidence = "android: " + android
	}
	return pn
}

func TestRegistryCacheIsSharedAndConcurrencySafe(t *testing.T) {
	t.Parallel()
	reg := registry(t)
	r := &nativecheck.Registry{URL: reg.BaseURL}
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pn, err := r.Inspect(context.Background(), "react-native-svg", "15.2.0")
			require.NoError(t, err)
			require.True(t, pn.IOS)
		}()
	}
	wg.Wait()
	require.Equal(t, int64(2), reg.Requests.Load()) // one metadata, one tarball
	_, err := r.Inspect(context.Background(), "missing", "1.0.0")
	require.ErrorIs(t, err, nativecheck.ErrPackageNotFound)
	_, err = r.Inspect(context.Background(), "missing", "1.0.0")
	require.ErrorIs(t, err, nativecheck.ErrPackageNotFound)
	// The version endpoint's 404, then the packument's 404; then cached.
	require.Equal(t, int64(4), reg.Requests.Load())
}

func TestRegistryTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	reg := registry(t)
	var mu sync.Mutex
	fail := true
	reg.Fail = func(*http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	r := &nativecheck.Registry{URL: reg.BaseURL}
	_, err := r.Inspect(context.Background(), "react-native-svg", "15.2.0")
	require.ErrorContains(t, err, "registry answered 503")
	mu.Lock()
	fail = false
	mu.Unlock()
	pn, err := r.Inspect(context.Background(), "react-native-svg", "15.2.0")
	require.NoError(t, err)
	require.True(t, pn.Android)
}

func TestRegistryTokenStaysOnRegistryHost(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	auth := map[string]string{}
	reg := npmtest.New()
	tarballs := npmtest.New() // a second host serving the tarballs, like a CDN
	record := func(h http.Handler, name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth[name] = r.Header.Get("Authorization")
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	cdn := httptest.NewServer(record(tarballs, "cdn"))
	t.Cleanup(cdn.Close)
	srv := httptest.NewServer(record(reg, "registry"))
	t.Cleanup(srv.Close)
	reg.BaseURL, tarballs.BaseURL = cdn.URL, cdn.URL
	reg.AddNative("private-kit", "1.0.0")
	tarballs.AddNative("private-kit", "1.0.0")

	r := &nativecheck.Registry{URL: srv.URL, Token: "npm_secret"}
	_, err := r.Inspect(context.Background(), "private-kit", "1.0.0")
	require.NoError(t, err)
	require.Equal(t, "Bearer npm_secret", auth["registry"])
	require.Empty(t, auth["cdn"])
}

func TestRegistryNetworkErrorHidesNothingSecret(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused from now on
	r := &nativecheck.Registry{URL: url, Token: "npm_secret"}
	_, err := r.Inspect(context.Background(), "x", "1.0.0")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "npm_secret")
}

func TestRegistryRefusesTarballThatFailsIntegrity(t *testing.T) {
	t.Parallel()
	reg := registry(t)
	// A native package served as JS-only by a compromised mirror must not
	// turn into "JS-only": the checksum no longer matches.
	reg.Tamper("react-native-mmkv", "3.2.0", map[string]string{"index.js": ""})
	r := &nativecheck.Registry{URL: reg.BaseURL}
	_, err := r.Inspect(context.Background(), "react-native-mmkv", "3.2.0")
	require.ErrorContains(t, err, "tarball does not match the registry's integrity checksum")
}

func TestRegistryFallsBackToPackumentForScopedPackages(t *testing.T) {
	t.Parallel()
	reg := registry(t)
	reg.NoScopedVersionEndpoint = true
	r := &nativecheck.Registry{URL: reg.BaseURL}
	pn, err := r.Inspect(context.Background(), "@shopify/flash-list", "1.7.0")
	require.NoError(t, err)
	require.Equal(t, native(rootPod("shopify-flash-list.podspec"), androidDir), pn)
	_, err = r.Inspect(context.Background(), "@shopify/flash-list", "9.9.9")
	require.ErrorIs(t, err, nativecheck.ErrPackageNotFound)
	_, err = r.Inspect(context.Background(), "@shopify/nope", "1.0.0")
	require.ErrorIs(t, err, nativecheck.ErrPackageNotFound)
}
