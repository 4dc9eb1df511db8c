package nativecheck

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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

// Registry inspects packages through an npm registry: it reads the version
// metadata, then lists the version's tarball to look for a root *.podspec,
// an android/ folder or expo-module.config.json. Results (including "not
// found") are cached by name@version for the life of the Registry; transient
// failures are not cached. Registry is safe for concurrent use; concurrent
// lookups of one name@version share one request.
type Registry struct {
	// URL of the registry; DefaultRegistryURL when empty.
	URL string
	// Token, if set, is sent as a bearer token to the registry's host only.
	Token      string
	HTTPClient *http.Client
	// MaxTarballBytes bounds a downloaded tarball (default 256 MiB).
	MaxTarballBytes int64

	mu    sync.Mutex
	cache map[string]*inspection
}

type inspection struct {
	done chan struct{}
	pn   PackageNative
	err  error
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

func (r *Registry) inspectShared(ctx context.Context, name, version string) (PackageNative, bool, error) {
	key := name + "@" + version
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]*inspection{}
	}
	if in, ok := r.cache[key]; ok {
		r.mu.Unlock()
		select {
		case <-in.done:
			return in.pn, false, in.err
		case <-ctx.Done():
			return PackageNative{}, false, ctx.Err()
		}
	}
	in := &inspection{done: make(chan struct{})}
	r.cache[key] = in
	r.mu.Unlock()

	in.pn, in.err = r.inspect(ctx, name, version)
	if in.err != nil && !errors.Is(in.err, ErrPackageNotFound) {
		r.mu.Lock()
		delete(r.cache, key) // transient: let the next caller retry
		r.mu.Unlock()
	}
	close(in.done)
	return in.pn, true, in.err
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
	Name          string          `json:"name"`
	Version       string          `json:"version"`
	CodegenConfig json.RawMessage `json:"codegenConfig"`
	Dist          struct {
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
	pn, err := r.listTarball(ctx, meta.Dist.Tarball, want)
	if err != nil {
		return PackageNative{}, fmt.Errorf("nativecheck: tarball of %s@%s: %w", name, version, err)
	}
	if len(meta.CodegenConfig) > 0 && string(meta.CodegenConfig) != "null" {
		pn.IOS, pn.Android = true, true
		pn.Evidence = joinEvidence(pn.Evidence, "package.json codegenConfig")
	}
	return pn, nil
}

func joinEvidence(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
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

func (r *Registry) listTarball(ctx context.Context, u string, want digest) (PackageNative, error) {
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
	zr, err := gzip.NewReader(body)
	if err != nil {
		return PackageNative{}, err
	}
	tr := tar.NewReader(zr)
	var (
		evidence []string
		pn       PackageNative
	)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return PackageNative{}, err
		}
		// npm tarballs put everything under one top directory, usually
		// "package/"; strip whatever it is.
		_, rel, ok := strings.Cut(strings.TrimPrefix(h.Name, "./"), "/")
		if !ok {
			continue
		}
		switch {
		case !strings.Contains(rel, "/") && strings.HasSuffix(rel, ".podspec"):
			pn.IOS = true
			evidence = append(evidence, rel)
		case strings.HasPrefix(rel, "android/"):
			if !pn.Android {
				evidence = append(evidence, "android/")
			}
			pn.Android = true
		case rel == "expo-module.config.json" || rel == "unimodule.json":
			evidence = append(evidence, rel)
			ios, android := expoModulePlatforms(tr)
			pn.IOS = pn.IOS || ios
			pn.Android = pn.Android || android
		}
	}
	// Hash the rest of the stream (tar padding, gzip trailer) before
	// trusting what was listed.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return PackageNative{}, err
	}
	if !bytes.Equal(h.Sum(nil), want.sum) {
		return PackageNative{}, errors.New("tarball does not match the registry's integrity checksum")
	}
	sort.Strings(evidence)
	pn.Evidence = strings.Join(evidence, ", ")
	return pn, nil
}

// expoModulePlatforms reads expo-module.config.json's "platforms"; absent or
// unreadable means both (fail closed).
func expoModulePlatforms(rd io.Reader) (ios, android bool) {
	var cfg struct {
		Platforms []string `json:"platforms"`
	}
	if err := json.NewDecoder(io.LimitReader(rd, 1<<20)).Decode(&cfg); err != nil || len(cfg.Platforms) == 0 {
		return true, true
	}
	for _, p := range cfg.Platforms {
		switch path.Clean(p) {
		case "ios", "apple", "macos", "tvos":
			ios = true
		case "android":
			android = true
		}
	}
	return ios, android
}
