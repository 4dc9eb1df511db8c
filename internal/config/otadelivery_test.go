package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testExpoPEMs(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acme"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	cert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	key = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	return cert, key
}

func TestOTADeliveryConfig(t *testing.T) {
	t.Setenv("RP_S3_KEY", "AKIAEXAMPLE")
	t.Setenv("RP_S3_SECRET", "s3-secret-value-XYZ")
	dir := t.TempDir()
	cert, key := testExpoPEMs(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), []byte(cert), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), []byte(key), 0o600))
	c, err := Parse([]byte(`
codepush:
  storage: s3
  diff_count: 3
  s3:
    endpoint: https://s3.eu-west-1.amazonaws.com
    region: eu-west-1
    bucket: acme-ota
    prefix: ota/
    access_key_id: ${RP_S3_KEY}
    secret_access_key: ${RP_S3_SECRET}
    public_base_url: https://cdn.example.com
apps:
  - name: acme
    repository: acme/mobile
    webhook_secret: x
    ota:
      enabled: true
      protocol: expo
      expo:
        certificate_file: cert.pem
        private_key_file: key.pem
`), dir)
	require.NoError(t, err)
	require.Equal(t, 3, c.CodePush.DiffCount)
	require.Equal(t, "s3-secret-value-XYZ", c.CodePush.S3.SecretAccessKey.Value())
	require.Equal(t, time.Hour, c.CodePush.S3.PresignTTL.D(), "default presign lifetime")
	require.Equal(t, "expo", c.Apps[0].OTA.Protocol)
	require.Equal(t, "main", c.Apps[0].OTA.Expo.KeyID)
	require.Equal(t, "expo-dist.tar.gz", c.Apps[0].OTA.Expo.DistAsset)
	sg, err := ParseExpoSigning(c.Apps[0].OTA.Expo)
	require.NoError(t, err)
	require.Len(t, sg.Chain, 1)

	d, err := Parse([]byte("listen: 127.0.0.1:0\n"), dir)
	require.NoError(t, err)
	require.Equal(t, 5, d.CodePush.DiffCount, "default diff count")
}

func TestOTADeliveryConfigErrors(t *testing.T) {
	t.Setenv("RP_S3_SECRET", "s3-secret-value-XYZ")
	cert, key := testExpoPEMs(t)
	otherCert, _ := testExpoPEMs(t)
	s3 := "codepush:\n  storage: s3\n  s3:\n"
	full := "    access_key_id: AKIA\n    secret_access_key: ${RP_S3_SECRET}\n"
	app := "apps:\n  - name: acme\n    repository: acme/mobile\n    webhook_secret: x\n    ota:\n      enabled: true\n"
	indent := func(pem string) string {
		out := "|\n"
		for _, l := range splitLines(pem) {
			out += "          " + l + "\n"
		}
		return out
	}
	for _, tt := range []struct{ name, yaml, err string }{
		{"no endpoint", s3 + "    bucket: b1b\n" + full, "codepush.s3.endpoint: required"},
		{"endpoint path", s3 + "    endpoint: https://s3.example.com/bucket\n    bucket: abc\n" + full, `codepush.s3.endpoint: "https://s3.example.com/bucket" is not an http(s) URL without a path`},
		{"no bucket", s3 + "    endpoint: https://s3.example.com\n" + full, "codepush.s3.bucket: required"},
		{"bad bucket", s3 + "    endpoint: https://s3.example.com\n    bucket: Acme_OTA\n" + full, `codepush.s3.bucket: "Acme_OTA" is not a bucket name`},
		{"no secret", s3 + "    endpoint: https://s3.example.com\n    bucket: abc\n    access_key_id: AKIA\n", "codepush.s3.secret_access_key: required"},
		{"no key id", s3 + "    endpoint: https://s3.example.com\n    bucket: abc\n    secret_access_key: ${RP_S3_SECRET}\n", "codepush.s3.access_key_id: required"},
		{"long presign", s3 + "    endpoint: https://s3.example.com\n    bucket: abc\n    presign_ttl: 200h\n" + full, "codepush.s3.presign_ttl: 200h0m0s is not from 1s to 168h"},
		{"bad cdn", s3 + "    endpoint: https://s3.example.com\n    bucket: abc\n    public_base_url: cdn.example.com\n" + full, `codepush.s3.public_base_url: "cdn.example.com" is not an http(s) URL`},
		{"diff count", "codepush:\n  diff_count: 500\n", "codepush.diff_count: 500 is not -1 (off) or from 1 to 50"},
		{"protocol", app + "      protocol: squirrel\n", `apps[0].ota.protocol: "squirrel" is not one of codepush, expo`},
		{"cert without key", app + "      protocol: expo\n      expo:\n        certificate: " + indent(cert), "apps[0].ota.expo: certificate and private_key go together"},
		{"key of another cert", app + "      protocol: expo\n      expo:\n        certificate: " + indent(otherCert) + "        private_key: " + indent(key), "apps[0].ota.expo.private_key: does not belong to the certificate"},
		{"not a cert", app + "      protocol: expo\n      expo:\n        certificate: nope\n        private_key: " + indent(key), "apps[0].ota.expo.certificate: no PEM CERTIFICATE block"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), t.TempDir())
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.err)
			require.NotContains(t, err.Error(), "s3-secret-value-XYZ")
			require.NotContains(t, err.Error(), "PRIVATE KEY")
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
