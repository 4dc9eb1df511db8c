package nativecheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
)

// Algorithm names the fingerprint rules. Store it with every fingerprint:
// fingerprints computed by different algorithms never compare equal.
const Algorithm = "releasepilot-native/1"

// ErrIncomplete means the repository data was incomplete (a truncated tree),
// so no fingerprint can be trusted. Callers must treat it as native.
var ErrIncomplete = errors.New("nativecheck: repository data incomplete")

// Fingerprint is the native fingerprint of one commit for one platform,
// with the inputs it was computed from so that two can be explained.
// Equal Hash means the same native inputs.
type Fingerprint struct {
	Algorithm string         `json:"algorithm"`
	Platform  Platform       `json:"platform"`
	Commit    string         `json:"commit"`
	Hash      string         `json:"hash"`
	Files     []FileInput    `json:"files"`
	Packages  []PackageInput `json:"packages"`
	Config    []ConfigInput  `json:"config"`
}

// FileInput is a native-affecting file. Digest is the git blob sha, or
// "sha256:<hex>" of the normalised content for files whose version fields or
// checksum lines are normalised out. A patch-package patch appears as
// "patches/<package>" so that renaming it for a new package version does not
// count as a change.
type FileInput struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Reason string `json:"reason"`
}

// PackageInput is an installed npm package that ships native code for the
// platform, at its lockfile-resolved version. Unresolved means it could not
// be inspected and counts as native to fail closed; Reason says why.
type PackageInput struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Reason     string `json:"reason"`
	Unresolved bool   `json:"unresolved,omitempty"`
}

// ConfigInput is a native-relevant app config field; Value is canonical JSON.
type ConfigInput struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// PackageNative says for which platforms a package ships native code.
type PackageNative struct {
	IOS      bool
	Android  bool
	Evidence string // e.g. "RNFoo.podspec, android/"
}

// Inspector decides whether an npm package version ships native code. An
// error means it could not tell; the package then counts as native.
// [Registry] is the npm registry implementation.
type Inspector interface {
	Inspect(ctx context.Context, name, version string) (PackageNative, error)
}

// Fingerprinter computes fingerprints. Packages may be nil, in which case
// every installed package that is not forced by Rules counts as native
// (fail closed). It is safe for concurrent use once configured.
type Fingerprinter struct {
	Rules    Rules
	Packages Inspector
	// Concurrency bounds parallel file reads and package inspections
	// (default 8).
	Concurrency int
}

type nativeFile struct {
	path   string // repository-relative
	rel    string // relative to the app root
	sha    string
	kind   fileKind
	pl     platforms
	reason string
}

