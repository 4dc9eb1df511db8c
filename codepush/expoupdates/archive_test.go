package expoupdates_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
)

func fixtureFiles(t *testing.T, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	root := filepath.Join("testdata", "expo-export")
	require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[prefix+filepath.ToSlash(rel)] = b
		return err
	}))
	return out
}

func tarGz(t *testing.T, files map[string][]byte, link string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, b := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	if link != "" {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: link, Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink}))
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, b := range files {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, err = w.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestExtractDist(t *testing.T) {
	for name, archive := range map[string][]byte{
		"tar.gz at the root":   tarGz(t, fixtureFiles(t, ""), ""),
		"tar.gz under dist/":   tarGz(t, fixtureFiles(t, "dist/"), ""),
		"zip under dist/":      zipOf(t, fixtureFiles(t, "dist/")),
		"zip with ./ prefixes": zipOf(t, fixtureFiles(t, "./")),
	} {
		t.Run(name, func(t *testing.T) {
			d, err := expoupdates.ExtractDist(bytes.NewReader(archive), t.TempDir())
			require.NoError(t, err)
			require.Equal(t, []string{"ios", "android"}, d.Platforms())
			rv, err := d.RuntimeVersion("android")
			require.NoError(t, err)
			require.Equal(t, "1.0.0", rv)
			u, err := d.Store(t.Context(), codepush.DirBlobs{Dir: t.TempDir()}, "ios", rv)
			require.NoError(t, err)
			require.Equal(t, "application/javascript", u.LaunchAsset.ContentType)
			require.EqualValues(t, 1426830, u.LaunchAsset.Size)
		})
	}
	for name, tc := range map[string]struct {
		archive []byte
		msg     string
	}{
		"traversal":   {zipOf(t, map[string][]byte{"../../evil": []byte("x")}), "outside the export"},
		"symlink":     {tarGz(t, map[string][]byte{"metadata.json": []byte(`{"version":0}`)}, "assets/link"), "links"},
		"not archive": {[]byte("hello"), "not a .tar.gz or .zip"},
		"no metadata": {zipOf(t, map[string][]byte{"a/b.txt": []byte("x")}), "metadata.json"},
		"bad version": {zipOf(t, map[string][]byte{"metadata.json": []byte(`{"version":3}`)}), "only version 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := expoupdates.ExtractDist(bytes.NewReader(tc.archive), t.TempDir())
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, codepush.KindInvalid, codepush.KindOf(err))
		})
	}
}

// TestExtractDistBrokenArchives: an archive cut short in transfer, one that
// names a file twice, or a path both as a file and as a directory is the
// uploader's mistake: refused as invalid (a 400 naming "dist"), never an
// internal error.
func TestExtractDistBrokenArchives(t *testing.T) {
	noise := make([]byte, 256<<10) // incompressible: the cut falls inside the file
	rand.New(rand.NewSource(1)).Read(noise)
	full := tarGz(t, map[string][]byte{"metadata.json": noise}, "")
	var dup bytes.Buffer
	gz := gzip.NewWriter(&dup)
	tw := tar.NewWriter(gz)
	for range 2 {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: "metadata.json", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte("{}"))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	var dupZip bytes.Buffer
	zw := zip.NewWriter(&dupZip)
	for _, n := range []string{"dist/a", "dist/a/b"} {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, err = w.Write([]byte("x"))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	// A stored (uncompressed) entry with a byte changed: its CRC-32 fails.
	var bad bytes.Buffer
	zw = zip.NewWriter(&bad)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "metadata.json", Method: zip.Store})
	require.NoError(t, err)
	_, err = w.Write([]byte(`{"version":0,"bundler":"metro"}`))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	corrupt := bytes.Replace(bad.Bytes(), []byte(`"metro"`), []byte(`"metrO"`), 1)
	for name, tc := range map[string]struct {
		archive []byte
		msg     string
	}{
		"truncated tar.gz":    {full[:len(full)/2], "dist"},
		"a file named twice":  {dup.Bytes(), "metadata.json"},
		"a file and a dir":    {dupZip.Bytes(), "dist/a/b"},
		"gzip header only":    {full[:12], "dist"},
		"a corrupt zip entry": {corrupt, "metadata.json"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := expoupdates.ExtractDist(bytes.NewReader(tc.archive), t.TempDir())
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, codepush.KindInvalid, codepush.KindOf(err), "%v", err)
			require.NotContains(t, err.Error(), os.TempDir(), "the server's own paths stay out of the answer")
		})
	}
}
