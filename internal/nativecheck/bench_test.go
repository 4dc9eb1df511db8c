package nativecheck_test

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
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
// natively bundled images on both platforms, and committed Pods (ignored).
func bigTree() staticSource {
	files := baseApp()
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
	add(88000, "src/features/f%03d/Component%02d.tsx")
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
	b.ReportMetric(float64(len(src.entries)), "entries")
}
