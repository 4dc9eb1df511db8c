package nativecheck

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
)

// DefaultRegistryURL is the public npm registry.
const DefaultRegistryURL = "https://registry.npmjs.org"

// ErrPackageNotFound means the registry has no such package version.
var ErrPackageNotFound = errors.New("nativecheck: package version not in registry")

// judgeVersion names the package judgement rules. It is part of every
// cached verdict's key, so verdicts made by older rules are not reused.
const judgeVersion = "autolink/1"

// VerdictCache keeps package verdicts beyond one process, so that a
// restart or another replica does not download tarballs again. Keys are
// opaque strings; an implementation bounds its own size and age. A load
// error is treated as a miss and a save error is ignored: the cache only
// saves work, it never decides.
type VerdictCache interface {
	LoadVerdict(ctx context.Context, key string) (verdict []byte, ok bool, err error)
	SaveVerdict(ctx context.Context, key string, verdict []byte) error
}

// Registry inspects packages through an npm registry: it reads the version
// metadata, downloads the version's tarball, checks it against the
// published integrity, and judges its files as autolinking would (see
// judgePackage). Verdicts (and "not found") are kept in a bounded memory
// cache, and verdicts also in Cache when set; transient failures are not
// cached. Registry is safe for concurrent use; concurrent lookups of one
// name@version share one request.
type Registry struct {
	// URL of the registry; DefaultRegistryURL when empty.
	URL string
	// Token, if set, is sent as a bearer token to the registry's host only.
	Token      string
	HTTPClient *http.Client
	// MaxTarballBytes bounds a downloaded tarball (default 256 MiB).
	MaxTarballBytes int64
	// Cache, if set, shares verdicts across restarts and replicas.
	Cache VerdictCache
	// MemoryEntries bounds the in-memory cache (default 4096 verdicts).
	MemoryEntries int

	mu       sync.Mutex
	inflight map[string]*inspection
	mem      map[string]*list.Element
	order    *list.List // front: most recently used
}

type inspection struct {
	done chan struct{}
	pn   PackageNative
	err  error
}

type memEntry struct {
	key string
	pn  PackageNative
	err error // ErrPackageNotFound, or nil
}

// Inspect implements [Inspector].
func (r *Registry) Inspect(ctx context.Context, name, version string) (PackageNative, error) {
	var (
		pn  PackageNative
		err error
	)
	// A waiter that inherits another caller's transient failure (its
	// context was cancelled, say) tries again itself.
	for range 3 {
		var mine bool
		pn, mine, err = r.inspectShared(ctx, name, version)
		if err == nil || mine || errors.Is(err, ErrPackageNotFound) || ctx.Err() != nil {
			return pn, err
		}
	}
	return pn, err
}

func (r *Registry) memLimit() int {
	if r.MemoryEntries > 0 {
		return r.MemoryEntries
	}
	return 4096
}

// remember stores a result in the bounded memory cache; r.mu is held.
func (r *Registry) remember(key string, pn PackageNative, err error) {
	if r.mem == nil {
		r.mem, r.order = map[string]*list.Element{}, list.New()
	}
	if el, ok := r.mem[key]; ok {
		el.Value = memEntry{key, pn, err}
		r.order.MoveToFront(el)
		return
	}
	r.mem[key] = r.order.PushFront(memEntry{key, pn, err})
	for r.order.Len() > r.memLimit() {
		old := r.order.Back()
		r.order.Remove(old)
		delete(r.mem, old.Value.(memEntry).key)
	}
}

func (r *Registry) inspectShared(ctx context.Context, name, version string) (PackageNative, bool, error) {
	key := name + "@" + version
	r.mu.Lock()
	if el, ok := r.mem[key]; ok {
		r.order.MoveToFront(el)
		e := el.Value.(memEntry)
		r.mu.Unlock()
		return e.pn, false, e.err
	}
	if r.inflight == nil {
		r.inflight = map[string]*inspection{}
	}
	if in, ok := r.inflight[key]; ok {
		r.mu.Unlock()
		select {
		case <-in.done:
			return in.pn, false, in.err
		case <-ctx.Done():
			return PackageNative{}, false, ctx.Err()
		}
	}
	in := &inspection{done: make(chan struct{})}
	r.inflight[key] = in
	r.mu.Unlock()

	in.pn, in.err = r.inspectCached(ctx, name, version)
	r.mu.Lock()
	delete(r.inflight, key)
	if in.err == nil || errors.Is(in.err, ErrPackageNotFound) {
		r.remember(key, in.pn, in.err)
	}
	r.mu.Unlock()
	close(in.done)
	return in.pn, true, in.err
}

