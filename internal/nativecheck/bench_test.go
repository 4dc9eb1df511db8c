package nativecheck_test

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"testing"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

// staticSource serves one precomputed tree, so a benchmark measures the
// fingerprinter rather than hashing the fixture.
type staticSource struct {
	entries []nativecheck.Entry
	files   map[string]string
}

func (s staticSource) Tree(context.Context, string) ([]nativecheck.Entry, bool, error) {
	return s.entries, false, nil
}

func (s staticSource) ReadFile(_ context.Context, _, path string) ([]byte, error) {
	c, ok := s.files[path]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(c), nil
}

// mapInspector answers from memory: the registry's cost is network, cached
// by name@version, and is not what this benchmark measures.
type mapInspector map[string]nativecheck.PackageNative

func (m mapInspector) Inspect(_ context.Context, name, version string) (nativecheck.PackageNative, error) {
	return m[name+"@"+version], nil
}

// bigTree is the fixture app plus 100,000 generated entries: JS sources,
// natively bundled images on both platforms, committed Pods (ignored), and
// ten workspace packages with native code (judged from the tree) whose
// sources are among the generated entries; the lockfile adds a git
// dependency.
func bigTree() staticSource {
	files := withLock(baseApp(), map[string]lockPkg{"react-native-fork": {version: "1.0.0", resolved: forkAt(commitA)}})
	for k := range 10 {
		for p, c := range nativeKit(fmt.Sprintf("packages/kit%d/", k)) {
			files[p] = c
		}
	}
	entries := make([]nativecheck.Entry, 0, len(files)+100000)
	for p, c := range files {
		entries = append(entries, nativecheck.Entry{Path: p, Type: "blob", Mode: "100644", SHA: blobSHA(c), Size: int64(len(c))})
	}
	add := func(n int, format string) {
		for i := range n {
			p := fmt.Sprintf(format, i/100, i%100)
			entries = append(entries, nativecheck.Entry{Path: p, Type: "blob", Mode: "100644", SHA: fmt.Sprintf("%040x", len(entries)), Size: 100})
		}
	}
	add(80000, "src/features/f%03d/Component%02d.tsx")
	for i := range 8000 {
		p := fmt.Sprintf("packages/kit%d/src/generated/Spec%04d.ts", i%10, i)
		entries = append(entries, nativecheck.Entry{Path: p, Type: "blob", Mode: "100644", SHA: fmt.Sprintf("%040x", len(entries)), Size: 100})
	}
	add(4000, "ios/Demo/Images.xcassets/i%03d.imageset/img%02d.png")
	add(4000, "android/app/src/main/res/drawable-%03d/img%02d.png")
	add(4000, "ios/Pods/Pod%03d/File%02d.m")
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return staticSource{entries: entries, files: files}
}

func BenchmarkFingerprint100k(b *testing.B) {
	src := bigTree()
	fp := &nativecheck.Fingerprinter{Packages: mapInspector{
		"react-native-mmkv@3.2.0": {IOS: true, Android: true, Evidence: "podspec"},
		"react-native-svg@15.2.0": {IOS: true, Android: true, Evidence: "podspec"},
	}}
	ctx := context.Background()
	var ios string
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fps, err := fp.Fingerprint(ctx, src, "c")
		if err != nil {
			b.Fatal(err)
		}
		ios = fps[nativecheck.IOS].Hash
	}
	b.StopTimer()
	if len(ios) != 64 {
		b.Fatalf("hash %q", ios)
	}
	fps, _ := fp.Fingerprint(ctx, src, "c")
	kits := 0
	for _, f := range fps[nativecheck.Android].Files {
		if strings.HasSuffix(f.Path, "NativeKitPackage.kt") {
			kits++
		}
	}
	if kits != 10 {
		b.Fatalf("%d workspace packages' Kotlin sources in the Android fingerprint, want 10", kits)
	}
	b.ReportMetric(float64(len(src.entries)), "entries")
}
