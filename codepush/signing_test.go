package codepush

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func bundleDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644))
	}
	return dir
}

func signedZip(t *testing.T, key *rsa.PrivateKey, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	hash, err := WritePackage(&buf, bundleDir(t, files), key, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	return buf.Bytes(), hash
}

func TestWritePackageHashesAsDevicesDo(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	files := map[string]string{"main.jsbundle": "js", "assets/img/logo.png": "png", ".DS_Store": "junk", ".codepushrelease": "stale signature"}
	z, hash := signedZip(t, key, files)
	got, err := PackageHash(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	require.Equal(t, hash, got, "the signed contentHash is the hash the server serves")
	require.Equal(t, manifestHash([]string{"CodePush/assets/img/logo.png:" + sha("png"), "CodePush/main.jsbundle:" + sha("js")}), hash)
	require.NoError(t, VerifySignature(bytes.NewReader(z), int64(len(z)), hash, &key.PublicKey))
	zr := zipEntries(t, z)
	require.Equal(t, []string{"CodePush/assets/img/logo.png", "CodePush/main.jsbundle", SignaturePath}, zr, "no directory entries, the stale signature replaced")
}

// TestVerifySignature: what a device with the app's public key accepts is
// accepted; anything else is refused with the reason.
func TestVerifySignature(t *testing.T) {
	t.Parallel()
	key, other := testKey(t), testKey(t)
	files := map[string]string{"main.jsbundle": "js", "assets/a.png": "png"}
	good, hash := signedZip(t, key, files)

	signedAs := func(method jwt.SigningMethod, k any, claims jwt.MapClaims) []byte {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(k)
		require.NoError(t, err)
		return zipOf(t, map[string]string{"CodePush/main.jsbundle": "js", "CodePush/assets/a.png": "png", SignaturePath: tok})
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	for name, tc := range map[string]struct {
		pkg  []byte
		want string
	}{
		"unsigned":                            {zipOf(t, map[string]string{"CodePush/main.jsbundle": "js", "CodePush/assets/a.png": "png"}), "the package is not signed"},
		"a single file":                       {[]byte("just a bundle"), "a single file cannot carry a signature"},
		"other key":                           {func() []byte { z, _ := signedZip(t, other, files); return z }(), "does not verify with this app's public key"},
		"tampered":                            {rezipped(t, good, "CodePush/main.jsbundle", "evil js"), "the files changed after signing"},
		"added file":                          {rezipped(t, good, "CodePush/extra.js", "evil"), "the files changed after signing"},
		"misplaced":                           {without(t, rezipped(t, good, "ios/.codepushrelease", "x"), SignaturePath), "where devices never look"},
		"no contentHash":                      {signedAs(jwt.SigningMethodRS256, key, jwt.MapClaims{"claimVersion": "1.0.0"}), "names no contentHash"},
		"HS256 with the public key as secret": {signedAs(jwt.SigningMethodHS256, pubPEM, jwt.MapClaims{"contentHash": hash}), "does not verify"},
		"not a JWT":                           {rezipped(t, good, SignaturePath, "hello"), "does not verify"},
	} {
		var h string
		if z := tc.pkg; isZip(bytes.NewReader(z)) {
			h, err = PackageHash(bytes.NewReader(z), int64(len(z)))
			require.NoError(t, err, name)
		}
		if name == "no contentHash" || strings.HasPrefix(name, "HS256") {
			h = hash
		}
		err := VerifySignature(bytes.NewReader(tc.pkg), int64(len(tc.pkg)), h, &key.PublicKey)
		require.Equal(t, KindInvalid, KindOf(err), "%s: %v", name, err)
		require.ErrorContains(t, err, tc.want, name)
	}
	require.NoError(t, VerifySignature(bytes.NewReader(good), int64(len(good)), hash, &key.PublicKey))
}

// TestSigningKeysGateEveryRelease: an app with a key refuses unsigned
// uploads, and a promote or rollback serves content again only when it is
// signed, even if it was uploaded before the key was configured.
func TestSigningKeysGateEveryRelease(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	key := testKey(t)
	unsigned := zipOf(t, map[string]string{"CodePush/main.jsbundle": "before the key"})
	_, err := tb.svc.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.4.0", Package: bytes.NewReader(unsigned), Commit: "c0ffee"})
	require.NoError(t, err)

	tb.svc.cfg.SigningKeys = map[string]*rsa.PublicKey{"Swap-iOS": &key.PublicKey}
	_, err = tb.svc.Promote(tb.ctx, "Swap-iOS", Staging, Production, PackageInfo{})
	require.ErrorContains(t, err, "release v1: the package is not signed")
	_, err = tb.svc.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.4.0", Package: bytes.NewReader(zipOf(t, map[string]string{"CodePush/main.jsbundle": "unsigned"}))})
	require.ErrorContains(t, err, "the package is not signed")
	signed, _ := signedZip(t, key, map[string]string{"main.jsbundle": "signed"})
	r, err := tb.svc.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.4.0", Package: bytes.NewReader(signed), Commit: "c0ffee"})
	require.NoError(t, err)
	require.Equal(t, "v2", r.Label)
	_, err = tb.svc.Promote(tb.ctx, "Swap-iOS", Staging, Production, PackageInfo{})
	require.NoError(t, err)
	_, err = tb.svc.Rollback(tb.ctx, "Swap-iOS", Staging, "")
	require.ErrorContains(t, err, "release v1: the package is not signed", "rolling back to unsigned content is refused too")
	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Staging)
	require.NoError(t, err)
	require.Len(t, h, 2)
	require.False(t, h[1].Disabled, "a refused rollback changes nothing")
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	for _, b := range [][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	} {
		k, err := ParsePrivateKey(b)
		require.NoError(t, err)
		require.True(t, k.Equal(key))
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	for _, b := range [][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)}),
	} {
		k, err := ParsePublicKey(b)
		require.NoError(t, err)
		require.True(t, k.Equal(&key.PublicKey))
	}
	_, err = ParsePublicKey([]byte("not pem"))
	require.ErrorContains(t, err, "not a PEM block")
	_, err = ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}))
	require.ErrorContains(t, err, `a PEM "CERTIFICATE" block`)
}

func zipEntries(t *testing.T, z []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	var out []string
	for _, f := range zr.File {
		out = append(out, f.Name)
	}
	return out
}

// rezipped copies a zip with one entry's content replaced (or added).
func rezipped(t *testing.T, src []byte, name, content string) []byte {
	t.Helper()
	return copyZip(t, src, name, &content)
}

// without copies a zip without one entry.
func without(t *testing.T, src []byte, name string) []byte {
	t.Helper()
	return copyZip(t, src, name, nil)
}

func copyZip(t *testing.T, src []byte, name string, content *string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(src), int64(len(src)))
	require.NoError(t, err)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	done := false
	for _, f := range zr.File {
		if f.Name == name {
			done = true
			if content == nil {
				continue
			}
			w, err := zw.Create(name)
			require.NoError(t, err)
			_, err = io.WriteString(w, *content)
			require.NoError(t, err)
			continue
		}
		w, err := zw.Create(f.Name)
		require.NoError(t, err)
		rc, err := f.Open()
		require.NoError(t, err)
		_, err = io.Copy(w, rc)
		rc.Close()
		require.NoError(t, err)
	}
	if !done && content != nil {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = io.WriteString(w, *content)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return out.Bytes()
}
