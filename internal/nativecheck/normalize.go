package nativecheck

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Every release bumps version and build numbers inside native files; these
// expressions blank them so that a bump alone does not change the digest.
var (
	plistVersionRE = regexp.MustCompile(`(<key>\s*(?:CFBundleShortVersionString|CFBundleVersion)\s*</key>\s*<string>)[^<]*(</string>)`)
	pbxVersionRE   = regexp.MustCompile(`(?m)^(\s*(?:MARKETING_VERSION|CURRENT_PROJECT_VERSION)\s*=\s*)[^;\n]*;`)
	gradleCodeRE   = regexp.MustCompile(`(\bversionCode\b[ \t]*=?[ \t]*)[^\n}/;]*`)
	// gradle.properties often carries the version: VERSION_CODE=42.
	propsVersionRE = regexp.MustCompile(`(?mi)^([ \t]*[\w.]*version_?(?:code|name)[ \t]*[=:][ \t]*).*$`)
	gradleNameRE   = regexp.MustCompile(`(\bversionName\b[ \t]*=?[ \t]*)[^\n}/;]*`)
)

func contentDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func normalizePlist(b []byte) []byte {
	return plistVersionRE.ReplaceAll(b, []byte("${1}${2}"))
}

func normalizePbxproj(b []byte) []byte {
	return pbxVersionRE.ReplaceAll(b, []byte("${1};"))
}

func normalizeGradle(b []byte) []byte {
	b = gradleCodeRE.ReplaceAll(b, []byte("${1}"))
	return gradleNameRE.ReplaceAll(b, []byte("${1}"))
}

func normalizeGradleProperties(b []byte) []byte {
	return propsVersionRE.ReplaceAll(b, []byte("${1}"))
}

// normalizePodLock keeps the pod entries of a Podfile.lock and drops the
// PODFILE CHECKSUM and COCOAPODS version lines, which change without any pod
// changing.
func normalizePodLock(b []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "PODFILE CHECKSUM:") || strings.HasPrefix(line, "COCOAPODS:") {
			continue
		}
		out.WriteString(strings.TrimRight(line, " \t\r"))
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// nativeHunkPath reports which platforms a file changed by a patch builds into.
// The path is the one inside the patched package.
func nativeHunkPath(p string) platforms {
	p = "/" + p
	var pl platforms
	for _, d := range []string{"/ios/", "/apple/", "/macos/"} {
		if strings.Contains(p, d) {
			pl |= onIOS
		}
	}
	for _, d := range []string{"/android/", "/jni/"} {
		if strings.Contains(p, d) {
			pl |= onAndroid
		}
	}
	if strings.Contains(p, "/cpp/") || strings.Contains(p, "/common/cpp/") {
		pl |= onBoth
	}
	base := p[strings.LastIndex(p, "/")+1:]
	switch {
	case strings.HasSuffix(base, ".podspec"), strings.HasSuffix(base, ".m"), strings.HasSuffix(base, ".mm"),
		strings.HasSuffix(base, ".swift"):
		pl |= onIOS
	case base == "build.gradle", base == "build.gradle.kts", base == "CMakeLists.txt",
		base == "AndroidManifest.xml", strings.HasSuffix(base, ".java"), strings.HasSuffix(base, ".kt"):
		pl |= onAndroid
	case strings.HasSuffix(base, ".h"), strings.HasSuffix(base, ".hpp"), strings.HasSuffix(base, ".c"),
		strings.HasSuffix(base, ".cc"), strings.HasSuffix(base, ".cpp"):
		pl |= onBoth
	}
	return pl
}

// patchInput is what a patch-package patch contributes for one platform.
type patchInput struct {
	pkg   string // patched package name, from the file name
	files []string
	body  []byte // normalised native hunks
}

// parsePatch splits a unified diff by file and keeps only the files that
// build into pl. Line numbers and index lines are dropped, so a patch
// renamed for a new package version with the same hunks digests the same.
func parsePatch(fileName string, b []byte, pl Platform) patchInput {
	in := patchInput{pkg: patchPackage(fileName)}
	var (
		cur     string
		keep    bool
		curBody bytes.Buffer
	)
	flush := func() {
		if keep {
			in.files = append(in.files, cur)
			in.body = append(in.body, "file "+cur+"\n"...)
			in.body = append(in.body, curBody.Bytes()...)
		}
		curBody.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "diff --git "):
			flush()
			fields := strings.Fields(line)
			cur = patchPath(fields[len(fields)-1])
			keep = nativeHunkPath(cur).has(pl)
		case strings.HasPrefix(line, "+++ "):
			if p := patchPath(strings.Fields(line + " x")[1]); p != "/dev/null" && p != "" {
				if cur == "" || cur == "/dev/null" {
					flush()
					cur = p
					keep = nativeHunkPath(cur).has(pl)
				}
			}
		case strings.HasPrefix(line, "--- "), strings.HasPrefix(line, "index "), strings.HasPrefix(line, "@@"):
			// location only
		case strings.HasPrefix(line, "+"), strings.HasPrefix(line, "-"), strings.HasPrefix(line, " "):
			curBody.WriteString(strings.TrimRight(line, "\r"))
			curBody.WriteByte('\n')
		default:
			if strings.HasPrefix(line, "new file mode") || strings.HasPrefix(line, "deleted file mode") {
				curBody.WriteString(line)
				curBody.WriteByte('\n')
			}
		}
	}
	flush()
	return in
}

// patchPath turns "a/node_modules/pkg/ios/X.m" into "ios/X.m".
func patchPath(p string) string {
	if p == "/dev/null" {
		return p
	}
	if len(p) > 2 && (p[:2] == "a/" || p[:2] == "b/") {
		p = p[2:]
	}
	if i := strings.LastIndex(p, "node_modules/"); i >= 0 {
		p = p[i+len("node_modules/"):]
		// drop the package name (scoped or not)
		if strings.HasPrefix(p, "@") {
			if j := strings.Index(p, "/"); j >= 0 {
				p = p[j+1:]
			}
		}
		if j := strings.Index(p, "/"); j >= 0 {
			p = p[j+1:]
		}
	}
	return p
}

// patchPackage extracts the package name from a patch file name:
// patch-package's "name+1.2.3.patch", "@scope+name+1.2.3.patch" and
// "name+1.2.3+001+desc.patch"; pnpm's "name@1.2.3.patch" and
// "@scope__name@1.2.3.patch"; yarn's "name-npm-1.2.3-<hash>.patch". The
// version is dropped so that a patch renamed for a new version keeps its key.
func patchPackage(fileName string) string {
	base := fileName[strings.LastIndex(fileName, "/")+1:]
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".patch"), ".diff")
	if parts := strings.Split(base, "+"); len(parts) >= 2 {
		if len(parts) >= 3 && strings.HasPrefix(parts[0], "@") {
			return parts[0] + "/" + parts[1]
		}
		return parts[0]
	}
	if i := strings.LastIndex(base, "-npm-"); i > 0 {
		return base[:i]
	}
	if i := strings.LastIndex(base, "@"); i > 0 {
		return strings.Replace(base[:i], "__", "/", 1)
	}
	return base
}
