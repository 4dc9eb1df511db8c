package expoupdates_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
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
