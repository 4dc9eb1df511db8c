package expoupdates_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
)

// realisticPackage is a CodePush release of a React Native app: the Hermes
// bundle of the committed `npx expo export` fixture (1.4 MB) and 60 images
// (incompressible, 2–120 KB, 2.3 MB in all), as the CLI zips them under
// CodePush/. version changes the bundle; changedAssets of the images differ
// too.
func realisticPackage(b testing.TB, version, changedAssets int) []byte {
	bundle, err := os.ReadFile(filepath.Join("testdata", "expo-export", "_expo", "static", "js", "android", "index-ea140fdf9508d0cd335e96f3aaf0fa94.hbc"))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "CodePush/index.android.bundle", Method: zip.Deflate})
	w.Write(bundle)
	fmt.Fprintf(w, "\n// build %d", version) // a new release always changes the bundle
	for i := 0; i < 60; i++ {
		size := 2<<10 + (i*7919)%(118<<10)
		seed := fmt.Sprintf("asset %d", i)
		if i < changedAssets {
			seed += fmt.Sprintf(" v%d", version)
		}
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("CodePush/drawable-xxhdpi/image_%02d.png", i), Method: zip.Deflate})
		w.Write(noiseBytes(seed, size))
	}
	zw.Close()
	return buf.Bytes()
}

func noiseBytes(seed string, n int) []byte {
	out := make([]byte, 0, n+32)
	s := sha256.Sum256([]byte(seed))
	for len(out) < n {
		s = sha256.Sum256(s[:])
		out = append(out, s[:]...)
	}
	return out[:n]
}

// BenchmarkDiffDownloadBytes measures what a device on the previous release
// downloads for the next one: the full package, or the diff package built
// by BuildDiff (which the benchmark times). Typical updates change the JS
// bundle and a few images.
func BenchmarkDiffDownloadBytes(b *testing.B) {
	for _, changed := range []int{0, 3, 15} {
		b.Run(fmt.Sprintf("bundle+%d-of-60-images-changed", changed), func(b *testing.B) {
			oldPkg, newPkg := realisticPackage(b, 1, changed), realisticPackage(b, 2, changed)
			hash, err := codepush.PackageHash(bytes.NewReader(newPkg), int64(len(newPkg)))
			if err != nil {
				b.Fatal(err)
			}
			var diff bytes.Buffer
			b.ResetTimer()
			for b.Loop() {
				diff.Reset()
				ok, err := codepush.BuildDiff(&diff, bytes.NewReader(oldPkg), int64(len(oldPkg)), bytes.NewReader(newPkg), int64(len(newPkg)), hash)
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
			b.ReportMetric(float64(len(newPkg)), "full-bytes")
			b.ReportMetric(float64(diff.Len()), "diff-bytes")
			b.ReportMetric(100*float64(diff.Len())/float64(len(newPkg)), "diff-%-of-full")
		})
	}
}

// BenchmarkUpdateChecks serves update checks over loopback HTTP with 8
// concurrent clients, in one run: a bare net/http handler (the floor),
// CodePush update_check, and Expo manifests unsigned and signed. The figure
// is checks/s.
func BenchmarkUpdateChecks(b *testing.B) {
	ctx := context.Background()
	cp, err := codepush.New(ctx, codepush.Config{Blobs: codepush.DirBlobs{Dir: b.TempDir()}, PublicURL: "https://ota.example.com"})
	if err != nil {
		b.Fatal(err)
	}
	var cpKey string
	for _, a := range []string{"rp-ios", "rp-android", "cp-android"} {
		app, err := cp.CreateApp(ctx, a, false)
		if err != nil {
			b.Fatal(err)
		}
		if a == "cp-android" {
			cpKey = app.Deployments[1].Key
		}
	}
	// Ten releases on each side; the newest at a 30 % rollout.
	d, err := expoupdates.OpenDist(os.DirFS(filepath.Join("testdata", "expo-export")))
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		rollout := 100
		if i == 10 {
			rollout = 30
		}
		if _, err := cp.Release(ctx, codepush.ReleaseInput{App: "cp-android", Deployment: codepush.Production, AppVersion: "^1.0.0",
			Rollout: rollout, Package: bytes.NewReader(realisticPackage(b, i, 1))}); err != nil {
			b.Fatal(err)
		}
		dist := d
		if i > 1 {
			dist = v2Dist(b, fmt.Sprintf("// build %d", i))
		}
		if _, _, err := expoupdates.Release(ctx, cp, expoupdates.ReleaseInput{App: "rp-android", Deployment: codepush.Production, Dist: dist,
			Platform: "android", Rollout: rollout}); err != nil {
			b.Fatal(err)
		}
	}
	key, _ := codeSigning(b)
	exp := expoupdates.NewServer(expoupdates.Config{CodePush: cp, Apps: map[string]expoupdates.App{
		"rp": {CodePushApps: map[string]string{"android": "rp-android"}, Signer: &expoupdates.Signer{Key: key, KeyID: "main"}}}})
	mux := http.NewServeMux()
	cp.RegisterAcquisition(mux)
	exp.Register(mux)
	mux.HandleFunc("GET /bare", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"updateInfo":{"isAvailable":false}}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}

	cpURL := srv.URL + codepush.PathUpdateCheck + "?" + url.Values{"deploymentKey": {cpKey}, "appVersion": {"1.2.0"}}.Encode()
	for _, tc := range []struct {
		name    string
		url     string
		headers map[string]string
	}{
		{"bare-net-http", srv.URL + "/bare", nil},
		{"codepush-update-check", cpURL, nil},
		{"expo-manifest", srv.URL + "/expo/manifest/rp", map[string]string{}},
		{"expo-manifest-signed", srv.URL + "/expo/manifest/rp", map[string]string{"expo-expect-signature": `sig, keyid="main", alg="rsa-v1_5-sha256"`}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(4) // 8 client goroutines on 2 CPUs
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
					if tc.headers != nil {
						req.Header.Set("Expo-Platform", "android")
						req.Header.Set("Expo-Protocol-Version", "1")
						req.Header.Set("Expo-Runtime-Version", "1.0.0")
						req.Header.Set("Accept", "multipart/mixed,application/expo+json,application/json")
						req.Header.Set("EAS-Client-ID", fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", i%1000))
						req.Header.Set("Expo-Embedded-Update-ID", "e0e0e0e0-0000-4000-8000-000000000000")
						req.Header.Set("Expo-Current-Update-ID", "e0e0e0e0-0000-4000-8000-000000000000")
						for k, v := range tc.headers {
							req.Header.Set(k, v)
						}
					} else if tc.url == cpURL {
						req.URL.RawQuery += fmt.Sprintf("&clientUniqueId=device-%d", i%1000)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					n.Add(1)
				}
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "checks/s")
		})
	}
}
