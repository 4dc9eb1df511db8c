package codepush_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
)

// cliZip builds a release zip the way the CodePush CLIs do: files only (no
// directory entries), deflated, in the given order.
func cliZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate})
		require.NoError(t, err)
		_, err = w.Write([]byte(files[n]))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// unzipInto extracts a zip into dir as the clients do (files only).
func unzipInto(t *testing.T, data []byte, dir string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	for _, f := range zr.File {
		require.False(t, strings.HasSuffix(f.Name, "/"), "a CodePush zip has no directory entries: %s", f.Name)
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}))
}

// applyLikeAndroid installs a download over the current package folder the
// way react-native-code-push's CodePushUpdateManager does: unzip; when
// hotcodepush.json is at the root, copy the current package, delete every
// deletedFiles entry and hotcodepush.json; then copy the unzipped files over.
func applyLikeAndroid(t *testing.T, current string, download []byte) string {
	t.Helper()
	require.Equal(t, "PK\x03\x04", string(download[:4]), "diffs are zips")
	unzipped := t.TempDir()
	unzipInto(t, download, unzipped)
	next := t.TempDir()
	manifestPath := filepath.Join(unzipped, codepush.DiffManifestName)
	if b, err := os.ReadFile(manifestPath); err == nil {
		copyTree(t, current, next)
		var m struct {
			DeletedFiles []string `json:"deletedFiles"`
		}
		require.NoError(t, json.Unmarshal(b, &m))
		for _, f := range m.DeletedFiles {
			require.NoError(t, os.Remove(filepath.Join(next, filepath.FromSlash(f))), "deleting %s", f)
		}
		require.NoError(t, os.Remove(manifestPath))
	}
	copyTree(t, unzipped, next)
	return next
}

// folderHash is CodePushUpdateUtils.verifyFolderHash's hash: files only,
// skipping __MACOSX/, .DS_Store and .codepushrelease, "path:sha256" sorted,
// JSON array, SHA-256.
func folderHash(t *testing.T, dir string) string {
	t.Helper()
	var entries []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "__MACOSX/") || d.Name() == ".DS_Store" || d.Name() == ".codepushrelease" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		entries = append(entries, rel+":"+hex.EncodeToString(s[:]))
		return nil
	}))
	sort.Strings(entries)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(entries))
	s := sha256.Sum256(bytes.TrimRight(buf.Bytes(), "\n"))
	return hex.EncodeToString(s[:])
}

// treeFiles reads every file of dir, for exact comparisons.
func treeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	}))
	return out
}

// recordingScheduler stands in for the job queue: it records what was
// scheduled, and the test runs the jobs.
type recordingScheduler struct {
	mu   sync.Mutex
	jobs [][2]string
}

func (r *recordingScheduler) ScheduleDiffs(ctx context.Context, key, label string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, [2]string{key, label})
	return nil
}

func (r *recordingScheduler) run(t *testing.T, svc *codepush.Service) {
	t.Helper()
	r.mu.Lock()
	jobs := r.jobs
	r.jobs = nil
	r.mu.Unlock()
	for _, j := range jobs {
		require.NoError(t, svc.BuildDiffs(context.Background(), j[0], j[1]))
	}
}

type diffBundle struct {
	svc   *codepush.Service
	sched *recordingScheduler
	srv   *httptest.Server
	key   string
}

func setupDiffs(t *testing.T, count int) *diffBundle {
	t.Helper()
	ctx := context.Background()
	sched := &recordingScheduler{}
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	svc, err := codepush.New(ctx, codepush.Config{Blobs: codepush.DirBlobs{Dir: t.TempDir()}, Diffs: sched, DiffCount: count,
		Now: func() time.Time { clock = clock.Add(time.Minute); return clock }})
	require.NoError(t, err)
	a, err := svc.CreateApp(ctx, "Swap-Android", false)
	require.NoError(t, err)
	srv := httptest.NewServer(svc.AcquisitionHandler())
	t.Cleanup(srv.Close)
	return &diffBundle{svc: svc, sched: sched, srv: srv, key: a.Deployments[1].Key}
}

func (b *diffBundle) release(t *testing.T, rng string, files map[string]string) codepush.Release {
	t.Helper()
	r, err := b.svc.Release(context.Background(), codepush.ReleaseInput{App: "Swap-Android", Deployment: codepush.Production,
		AppVersion: rng, Package: bytes.NewReader(cliZip(t, files))})
	require.NoError(t, err)
	return r
}

type checkAnswer struct {
	UpdateInfo struct {
		DownloadURL string `json:"download_url"`
		IsAvailable bool   `json:"is_available"`
		PackageHash string `json:"package_hash"`
		PackageSize int64  `json:"package_size"`
		Label       string `json:"label"`
	} `json:"update_info"`
}

