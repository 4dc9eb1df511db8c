package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadGateConfigExits2: an unknown provider, a prometheus gate without a
// query and a gate with neither min nor max stop releasepilot with exit
// code 2 and the key path.
func TestBadGateConfigExits2(t *testing.T) {
	app := "prometheus: {url: \"http://127.0.0.1:9090/\"}\napps:\n  - name: a\n    repository: a/b\n    webhook_secret: s\n    rollout:\n      gates:\n"
	for gate, want := range map[string]string{
		"        - {provider: datadog, metric: x, max: 1}\n":                                                                 `apps[0].rollout.gates[0].provider: "datadog" is not one of play_vitals, ota, sentry, prometheus`,
		"        - {provider: prometheus, max: 1}\n":                                                                         "apps[0].rollout.gates[0].query: empty",
		"        - {provider: prometheus, query: up}\n":                                                                      "apps[0].rollout.gates[0].max: neither max nor min is set",
		"        - {metric: crash_rate, max: 0.1}\n        - {provider: sentry, metric: crash_free_rate(user), min: 0.99}\n": "sentry.organization: empty while apps[0].rollout.gates[1] uses the sentry provider",
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"+app+gate), 0o600))
		code, _, errs := runCmd("serve", "--config", cfg)
		require.Equal(t, 2, code, errs)
		require.Contains(t, errs, want)
	}
}