// Fingerprint computes the fingerprint of commit for every platform.
// It returns ErrIncomplete (wrapped) when the tree is truncated, and an error
// when a file cannot be read or a native file cannot be parsed: a caller must
// never treat a failure as "JS-only".
func (f *Fingerprinter) Fingerprint(ctx context.Context, src Source, commit string) (map[Platform]Fingerprint, error) {
	if err := f.Rules.Validate(); err != nil {
		return nil, err
	}
	entries, truncated, err := src.Tree(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("nativecheck: read tree of %s: %w", commit, err)
	}
	if truncated {
		return nil, fmt.Errorf("%w: tree of %s is truncated", ErrIncomplete, commit)
	}
	root := f.Rules.root()
	byPath := make(map[string]Entry, 64)
	var files []nativeFile
	var lockCandidates []Entry
	for _, e := range entries {
		if e.Type == "tree" {
			continue
		}
		if isLockfile(e.Path, root) {
			lockCandidates = append(lockCandidates, e)
		}
		if !strings.HasPrefix(e.Path, root) {
			continue
		}
		rel := e.Path[len(root):]
		if f.ignored(rel) {
			continue
		}
		pl, kind, reason := classifyPath(rel)
		if pl == 0 && len(f.Rules.NativeGlobs) > 0 && matchAny(f.Rules.NativeGlobs, rel) {
			pl, kind, reason = onBoth, kindBlob, "native by rules"
		}
		if pl == 0 {
			continue
		}
		byPath[rel] = e
		files = append(files, nativeFile{path: e.Path, rel: rel, sha: e.SHA, kind: kind, pl: pl, reason: reason})
	}
	files = append(files, f.localNativePackages(entries, root)...)

	// Read every file whose digest needs its content, once, concurrently.
	var toRead []string
	for _, nf := range files {
		if nf.kind != kindBlob || nf.rel == "react-native.config.js" {
			toRead = append(toRead, nf.path)
		}
	}
	lock := pickLockfile(lockCandidates, root)
	if lock != "" {
		toRead = append(toRead, lock)
	}
	contents, err := f.readAll(ctx, src, commit, toRead)
	if err != nil {
		return nil, err
	}

	b := &builder{commit: commit, out: map[Platform]*Fingerprint{}}
	for _, p := range Platforms {
		b.out[p] = &Fingerprint{Algorithm: Algorithm, Platform: p, Commit: commit}
	}
	var pkgJSON *packageJSON
	for _, nf := range files {
		data := contents[nf.path]
		switch nf.kind {
		case kindBlob:
			b.file(nf.pl, nf.path, nf.sha, nf.reason)
		case kindPlist:
			b.file(nf.pl, nf.path, contentDigest(normalizePlist(data)), nf.reason+" (version keys ignored)")
		case kindPbxproj:
			b.file(nf.pl, nf.path, contentDigest(normalizePbxproj(data)), nf.reason+" (version settings ignored)")
		case kindGradle:
			b.file(nf.pl, nf.path, contentDigest(normalizeGradle(data)), nf.reason+" (versionCode/versionName ignored)")
		case kindGradleProps:
			b.file(nf.pl, nf.path, contentDigest(normalizeGradleProperties(data)), nf.reason+" (version properties ignored)")
		case kindPodLock:
			b.file(nf.pl, nf.path, contentDigest(normalizePodLock(data)), nf.reason+" (pod entries)")
		case kindPatch:
			for _, p := range Platforms {
				in := parsePatch(nf.rel, data, p)
				if len(in.files) > 0 {
					b.patch(p, in, nf.path)
				}
			}
		case kindAppConfig:
			fields, refs, err := appConfigFields(nf.path, data)
			if err != nil {
				return nil, err
			}
			for _, fl := range fields {
				b.config(fl.pl, nf.rel+":"+fl.key, fl.value)
			}
			for _, ref := range refs {
				if e, ok := byPathOrTree(byPath, entries, root, ref); ok && !f.ignored(ref) {
					b.file(refPlatforms(fields, ref), e.Path, e.SHA, "referenced by "+nf.rel)
				}
			}
		case kindPackageJSON:
			var pj packageJSON
			if err := json.Unmarshal(data, &pj); err != nil {
				return nil, fmt.Errorf("nativecheck: parse %s: %w", nf.path, err)
			}
			pkgJSON = &pj
			if len(pj.CodegenConfig) > 0 {
				b.config(onBoth, "package.json:codegenConfig", compactJSON(pj.CodegenConfig))
			}
			for _, s := range []string{"postinstall", "prepare"} {
				if v, ok := pj.Scripts[s]; ok {
					enc, _ := json.Marshal(v)
					b.config(onBoth, "package.json:scripts."+s, string(enc))
				}
			}
		}
		if nf.rel == "react-native.config.js" {
			for _, dir := range rnConfigAssets(data) {
				for _, e := range entries {
					if e.Type != "tree" && strings.HasPrefix(e.Path, root+dir+"/") && !f.ignored(e.Path[len(root):]) {
						b.file(onBoth, e.Path, e.SHA, "asset linked by react-native.config.js")
					}
				}
			}
		}
	}

	pkgs, err := f.installedPackages(pkgJSON, lock, contents[lock])
	if err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		if p.Name == "react-native-config" {
			for _, e := range entries {
				if rel, ok := strings.CutPrefix(e.Path, root); ok && e.Type != "tree" && !strings.Contains(rel, "/") && strings.HasPrefix(rel, ".env") && !f.ignored(rel) {
					b.file(onBoth, e.Path, e.SHA, ".env read natively by react-native-config")
				}
			}
		}
	}
	if err := f.classifyPackages(ctx, pkgs, b); err != nil {
		return nil, err
	}

	res := make(map[Platform]Fingerprint, len(Platforms))
	for p, fp := range b.out {
		fp.finish()
		res[p] = *fp
	}
	return res, nil
}

func compactJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	enc, _ := json.Marshal(v) // map keys sorted
	return string(enc)
}

// localNativePackages finds native packages that live in the repository
// itself (monorepo workspaces, local modules) anywhere outside the app root:
// a directory with a package.json and a *.podspec, expo-module.config.json
// or android/build.gradle(.kts). Lockfiles do not always list workspaces
// (yarn v1, pnpm), so the tree is the only reliable source. Their native
// sources are inputs of the app's fingerprint; a native library the app does
// not use can only cause a false "native" (fail closed).
func (f *Fingerprinter) localNativePackages(entries []Entry, root string) []nativeFile {
	hasPkgJSON := map[string]bool{}
	marker := map[string]bool{}
	for _, e := range entries {
		p := e.Path
		// Cheap suffix test first: this loop sees every entry of the tree.
		if e.Type == "tree" || !(strings.HasSuffix(p, "package.json") || strings.HasSuffix(p, ".podspec") ||
			strings.HasSuffix(p, "expo-module.config.json") || strings.HasSuffix(p, ".gradle") || strings.HasSuffix(p, ".gradle.kts")) ||
			strings.Contains(p, "node_modules/") {
			continue
		}
		dir, base := path.Split(p)
		switch {
		case base == "package.json":
			hasPkgJSON[dir] = true
		case strings.HasSuffix(base, ".podspec"), base == "expo-module.config.json":
			marker[dir] = true
		case base == "build.gradle" || base == "build.gradle.kts":
			if d, ok := strings.CutSuffix(dir, "android/"); ok {
				marker[d] = true
			}
		}
	}
	var pkgDirs []string
	for d := range marker {
		if hasPkgJSON[d] && d != root && !strings.HasPrefix(d, root+"ios/") && !strings.HasPrefix(d, root+"android/") {
			pkgDirs = append(pkgDirs, d)
		}
	}
	if len(pkgDirs) == 0 {
		return nil
	}
	sort.Strings(pkgDirs)
	var out []nativeFile
	for _, e := range entries {
		if e.Type == "tree" {
			continue
		}
		for _, d := range pkgDirs {
			rel, ok := strings.CutPrefix(e.Path, d)
			if !ok {
				continue
			}
			pl := localPackageFile(rel)
			if pl != 0 && !f.ignored(strings.TrimPrefix(e.Path, root)) {
				out = append(out, nativeFile{path: e.Path, rel: e.Path, sha: e.SHA, kind: kindBlob, pl: pl,
					reason: "native source of local package " + strings.TrimSuffix(d, "/")})
			}
			break
		}
	}
	return out
}

// localPackageFile classifies a path inside a local package.
func localPackageFile(rel string) platforms {
	first, rest, nested := strings.Cut(rel, "/")
	switch {
	case !nested && strings.HasSuffix(rel, ".podspec"):
		return onIOS
	case !nested && (rel == "expo-module.config.json" || strings.HasPrefix(rel, "react-native.config.")):
		return onBoth
	case first == "ios" || first == "apple":
		if iosBuildOutput(rest) {
			return 0
		}
		return onIOS
	case first == "android":
		if androidBuildOutput(rest) {
			return 0
		}
		return onAndroid
	case first == "cpp" || first == "common":
		return onBoth
	}
	return 0
}