func (b *diffBundle) check(t *testing.T, hash, label string) checkAnswer {
	t.Helper()
	q := url.Values{"deployment_key": {b.key}, "app_version": {"1.4.0"}, "package_hash": {hash}, "label": {label}, "client_unique_id": {"device-1"}}
	resp, err := http.Get(b.srv.URL + codepush.PathUpdateCheckV01 + "?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var a checkAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return a
}

// download fetches a package as Android does and insists on an exact
// Content-Length and no content coding.
func download(t *testing.T, u string, wantSize int64) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(len(body)), resp.Header.Get("Content-Length"), "Android fails on a missing or wrong Content-Length")
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	require.Equal(t, wantSize, int64(len(body)), "package_size must be the size downloaded")
	return body
}

func TestDiffPackagesApplyLikeTheClientsDo(t *testing.T) {
	b := setupDiffs(t, 0)
	big := noise(200 << 10) // incompressible, like a font or an image
	v1Files := map[string]string{
		"CodePush/index.android.bundle":           "bundle v1",
		"CodePush/drawable-mdpi/logo.png":         "logo v1",
		"CodePush/drawable-mdpi/old_banner.png":   "banner",
		"CodePush/raw/fonts/Inter.ttf":            "font bytes",
		"CodePush/raw/fonts/Big.ttf":              big,
		"CodePush/assets/node_modules/x/icon.png": "icon",
	}
	v1 := b.release(t, "^1.4.0", v1Files)
	require.Len(t, b.sched.jobs, 1, "every release schedules its diffs")
	b.sched.run(t, b.svc) // v1 has nothing older: no diff
	d, err := b.svc.Diffs(context.Background(), "Swap-Android", codepush.Production, v1.Label)
	require.NoError(t, err)
	require.Empty(t, d)

	// v2 changes the bundle and the logo, deletes the banner, adds a screen
	// image in a new directory.
	v2Files := map[string]string{
		"CodePush/index.android.bundle":           "bundle v2",
		"CodePush/drawable-mdpi/logo.png":         "logo v2",
		"CodePush/raw/fonts/Inter.ttf":            "font bytes",
		"CodePush/raw/fonts/Big.ttf":              big,
		"CodePush/assets/node_modules/x/icon.png": "icon",
		"CodePush/drawable-xhdpi/screen.png":      "new screen",
	}
	v2 := b.release(t, "^1.4.0", v2Files)

	// Before the background job ran, a device on v1 gets the full package.
	a := b.check(t, v1.PackageHash, v1.Label)
	require.True(t, a.UpdateInfo.IsAvailable)
	require.Equal(t, v2.Size, a.UpdateInfo.PackageSize)
	require.Contains(t, a.UpdateInfo.DownloadURL, v2.BlobKey)

	b.sched.run(t, b.svc)
	diffs, err := b.svc.Diffs(context.Background(), "Swap-Android", codepush.Production, v2.Label)
	require.NoError(t, err)
	require.Len(t, diffs, 1)
	require.Equal(t, v1.PackageHash, diffs[0].FromHash)

	// Now the same check answers with the diff: its URL and size; the
	// hash and label stay the full release's.
	a = b.check(t, v1.PackageHash, v1.Label)
	require.True(t, a.UpdateInfo.IsAvailable)
	require.Equal(t, v2.PackageHash, a.UpdateInfo.PackageHash)
	require.Equal(t, v2.Label, a.UpdateInfo.Label)
	require.Equal(t, diffs[0].Size, a.UpdateInfo.PackageSize)
	require.Contains(t, a.UpdateInfo.DownloadURL, diffs[0].BlobKey)
	require.Less(t, diffs[0].Size*4, v2.Size, "the diff leaves the unchanged font out")

	// A device on v1 applies it as Android does: the result is exactly v2.
	current := t.TempDir()
	unzipInto(t, cliZip(t, v1Files), current)
	require.Equal(t, v1.PackageHash, folderHash(t, current))
	next := applyLikeAndroid(t, current, download(t, a.UpdateInfo.DownloadURL, a.UpdateInfo.PackageSize))
	require.Equal(t, v2.PackageHash, folderHash(t, next), "the client's integrity check passes")
	require.Equal(t, v2Files, treeFiles(t, next))

	// A device whose hash has no diff (unknown, or none sent) gets the full package.
	for _, h := range []string{"", strings.Repeat("f", 64)} {
		a = b.check(t, h, "")
		require.Equal(t, v2.Size, a.UpdateInfo.PackageSize)
		require.Contains(t, a.UpdateInfo.DownloadURL, v2.BlobKey)
		full := applyLikeAndroid(t, t.TempDir(), download(t, a.UpdateInfo.DownloadURL, v2.Size))
		require.Equal(t, v2.PackageHash, folderHash(t, full))
	}

	// v3: signed (a .codepushrelease appears), one file deleted, nothing
	// else changed. Diffs to v3 exist from v2 and from v1.
	v3Files := map[string]string{}
	for k, v := range v2Files {
		v3Files[k] = v
	}
	delete(v3Files, "CodePush/raw/fonts/Inter.ttf")
	v3Files["CodePush/.codepushrelease"] = "eyJhbGciOiJSUzI1NiJ9.signed.v3"
	v3 := b.release(t, "^1.4.0", v3Files)
	b.sched.run(t, b.svc)
	diffs, err = b.svc.Diffs(context.Background(), "Swap-Android", codepush.Production, v3.Label)
	require.NoError(t, err)
	require.Len(t, diffs, 2)
	for _, from := range []struct {
		rel   codepush.Release
		files map[string]string
	}{{v2, v2Files}, {v1, v1Files}} {
		a = b.check(t, from.rel.PackageHash, from.rel.Label)
		cur := t.TempDir()
		unzipInto(t, cliZip(t, from.files), cur)
		got := applyLikeAndroid(t, cur, download(t, a.UpdateInfo.DownloadURL, a.UpdateInfo.PackageSize))
		require.Equal(t, v3.PackageHash, folderHash(t, got), "from %s", from.rel.Label)
		require.Equal(t, v3Files, treeFiles(t, got), "from %s: the signature travels in the diff", from.rel.Label)
	}

	// v4 drops the signature again: the diff from v3 deletes it.
	v4 := b.release(t, "^1.4.0", v2Files)
	b.sched.run(t, b.svc)
	a = b.check(t, v3.PackageHash, v3.Label)
	cur := t.TempDir()
	unzipInto(t, cliZip(t, v3Files), cur)
	got := applyLikeAndroid(t, cur, download(t, a.UpdateInfo.DownloadURL, a.UpdateInfo.PackageSize))
	require.Equal(t, v4.PackageHash, folderHash(t, got))
	require.Equal(t, v2Files, treeFiles(t, got))
}

