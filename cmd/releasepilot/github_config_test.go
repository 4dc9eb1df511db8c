package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Bad GitHub settings stop serve with exit 2 naming the key, and never
// print the key's value.
func TestBadGitHubConfigExits2(t *testing.T) {
	app := "apps:\n  - name: a\n    repository: a/b\n    webhook_secret: s\n"
	for _, tc := range []struct{ yaml, err string }{
		{app + "    on_tag_move: ignore\n", `apps[0].on_tag_move: "ignore" is not one of refuse, restart`},
		{"github:\n  app: {id: 7, private_key: \"not-a-key-SECRETVALUE\"}\n", "github.app.private_key: not an RSA private key in PEM"},
		{app + "    github_deployments: true\ngithub:\n  token: ghp_SECRETVALUE\n", "github.release_url: empty while apps[0].github_deployments is true"},
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"+tc.yaml), 0o600))
		code, _, errs := runCmd("serve", "--config", cfg)
		require.Equal(t, 2, code, errs)
		require.Contains(t, errs, tc.err)
		require.NotContains(t, errs, "SECRETVALUE")
	}
}