// cacheKey names a verdict in the shared cache: the rules, the registry
// and the package version.
func (r *Registry) cacheKey(name, version string) string {
	return judgeVersion + " " + r.base() + " " + name + "@" + version
}

func (r *Registry) inspectCached(ctx context.Context, name, version string) (PackageNative, error) {
	if r.Cache != nil {
		if b, ok, err := r.Cache.LoadVerdict(ctx, r.cacheKey(name, version)); err == nil && ok {
			var pn PackageNative
			if json.Unmarshal(b, &pn) == nil {
				return pn, nil
			}
		}
	}
	pn, err := r.inspect(ctx, name, version)
	if err == nil && r.Cache != nil {
		if b, merr := json.Marshal(pn); merr == nil {
			_ = r.Cache.SaveVerdict(ctx, r.cacheKey(name, version), b)
		}
	}
	return pn, err
}

func (r *Registry) base() string {
	if r.URL == "" {
		return DefaultRegistryURL
	}
	return strings.TrimRight(r.URL, "/")
}

func (r *Registry) client() *http.Client {
	if r.HTTPClient != nil {
		return r.HTTPClient
	}
	return http.DefaultClient
}

func (r *Registry) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("nativecheck: registry request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if r.Token != "" {
		if bu, err := url.Parse(r.base()); err == nil && bu.Host == req.URL.Host {
			req.Header.Set("Authorization", "Bearer "+r.Token)
		}
	}
	resp, err := r.client().Do(req)
	if err != nil {
		// *url.Error names the URL, never the header: no token leaks.
		return nil, fmt.Errorf("nativecheck: registry: %w", err)
	}
	return resp, nil
}

// versionMeta is the part of a package version's metadata that is used.
type versionMeta struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Dist    struct {
		Tarball   string `json:"tarball"`
		Integrity string `json:"integrity"`
		Shasum    string `json:"shasum"`
	} `json:"dist"`
}

