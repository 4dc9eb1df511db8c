package codepush

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// Diff packages (reference ota-round2 §B). A diff takes a device from the
// package whose hash is FromHash to the content of the blob ToBlob: it holds
// the files that are new or changed, copied byte for byte from the new zip
// under the same names, plus hotcodepush.json at the root listing the files
// to delete. Clients copy their current package, delete those files, and
// unzip the diff over it; the result must hash to the release's packageHash.

// DefaultDiffCount is how many earlier releases of a deployment a new release
// gets diffs against, as code-push-server's DIFF_PACKAGE_COUNT.
const DefaultDiffCount = 5

// DiffManifestName is the file clients look for at the root of a diff.
const DiffManifestName = "hotcodepush.json"

// Diff is a stored diff package.
type Diff struct {
	FromHash  string    `json:"fromHash"` // packageHash of the device's current package
	ToBlob    string    `json:"toBlob"`   // blob key of the full package it leads to
	BlobKey   string    `json:"blobKey"`  // blob key of the diff zip
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"createdAt"`
}

// DiffStore is implemented by Stores that keep diff packages. Diffs depend
// only on the two contents, so a promoted or rolled-back copy of a release
// (same blob) shares them.
type DiffStore interface {
	// SaveDiff records d; saving the same (FromHash, ToBlob) again keeps the
	// first. deploymentKey is the deployment whose views must be refreshed
	// (other replicas learn it from the change log).
	SaveDiff(ctx context.Context, deploymentKey string, d Diff) error
	// DiffsTo returns the diffs leading to each of the blob keys.
	DiffsTo(ctx context.Context, toBlobs []string) ([]Diff, error)
}

// DiffScheduler is told about every release appended to a deployment so
// that its diffs are built in the background (a job queue); it must not
// build them on the caller's path. An error is logged, never returned: a
// missing diff only means full downloads.
type DiffScheduler interface {
	ScheduleDiffs(ctx context.Context, deploymentKey, label string) error
}

// manifest maps the file paths of a package zip to the SHA-256 hex of their
// content: directories, __MACOSX/ and .DS_Store are left out; the signature
// .codepushrelease is kept (a diff must carry a changed signature), though
// the package hash leaves it out.
type manifest map[string]string

// zipManifest reads the manifest of a zip package; ok is false for a package
// that is not a zip (a bare bundle file), which never gets diffs.
func zipManifest(r io.ReaderAt, size int64) (m manifest, files map[string]*zip.File, ok bool, err error) {
	if !isZip(r) {
		return nil, nil, false, nil
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, nil, false, err
	}
	m, files = manifest{}, map[string]*zip.File{}
	for _, f := range zr.File {
		name := strings.ReplaceAll(f.Name, "\\", "/")
		if strings.HasSuffix(name, "/") || f.FileInfo().IsDir() ||
			strings.HasPrefix(name, "__MACOSX/") || path.Base(name) == ".DS_Store" {
			continue
		}
		if !safeEntryName(name) {
			return nil, nil, false, fmt.Errorf("zip entry %q is not a relative path inside the package", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, nil, false, err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return nil, nil, false, fmt.Errorf("zip entry %q: %w", name, err)
		}
		m[name] = hex.EncodeToString(h.Sum(nil))
		files[name] = f
	}
	return m, files, true, nil
}

func safeEntryName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") || name == DiffManifestName {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return false
		}
	}
	return true
}

// hash is the package hash of the files of m (signatures left out), as the
// clients compute it over their folder.
func (m manifest) hash() string {
	var entries []string
	for p, h := range m {
		if path.Base(p) == ".codepushrelease" {
			continue
		}
		entries = append(entries, p+":"+h)
	}
	return manifestHash(entries)
}

// BuildDiff writes to w the diff package taking a device from the package
// oldPkg to newPkg, and reports whether there is one: none when either is
// not a zip, or when nothing changed. The diff is checked before it is
// returned: applied to the old manifest it must hash to wantHash, the
// package hash of newPkg.
func BuildDiff(w io.Writer, oldPkg io.ReaderAt, oldSize int64, newPkg io.ReaderAt, newSize int64, wantHash string) (bool, error) {
	oldM, _, ok, err := zipManifest(oldPkg, oldSize)
	if err != nil || !ok {
		return false, err
	}
	newM, newFiles, ok, err := zipManifest(newPkg, newSize)
	if err != nil || !ok {
		return false, err
	}
	var changed, deleted []string
	for p, h := range newM {
		if oldM[p] != h {
			changed = append(changed, p)
		}
	}
	for p := range oldM {
		if _, ok := newM[p]; !ok {
			deleted = append(deleted, p)
		}
	}
	if len(changed) == 0 && len(deleted) == 0 {
		return false, nil
	}
	slices.Sort(changed)
	slices.Sort(deleted)

	// Self-check, the step that catches every diffing bug code-push-server
	// shipped: the old files, minus the deleted, plus the changed, must
	// hash to the new release's hash.
	applied := manifest{}
	for p, h := range oldM {
		applied[p] = h
	}
	for _, p := range deleted {
		delete(applied, p)
	}
	for _, p := range changed {
		applied[p] = newM[p]
	}
	if got := applied.hash(); got != wantHash {
		return false, fmt.Errorf("codepush: diff self-check failed: applied diff hashes to %s, want %s", got, wantHash)
	}

	zw := zip.NewWriter(w)
	hdr, err := zw.Create(DiffManifestName)
	if err != nil {
		return false, err
	}
	if deleted == nil {
		deleted = []string{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		DeletedFiles []string `json:"deletedFiles"`
	}{deleted}); err != nil {
		return false, err
	}
	if _, err := hdr.Write(bytes.TrimRight(buf.Bytes(), "\n")); err != nil {
		return false, err
	}
	for _, p := range changed {
		f := newFiles[p]
		raw, err := f.OpenRaw()
		if err != nil {
			return false, err
		}
		fh := f.FileHeader // copied as stored: same name, method, CRC and bytes
		ew, err := zw.CreateRaw(&fh)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(ew, raw); err != nil {
			return false, err
		}
	}
	return true, zw.Close()
}

// matchingAppVersion is code-push-server's isMatchingAppVersion(base, candidate).
func matchingAppVersion(base, candidate string) bool {
	if v, ok := ParseVersion(base); ok {
		r, okr := ParseRange(candidate)
		return okr && r.Satisfies(v)
	}
	br, ok := ParseRange(base)
	if !ok {
		return false
	}
	if cv, ok := ParseVersion(candidate); ok {
		return br.Satisfies(cv)
	}
	cr, ok := ParseRange(candidate)
	return ok && cr.String() == br.String()
}

// diffCandidates picks, from the entries older than label, at most n whose
// target binaries match and whose content differs, newest first, one per
// package hash (reference §B.2; disabled releases are candidates too: devices
// may still run them).
func diffCandidates(h []Release, label string, n int) (Release, []Release, bool) {
	i := slices.IndexFunc(h, func(r Release) bool { return r.Label == label })
	if i < 0 {
		return Release{}, nil, false
	}
	target := h[i]
	seen := map[string]bool{target.PackageHash: true}
	var out []Release
	for j := i - 1; j >= 0 && len(out) < n; j-- {
		c := h[j]
		if seen[c.PackageHash] || c.BlobKey == "" || !matchingAppVersion(target.AppVersion, c.AppVersion) {
			continue
		}
		seen[c.PackageHash] = true
		out = append(out, c)
	}
	return target, out, true
}

// BuildDiffs builds and stores the missing diff packages of release label
// of a deployment against its most recent earlier releases (Config.DiffCount
// of them). It runs in the background (a job); each diff is independent, and
// one that cannot be built is logged and skipped. It is a no-op when the
// Store keeps no diffs.
func (s *Service) BuildDiffs(ctx context.Context, deploymentKey, label string) error {
	ds, ok := s.cfg.Store.(DiffStore)
	if !ok || s.cfg.DiffCount < 0 || s.cfg.Blobs == nil {
		return nil
	}
	n := s.cfg.DiffCount
	if n == 0 {
		n = DefaultDiffCount
	}
	h, err := s.cfg.Store.Releases(ctx, deploymentKey)
	if err != nil {
		return err
	}
	target, cands, ok := diffCandidates(h, label, n)
	if !ok || len(cands) == 0 {
		return nil
	}
	have, err := ds.DiffsTo(ctx, []string{target.BlobKey})
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, d := range have {
		done[d.FromHash] = true
	}
	newPkg, newSize, err := s.spoolBlob(ctx, target.BlobKey)
	if err != nil {
		return fmt.Errorf("read %s: %w", target.Label, err)
	}
	defer os.Remove(newPkg.Name())
	defer newPkg.Close()
	var errs []error
	built := 0
	for _, c := range cands {
		if done[c.PackageHash] {
			continue
		}
		d, ok, err := s.buildDiff(ctx, c, target, newPkg, newSize)
		if err != nil {
			s.cfg.Logger.WarnContext(ctx, "codepush: diff not built; devices on it download the full package",
				"deployment", deploymentKey, "from", c.Label, "to", target.Label, "err", err)
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		if err := ds.SaveDiff(ctx, deploymentKey, d); err != nil {
			return err
		}
		built++
	}
	if built > 0 {
		if err := s.Invalidate(ctx, deploymentKey); err != nil {
			return err
		}
	}
	// Content errors (a candidate that is not a readable zip) are final and
	// only logged; storage errors are returned for a retry.
	for _, err := range errs {
		var e *Error
		if !errors.As(err, &e) && !errors.Is(err, errNoDiffContent) {
			return err
		}
	}
	return nil
}

var errNoDiffContent = errors.New("codepush: package content cannot be diffed")

func (s *Service) buildDiff(ctx context.Context, from, to Release, newPkg *os.File, newSize int64) (Diff, bool, error) {
	oldPkg, oldSize, err := s.spoolBlob(ctx, from.BlobKey)
	if err != nil {
		return Diff{}, false, err
	}
	defer os.Remove(oldPkg.Name())
	defer oldPkg.Close()
	out, err := os.CreateTemp("", "codepush-diff-*")
	if err != nil {
		return Diff{}, false, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	ok, err := BuildDiff(out, oldPkg, oldSize, newPkg, newSize, to.PackageHash)
	if err != nil {
		return Diff{}, false, fmt.Errorf("%w: %v", errNoDiffContent, err)
	}
	if !ok {
		return Diff{}, false, nil
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return Diff{}, false, err
	}
	key, _, size, err := s.cfg.Blobs.Put(ctx, out)
	if err != nil {
		return Diff{}, false, err
	}
	return Diff{FromHash: from.PackageHash, ToBlob: to.BlobKey, BlobKey: key, Size: size, CreatedAt: s.cfg.Now().UTC()}, true, nil
}

// spoolBlob copies a blob to a temporary file for random access.
func (s *Service) spoolBlob(ctx context.Context, key string) (*os.File, int64, error) {
	rc, err := s.cfg.Blobs.Open(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "codepush-blob-*")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, rc)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

// scheduleDiffs hands a committed release to the DiffScheduler.
func (s *Service) scheduleDiffs(ctx context.Context, deploymentKey string, r Release) {
	if s.cfg.Diffs == nil || s.cfg.DiffCount < 0 {
		return
	}
	if err := s.cfg.Diffs.ScheduleDiffs(context.WithoutCancel(ctx), deploymentKey, r.Label); err != nil {
		s.cfg.Logger.WarnContext(ctx, "codepush: could not schedule diff packages; devices download full packages",
			"deployment", deploymentKey, "label", r.Label, "err", err)
	}
}

// loadDiffs reads the diffs leading to the releases of a history, keyed by
// blob and then by the device's package hash.
func (s *Service) loadDiffs(ctx context.Context, h []Release) (map[string]map[string]Diff, error) {
	ds, ok := s.cfg.Store.(DiffStore)
	if !ok || len(h) == 0 {
		return nil, nil
	}
	var keys []string
	for _, r := range h {
		if r.BlobKey != "" && !slices.Contains(keys, r.BlobKey) {
			keys = append(keys, r.BlobKey)
		}
	}
	diffs, err := ds.DiffsTo(ctx, keys)
	if err != nil || len(diffs) == 0 {
		return nil, err
	}
	out := map[string]map[string]Diff{}
	for _, d := range diffs {
		if out[d.ToBlob] == nil {
			out[d.ToBlob] = map[string]Diff{}
		}
		out[d.ToBlob][d.FromHash] = d
	}
	return out, nil
}

// diffFor returns the diff taking a device of the deployment whose package
// hash is from to release r, when one was built. It reads the in-memory
// view only.
func (s *Service) diffFor(deploymentKey string, r *Release, from string) (Diff, bool) {
	if r == nil || from == "" || from == r.PackageHash {
		return Diff{}, false
	}
	dv := s.view(deploymentKey)
	if dv == nil {
		return Diff{}, false
	}
	d, ok := dv.diffs[r.BlobKey][from]
	return d, ok
}

// Diffs returns the diff packages stored for release label of a deployment.
func (s *Service) Diffs(ctx context.Context, app, dep, label string) ([]Diff, error) {
	_, h, err := s.deployment(ctx, app, dep)
	if err != nil {
		return nil, err
	}
	i, err := findLabel(h, label)
	if err != nil {
		return nil, err
	}
	ds, ok := s.cfg.Store.(DiffStore)
	if !ok {
		return nil, nil
	}
	return ds.DiffsTo(ctx, []string{h[i].BlobKey})
}

var _ DiffStore = (*MemStore)(nil)

// SaveDiff implements DiffStore.
func (m *MemStore) SaveDiff(ctx context.Context, deploymentKey string, d Diff) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.diffs {
		if e.FromHash == d.FromHash && e.ToBlob == d.ToBlob {
			return nil
		}
	}
	m.diffs = append(m.diffs, d)
	return nil
}

// DiffsTo implements DiffStore.
func (m *MemStore) DiffsTo(ctx context.Context, toBlobs []string) ([]Diff, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Diff
	for _, d := range m.diffs {
		if slices.Contains(toBlobs, d.ToBlob) {
			out = append(out, d)
		}
	}
	return out, nil
}
