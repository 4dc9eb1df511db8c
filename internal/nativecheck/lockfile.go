package nativecheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lockfileNames are looked up in the app root, then in each parent directory.
var lockfileNames = []string{"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"}

// installed is one package at the version a lockfile resolves it to.
type installed struct {
	Name    string
	Version string
	// Origin is "registry", "git", "local" (file:, link:, workspace:) or
	// "unknown".
	Origin string
}

func (p installed) key() string { return p.Name + "@" + p.Version }

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

func originOf(resolved, version string) string {
	s := resolved + " " + version
	switch {
	case strings.Contains(s, "git+"), strings.Contains(s, "git://"), strings.Contains(s, "github:"),
		strings.Contains(s, "codeload.github.com"), strings.Contains(s, ".git#"), strings.Contains(s, "@git"):
		return "git"
	case strings.HasPrefix(version, "file:"), strings.HasPrefix(version, "link:"), strings.HasPrefix(version, "workspace:"),
		strings.HasPrefix(resolved, "file:"), strings.HasPrefix(resolved, "link:"), strings.HasPrefix(resolved, "workspace:"):
		return "local"
	}
	return "registry"
}

// parseLockfile returns every package a lockfile installs, sorted and
// deduplicated by name@version.
func parseLockfile(name string, b []byte) ([]installed, error) {
	var (
		pkgs []installed
		err  error
	)
	switch name {
	case "package-lock.json", "npm-shrinkwrap.json":
		pkgs, err = parseNPMLock(b)
	case "yarn.lock":
		if bytes.Contains(b, []byte("\n__metadata:")) || bytes.HasPrefix(b, []byte("__metadata:")) {
			pkgs, err = parseYarnBerry(b)
		} else {
			pkgs, err = parseYarnV1(b)
		}
	case "pnpm-lock.yaml":
		pkgs, err = parsePNPMLock(b)
	default:
		return nil, fmt.Errorf("nativecheck: unknown lockfile %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("nativecheck: parse %s: %w", name, err)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].key() < pkgs[j].key() })
	out := pkgs[:0]
	for i, p := range pkgs {
		if p.Name == "" || p.Version == "" || (i > 0 && p.key() == pkgs[i-1].key()) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// parseNPMLock reads lockfileVersion 2 and 3 ("packages", keyed by
// install path) and falls back to version 1's nested "dependencies".
func parseNPMLock(b []byte) ([]installed, error) {
	type v1dep struct {
		Version      string                     `json:"version"`
		Resolved     string                     `json:"resolved"`
		Dependencies map[string]json.RawMessage `json:"dependencies"`
	}
	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Name     string `json:"name"`
			Version  string `json:"version"`
			Resolved string `json:"resolved"`
			Link     bool   `json:"link"`
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
				continue // the root project or a workspace folder
			}
			name := key[i+len("node_modules/"):]
			if p.Name != "" {
				name = p.Name
			}
			ver, origin := p.Version, originOf(p.Resolved, p.Version)
			if p.Link {
				ver, origin = "link:"+p.Resolved, "local"
			}
			out = append(out, installed{Name: name, Version: ver, Origin: origin})
		}
		return out, nil
	}
	var walk func(map[string]json.RawMessage) error
	walk = func(deps map[string]json.RawMessage) error {
		for name, raw := range deps {
			var d v1dep
			if err := json.Unmarshal(raw, &d); err != nil {
				return err
			}
			out = append(out, installed{Name: name, Version: d.Version, Origin: originOf(d.Resolved, d.Version)})
			if err := walk(d.Dependencies); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(lock.Dependencies)
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

// parseYarnV1 reads the yarn v1 lockfile format: unindented specifier lines
// ending in ':' followed by indented `version "x"` and `resolved "url"`.
func parseYarnV1(b []byte) ([]installed, error) {
	var out []installed
	var cur *installed
	var resolved string
	finish := func() {
		if cur != nil {
			cur.Origin = originOf(resolved, cur.Version)
			out = append(out, *cur)
		}
		cur, resolved = nil, ""
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
			cur = &installed{Name: specName(first)}
			if spec := strings.Trim(strings.TrimSpace(first), `"`); strings.Contains(spec, "@github:") || strings.Contains(spec, "@git+") {
				resolved = spec
			}
			continue
		}
		if cur == nil {
			continue
		}
		t := strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(t, "version "); ok {
			cur.Version = strings.Trim(v, `"`)
		} else if v, ok := strings.CutPrefix(t, "resolved "); ok {
			resolved += " " + strings.Trim(v, `"`)
		}
	}
	finish()
	return out, sc.Err()
}

func parseYarnBerry(b []byte) ([]installed, error) {
	var doc map[string]struct {
		Version    string `yaml:"version"`
		Resolution string `yaml:"resolution"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []installed
	for key, e := range doc {
		if key == "__metadata" {
			continue
		}
		res := e.Resolution
		name := specName(res)
		origin := "registry"
		switch {
		case strings.Contains(res, "@workspace:"), strings.Contains(res, "@link:"), strings.Contains(res, "@portal:"), strings.Contains(res, "@file:"):
			origin = "local"
		case strings.Contains(res, "@npm:"):
		case strings.Contains(res, "@patch:"):
			// a patched registry package; the patch itself lives in .yarn/patches
		default:
			origin = originOf(res, e.Version)
			if origin == "registry" {
				origin = "unknown"
			}
		}
		if origin == "local" {
			out = append(out, installed{Name: name, Version: "local:" + res, Origin: origin})
			continue
		}
		out = append(out, installed{Name: name, Version: e.Version, Origin: origin})
	}
	return out, nil
}

// parsePNPMLock reads pnpm lockfile v6 ("/name@1.0.0(peer@2)") and v9
// ("name@1.0.0") package keys, and v5 ("/name/1.0.0").
func parsePNPMLock(b []byte) ([]installed, error) {
	var doc struct {
		Packages map[string]struct {
			Resolution struct {
				Tarball string `yaml:"tarball"`
				Repo    string `yaml:"repo"`
			} `yaml:"resolution"`
			Version string `yaml:"version"`
		} `yaml:"packages"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []installed
	for key, p := range doc.Packages {
		k := strings.TrimPrefix(key, "/")
		if i := strings.Index(k, "("); i >= 0 {
			k = k[:i]
		}
		var name, ver string
		if j := strings.LastIndex(k, "@"); j > 0 {
			name, ver = k[:j], k[j+1:]
		} else if j := strings.LastIndex(k, "/"); j > 0 { // v5
			name, ver = k[:j], k[j+1:]
		}
		if p.Version != "" {
			ver = p.Version
		}
		origin := originOf(p.Resolution.Tarball+p.Resolution.Repo, ver)
		if p.Resolution.Repo != "" {
			origin = "git"
		}
		out = append(out, installed{Name: name, Version: ver, Origin: origin})
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
