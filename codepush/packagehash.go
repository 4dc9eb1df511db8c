package codepush

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode/utf16"
)

// isZip reports whether the content starts like a zip archive.
func isZip(r io.ReaderAt) bool {
	var magic [4]byte
	n, _ := r.ReadAt(magic[:], 0)
	return n == 4 && string(magic[:]) == "PK\x03\x04"
}

// PackageHash computes the hash the client verifies after downloading: for a
// zip, the SHA-256 hex of JSON.stringify of the sorted "<path>:<sha256 hex>"
// list of its files (skipping directories, __MACOSX/, .DS_Store and
// .codepushrelease); for any other content, the SHA-256 hex of the bytes.
//
// The ignore list and the skipping of directory entries follow the clients
// (react-native-code-push hashes the unzipped files and ignores
// .codepushrelease, the signature); code-push-server's hash-utils.ts ignores
// only __MACOSX/ and .DS_Store and would hash directory entries, which the CLI
// never writes. Content that starts like a zip but does not parse is refused
// rather than hashed as a file: no device could unzip it.
func PackageHash(r io.ReaderAt, size int64) (string, error) {
	if !isZip(r) {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return "", invalid("package", "", "not a valid zip archive: %v", err)
	}
	var entries []string
	for _, f := range zr.File {
		name := strings.ReplaceAll(f.Name, "\\", "/")
		if strings.HasSuffix(name, "/") || f.FileInfo().IsDir() || ignoredInManifest(name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return "", invalid("package", name, "cannot read zip entry: %v", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return "", invalid("package", name, "cannot read zip entry: %v", err)
		}
		entries = append(entries, name+":"+hex.EncodeToString(h.Sum(nil)))
	}
	if len(entries) == 0 {
		return "", invalid("package", "", "the zip archive contains no files")
	}
	return manifestHash(entries), nil
}

func ignoredInManifest(name string) bool {
	return strings.HasPrefix(name, "__MACOSX/") || path.Base(name) == ".DS_Store" ||
		path.Base(name) == ".codepushrelease"
}

// manifestHash sorts like JavaScript's Array.prototype.sort (UTF-16 code
// units) and serialises like JSON.stringify before hashing.
func manifestHash(entries []string) string {
	slices.SortFunc(entries, func(a, b string) int {
		return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
	})
	var sb strings.Builder
	sb.WriteByte('[')
	for i, e := range entries {
		if i > 0 {
			sb.WriteByte(',')
		}
		jsString(&sb, e)
	}
	sb.WriteByte(']')
	sum := sha256.Sum256([]byte(sb.String()))
	return hex.EncodeToString(sum[:])
}

// jsString writes s quoted as JSON.stringify does (it escapes only quotes,
// backslashes and control characters).
func jsString(sb *strings.Builder, s string) {
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\b':
			sb.WriteString(`\b`)
		case '\f':
			sb.WriteString(`\f`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(sb, `\u%04x`, r)
			} else {
				sb.WriteRune(r)
			}
		}
	}
	sb.WriteByte('"')
}