// transientStatus reports statuses worth retrying later rather than
// answering from another endpoint.
func transientStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// metadata reads one version's metadata. It asks the per-version endpoint
// first (small), and falls back to the whole packument when that endpoint
// refuses: npmjs.org has answered 401 "you cannot fetch versions for scoped
// packages" there, and other registries may not implement it.
func (r *Registry) metadata(ctx context.Context, name, version string) (versionMeta, error) {
	escaped := strings.Replace(url.PathEscape(name), "%40", "@", 1)
	escaped = strings.ReplaceAll(escaped, "/", "%2F")
	var meta versionMeta
	resp, err := r.get(ctx, r.base()+"/"+escaped+"/"+url.PathEscape(version))
	if err != nil {
		return meta, err
	}
	if resp.StatusCode == http.StatusOK {
		defer resp.Body.Close()
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&meta); err != nil {
			return meta, fmt.Errorf("nativecheck: registry metadata for %s@%s: %w", name, version, err)
		}
		return meta, nil
	}
	resp.Body.Close()
	if transientStatus(resp.StatusCode) {
		return meta, fmt.Errorf("nativecheck: registry answered %d for %s@%s", resp.StatusCode, name, version)
	}

	resp, err = r.get(ctx, r.base()+"/"+escaped)
	if err != nil {
		return meta, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return meta, fmt.Errorf("%w: %s@%s", ErrPackageNotFound, name, version)
	case resp.StatusCode != http.StatusOK:
		return meta, fmt.Errorf("nativecheck: registry answered %d for %s", resp.StatusCode, name)
	}
	var doc struct {
		Versions map[string]versionMeta `json:"versions"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 128<<20)).Decode(&doc); err != nil {
		return meta, fmt.Errorf("nativecheck: registry metadata for %s: %w", name, err)
	}
	meta, ok := doc.Versions[version]
	if !ok {
		return meta, fmt.Errorf("%w: %s@%s", ErrPackageNotFound, name, version)
	}
	return meta, nil
}

func (r *Registry) inspect(ctx context.Context, name, version string) (PackageNative, error) {
	if name == "" || strings.ContainsAny(name, " \t\n") || strings.HasPrefix(name, ".") {
		return PackageNative{}, fmt.Errorf("nativecheck: invalid package name %q", name)
	}
	meta, err := r.metadata(ctx, name, version)
	if err != nil {
		return PackageNative{}, err
	}
	if meta.Dist.Tarball == "" {
		return PackageNative{}, fmt.Errorf("nativecheck: registry metadata for %s@%s has no tarball", name, version)
	}
	want, err := tarballDigest(meta.Dist.Integrity, meta.Dist.Shasum)
	if err != nil {
		return PackageNative{}, fmt.Errorf("nativecheck: registry metadata for %s@%s: %w", name, version, err)
	}
	pn, err := r.judgeTarball(ctx, meta.Dist.Tarball, want)
	if err != nil {
		return PackageNative{}, fmt.Errorf("nativecheck: tarball of %s@%s: %w", name, version, err)
	}
	return pn, nil
}

// digest is the expected hash of a tarball.
type digest struct {
	newHash func() hash.Hash
	sum     []byte
}

// tarballDigest picks the strongest checksum the metadata offers: the
// Subresource Integrity string (sha512, else sha256/sha1) or the legacy
// sha1 shasum. A tarball with neither is refused, since its contents decide
// whether an over-the-air update is allowed.
func tarballDigest(integrity, shasum string) (digest, error) {
	best := digest{}
	rank := 0
	for _, f := range strings.Fields(integrity) {
		alg, b64, ok := strings.Cut(f, "-")
		if !ok {
			continue
		}
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		switch {
		case alg == "sha512" && rank < 3:
			best, rank = digest{sha512.New, sum}, 3
		case alg == "sha256" && rank < 2:
			best, rank = digest{sha256.New, sum}, 2
		case alg == "sha1" && rank < 1:
			best, rank = digest{sha1.New, sum}, 1
		}
	}
	if rank == 0 && shasum != "" {
		sum, err := hex.DecodeString(shasum)
		if err == nil {
			best, rank = digest{sha1.New, sum}, 1
		}
	}
	if rank == 0 {
		return digest{}, errors.New("no usable dist.integrity or dist.shasum")
	}
	return best, nil
}

func (r *Registry) judgeTarball(ctx context.Context, u string, want digest) (PackageNative, error) {
	resp, err := r.get(ctx, u)
	if err != nil {
		return PackageNative{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return PackageNative{}, fmt.Errorf("registry answered %d", resp.StatusCode)
	}
	limit := r.MaxTarballBytes
	if limit <= 0 {
		limit = 256 << 20
	}
	h := want.newHash()
	body := io.TeeReader(io.LimitReader(resp.Body, limit), h)
	pf, err := readTarball(body)
	if err != nil {
		return PackageNative{}, err
	}
	// Hash the rest of the stream (tar padding, gzip trailer) before
	// trusting what was listed.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return PackageNative{}, err
	}
	if !bytes.Equal(h.Sum(nil), want.sum) {
		return PackageNative{}, errors.New("tarball does not match the registry's integrity checksum")
	}
	return judgePackage(pf).native(), nil
}

// maxConfigFile bounds a config file read from a tarball.
const maxConfigFile = 1 << 20

// readTarball lists a gzipped npm tarball and reads the files the
// judgement needs. npm tarballs put everything under one top directory,
// usually "package/"; it is stripped, whatever it is.
func readTarball(rd io.Reader) (pkgFiles, error) {
	zr, err := gzip.NewReader(rd)
	if err != nil {
		return pkgFiles{}, err
	}
	tr := tar.NewReader(zr)
	pf := pkgFiles{contents: map[string][]byte{}}
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return pkgFiles{}, err
		}
		if hd.Typeflag == tar.TypeDir || hd.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		_, rel, ok := strings.Cut(strings.TrimPrefix(hd.Name, "./"), "/")
		if !ok || rel == "" || strings.HasSuffix(rel, "/") {
			continue
		}
		rel = path.Clean(rel)
		pf.paths = append(pf.paths, rel)
		if needContent(rel) && hd.Typeflag != tar.TypeSymlink {
			b, err := io.ReadAll(io.LimitReader(tr, maxConfigFile+1))
			if err != nil {
				return pkgFiles{}, err
			}
			if len(b) > maxConfigFile {
				b = []byte("\x00 larger than 1 MiB")
			}
			pf.contents[rel] = b
		}
	}
	sort.Strings(pf.paths)
	return pf, nil
}
