// Package codepushtest holds conformance suites for implementations of
// codepush.Store and codepush.Blobs, so that a SQL store or an object-storage
// blob backend behaves exactly like the in-memory and directory ones.
package codepushtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
)

// TestStore runs the Store contract against fresh stores made by newStore.
func TestStore(t *testing.T, newStore func(t *testing.T) codepush.Store) {
	ctx := context.Background()
	app := codepush.App{Name: "Swap-iOS", CreatedAt: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
		Deployments: []codepush.Deployment{{Name: "Staging", Key: "staging-key-0123456789"}, {Name: "Production", Key: "production-key-0123456789"}}}
	rel := func(label string, rollout int) codepush.Release {
		return codepush.Release{Label: label, AppVersion: "^1.0.0", Description: "notes " + label, Mandatory: label == "v2",
			Rollout: rollout, PackageHash: "hash-" + label, Size: 42, BlobKey: "blob-" + label, Method: codepush.MethodUpload,
			ReleasedBy: "ana@example.com", Commit: "c0ffee", UploadTime: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	}

	t.Run("apps", func(t *testing.T) {
		s := newStore(t)
		apps, err := s.Apps(ctx)
		require.NoError(t, err)
		require.Empty(t, apps)
		require.NoError(t, s.SaveApp(ctx, app))
		apps, err = s.Apps(ctx)
		require.NoError(t, err)
		require.Len(t, apps, 1)
		require.Equal(t, app.Name, apps[0].Name)
		require.Equal(t, app.Deployments, apps[0].Deployments)
		require.True(t, app.CreatedAt.Equal(apps[0].CreatedAt))

		// Saving again replaces the deployment list.
		more := app
		more.Deployments = append(append([]codepush.Deployment(nil), app.Deployments...), codepush.Deployment{Name: "Beta", Key: "beta-key-0123456789"})
		require.NoError(t, s.SaveApp(ctx, more))
		apps, err = s.Apps(ctx)
		require.NoError(t, err)
		require.Len(t, apps, 1)
		require.Len(t, apps[0].Deployments, 3)

		// A deployment key belongs to one app.
		other := codepush.App{Name: "Swap-Android", Deployments: []codepush.Deployment{{Name: "Staging", Key: "staging-key-0123456789"}}}
		err = s.SaveApp(ctx, other)
		require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "reusing a deployment key: %v", err)
	})

	t.Run("releases", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.SaveApp(ctx, app))
		key := app.Deployments[1].Key
		h, err := s.Releases(ctx, key)
		require.NoError(t, err)
		require.Empty(t, h)
		require.NoError(t, s.AppendRelease(ctx, key, rel("v1", 100)))
		require.NoError(t, s.AppendRelease(ctx, key, rel("v2", 20)))
		err = s.AppendRelease(ctx, key, rel("v2", 100))
		require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "appending an existing label: %v", err)
		require.NoError(t, s.AppendRelease(ctx, key, rel("v3", 50)))

		h, err = s.Releases(ctx, key)
		require.NoError(t, err)
		require.Len(t, h, 3)
		require.Equal(t, []string{"v1", "v2", "v3"}, []string{h[0].Label, h[1].Label, h[2].Label}, "oldest first")
		require.Equal(t, 100, h[1].Rollout, "appending finishes the previous latest release's rollout")
		require.Equal(t, 50, h[2].Rollout)
		want := rel("v3", 50)
		require.True(t, want.UploadTime.Equal(h[2].UploadTime))
		h[2].UploadTime = want.UploadTime
		require.Equal(t, want, h[2], "every field round-trips")

		// Histories are per deployment.
		other, err := s.Releases(ctx, app.Deployments[0].Key)
		require.NoError(t, err)
		require.Empty(t, other)

		// Returned slices are copies.
		h[0].Description = "mutated"
		h2, err := s.Releases(ctx, key)
		require.NoError(t, err)
		require.Equal(t, "notes v1", h2[0].Description)

		up := h2[2]
		up.Rollout, up.Disabled, up.AppVersion = 80, true, "~1.2.0"
		require.NoError(t, s.UpdateRelease(ctx, key, h2[2], up))
		h3, err := s.Releases(ctx, key)
		require.NoError(t, err)
		require.Equal(t, 80, h3[2].Rollout)
		require.True(t, h3[2].Disabled)
		require.Equal(t, "~1.2.0", h3[2].AppVersion)
		err = s.UpdateRelease(ctx, key, rel("v9", 100), rel("v9", 100))
		require.Equal(t, codepush.KindNotFound, codepush.KindOf(err), "updating a missing label: %v", err)

		// UpdateRelease is a compare-and-swap on the whole row: an update
		// computed from a stale read (h2[2] was read before the update
		// above) is a conflict and changes nothing.
		stale := h2[2]
		stale.Description = "stale patch"
		err = s.UpdateRelease(ctx, key, h2[2], stale)
		require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "updating from a stale read: %v", err)
		h4, err := s.Releases(ctx, key)
		require.NoError(t, err)
		require.Equal(t, h3, h4, "a failed compare-and-swap changes nothing")

		// Appending completes the previous latest rollout; a patch read
		// before the append (rollout 80) must not bring the 80 back.
		before := h4[2]
		require.NoError(t, s.AppendRelease(ctx, key, rel("v4", 100)))
		reenable := before
		reenable.Disabled = false
		err = s.UpdateRelease(ctx, key, before, reenable)
		require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "a patch read before an append: %v", err)
		h5, err := s.Releases(ctx, key)
		require.NoError(t, err)
		require.Equal(t, 100, h5[2].Rollout, "the append's rollout completion stands")
		require.True(t, h5[2].Disabled)

		// Each field takes part in the comparison.
		cur := h5[2]
		for name, mutate := range map[string]func(r *codepush.Release){
			"appVersion":  func(r *codepush.Release) { r.AppVersion = "9.9.9" },
			"description": func(r *codepush.Release) { r.Description = "other" },
			"mandatory":   func(r *codepush.Release) { r.Mandatory = !r.Mandatory },
			"disabled":    func(r *codepush.Release) { r.Disabled = !r.Disabled },
			"rollout":     func(r *codepush.Release) { r.Rollout = 7 },
			"packageHash": func(r *codepush.Release) { r.PackageHash = "other" },
			"size":        func(r *codepush.Release) { r.Size++ },
			"blobKey":     func(r *codepush.Release) { r.BlobKey = "other" },
			"blobURL":     func(r *codepush.Release) { r.BlobURL = "https://other" },
			"method":      func(r *codepush.Release) { r.Method = codepush.MethodPromote },
			"original":    func(r *codepush.Release) { r.OriginalLabel, r.OriginalDeployment = "v1", "Staging" },
			"releasedBy":  func(r *codepush.Release) { r.ReleasedBy = "eve" },
			"commit":      func(r *codepush.Release) { r.Commit = "bad" },
			"uploadTime":  func(r *codepush.Release) { r.UploadTime = r.UploadTime.Add(time.Second) },
		} {
			wrong := cur
			mutate(&wrong)
			next := cur
			next.Description = "changed"
			err := s.UpdateRelease(ctx, key, wrong, next)
			require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "old differing in %s: %v", name, err)
		}
		h6, err := s.Releases(ctx, key)
		require.NoError(t, err)
		require.Equal(t, h5, h6)
		next := cur
		next.Description = "changed"
		require.NoError(t, s.UpdateRelease(ctx, key, cur, next))
	})

	t.Run("reports", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.SaveApp(ctx, app))
		key, staging := app.Deployments[1].Key, app.Deployments[0].Key
		m, err := s.Counts(ctx, key)
		require.NoError(t, err)
		require.Empty(t, m)
		report := func(r codepush.ClientReport) {
			t.Helper()
			if r.DeploymentKey == "" {
				r.DeploymentKey = key
			}
			require.NoError(t, s.RecordReport(ctx, r))
		}

		// Twenty devices report the same install twice each, concurrently:
		// each is counted once.
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.RecordReport(ctx, codepush.ClientReport{DeploymentKey: key, ClientID: fmt.Sprintf("device-%d", i%20), Label: "v2", Status: codepush.StatusSucceeded})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		m, err = s.Counts(ctx, key)
		require.NoError(t, err)
		require.Equal(t, map[string]codepush.Counts{"v2": {Active: 20, Installed: 20, Clients: 20}}, m)

		// Downloads and failures count once per device; a device that failed
		// and then installed is one client of the label.
		for range 3 {
			report(codepush.ClientReport{ClientID: "device-0", Label: "v3", Status: codepush.StatusDownloaded})
			report(codepush.ClientReport{ClientID: "device-0", Label: "v3", Status: codepush.StatusFailed})
		}
		report(codepush.ClientReport{ClientID: "device-0", Label: "v3", Status: codepush.StatusSucceeded})
		report(codepush.ClientReport{ClientID: "device-1", Label: "v3", Status: codepush.StatusFailed})
		m, err = s.Counts(ctx, key)
		require.NoError(t, err)
		require.Equal(t, codepush.Counts{Active: 1, Downloaded: 1, Installed: 1, Failed: 2, Clients: 2}, m["v3"])
		require.Equal(t, codepush.Counts{Active: 19, Installed: 20, Clients: 20}, m["v2"], "device-0 moved from v2 to v3")

		// Active counts follow the device, not the report's claims: back on
		// the binary, again, and to a label it was never counted on before
		// (from another deployment): nothing goes negative.
		report(codepush.ClientReport{ClientID: "device-0", Label: "1.4.0"})
		report(codepush.ClientReport{ClientID: "device-0", Label: "1.4.0"})
		report(codepush.ClientReport{DeploymentKey: staging, ClientID: "device-5", Label: "v1", Status: codepush.StatusSucceeded})
		report(codepush.ClientReport{ClientID: "device-5", Label: "v3", Status: codepush.StatusSucceeded, PreviousDeploymentKey: staging})
		report(codepush.ClientReport{ClientID: "stranger", Label: "v3", Status: codepush.StatusSucceeded, PreviousDeploymentKey: staging})
		m, err = s.Counts(ctx, key)
		require.NoError(t, err)
		require.Equal(t, codepush.Counts{Active: 2, Downloaded: 1, Installed: 3, Failed: 2, Clients: 4}, m["v3"])
		require.Equal(t, codepush.Counts{Active: 18, Installed: 20, Clients: 20}, m["v2"])
		require.Equal(t, codepush.Counts{Active: 1}, m["1.4.0"])
		sm, err := s.Counts(ctx, staging)
		require.NoError(t, err)
		require.Equal(t, codepush.Counts{Active: 0, Installed: 1, Clients: 1}, sm["v1"], "device-5 left Staging's v1")
		for label, c := range m {
			require.GreaterOrEqual(t, c.Active, int64(0), label)
		}

		// Clearing a deployment forgets its counters and its clients.
		require.NoError(t, s.ClearReleases(ctx, key))
		m, err = s.Counts(ctx, key)
		require.NoError(t, err)
		require.Empty(t, m)
		report(codepush.ClientReport{ClientID: "device-1", Label: "v1", Status: codepush.StatusSucceeded})
		m, err = s.Counts(ctx, key)
		require.NoError(t, err)
		require.Equal(t, map[string]codepush.Counts{"v1": {Active: 1, Installed: 1, Clients: 1}}, m)
	})

	t.Run("clear and delete", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.SaveApp(ctx, app))
		key := app.Deployments[1].Key
		require.NoError(t, s.AppendRelease(ctx, key, rel("v1", 100)))
		require.NoError(t, s.AppendRelease(ctx, app.Deployments[0].Key, rel("v1", 100)))
		require.NoError(t, s.ClearReleases(ctx, key))
		h, err := s.Releases(ctx, key)
		require.NoError(t, err)
		require.Empty(t, h)
		h, err = s.Releases(ctx, app.Deployments[0].Key)
		require.NoError(t, err)
		require.Len(t, h, 1, "other deployments keep their history")
		require.NoError(t, s.AppendRelease(ctx, key, rel("v1", 100)), "labels start again after a clear")

		require.NoError(t, s.DeleteApp(ctx, app.Name))
		apps, err := s.Apps(ctx)
		require.NoError(t, err)
		require.Empty(t, apps)
		err = s.DeleteApp(ctx, app.Name)
		require.Equal(t, codepush.KindNotFound, codepush.KindOf(err), "deleting a missing app: %v", err)
		require.NoError(t, s.SaveApp(ctx, app), "a deleted app's deployment keys are free again")
	})
}

