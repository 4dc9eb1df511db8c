// Package npmtest is an in-memory npm registry for tests: it serves version
// metadata (GET /{name}/{version}, with scoped names as @scope%2Fname) and
// gzipped tarballs built from the files a test gives it.
package npmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry is an http.Handler; serve it with httptest.NewServer and set
// BaseURL to the server's URL so tarball links point back to it.
type Registry struct {
	BaseURL string

	mu       sync.Mutex
	versions map[string]*version // name@version
	// Requests counts every request served, for cache tests.
	Requests atomic.Int64
	// Fail, if set, answers a request with that status when it returns
	// non-zero (to simulate outages).
	Fail func(r *http.Request) int
	// NoScopedVersionEndpoint makes GET /@scope%2Fname/{version} answer 401
	// with npmjs.org's "you cannot fetch versions for scoped packages", so
	// clients must read the whole packument.
	NoScopedVersionEndpoint bool
}

type version struct {
	meta    map[string]any
	tarball []byte
}

// New returns an empty registry.
func New() *Registry { return &Registry{versions: map[string]*version{}} }

// Add publishes name@version with the given files (paths relative to the
// package root, "package/" is added) and extra package.json fields.
func (g *Registry) Add(name, ver string, files map[string]string, pkgJSON map[string]any) {
	pj := map[string]any{"name": name, "version": ver}
	for k, v := range pkgJSON {
		pj[k] = v
	}
	pjb, _ := json.Marshal(pj)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	all := map[string]string{"package.json": string(pjb)}
	for p, c := range files {
		all[p] = c
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths) // deterministic bytes, so checksums are stable
	for _, p := range paths {
		c := all[p]
		_ = tw.WriteHeader(&tar.Header{Name: "package/" + p, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(c))
	}
	_ = tw.Close()
	_ = zw.Close()
	meta := map[string]any{}
	for k, v := range pj {
		meta[k] = v
	}
	base := name[strings.LastIndex(name, "/")+1:]
	sum512 := sha512.Sum512(buf.Bytes())
	sum1 := sha1.Sum(buf.Bytes())
	meta["dist"] = map[string]any{
		"tarball":   "/" + name + "/-/" + base + "-" + ver + ".tgz",
		"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum512[:]),
		"shasum":    hex.EncodeToString(sum1[:]),
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.versions[name+"@"+ver] = &version{meta: meta, tarball: buf.Bytes()}
}

// AddTarball publishes name@version with a ready-made gzipped tarball (a
// real package fetched with `npm pack`, say). Its metadata carries the
// tarball's own sha512 integrity and sha1 shasum, as npm's does.
func (g *Registry) AddTarball(name, ver string, tgz []byte) {
	base := name[strings.LastIndex(name, "/")+1:]
	sum512 := sha512.Sum512(tgz)
	sum1 := sha1.Sum(tgz)
	meta := map[string]any{"name": name, "version": ver, "dist": map[string]any{
		"tarball":   "/" + name + "/-/" + base + "-" + ver + ".tgz",
		"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum512[:]),
		"shasum":    hex.EncodeToString(sum1[:]),
	}}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.versions[name+"@"+ver] = &version{meta: meta, tarball: tgz}
}

// AddNative publishes a package with a root podspec and an android/ folder.
func (g *Registry) AddNative(name, ver string) {
	pod := strings.ReplaceAll(strings.TrimPrefix(name, "@"), "/", "-")
	g.Add(name, ver, map[string]string{
		pod + ".podspec":                       "Pod::Spec.new do |s| end\n",
		"android/build.gradle":                 "apply plugin: 'com.android.library'\n",
		"ios/Module.m":                         "// native\n",
		"src/index.js":                         "module.exports = {}\n",
		"android/src/main/AndroidManifest.xml": "<manifest/>\n",
	}, nil)
}

// AddJS publishes a JS-only package.
func (g *Registry) AddJS(name, ver string) {
	g.Add(name, ver, map[string]string{"index.js": "module.exports = {}\n", "README.md": "# " + name + "\n"}, nil)
}

// Tamper replaces the tarball of name@ver with another package's files
// while keeping the published checksums, as a compromised mirror would.
func (g *Registry) Tamper(name, ver string, files map[string]string) {
	g.mu.Lock()
	orig := g.versions[name+"@"+ver]
	g.mu.Unlock()
	if orig == nil {
		return
	}
	g.Add(name, ver, files, nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.versions[name+"@"+ver].meta = orig.meta
}

func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.Requests.Add(1)
	if g.Fail != nil {
		if code := g.Fail(r); code != 0 {
			http.Error(w, `{"error":"fail"}`, code)
			return
		}
	}
	p, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, `{"error":"bad path"}`, http.StatusBadRequest)
		return
	}
	p = strings.TrimPrefix(p, "/")
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := strings.Index(p, "/-/"); i >= 0 && strings.HasSuffix(p, ".tgz") {
		name := p[:i]
		file := strings.TrimSuffix(p[i+3:], ".tgz")
		base := name[strings.LastIndex(name, "/")+1:]
		v := g.versions[name+"@"+strings.TrimPrefix(file, base+"-")]
		if v == nil {
			http.Error(w, `{"error":"Not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(v.tarball)
		return
	}
	// A packument: GET /{name} with every version.
	if !strings.Contains(strings.TrimPrefix(p, "@"), "/") || (strings.HasPrefix(p, "@") && strings.Count(p, "/") == 1) {
		versions := map[string]any{}
		for key, v := range g.versions {
			if name, ver, _ := cutLast(key, "@"); name == p {
				versions[ver] = g.metaFor(v)
			}
		}
		if len(versions) == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"Not found"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"name": p, "versions": versions})
		return
	}
	j := strings.LastIndex(p, "/")
	if g.NoScopedVersionEndpoint && strings.HasPrefix(p, "@") {
		w.Header().Set("npm-notice", "ERROR: you cannot fetch versions for scoped packages")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	v := g.versions[p[:j]+"@"+p[j+1:]]
	if v == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`"version not found: ` + p[j+1:] + `"`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(g.metaFor(v))
}

// metaFor is a version's metadata with an absolute tarball URL.
func (g *Registry) metaFor(v *version) map[string]any {
	meta := map[string]any{}
	for k, val := range v.meta {
		meta[k] = val
	}
	dist := map[string]any{}
	for k, val := range v.meta["dist"].(map[string]any) {
		dist[k] = val
	}
	dist["tarball"] = g.BaseURL + dist["tarball"].(string)
	meta["dist"] = dist
	return meta
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i > 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
