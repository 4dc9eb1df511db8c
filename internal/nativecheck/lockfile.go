package nativecheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lockfileNames are looked up in the app root, then in each parent directory.
var lockfileNames = []string{"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"}

// Origins of an installed package.
const (
	originRegistry = "registry"     // name@version from an npm registry (immutable there)
	originGit      = "git"          // a git commit
	originTarball  = "tarball"      // a tarball URL outside any registry
	originLocal    = "local"        // a directory of the repository (file:, link:, portal:, workspace:)
	originLocalTGZ = "localtarball" // a tarball file in the repository (file:x.tgz)
	originUnknown  = "unknown"      // no lockfile entry: only a range is known
)

// installed is one package as a lockfile resolves it.
type installed struct {
	Name    string // as installed: node_modules/<Name>
	Version string // the version field (what people read)
	Origin  string
	// Resolved is what the package resolves to when that is not the
	// registry's name@version: "git+https://host/o/r.git#<commit>",
	// "sha512-…" for a tarball, "dir:<path>" for a local directory.
	Resolved string
	// RegistryName is the package's name in the registry when it is
	// installed under an alias (npm:real@1.0.0).
	RegistryName string
	// Path is the repository-relative directory (local) or file
	// (localtarball); "" when it lies outside the repository.
	Path string
	// Unpinned says why what the package resolves to cannot be pinned
	// (a git branch, a directory outside the repository, a tarball URL
	// without integrity); such a package counts as changed by every commit.
	Unpinned string
}

func (p installed) key() string { return p.Name + "@" + p.Version + "\x00" + p.Resolved }

func (p installed) registryName() string {
	if p.RegistryName != "" {
		return p.RegistryName
	}
	return p.Name
}

type packageJSON struct {
	Name                 string            `json:"name"`
	Dependencies         map[string]string `json:"dependencies"`
	DevDependencies      map[string]string `json:"devDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	Scripts              map[string]string `json:"scripts"`
	CodegenConfig        json.RawMessage   `json:"codegenConfig"`
}

func (p packageJSON) direct() map[string]string {
	all := map[string]string{}
	for _, m := range []map[string]string{p.PeerDependencies, p.DevDependencies, p.OptionalDependencies, p.Dependencies} {
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}

var (
	hexCommitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
	codeloadRE  = regexp.MustCompile(`^https?://codeload\.github\.com/([^/]+)/([^/]+)/tar\.gz/([0-9a-f]{40})$`)
)

// lockResolver turns what a lockfile records into an installed package.
type lockResolver struct {
	lockDir string // repository-relative directory of the lockfile ("" or "apps/x/")
}

// localPath resolves a path written in the lockfile (relative to base, a
// repository-relative directory) to a repository-relative path; ok is
// false when it leaves the repository.
func (r lockResolver) localPath(base, p string) (string, bool) {
	p = strings.TrimPrefix(p, "./")
	if path.IsAbs(p) || strings.Contains(p, "\\") || strings.HasPrefix(p, "~") {
		return "", false
	}
	c := path.Clean(path.Join(base, p))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	if c == "." {
		c = ""
	}
	return c, true
}

// gitRef splits a git resolution into the repository and the commit; the
// commit is "" when the reference is not a full commit id.
func gitRef(s string) (repo, commit string) {
	s = strings.TrimSpace(s)
	if m := codeloadRE.FindStringSubmatch(strings.SplitN(s, "#", 2)[0]); m != nil {
		return "github.com/" + m[1] + "/" + m[2], m[3]
	}
	repo, frag, _ := strings.Cut(s, "#")
	// yarn berry: #commit=<sha>, #head=<branch>, #<sha>
	for _, part := range strings.Split(frag, "&") {
		part = strings.TrimPrefix(part, "commit=")
		if hexCommitRE.MatchString(part) {
			return repo, part
		}
	}
	return repo, ""
}

func isGitSpec(s string) bool {
	for _, p := range []string{"git+", "git://", "git@", "github:", "gitlab:", "bitbucket:", "gist:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	u, _, _ := strings.Cut(s, "#")
	return strings.Contains(s, ".git#") || strings.HasSuffix(s, ".git") || codeloadRE.MatchString(u)
}

// registryTarball reports whether a URL has the shape of an npm registry
// tarball: …/<name>/-/<basename>-<version>.tgz.
func registryTarball(u string) bool {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") {
		return false
	}
	return strings.Contains(pu.Path, "/-/") && strings.HasSuffix(pu.Path, ".tgz")
}

