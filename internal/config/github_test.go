package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func rsaPEM(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func TestGitHubAppAndDeployments(t *testing.T) {
	dir := t.TempDir()
	key := rsaPEM(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.pem"), key, 0o600))
	c, err := Parse([]byte(`
github:
  api_url: https://ghe.example.com/api/v3/
  app: {id: 123, private_key_file: app.pem}
  release_url: "https://releasepilot.example.com/v1/releases/{release_id}"
apps:
  - name: acme
    repository: acme/mobile
    webhook_secret: x
    on_tag_move: restart
    github_deployments: true
`), dir)
	require.NoError(t, err)
	require.Equal(t, int64(123), c.GitHub.App.ID)
	require.Equal(t, string(key[:len(key)-1]), c.GitHub.App.PrivateKey.Value())
	require.Equal(t, "restart", c.Apps[0].OnTagMove)
	require.True(t, c.Apps[0].GitHubDeployments)
}

func TestGitHubConfigErrors(t *testing.T) {
	key := string(rsaPEM(t))
	t.Setenv("RP_APP_KEY", key)
	app := "apps:\n  - name: acme\n    repository: acme/mobile\n    webhook_secret: x\n"
	for _, tt := range []struct{ name, yaml, err string }{
		{"bad policy", app + "    on_tag_move: ignore\n", `apps[0].on_tag_move: "ignore" is not one of refuse, restart`},
		{"deployments without credentials", app + "    github_deployments: true\ngithub:\n  release_url: \"https://rp.example.com/r/{release_id}\"\n",
			"apps[0].github_deployments: true while neither github.token nor github.app is set"},
		{"deployments without a link", app + "    github_deployments: true\ngithub:\n  token: ghp_x\n", "github.release_url: empty while apps[0].github_deployments is true"},
		{"link without placeholder", "github:\n  release_url: https://rp.example.com/releases\n", `github.release_url: "https://rp.example.com/releases" has no {release_id}`},
		{"link not a URL", "github:\n  release_url: \"rp/{release_id}\"\n", `github.release_url: "rp/{release_id}" is not an http(s) URL`},
		{"token and app", "github:\n  token: ghp_x\n  app: {id: 1, private_key: \"${RP_APP_KEY}\"}\n", "github.token: set either github.token or github.app, not both"},
		{"app without id", "github:\n  app: {private_key: \"${RP_APP_KEY}\"}\n", "github.app.id: 0 is not a GitHub App id"},
		{"app without key", "github:\n  app: {id: 7, installation_id: 9}\n", "github.app.private_key: empty while github.app.id is set"},
		{"negative installation", "github:\n  app: {id: 7, installation_id: -1, private_key: \"${RP_APP_KEY}\"}\n", "github.app.installation_id: -1 is negative"},
		{"key not RSA PEM", "github:\n  app: {id: 7, private_key: \"-----BEGIN PRIVATE KEY-----\\nc2VjcmV0\\n-----END PRIVATE KEY-----\"}\n", "github.app.private_key: not an RSA private key in PEM"},
		{"app id not a number", "github:\n  app: {id: my-app}\n", `github.app.id: "my-app" is not a whole number`},
		{"unknown app key", "github:\n  app: {client_secret: x}\n", "github.app.client_secret: unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), t.TempDir())
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.err)
			require.NotContains(t, err.Error(), "PRIVATE KEY-----\nMII", "the key is never quoted")
			require.NotContains(t, err.Error(), "c2VjcmV0")
		})
	}
}