func (f *Fingerprinter) ignored(rel string) bool {
	return len(f.Rules.IgnoredGlobs) > 0 && matchAny(f.Rules.IgnoredGlobs, rel)
}

func byPathOrTree(byPath map[string]Entry, entries []Entry, root, rel string) (Entry, bool) {
	if e, ok := byPath[rel]; ok {
		return e, true
	}
	for _, e := range entries {
		if e.Type != "tree" && e.Path == root+rel {
			return e, true
		}
	}
	return Entry{}, false
}

// refPlatforms gives a referenced file the platforms of the fields naming it.
func refPlatforms(fields []configField, ref string) platforms {
	var pl platforms
	for _, f := range fields {
		if strings.Contains(f.value, ref) {
			pl |= f.pl
		}
	}
	if pl == 0 {
		return onBoth
	}
	return pl
}

func isLockfile(p, root string) bool {
	dir, base := path.Split(p)
	for _, n := range lockfileNames {
		if base == n {
			return strings.HasPrefix(root, dir)
		}
	}
	return false
}

// pickLockfile prefers the lockfile nearest to the app root, then the order
// of lockfileNames.
func pickLockfile(cands []Entry, root string) string {
	best, bestDepth, bestRank := "", -1, 0
	for _, e := range cands {
		dir, base := path.Split(e.Path)
		depth := strings.Count(dir, "/")
		rank := 0
		for i, n := range lockfileNames {
			if n == base {
				rank = i
			}
		}
		if depth > bestDepth || (depth == bestDepth && rank < bestRank) {
			best, bestDepth, bestRank = e.Path, depth, rank
		}
	}
	_ = root
	return best
}

func (f *Fingerprinter) concurrency() int {
	if f.Concurrency > 0 {
		return f.Concurrency
	}
	return 8
}

func (f *Fingerprinter) readAll(ctx context.Context, src Source, commit string, paths []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(paths))
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	sem := make(chan struct{}, f.concurrency())
	for _, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, err := src.ReadFile(ctx, commit, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("nativecheck: read %s at %s: %w", p, commit, err)
				}
				return
			}
			out[p] = b
		}()
	}
	wg.Wait()
	return out, firstErr
}