func TestDiffCandidatesFollowTheDeploymentHistory(t *testing.T) {
	b := setupDiffs(t, 2)
	files := func(i int) map[string]string {
		return map[string]string{"CodePush/index.android.bundle": "bundle " + strconv.Itoa(i), "CodePush/a.png": "a"}
	}
	var rels []codepush.Release
	for i := 1; i <= 4; i++ {
		rels = append(rels, b.release(t, "^1.4.0", files(i)))
	}
	b.sched.run(t, b.svc)
	diffs, err := b.svc.Diffs(context.Background(), "Swap-Android", codepush.Production, rels[3].Label)
	require.NoError(t, err)
	var from []string
	for _, d := range diffs {
		from = append(from, d.FromHash)
	}
	require.ElementsMatch(t, []string{rels[2].PackageHash, rels[1].PackageHash}, from, "the 2 most recent earlier releases only")
	require.Equal(t, rels[3].Size, b.check(t, rels[0].PackageHash, rels[0].Label).UpdateInfo.PackageSize, "older ones download in full")

	// A rollback copy gets a diff from the release it rolls back from.
	rb, err := b.svc.Rollback(context.Background(), "Swap-Android", codepush.Production, "")
	require.NoError(t, err)
	b.sched.run(t, b.svc)
	diffs, err = b.svc.Diffs(context.Background(), "Swap-Android", codepush.Production, rb.Label)
	require.NoError(t, err)
	from = nil
	for _, d := range diffs {
		from = append(from, d.FromHash)
	}
	require.Contains(t, from, rels[3].PackageHash)

	// A release for other binaries gets no diff from these.
	other := b.release(t, "2.0.0", files(5))
	b.sched.run(t, b.svc)
	diffs, err = b.svc.Diffs(context.Background(), "Swap-Android", codepush.Production, other.Label)
	require.NoError(t, err)
	require.Empty(t, diffs)
}

func TestNoDiffForBareBundlesOrBrokenZips(t *testing.T) {
	var out bytes.Buffer
	bare := []byte("var a = 1;")
	z := cliZip(t, map[string]string{"CodePush/main.jsbundle": "x"})
	ok, err := codepush.BuildDiff(&out, bytes.NewReader(bare), int64(len(bare)), bytes.NewReader(z), int64(len(z)), "")
	require.NoError(t, err)
	require.False(t, ok, "a bare bundle file has no manifest to diff")

	// Identical content: no diff.
	h, err := codepush.PackageHash(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	ok, err = codepush.BuildDiff(&out, bytes.NewReader(z), int64(len(z)), bytes.NewReader(z), int64(len(z)), h)
	require.NoError(t, err)
	require.False(t, ok)

	// The self-check refuses a diff that would not reproduce the hash.
	z2 := cliZip(t, map[string]string{"CodePush/main.jsbundle": "y"})
	_, err = codepush.BuildDiff(&out, bytes.NewReader(z), int64(len(z)), bytes.NewReader(z2), int64(len(z2)), h)
	require.ErrorContains(t, err, "self-check")

	// Entry names that escape the package are refused.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("../evil.js")
	w.Write([]byte("x"))
	require.NoError(t, zw.Close())
	ev := buf.Bytes()
	_, err = codepush.BuildDiff(&out, bytes.NewReader(z), int64(len(z)), bytes.NewReader(ev), int64(len(ev)), h)
	require.ErrorContains(t, err, "not a relative path")
}

// noise is n deterministic, incompressible bytes.
func noise(n int) string {
	out := make([]byte, 0, n+32)
	seed := sha256.Sum256([]byte("noise"))
	for len(out) < n {
		seed = sha256.Sum256(seed[:])
		out = append(out, seed[:]...)
	}
	return string(out[:n])
}