// TestBlobs runs the Blobs contract against fresh stores made by newBlobs:
// content addressing by SHA-256, idempotent and concurrent puts, streaming of
// large content, a failed upload leaving nothing behind, not-found keys, and
// (for stores that are also codepush.BlobURLer) download URLs that serve the
// exact bytes.
func TestBlobs(t *testing.T, newBlobs func(t *testing.T) codepush.Blobs) {
	ctx := context.Background()
	b := newBlobs(t)
	content := bytes.Repeat([]byte("bundle "), 100000)
	sum := sha256.Sum256(content)
	key, hash, n, err := b.Put(ctx, bytes.NewReader(content))
	require.NoError(t, err)
	require.Equal(t, hex.EncodeToString(sum[:]), hash)
	require.Equal(t, hash, key, "blobs are content-addressed: the key is the SHA-256 hex")
	require.Equal(t, int64(len(content)), n)
	key2, _, _, err := b.Put(ctx, bytes.NewReader(content))
	require.NoError(t, err, "storing the same content twice is allowed")
	require.Equal(t, key, key2)

	rc, err := b.Open(ctx, key)
	require.NoError(t, err)
	sz, ok := rc.(interface{ Size() int64 })
	require.True(t, ok, "Open's reader tells its size, so downloads carry an exact Content-Length (Android needs it)")
	require.Equal(t, int64(len(content)), sz.Size())
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, content, got)

	for _, missing := range []string{strings.Repeat("0", 64), "nope", "../../etc/passwd", ""} {
		_, err = b.Open(ctx, missing)
		require.Equal(t, codepush.KindNotFound, codepush.KindOf(err), "Open(%q): %v", missing, err)
	}

	t.Run("concurrent puts of one content", func(t *testing.T) {
		c := []byte("concurrent " + t.Name())
		var wg sync.WaitGroup
		keys := make([]string, 4)
		errs := make([]error, 4)
		for i := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys[i], _, _, errs[i] = b.Put(ctx, bytes.NewReader(c))
			}()
		}
		wg.Wait()
		for i := range keys {
			require.NoError(t, errs[i])
			require.Equal(t, keys[0], keys[i])
		}
		requireContent(t, b, keys[0], c)
	})

	t.Run("large content streams", func(t *testing.T) {
		// Bigger than a multipart part (16 MiB) of the object-store backend.
		big := make([]byte, 20<<20)
		for i := range big {
			big[i] = byte(i*7 + i>>11)
		}
		k, _, n, err := b.Put(ctx, &onlyReader{r: bytes.NewReader(big)})
		require.NoError(t, err)
		require.Equal(t, int64(len(big)), n)
		s := sha256.Sum256(big)
		require.Equal(t, hex.EncodeToString(s[:]), k)
		requireContent(t, b, k, big)
	})

	t.Run("a failed upload stores nothing", func(t *testing.T) {
		partial := []byte("half of a package " + t.Name())
		_, _, _, err := b.Put(ctx, io.MultiReader(bytes.NewReader(partial), failingReader{}))
		require.Error(t, err)
		s := sha256.Sum256(partial)
		_, err = b.Open(ctx, hex.EncodeToString(s[:]))
		require.Equal(t, codepush.KindNotFound, codepush.KindOf(err), "the prefix read before the failure must not be stored: %v", err)
	})

	if u, ok := b.(codepush.BlobURLer); ok {
		t.Run("download URLs", func(t *testing.T) {
			url, err := u.BlobURL(ctx, key, "application/zip")
			require.NoError(t, err)
			resp, err := http.Get(url)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
			require.Equal(t, content, body)
			require.Equal(t, strconv.Itoa(len(content)), resp.Header.Get("Content-Length"), "Android clients need an exact Content-Length")
			require.Empty(t, resp.Header.Get("Content-Encoding"))

			// A URL for a key that was never stored does not serve content.
			url, err = u.BlobURL(ctx, strings.Repeat("ab", 32), "")
			require.NoError(t, err)
			resp, err = http.Get(url)
			require.NoError(t, err)
			resp.Body.Close()
			require.GreaterOrEqual(t, resp.StatusCode, 400)

			_, err = u.BlobURL(ctx, "../../etc/passwd", "")
			require.Equal(t, codepush.KindNotFound, codepush.KindOf(err))
		})
	}
}