// installedPackages lists what the lockfile installs. Without a lockfile,
// package.json's direct dependencies are used with their ranges as versions,
// and each is unresolvable (so native) unless forced.
func (f *Fingerprinter) installedPackages(pj *packageJSON, lock string, data []byte) ([]installed, error) {
	if lock != "" {
		pkgs, err := parseLockfile(path.Base(lock), data)
		if err != nil {
			return nil, err
		}
		return pkgs, nil
	}
	if pj == nil {
		return nil, nil
	}
	var out []installed
	for name, rng := range pj.direct() {
		out = append(out, installed{Name: name, Version: rng, Origin: "unknown"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out, nil
}

func (f *Fingerprinter) classifyPackages(ctx context.Context, pkgs []installed, b *builder) error {
	type result struct {
		pn     PackageNative
		reason string
		unres  bool
	}
	results := make([]result, len(pkgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, f.concurrency())
	for i, p := range pkgs {
		if native, ok, why := f.Rules.forced(p.Name); ok {
			results[i] = result{pn: PackageNative{IOS: native, Android: native}, reason: why}
			continue
		}
		switch p.Origin {
		case "git":
			results[i] = result{pn: PackageNative{IOS: true, Android: true}, reason: "resolved from git; cannot be inspected, counted as native", unres: true}
			continue
		case "local":
			results[i] = result{pn: PackageNative{IOS: true, Android: true}, reason: "local or workspace package; not inspected, counted as native", unres: true}
			continue
		case "unknown":
			results[i] = result{pn: PackageNative{IOS: true, Android: true}, reason: "no resolved version (no lockfile entry); counted as native", unres: true}
			continue
		}
		if f.Packages == nil {
			results[i] = result{pn: PackageNative{IOS: true, Android: true}, reason: "no package registry configured; counted as native", unres: true}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pn, err := f.Packages.Inspect(ctx, p.Name, p.Version)
			if err != nil {
				results[i] = result{pn: PackageNative{IOS: true, Android: true}, reason: "cannot inspect (" + err.Error() + "); counted as native", unres: true}
				return
			}
			results[i] = result{pn: pn, reason: "ships native code: " + pn.Evidence}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, p := range pkgs {
		r := results[i]
		for _, pl := range Platforms {
			if (pl == IOS && r.pn.IOS) || (pl == Android && r.pn.Android) {
				b.out[pl].Packages = append(b.out[pl].Packages, PackageInput{Name: p.Name, Version: p.Version, Reason: r.reason, Unresolved: r.unres})
			}
		}
	}
	return nil
}

type builder struct {
	commit string
	out    map[Platform]*Fingerprint
}

func (b *builder) file(pl platforms, p, digest, reason string) {
	for _, plat := range Platforms {
		if pl.has(plat) {
			b.out[plat].Files = append(b.out[plat].Files, FileInput{Path: p, Digest: digest, Reason: reason})
		}
	}
}

func (b *builder) config(pl platforms, key, value string) {
	for _, plat := range Platforms {
		if pl.has(plat) {
			b.out[plat].Config = append(b.out[plat].Config, ConfigInput{Key: key, Value: value})
		}
	}
}

func (b *builder) patch(p Platform, in patchInput, file string) {
	fp := b.out[p]
	key := "patches/" + in.pkg
	for i := range fp.Files {
		if fp.Files[i].Path == key { // several patches for one package
			fp.Files[i].Digest = contentDigest([]byte(fp.Files[i].Digest + "\n" + contentDigest(in.body)))
			fp.Files[i].Reason += "; " + file
			return
		}
	}
	fp.Files = append(fp.Files, FileInput{
		Path:   key,
		Digest: contentDigest(in.body),
		Reason: "patch " + path.Base(file) + " changes native sources: " + strings.Join(in.files, ", "),
	})
}

// finish sorts and deduplicates the inputs and computes the hash.
func (fp *Fingerprint) finish() {
	sort.SliceStable(fp.Files, func(i, j int) bool { return fp.Files[i].Path < fp.Files[j].Path })
	fp.Files = dedupe(fp.Files, func(a, b FileInput) bool { return a.Path == b.Path })
	sort.Slice(fp.Packages, func(i, j int) bool {
		if fp.Packages[i].Name != fp.Packages[j].Name {
			return fp.Packages[i].Name < fp.Packages[j].Name
		}
		return fp.Packages[i].Version < fp.Packages[j].Version
	})
	sort.Slice(fp.Config, func(i, j int) bool { return fp.Config[i].Key < fp.Config[j].Key })
	fp.Hash = fp.computeHash()
}

func dedupe[T any](s []T, eq func(a, b T) bool) []T {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, v := range s[1:] {
		if !eq(out[len(out)-1], v) {
			out = append(out, v)
		}
	}
	return out
}

// computeHash covers the algorithm, platform, and every input, but not the
// commit or the human reasons: equal inputs mean equal hashes.
func (fp *Fingerprint) computeHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", fp.Algorithm, fp.Platform)
	for _, f := range fp.Files {
		fmt.Fprintf(h, "file\x00%s\x00%s\n", f.Path, f.Digest)
	}
	for _, p := range fp.Packages {
		fmt.Fprintf(h, "package\x00%s@%s\n", p.Name, p.Version)
	}
	for _, c := range fp.Config {
		fmt.Fprintf(h, "config\x00%s\x00%s\n", c.Key, c.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Verify reports whether fp.Hash matches its inputs, for a fingerprint read
// back from storage.
func (fp Fingerprint) Verify() bool { return fp.Hash != "" && fp.computeHash() == fp.Hash }
