package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
	"github.com/swapjoy/releasepilot/internal/store"
)

// memRepo is a repository in memory: commit -> path -> content.
type memRepo map[string]map[string]string

func (r memRepo) Tree(_ context.Context, commit string) ([]nativecheck.Entry, bool, error) {
	var out []nativecheck.Entry
	for p, c := range r[commit] {
		sum := sha1.Sum([]byte(fmt.Sprintf("blob %d\x00%s", len(c), c)))
		out = append(out, nativecheck.Entry{Path: p, Type: "blob", Mode: "100644", SHA: hex.EncodeToString(sum[:]), Size: int64(len(c))})
	}
	return out, false, nil
}

func (r memRepo) ReadFile(_ context.Context, commit, path string) ([]byte, error) {
	if c, ok := r[commit][path]; ok {
		return []byte(c), nil
	}
	return nil, fs.ErrNotExist
}

// TestOTAReleaseAndAccessKeys: an admin makes an access key, a release
// engineer ships a signed hotfix with it, and the key is revoked.
func TestOTAReleaseAndAccessKeys(t *testing.T) {
	ctx := context.Background()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	keyPath := filepath.Join(dir, "private.pem")
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	pubPath := filepath.Join(dir, "public.pem")
	require.NoError(t, os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))

	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nshutdown_timeout: 5s\ntokens:\n  - {name: root, role: admin, token: admin-token-0123456789}\n"+
		"apps:\n  - {name: acme, repository: acme/mobile, webhook_secret: s, ota: {enabled: true, signing_public_key_file: %q}}\n", t.TempDir(), pubPath)
	cfg, err := config.Parse([]byte(yaml), "")
	require.NoError(t, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(t, err)
	// The 1.4.0 binary was built from c140; c142 changes JS only.
	repo := memRepo{"c140": {"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v1\n"}, "c142": {"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v2\n"}}
	fps := map[string]string{}
	for _, c := range []string{"c140", "c142"} {
		all, err := (&nativecheck.Fingerprinter{}).Fingerprint(ctx, repo, c)
		require.NoError(t, err)
		fp := all[nativecheck.IOS]
		data, err := json.Marshal(fp)
		require.NoError(t, err)
		require.NoError(t, svc.Store.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: c, Algorithm: fp.Algorithm, Hash: fp.Hash, Data: data, CreatedAt: time.Now()}))
		fps[c] = fp.Hash
	}
	_, err = svc.Store.RecordBinary(ctx, release.Binary{App: "acme", Platform: release.IOS, Version: "1.4.0", BuildNumber: "40", Commit: "c140", Fingerprint: fps["c140"], CreatedAt: time.Now()})
	require.NoError(t, err)
	require.NoError(t, svc.Start(ctx))
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	server := "http://" + svc.Addr

	code, out, errs := runCmd("access-key", "create", "--name", "ana", "--role", "operator", "--server", server, "--token", "admin-token-0123456789")
	require.Equal(t, 0, code, errs)
	key := regexp.MustCompile(`rpk_[A-Za-z0-9_-]+`).FindString(out)
	require.NotEmpty(t, key, out)
	require.Contains(t, out, "It is shown this once")
	require.Contains(t, out, "code-push login "+server+" --accessKey <key>")
	code, out, errs = runCmd("access-key", "list", "--server", server, "--token", "admin-token-0123456789")
	require.Equal(t, 0, code, errs)
	require.Regexp(t, `ana\s+operator\s+created .* by token:root, expires never`, out)
	require.NotContains(t, out, key)

	bundle := filepath.Join(t.TempDir(), "build")
	require.NoError(t, os.MkdirAll(filepath.Join(bundle, "assets"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "main.jsbundle"), []byte("fixed js"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "assets", "logo.png"), []byte("png"), 0o644))

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--platform", "ios", "--bundle", bundle}, "--app is required"},
		{[]string{"--app", "acme", "--platform", "ios", "--bundle", "/nonexistent"}, `--bundle "/nonexistent" is not a directory`},
		{[]string{"--app", "acme", "--platform", "ios", "--bundle", bundle, "--rollout", "101"}, "--rollout 101 is not a percentage"},
		{[]string{"--app", "acme", "--platform", "ios", "--bundle", bundle, "--private-key", pubPath}, "a PEM \"PUBLIC KEY\" block, not a PRIVATE KEY"},
		{[]string{"--app", "acme", "--platform", "ios", "--bundle", bundle, "--commit", "c142"}, "the package is not signed"},
		{[]string{"--app", "acme", "--platform", "ios", "--bundle", bundle, "--private-key", keyPath}, "names no commit"},
		{[]string{"--app", "acme", "--platform", "web", "--bundle", bundle, "--private-key", keyPath}, `platform: platform "web" is not one of ios, android`},
	} {
		code, _, errs := runCmd(append([]string{"ota", "release", "--server", server, "--token", key}, tc.args...)...)
		require.Equal(t, 2, code, "%v: %s", tc.args, errs)
		require.Contains(t, errs, tc.err, tc.args)
	}

	code, out, errs = runCmd("ota", "release", "--server", server, "--token", key, "--app", "acme", "--platform", "ios", "--bundle", bundle,
		"--commit", "c142", "--private-key", keyPath, "--deployment", "Production", "--rollout", "50")
	require.Equal(t, 0, code, errs)
	require.Regexp(t, `^released acme ios as v1 on Production at 10% for binaries 1\.4\.0 \(signed, package hash [0-9a-f]{64}\)`, out,
		"a hotfix starts at the plan's first stage, whatever it asks for")
	rels, err := svc.Store.ListReleases(ctx, "acme", 10)
	require.NoError(t, err)
	require.Len(t, rels, 1)
	evs, err := svc.Store.Events(ctx, rels[0].ID, 0, 10)
	require.NoError(t, err)
	require.Equal(t, "accesskey:ana", evs[0].Actor)

	code, _, errs = runCmd("access-key", "revoke", "ana", "--server", server, "--token", "admin-token-0123456789")
	require.Equal(t, 0, code, errs)
	code, _, errs = runCmd("ota", "release", "--server", server, "--token", key, "--app", "acme", "--platform", "ios", "--bundle", bundle, "--commit", "c142", "--private-key", keyPath)
	require.Equal(t, 2, code)
	require.Contains(t, errs, "401 unauthorized")
}