// registryNameFromTarball extracts the package name from a registry
// tarball URL (for aliases).
func registryNameFromTarball(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	p, _ := url.PathUnescape(pu.Path)
	i := strings.Index(p, "/-/")
	if i < 0 {
		return ""
	}
	name := p[:i]
	// The registry may live under a path (…/npm/<name>/-/…): keep the name.
	parts := strings.Split(strings.Trim(name, "/"), "/")
	if n := len(parts); n >= 2 && strings.HasPrefix(parts[n-2], "@") {
		return parts[n-2] + "/" + parts[n-1]
	}
	return parts[len(parts)-1]
}

// resolve classifies a package from its resolved location (a URL, a git
// spec or a path) and integrity, recorded relative to base.
func (r lockResolver) resolve(p installed, resolved, integrity, base string) installed {
	switch {
	case resolved == "":
		p.Origin = originRegistry
	case isGitSpec(resolved):
		p.Origin = originGit
		repo, commit := gitRef(resolved)
		if commit == "" {
			p.Resolved = resolved
			p.Unpinned = "git reference " + resolved + " is not a commit id"
		} else {
			p.Resolved = "git " + strings.TrimPrefix(strings.TrimPrefix(repo, "git+"), "https://") + "#" + commit
		}
	case strings.HasPrefix(resolved, "file:"), strings.HasPrefix(resolved, "link:"), strings.HasPrefix(resolved, "portal:"),
		strings.HasPrefix(resolved, "workspace:"):
		scheme, rest, _ := strings.Cut(resolved, ":")
		rest, _, _ = strings.Cut(rest, "#") // yarn v1 file:x.tgz#sha1
		r.local(&p, scheme, rest, integrity, base)
	case strings.HasPrefix(resolved, "http://"), strings.HasPrefix(resolved, "https://"):
		if registryTarball(resolved) {
			p.Origin = originRegistry
			if n := registryNameFromTarball(resolved); n != "" && n != p.Name {
				p.RegistryName = n
			}
			break
		}
		p.Origin = originTarball
		if integrity != "" {
			p.Resolved = integrity
		} else {
			p.Resolved = resolved
			p.Unpinned = "tarball " + resolved + " has no integrity checksum"
		}
	default:
		// npm writes a workspace link's target as a bare relative path.
		r.local(&p, "link", resolved, integrity, base)
	}
	return p
}

func (r lockResolver) local(p *installed, scheme, rel, integrity, base string) {
	where, ok := r.localPath(base, rel)
	isTGZ := strings.HasSuffix(rel, ".tgz") || strings.HasSuffix(rel, ".tar.gz") || strings.HasSuffix(rel, ".tar")
	switch {
	case !ok:
		p.Origin = originLocal
		p.Resolved = scheme + ":" + rel
		p.Unpinned = scheme + ":" + rel + " lies outside the repository, so its contents cannot be read"
	case isTGZ:
		p.Origin = originLocalTGZ
		p.Path = where
		p.Resolved = "file:" + where
	default:
		p.Origin = originLocal
		p.Path = where
		p.Resolved = "dir:" + where
		if where == "" {
			p.Resolved = "dir:."
		}
	}
	_ = integrity
}

