package codepush

import (
	"archive/zip"
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignaturePath is where react-native-code-push looks for a package's
// signature (a JWT) inside the unzipped update, on both platforms. A
// signature anywhere else is never seen by a device.
const SignaturePath = "CodePush/.codepushrelease"

// maxSignature bounds the signature file; an RSA-4096 token is under 1 KiB.
const maxSignature = 16 << 10

// ParsePublicKey reads an RSA public key from PEM: "PUBLIC KEY" (SPKI, what
// openssl rsa -pubout writes and the apps embed as CodePushPublicKey) or
// "RSA PUBLIC KEY" (PKCS #1).
func ParsePublicKey(b []byte) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM block (expected -----BEGIN PUBLIC KEY-----)")
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T, not an RSA key (CodePush signatures are RS256)", k)
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(blk.Bytes)
	}
	return nil, fmt.Errorf("a PEM %q block, not a PUBLIC KEY", blk.Type)
}

// ParsePrivateKey reads an RSA private key from PEM: "PRIVATE KEY" (PKCS #8,
// what OpenSSL 3's genrsa writes) or "RSA PRIVATE KEY" (PKCS #1).
func ParsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM block (expected -----BEGIN PRIVATE KEY-----)")
	}
	switch blk.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T, not an RSA key (CodePush signatures are RS256)", k)
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	}
	return nil, fmt.Errorf("a PEM %q block, not a PRIVATE KEY", blk.Type)
}

// signatureClaims are the claims of a .codepushrelease token, as the
// CodePush CLI signs them.
type signatureClaims struct {
	ClaimVersion string `json:"claimVersion"`
	ContentHash  string `json:"contentHash"`
	jwt.RegisteredClaims
}

// VerifySignature checks a package against an app's signing key the way a
// device configured with that key would: the package must be a zip with a
// CodePush/.codepushrelease token, signed RS256 by key, whose contentHash
// equals packageHash (the hash of the files, the signature excluded). The
// error, of KindInvalid, says which of these failed.
func VerifySignature(pkg io.ReaderAt, size int64, packageHash string, key *rsa.PublicKey) error {
	const how = "sign it with the CodePush CLI's --privateKeyPath on a directory named CodePush, or releasepilot ota release --private-key"
	if !isZip(pkg) {
		return invalid("package", "", "this app only accepts signed packages, and a single file cannot carry a signature: upload a zip of a directory named CodePush (%s)", how)
	}
	zr, err := zip.NewReader(pkg, size)
	if err != nil {
		return invalid("package", "", "not a valid zip archive: %v", err)
	}
	var sig *zip.File
	var elsewhere []string
	for _, f := range zr.File {
		name := strings.ReplaceAll(f.Name, "\\", "/")
		if path.Base(name) != ".codepushrelease" {
			continue
		}
		if name == SignaturePath {
			sig = f
		} else {
			elsewhere = append(elsewhere, name)
		}
	}
	if sig == nil {
		if len(elsewhere) > 0 {
			return invalid("package", elsewhere[0], "the signature is at %s, where devices never look (they read %s only): release a directory named CodePush", elsewhere[0], SignaturePath)
		}
		return invalid("package", "", "the package is not signed (no %s) and this app only accepts signed packages: %s", SignaturePath, how)
	}
	rc, err := sig.Open()
	if err != nil {
		return invalid("package", SignaturePath, "cannot read the signature: %v", err)
	}
	tok, err := io.ReadAll(io.LimitReader(rc, maxSignature+1))
	rc.Close()
	if err != nil {
		return invalid("package", SignaturePath, "cannot read the signature: %v", err)
	}
	if len(tok) > maxSignature {
		return invalid("package", SignaturePath, "the signature is larger than %d bytes", maxSignature)
	}
	var claims signatureClaims
	_, err = jwt.ParseWithClaims(strings.TrimSpace(string(tok)), &claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"RS256"}))
	if err != nil {
		return invalid("package", SignaturePath, "the signature does not verify with this app's public key (%v): sign with the private key that matches the key configured for the app", err)
	}
	if claims.ContentHash == "" {
		return invalid("package", SignaturePath, "the signature names no contentHash")
	}
	if claims.ContentHash != packageHash {
		return invalid("package", SignaturePath, "the signed contentHash %s does not match the package contents, which hash to %s: the files changed after signing", claims.ContentHash, packageHash)
	}
	return nil
}

// WritePackage writes dir as a release zip the way the CodePush CLI's
// release-react does — every file under a CodePush/ root, no directory
// entries — and, when key is set, signs it: CodePush/.codepushrelease holds
// an RS256 JWT {claimVersion, contentHash, iat} whose contentHash is the
// package hash of the other files. It returns that hash. A signature file
// already in dir is replaced.
func WritePackage(w io.Writer, dir string, key *rsa.PrivateKey, now time.Time) (string, error) {
	type file struct{ name, path string }
	var files []file
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := "CodePush/" + filepath.ToSlash(rel)
		if ignoredInManifest(name) {
			return nil
		}
		files = append(files, file{name, p})
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("%s has no files to release", dir)
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	zw := zip.NewWriter(w)
	entries := make([]string, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		entries = append(entries, f.name+":"+hex.EncodeToString(sum[:]))
		if err := writeZipEntry(zw, f.name, b, now); err != nil {
			return "", err
		}
	}
	hash := manifestHash(entries)
	if key != nil {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"claimVersion": "1.0.0", "contentHash": hash, "iat": now.Unix(),
		}).SignedString(key)
		if err != nil {
			return "", fmt.Errorf("sign the package: %w", err)
		}
		if err := writeZipEntry(zw, SignaturePath, []byte(tok), now); err != nil {
			return "", err
		}
	}
	return hash, zw.Close()
}

func writeZipEntry(zw *zip.Writer, name string, b []byte, now time.Time) error {
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now})
	if err != nil {
		return err
	}
	_, err = io.Copy(fw, bytes.NewReader(b))
	return err
}
