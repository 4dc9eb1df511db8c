package nativecheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Algorithm names the fingerprint rules. Store it with every fingerprint:
// fingerprints computed by different algorithms never compare equal.
//
// Version 2 judges dependencies as autolinking does, keys non-registry
// dependencies by what they resolve to, fingerprints local packages'
// native files, and counts a changed PODFILE CHECKSUM as native.
const Algorithm = "releasepilot-native/2"

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
// platform, at its lockfile-resolved version. Resolved is what a package
// from outside the registry resolves to (a git commit, a tarball's
// integrity, a directory of the repository); it is part of the identity,
// so moving a git dependency to another commit at the same version is a
// change. Unresolved means it could not be inspected and counts as native
// to fail closed; Reason says why.
type PackageInput struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Resolved   string `json:"resolved,omitempty"`
	Reason     string `json:"reason"`
	Unresolved bool   `json:"unresolved,omitempty"`
}

// ident is the package's identity in a fingerprint.
func (p PackageInput) ident() string {
	if p.Resolved == "" {
		return p.Version
	}
	return p.Version + " (" + p.Resolved + ")"
}

// ConfigInput is a native-relevant app config field; Value is canonical JSON.
// Reason, when set, says why the field is native (it is not hashed).
type ConfigInput struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Reason string `json:"reason,omitempty"`
}

// PackageNative says for which platforms a package ships native code an
// app links, and why.
type PackageNative struct {
	IOS     bool `json:"ios"`
	Android bool `json:"android"`
	// Evidence sums up what links the package (both platforms).
	Evidence        string `json:"evidence,omitempty"`
	IOSEvidence     string `json:"ios_evidence,omitempty"`
	AndroidEvidence string `json:"android_evidence,omitempty"`
}