// parseLockfile returns every package a lockfile installs, sorted and
// deduplicated. lockDir is the lockfile's repository-relative directory.
func parseLockfile(name, lockDir string, b []byte) ([]installed, error) {
	var (
		pkgs []installed
		err  error
	)
	r := lockResolver{lockDir: lockDir}
	switch name {
	case "package-lock.json", "npm-shrinkwrap.json":
		pkgs, err = r.parseNPMLock(b)
	case "yarn.lock":
		if bytes.Contains(b, []byte("\n__metadata:")) || bytes.HasPrefix(b, []byte("__metadata:")) {
			pkgs, err = r.parseYarnBerry(b)
		} else {
			pkgs, err = r.parseYarnV1(b)
		}
	case "pnpm-lock.yaml":
		pkgs, err = r.parsePNPMLock(b)
	default:
		return nil, fmt.Errorf("nativecheck: unknown lockfile %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("nativecheck: parse %s: %w", name, err)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].key() < pkgs[j].key() })
	out := pkgs[:0]
	for i, p := range pkgs {
		if p.Name == "" || (p.Version == "" && p.Resolved == "") || (i > 0 && p.key() == pkgs[i-1].key()) {
			continue
		}
		if p.Version == "" {
			p.Version = "0.0.0"
		}
		out = append(out, p)
	}
	return out, nil
}

// parseNPMLock reads lockfileVersion 2 and 3 ("packages", keyed by
// install path) and falls back to version 1's nested "dependencies".
func (r lockResolver) parseNPMLock(b []byte) ([]installed, error) {
	type v1dep struct {
		Version      string                     `json:"version"`
		Resolved     string                     `json:"resolved"`
		Integrity    string                     `json:"integrity"`
		Dependencies map[string]json.RawMessage `json:"dependencies"`
	}
	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Name      string `json:"name"`
			Version   string `json:"version"`
			Resolved  string `json:"resolved"`
			Integrity string `json:"integrity"`
			Link      bool   `json:"link"`
		} `json:"packages"`
		Dependencies map[string]json.RawMessage `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, err
	}
	var out []installed
	if len(lock.Packages) > 0 {
		for key, p := range lock.Packages {
			i := strings.LastIndex(key, "node_modules/")
			if i < 0 {
				continue // the root project or a workspace folder (reached through its link)
			}
			name := key[i+len("node_modules/"):]
			pk := installed{Name: name, Version: p.Version}
			if p.Link {
				pk = r.resolve(pk, "link:"+p.Resolved, "", r.lockDir)
				if t, ok := lock.Packages[p.Resolved]; ok && t.Version != "" {
					pk.Version = t.Version
				}
			} else {
				pk = r.resolve(pk, p.Resolved, p.Integrity, r.lockDir)
				if pk.Origin == originRegistry && p.Name != "" && p.Name != name {
					pk.RegistryName = p.Name
				}
			}
			out = append(out, pk)
		}
		return out, nil
	}
	var walk func(map[string]json.RawMessage, int) error
	walk = func(deps map[string]json.RawMessage, depth int) error {
		if depth > 64 {
			return fmt.Errorf("dependencies nested deeper than 64")
		}
		for name, raw := range deps {
			var d v1dep
			if err := json.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("dependencies[%q]: %w", name, err)
			}
			pk := installed{Name: name, Version: d.Version}
			resolved := d.Resolved
			if isGitSpec(d.Version) || strings.HasPrefix(d.Version, "file:") || strings.HasPrefix(d.Version, "link:") {
				if !isGitSpec(resolved) {
					resolved = d.Version
				}
			}
			if alias, ok := strings.CutPrefix(d.Version, "npm:"); ok {
				if i := strings.LastIndex(alias, "@"); i > 0 {
					pk.RegistryName, pk.Version = alias[:i], alias[i+1:]
				}
			}
			pk = r.resolve(pk, resolved, d.Integrity, r.lockDir)
			out = append(out, pk)
			if err := walk(d.Dependencies, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(lock.Dependencies, 0)
}

// specName returns the package name of a lockfile specifier such as
// "@babel/core@^7.0.0" or "lodash@npm:^4.17.21".
func specName(spec string) string {
	spec = strings.Trim(strings.TrimSpace(spec), `"`)
	if i := strings.Index(spec[min(1, len(spec)):], "@"); i >= 0 {
		return spec[:i+1]
	}
	return spec
}

// specRange returns what follows the name in a specifier.
func specRange(spec string) string {
	spec = strings.Trim(strings.TrimSpace(spec), `"`)
	return strings.TrimPrefix(spec[len(specName(spec)):], "@")
}

// parseYarnV1 reads the yarn v1 lockfile format: unindented specifier lines
// ending in ':' followed by indented `version "x"`, `resolved "url"` and
// `integrity …`.
func (r lockResolver) parseYarnV1(b []byte) ([]installed, error) {
	var out []installed
	type entry struct {
		name, spec, version, resolved, integrity string
	}
	var cur *entry
	finish := func() {
		if cur == nil {
			return
		}
		pk := installed{Name: cur.name, Version: cur.version}
		rng := specRange(cur.spec)
		resolved, integrity := cur.resolved, cur.integrity
		if resolved == "" && (isGitSpec(rng) || strings.HasPrefix(rng, "file:") || strings.HasPrefix(rng, "link:")) {
			resolved = rng // yarn v1 records no resolved for directories and links
		}
		if (strings.HasPrefix(resolved, "http://") || strings.HasPrefix(resolved, "https://")) && !isGitSpec(resolved) {
			// yarn v1 appends #<sha1> to tarball URLs.
			u, frag, _ := strings.Cut(resolved, "#")
			resolved = u
			if integrity == "" && frag != "" {
				integrity = "sha1:" + frag
			}
		}
		out = append(out, r.resolve(pk, resolved, integrity, r.lockDir))
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line[0] != ' ' {
			finish()
			if !strings.HasSuffix(line, ":") {
				return nil, fmt.Errorf("unexpected line %q", truncate(line, 80))
			}
			first, _, _ := strings.Cut(strings.TrimSuffix(line, ":"), ",")
			first = strings.Trim(strings.TrimSpace(first), `"`)
			cur = &entry{name: specName(first), spec: first}
			continue
		}
		if cur == nil {
			continue
		}
		t := strings.TrimSpace(line)
		if strings.HasPrefix(line, "    ") {
			continue // a dependency list
		}
		if v, ok := strings.CutPrefix(t, "version "); ok {
			cur.version = strings.Trim(v, `"`)
		} else if v, ok := strings.CutPrefix(t, "resolved "); ok {
			cur.resolved = strings.Trim(v, `"`)
		} else if v, ok := strings.CutPrefix(t, "integrity "); ok {
			cur.integrity = strings.Trim(v, `"`)
		}
	}
	finish()
	return out, sc.Err()
}

// parseYarnBerry reads yarn 2+ lockfiles (YAML with __metadata). Keys are
// descriptors ("alias@npm:real@^1"); "resolution" is the locator.
func (r lockResolver) parseYarnBerry(b []byte) ([]installed, error) {
	var doc map[string]struct {
		Version    string `yaml:"version"`
		Resolution string `yaml:"resolution"`
		Checksum   string `yaml:"checksum"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []installed
	for key, e := range doc {
		if key == "__metadata" {
			continue
		}
		first, _, _ := strings.Cut(key, ",")
		name := specName(first)
		res := e.Resolution
		resName := specName(res)
		ref := strings.TrimPrefix(res[len(resName):], "@")
		pk := installed{Name: name, Version: e.Version}
		scheme, rest, _ := strings.Cut(ref, ":")
		switch {
		case res == "":
			continue
		case scheme == "npm":
			pk.Origin = originRegistry
			if resName != name {
				pk.RegistryName = resName
			}
		case scheme == "patch":
			// A patched registry package; the patch lives in .yarn/patches
			// and is a native input of its own.
			pk.Origin = originRegistry
			if inner, err := url.QueryUnescape(strings.SplitN(rest, "#", 2)[0]); err == nil {
				if n := specName(inner); n != "" && n != name {
					pk.RegistryName = n
				}
				if in := strings.TrimPrefix(inner[len(specName(inner)):], "@"); strings.HasPrefix(in, "npm:") {
					pk.Version = strings.TrimPrefix(in, "npm:")
				}
			}
		case scheme == "workspace", scheme == "link", scheme == "portal", scheme == "file":
			loc, _, _ := strings.Cut(rest, "::")
			loc = strings.SplitN(loc, "#", 2)[0]
			if loc == "." && scheme == "workspace" {
				continue // the project itself
			}
			r.local(&pk, scheme, loc, "", r.lockDir)
			if scheme == "file" && pk.Origin == originLocal && e.Checksum != "" {
				// yarn hashes a file: directory's contents into the locator.
				pk.Resolved += "@" + e.Checksum
			}
		case isGitSpec(ref) || strings.Contains(ref, "#commit="):
			pk = r.resolve(pk, ref, "", r.lockDir)
		case strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://"):
			pk = r.resolve(pk, ref, e.Checksum, r.lockDir)
		default:
			pk.Origin = originUnknown
			pk.Resolved = ref
			pk.Unpinned = "yarn resolution " + res + " is of a kind this reader does not know"
		}
		out = append(out, pk)
	}
	return out, nil
}

type pnpmResolution struct {
	Integrity string `yaml:"integrity"`
	Tarball   string `yaml:"tarball"`
	Type      string `yaml:"type"`
	Repo      string `yaml:"repo"`
	Commit    string `yaml:"commit"`
	Directory string `yaml:"directory"`
}

// parsePNPMLock reads pnpm lockfiles v5 ("/name/1.0.0"), v6
// ("/name@1.0.0(peer@2)") and v9 ("name@1.0.0"), and the link: versions
// of its importers.
func (r lockResolver) parsePNPMLock(b []byte) ([]installed, error) {
	type depRef struct {
		Version string `yaml:"version"`
	}
	var doc struct {
		LockfileVersion any `yaml:"lockfileVersion"`
		Packages        map[string]struct {
			Resolution pnpmResolution `yaml:"resolution"`
			Name       string         `yaml:"name"`
			Version    string         `yaml:"version"`
		} `yaml:"packages"`
		Importers map[string]map[string]yaml.Node `yaml:"importers"`
		// v5 single-project lockfiles keep the importer at the top.
		Dependencies         map[string]yaml.Node `yaml:"dependencies"`
		DevDependencies      map[string]yaml.Node `yaml:"devDependencies"`
		OptionalDependencies map[string]yaml.Node `yaml:"optionalDependencies"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []installed
	for key, p := range doc.Packages {
		k := strings.TrimPrefix(key, "/")
		name, ver := p.Name, p.Version
		if name == "" {
			kk := k
			if i := strings.Index(kk, "("); i > 0 && !strings.Contains(kk[:i], "://") {
				kk = kk[:i]
			}
			if j := strings.Index(kk[min(1, len(kk)):], "@"); j >= 0 {
				name, ver = kk[:j+1], kk[j+2:]
			} else if j := strings.LastIndex(kk, "/"); j > 0 { // v5: /name/1.0.0
				name, ver = kk[:j], kk[j+1:]
			}
			if p.Version != "" {
				ver = p.Version
			}
		}
		pk := installed{Name: name, Version: ver}
		res := p.Resolution
		switch {
		case res.Type == "git" || res.Repo != "":
			pk = r.resolve(pk, "git+"+strings.TrimPrefix(res.Repo, "git+")+"#"+res.Commit, "", r.lockDir)
		case res.Type == "directory" || res.Directory != "":
			r.local(&pk, "file", res.Directory, "", r.lockDir)
		case res.Tarball != "":
			pk = r.resolve(pk, res.Tarball, res.Integrity, r.lockDir)
		default:
			pk.Origin = originRegistry
			if strings.Contains(ver, ":") || strings.Contains(ver, "/") {
				// a non-registry key without a resolution this reader knows
				pk.Origin, pk.Resolved = originUnknown, key
				pk.Unpinned = "pnpm package " + key + " has no resolution this reader knows"
			}
		}
		out = append(out, pk)
	}
	// link: dependencies appear only in importers.
	links := func(importer string, deps map[string]yaml.Node) {
		for name, n := range deps {
			v := n.Value
			if n.Kind == yaml.MappingNode {
				var d depRef
				if n.Decode(&d) == nil {
					v = d.Version
				}
			}
			if rel, ok := strings.CutPrefix(v, "link:"); ok {
				base, _ := r.localPath(r.lockDir, importer)
				pk := installed{Name: name, Version: "0.0.0-local"}
				r.local(&pk, "link", rel, "", base)
				out = append(out, pk)
			}
		}
	}
	for importer, sections := range doc.Importers {
		for _, section := range []string{"dependencies", "devDependencies", "optionalDependencies"} {
			n, ok := sections[section]
			if !ok {
				continue
			}
			var deps map[string]yaml.Node
			if err := n.Decode(&deps); err != nil {
				return nil, fmt.Errorf("importers[%q].%s: %w", importer, section, err)
			}
			links(importer, deps)
		}
	}
	links(".", doc.Dependencies)
	links(".", doc.DevDependencies)
	links(".", doc.OptionalDependencies)
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
