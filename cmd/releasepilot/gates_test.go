package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
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

// TestStatusShowsGates: the API's next and `releasepilot status` show each
// gate's newest measurement in the current stage.
func TestStatusShowsGates(t *testing.T) {
	ctx := context.Background()
	t.Setenv("RP_CLI_TOKEN", "cli-viewer-token-0123")
	cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\ndata_dir: "+t.TempDir()+"\nshutdown_timeout: 5s\ntokens:\n  - {name: ops, role: viewer, token: \"${RP_CLI_TOKEN}\"}\napps:\n  - {name: acme, repository: acme/mobile, webhook_secret: s}\n"), "")
	require.NoError(t, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(t, err)
	svc.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindOTA, Platform: release.IOS}] = noopExecutor{actions: make(chan release.Action, 10)}
	now := time.Now().UTC().Truncate(time.Second)
	r, _, err := svc.Store.CreateRelease(ctx, release.Release{App: "acme", Tag: "v2.0.1", Version: "2.0.1", Commit: "abc", CreatedAt: now})
	require.NoError(t, err)
	min := 0.99
	rule := release.GateRule{Provider: release.ProviderSentry, Metric: "crash_free_rate(session)", Min: &min, NoMax: true, FailureLimit: 2, Interval: release.Duration(time.Hour)}
	l, err := svc.Store.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindOTA,
		Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, []release.GateRule{rule}),
		Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: now.Add(-time.Hour), StageStartedAt: now.Add(-time.Hour)}}, now)
	require.NoError(t, err)
	_, err = svc.Store.RecordMeasurement(ctx, release.Measurement{LaneID: l.ID, Gate: rule.Key(), At: now.Add(-time.Minute), Percent: 10,
		Phase: release.PhaseFailed, Value: 0.962, Samples: 5120, Reason: "0.962 is below min 0.99 over 5120 samples",
		Values: map[string]float64{"crash_free_rate(session)": 0.962, "sum(session)": 5120}})
	require.NoError(t, err)
	require.NoError(t, svc.Start(ctx))
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	server := "http://" + svc.Addr
	t.Setenv("RELEASEPILOT_TOKEN", "cli-viewer-token-0123")

	code, out, errs := runCmd("status", r.ID, "--server", server)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "gates last measured: sentry crash_free_rate(session) failed 0.962 (1 of 2 failures allowed in a row)")
	require.Contains(t, out, "gate: sentry crash_free_rate(session) ≥ 0.99 (halts after 3 failures in a row): failed at "+now.Add(-time.Minute).Format(time.RFC3339)+
		" (0.962 is below min 0.99 over 5120 samples); 1 failed in a row of 2 allowed")

	code, out, errs = runCmd("status", r.ID, "--server", server, "--json")
	require.Equal(t, 0, code, errs)
	var v struct {
		Lanes []struct {
			Next release.Outlook `json:"next"`
		} `json:"lanes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	g := v.Lanes[0].Next.Gates
	require.Len(t, g, 1)
	require.Equal(t, release.PhaseFailed, g[0].Phase)
	require.Equal(t, 0.962, g[0].Value)
	require.Equal(t, 5120.0, g[0].Values["sum(session)"])
	require.Equal(t, now.Add(59*time.Minute), g[0].NextAt)
}