func (pn PackageNative) on(pl Platform) (bool, string) {
	if pl == IOS {
		return pn.IOS, orDesc(pn.IOSEvidence, pn.Evidence)
	}
	return pn.Android, orDesc(pn.AndroidEvidence, pn.Evidence)
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

// maxLocalTarball bounds a tarball read from the repository (file:x.tgz).
const maxLocalTarball = 64 << 20

// Fingerprint computes the fingerprint of commit for every platform.
// It returns ErrIncomplete (wrapped) when the tree is truncated, and an error
// when a file cannot be read or a native file cannot be parsed: a caller must
// never treat a failure as "JS-only". What can be read but not understood
// (a lockfile, a package's react-native.config.js, an unreachable registry)
// counts as native, with the reason in the inputs.
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
	appFiles := map[string]Entry{} // the app's own linking files, by app-relative path
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
		switch rel {
		case "ios/Podfile", "android/settings.gradle", "android/settings.gradle.kts", "android/app/build.gradle", "android/app/build.gradle.kts":
			appFiles[rel] = e
		default:
			if isRNConfigName(rel) {
				appFiles[rel] = e
			}
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

	// Read every file whose digest needs its content, once, concurrently.
	var toRead []string
	for _, nf := range files {
		if nf.kind != kindBlob {
			toRead = append(toRead, nf.path)
		}
	}
	for _, e := range appFiles {
		toRead = append(toRead, e.Path)
	}
	lockEntry := pickLockfile(lockCandidates)
	lock := lockEntry.Path
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
			// The Podfile's checksum changes when the Podfile does, even
			// where no pod moves: fail closed.
			if sum := podfileChecksum(data); sum != "" {
				b.configWhy(onIOS, nf.rel+":PODFILE CHECKSUM", strconv.Quote(sum), "the Podfile changed; counted as native on iOS")
			}
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
	}

	app := f.readApp(root, appFiles, contents)
	for _, dir := range app.assetDirs {
		for _, e := range entries {
			if e.Type != "tree" && strings.HasPrefix(e.Path, root+dir+"/") && !f.ignored(e.Path[len(root):]) {
				b.file(onBoth, e.Path, e.SHA, "asset linked by "+app.cfgName)
			}
		}
	}

	pkgs, lockErr := f.installedPackages(pkgJSON, lockEntry, contents[lock])
	if lockErr != nil {
		// Fail closed: the dependencies are unknown, so the lockfile itself
		// is the input (any change to it is native) and every direct
		// dependency counts as native.
		b.file(onBoth, lock, lockEntry.SHA, "lockfile cannot be parsed ("+lockErr.Error()+"); its dependencies are unknown, so any change to it counts as native")
		pkgs = directUnresolved(pkgJSON, "the lockfile cannot be parsed; counted as native")
	}

	// The app itself appears as a workspace of its own monorepo: it is not
	// a dependency.
	kept := pkgs[:0:0]
	for _, p := range pkgs {
		if p.Origin == originLocal && p.Unpinned == "" && strings.TrimSuffix(p.Path, "/")+"/" == root {
			continue
		}
		kept = append(kept, p)
	}
	pkgs = kept

	// Local packages: directories the lockfile installs from the
	// repository, and native-looking package directories of the tree.
	lockDirs := map[string]bool{}
	for _, p := range pkgs {
		if p.Origin == originLocal && p.Path != "" {
			lockDirs[strings.TrimSuffix(p.Path, "/")+"/"] = true
		}
	}
	locals := collectLocal(entries, localScan(entries, root, lockDirs))
	if err := f.judgeLocal(ctx, src, commit, locals); err != nil {
		return nil, err
	}
	for _, d := range sortedLocal(locals) {
		lp := locals[d]
		for _, pl := range Platforms {
			for _, i := range lp.nativeFiles(pl) {
				full := lp.dir + lp.files[i]
				if f.ignored(strings.TrimPrefix(full, root)) {
					continue
				}
				b.file(onPlatform(pl), full, lp.shas[i], "native source of local package "+strings.TrimSuffix(lp.dir, "/"))
			}
			if native, _ := lp.pn.on(pl); native && lp.j.codegen != "" {
				b.config(onPlatform(pl), lp.dir+"package.json:codegenConfig", lp.j.codegen)
			}
		}
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
	if err := f.classifyPackages(ctx, src, commit, pkgs, locals, entries, app, b); err != nil {
		return nil, err
	}

	res := make(map[Platform]Fingerprint, len(Platforms))
	for p, fp := range b.out {
		fp.finish()
		res[p] = *fp
	}
	return res, nil
}

func onPlatform(pl Platform) platforms {
	if pl == IOS {
		return onIOS
	}
	return onAndroid
}

func sortedLocal(m map[string]*localPackage) []string {
	out := make([]string, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// podfileChecksum returns the PODFILE CHECKSUM of a Podfile.lock.
func podfileChecksum(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PODFILE CHECKSUM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// appLinks is what the app's own files say about linking its dependencies.
type appLinks struct {
	cfg       *rnConfig // the app's react-native.config.*, if any
	cfgName   string
	assetDirs []string
	// byHand maps a package name to the app file that links it by hand
	// (ios/Podfile naming node_modules/<name>, android/settings.gradle
	// including it), per platform.
	byHand map[Platform]map[string]string
}

var nodeModulesRefRE = regexp.MustCompile(`node_modules/((?:@[A-Za-z0-9._~-]+/)?[A-Za-z0-9._~-]+)`)

func (f *Fingerprinter) readApp(root string, appFiles map[string]Entry, contents map[string][]byte) appLinks {
	a := appLinks{byHand: map[Platform]map[string]string{IOS: {}, Android: {}}}
	for _, n := range rnConfigNames {
		if e, ok := appFiles[n]; ok {
			c := readRNConfig(n, contents[e.Path])
			a.cfg, a.cfgName = &c, n
			if dirs, ok := c.assetDirs(); ok {
				a.assetDirs = dirs
			} else {
				// Not understood with certainty: fall back to the common
				// literal form. The file itself is a native input anyway.
				a.assetDirs = rnConfigAssets(contents[e.Path])
			}
			break
		}
	}
	for rel, pl := range map[string]Platform{
		"ios/Podfile": IOS, "android/settings.gradle": Android, "android/settings.gradle.kts": Android,
		"android/app/build.gradle": Android, "android/app/build.gradle.kts": Android,
	} {
		e, ok := appFiles[rel]
		if !ok {
			continue
		}
		for _, m := range nodeModulesRefRE.FindAllSubmatch(contents[e.Path], -1) {
			name := string(m[1])
			if _, seen := a.byHand[pl][name]; !seen {
				a.byHand[pl][name] = root + rel
			}
		}
	}
	return a
}

// judgeLocal reads the config files of each local package and judges it.
func (f *Fingerprinter) judgeLocal(ctx context.Context, src Source, commit string, locals map[string]*localPackage) error {
	var toRead []string
	for _, lp := range locals {
		for _, rel := range lp.files {
			if needContent(rel) {
				toRead = append(toRead, lp.dir+rel)
			}
		}
	}
	contents, err := f.readAll(ctx, src, commit, toRead)
	if err != nil {
		return err
	}
	for _, lp := range locals {
		pf := pkgFiles{paths: lp.files, contents: map[string][]byte{}}
		for _, rel := range lp.files {
			if needContent(rel) {
				pf.contents[rel] = contents[lp.dir+rel]
			}
		}
		lp.j = judgePackage(pf)
		lp.pn = lp.j.native()
		var pj struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(pf.contents["package.json"], &pj) == nil {
			lp.name = pj.Name
		}
		// The app's rules decide over the judgement, as for registry
		// packages: forced JS-only contributes nothing; forced native
		// contributes every file.
		switch {
		case lp.name != "" && matchAny(f.Rules.ForceJSOnly, lp.name):
			lp.pn, lp.j = PackageNative{}, judgement{}
		case lp.name != "" && matchAny(f.Rules.ForceNative, lp.name):
			why := "forced native by rules"
			if !lp.pn.IOS {
				lp.j.ios, lp.j.iosDirs = append(lp.j.ios, why), append(lp.j.iosDirs, ".")
			}
			if !lp.pn.Android {
				lp.j.android, lp.j.androidDirs = append(lp.j.android, why), append(lp.j.androidDirs, ".")
			}
			lp.pn = lp.j.native()
		}
	}
	return nil
}

func compactJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	enc, _ := json.Marshal(v) // map keys sorted
	return string(enc)
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
func pickLockfile(cands []Entry) Entry {
	var best Entry
	bestDepth, bestRank := -1, 0
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
			best, bestDepth, bestRank = e, depth, rank
		}
	}
	return best
}

func (f *Fingerprinter) concurrency() int {
	if f.Concurrency > 0 {
		return f.Concurrency
	}
	return 8
}

func (f *Fingerprinter) readAll(ctx context.Context, src Source, commit string, paths []string) (map[string][]byte, error) {
	sort.Strings(paths)
	paths = slices.Compact(paths) // a file can be wanted for two reasons
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
func (f *Fingerprinter) installedPackages(pj *packageJSON, lock Entry, data []byte) ([]installed, error) {
	if lock.Path != "" {
		dir, base := path.Split(lock.Path)
		return parseLockfile(base, dir, data)
	}
	return directUnresolved(pj, "no resolved version (no lockfile entry); counted as native"), nil
}

// directUnresolved lists package.json's direct dependencies, unresolved.
func directUnresolved(pj *packageJSON, why string) []installed {
	if pj == nil {
		return nil
	}
	var out []installed
	for name, rng := range pj.direct() {
		out = append(out, installed{Name: name, Version: rng, Origin: originUnknown, Unpinned: why})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// verdict is the judgement of one installed package.
type verdict struct {
	pn       PackageNative
	reason   string // for both platforms, when pn's evidence is not the reason
	unres    bool
	resolved string // replaces the lockfile's Resolved (a tarball keyed by its blob)
}

func both(reason string) verdict {
	return verdict{pn: PackageNative{IOS: true, Android: true}, reason: reason, unres: true}
}

func (f *Fingerprinter) classifyPackages(ctx context.Context, src Source, commit string, pkgs []installed,
	locals map[string]*localPackage, entries []Entry, app appLinks, b *builder) error {
	results := make([]verdict, len(pkgs))
	forced := make([]bool, len(pkgs))
	var (
		wg       sync.WaitGroup
		tarballs []int
	)
	sem := make(chan struct{}, f.concurrency())
	for i, p := range pkgs {
		if native, ok, why := f.Rules.forced(p.Name); ok {
			results[i], forced[i] = verdict{pn: PackageNative{IOS: native, Android: native}, reason: why}, true
			continue
		}
		switch {
		case p.Unpinned != "" && p.Origin != originUnknown:
			results[i] = both(p.Unpinned + "; counted as native and as changed by every commit")
		case p.Origin == originGit:
			results[i] = both("resolved from " + p.Resolved + "; not inspected, counted as native")
		case p.Origin == originTarball:
			results[i] = both("resolved from a tarball outside the registry; not inspected, counted as native")
		case p.Origin == originLocal && p.Unpinned == "":
			lp, ok := locals[strings.TrimSuffix(p.Path, "/")+"/"]
			if !ok || len(lp.files) == 0 {
				results[i] = both("local package " + p.Resolved + " is not in the repository tree; counted as native")
				continue
			}
			results[i] = verdict{pn: lp.pn, reason: ""}
		case p.Origin == originLocalTGZ:
			tarballs = append(tarballs, i)
		case p.Origin == originUnknown:
			results[i] = both(orDesc(p.Unpinned, "no resolved version (no lockfile entry); counted as native"))
		case f.Packages == nil:
			results[i] = both("no package registry configured; counted as native")
		default:
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				pn, err := f.Packages.Inspect(ctx, p.registryName(), p.Version)
				if err != nil {
					results[i] = both("cannot inspect (" + err.Error() + "); counted as native")
					return
				}
				results[i] = verdict{pn: pn}
			}()
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, i := range tarballs {
		results[i] = f.judgeLocalTarball(ctx, src, commit, pkgs[i], entries)
	}

	for i, p := range pkgs {
		r := results[i]
		resolved := p.Resolved
		if r.resolved != "" {
			resolved = r.resolved
		}
		if p.Unpinned != "" && p.Origin != originUnknown {
			// Nothing pins what it resolves to: differ from every other commit.
			resolved += " unpinned at " + commit
		}
		for _, pl := range Platforms {
			native, why := r.pn.on(pl)
			if r.reason != "" {
				why = r.reason
			} else if native {
				why = "ships native code: " + why
			}
			if !forced[i] && app.cfg != nil {
				ov := app.cfg.appDependency(p.Name, string(pl))
				switch {
				case ov.disabled && native:
					native, why = false, ""
				case ov.forced && !native:
					native, why = true, "configured for "+string(pl)+" in the app's "+app.cfgName
				}
			}
			if file, ok := app.byHand[pl][p.Name]; ok && !native && !forced[i] {
				native, why = true, "linked by hand in "+file
			}
			if native {
				b.out[pl].Packages = append(b.out[pl].Packages, PackageInput{Name: p.Name, Version: p.Version, Resolved: resolved, Reason: why, Unresolved: r.unres})
			}
		}
	}
	return nil
}

// judgeLocalTarball judges a tarball that the repository itself holds.
func (f *Fingerprinter) judgeLocalTarball(ctx context.Context, src Source, commit string, p installed, entries []Entry) verdict {
	var e Entry
	for _, x := range entries {
		if x.Path == p.Path && x.Type != "tree" {
			e = x
			break
		}
	}
	if e.Path == "" {
		return both("tarball " + p.Path + " is not in the repository tree; counted as native")
	}
	if e.Size > maxLocalTarball {
		v := both(fmt.Sprintf("tarball %s is larger than %d bytes; not inspected, counted as native", p.Path, maxLocalTarball))
		v.resolved = "file:" + p.Path + "@" + e.SHA
		return v
	}
	keyed := func(v verdict) verdict { v.resolved = "file:" + p.Path + "@" + e.SHA; return v }
	data, err := src.ReadFile(ctx, commit, p.Path)
	if err != nil {
		return keyed(both("cannot read tarball " + p.Path + " (" + err.Error() + "); counted as native"))
	}
	pf, err := readTarball(bytes.NewReader(data))
	if err != nil {
		return keyed(both("cannot read tarball " + p.Path + " (" + err.Error() + "); counted as native"))
	}
	return verdict{pn: judgePackage(pf).native(), resolved: "file:" + p.Path + "@" + e.SHA}
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

func (b *builder) configWhy(pl platforms, key, value, reason string) {
	for _, plat := range Platforms {
		if pl.has(plat) {
			b.out[plat].Config = append(b.out[plat].Config, ConfigInput{Key: key, Value: value, Reason: reason})
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
		return fp.Packages[i].ident() < fp.Packages[j].ident()
	})
	fp.Packages = dedupe(fp.Packages, func(a, b PackageInput) bool { return a.Name == b.Name && a.ident() == b.ident() })
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
		fmt.Fprintf(h, "package\x00%s@%s\x00%s\n", p.Name, p.Version, p.Resolved)
	}
	for _, c := range fp.Config {
		fmt.Fprintf(h, "config\x00%s\x00%s\n", c.Key, c.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Verify reports whether fp.Hash matches its inputs, for a fingerprint read
// back from storage.
func (fp Fingerprint) Verify() bool { return fp.Hash != "" && fp.computeHash() == fp.Hash }