func requireContent(t *testing.T, b codepush.Blobs, key string, want []byte) {
	t.Helper()
	rc, err := b.Open(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "stored content differs (%d bytes, want %d)", len(got), len(want))
}

// onlyReader hides every method but Read (no WriterTo, Seeker or ReaderAt),
// as a request body would.
type onlyReader struct{ r io.Reader }

func (o *onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// TestDiffStore runs the DiffStore contract: diffs are found by the blob
// they lead to, the first one saved for a pair stays, and saving refreshes
// nothing it should not.
func TestDiffStore(t *testing.T, newStore func(t *testing.T) codepush.Store) {
	ctx := context.Background()
	s := newStore(t)
	ds, ok := s.(codepush.DiffStore)
	require.True(t, ok, "the store keeps diff packages")
	app := codepush.App{Name: "Swap-Android", Deployments: []codepush.Deployment{{Name: "Production", Key: "diff-key-0123456789"}}}
	require.NoError(t, s.SaveApp(ctx, app))
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	got, err := ds.DiffsTo(ctx, []string{"blob-b"})
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = ds.DiffsTo(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	d1 := codepush.Diff{FromHash: "hash-a", ToBlob: "blob-b", BlobKey: "diff-ab", Size: 321, CreatedAt: at}
	d2 := codepush.Diff{FromHash: "hash-c", ToBlob: "blob-b", BlobKey: "diff-cb", Size: 99, CreatedAt: at}
	d3 := codepush.Diff{FromHash: "hash-a", ToBlob: "blob-d", BlobKey: "diff-ad", Size: 7, CreatedAt: at}
	for _, d := range []codepush.Diff{d1, d2, d3} {
		require.NoError(t, ds.SaveDiff(ctx, "diff-key-0123456789", d))
	}
	again := d1
	again.BlobKey, again.Size = "diff-other", 1
	require.NoError(t, ds.SaveDiff(ctx, "diff-key-0123456789", again), "saving a pair again is not an error")

	got, err = ds.DiffsTo(ctx, []string{"blob-b"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	byFrom := map[string]codepush.Diff{}
	for _, d := range got {
		require.True(t, d.CreatedAt.Equal(at))
		d.CreatedAt = at
		byFrom[d.FromHash] = d
	}
	require.Equal(t, d1, byFrom["hash-a"], "the first diff of a pair stays")
	require.Equal(t, d2, byFrom["hash-c"])
	got, err = ds.DiffsTo(ctx, []string{"blob-b", "blob-d", "blob-x"})
	require.NoError(t, err)
	require.Len(t, got, 3)
}
