package main

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
)

type noopExecutor struct{ actions chan release.Action }

func (e noopExecutor) Execute(_ context.Context, _ release.Lane, d release.Decision) error {
	e.actions <- d.Action
	return nil
}
func (noopExecutor) Observe(context.Context, release.Lane) (release.Observations, error) {
	return release.Observations{}, nil
}

func TestCLIOperatesARunningService(t *testing.T) {
	ctx := context.Background()
	t.Setenv("RP_CLI_TOKEN", "cli-operator-token-0123")
	cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\ndata_dir: "+t.TempDir()+"\nshutdown_timeout: 5s\ntokens:\n  - {name: ops, role: operator, token: \"${RP_CLI_TOKEN}\"}\napps:\n  - {name: acme, repository: acme/mobile, webhook_secret: s}\n"), "")
	require.NoError(t, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(t, err)
	exec := noopExecutor{actions: make(chan release.Action, 10)}
	svc.Rollouts.Executors[jobs.ExecutorKey{Kind: release.KindOTA, Platform: release.IOS}] = exec
	r, _, err := svc.Store.CreateRelease(ctx, release.Release{App: "acme", Tag: "v2.0.1", Version: "2.0.1", Commit: "abc", CreatedAt: time.Now()})
	require.NoError(t, err)
	_, err = svc.Store.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindOTA,
		Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil),
		Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: time.Now()}}, time.Now())
	require.NoError(t, err)
	require.NoError(t, svc.Start(ctx))
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	server := "http://" + svc.Addr

	code, _, errs := runCmd("halt", r.ID, "--server", server, "--token", "wrong-token-0000000000", "--reason", "x")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "401 unauthorized")

	code, _, errs = runCmd("halt", r.ID, "--server", server, "--token", "cli-operator-token-0123")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "--reason is required")

	t.Setenv("RELEASEPILOT_TOKEN", "cli-operator-token-0123")
	code, out, errs := runCmd("halt", r.ID, "--server", server, "--reason", "crash spike")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, `"status": "queued"`)
	select {
	case a := <-exec.actions:
		require.Equal(t, release.ActionHalt, a)
	case <-time.After(20 * time.Second):
		t.Fatal("the halt was never executed")
	}

	require.Eventually(t, func() bool {
		code, out, _ := runCmd("status", r.ID, "--server", server, "--json")
		if code != 0 {
			return false
		}
		var v struct {
			Lanes []struct {
				Status struct{ State string } `json:"status"`
			} `json:"lanes"`
		}
		return json.Unmarshal([]byte(out), &v) == nil && len(v.Lanes) == 1 && v.Lanes[0].Status.State == "halted"
	}, 10*time.Second, 50*time.Millisecond)

	code, _, errs = runCmd("advance", r.ID, "--server", server)
	require.Equal(t, 2, code)
	require.Contains(t, errs, "409 conflict: advance: lane is halted; resume it first")

	// Without --json, status is the summary a person reads.
	code, out, errs = runCmd("status", r.ID, "--server", server)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, r.ID+"  acme v2.0.1  commit abc")
	require.Regexp(t, `ios +ota +halted +10%  halted at 10%; resume to continue or roll back \(crash spike\)`, out)
	require.Contains(t, out, "lane lane_")

	code, out, errs = runCmd("resume", r.ID, "--server", server, "--reason", "fixed")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, `"status": "queued"`)
	require.Eventually(t, func() bool {
		_, out, _ := runCmd("status", r.ID, "--server", server)
		return regexp.MustCompile(`ios +ota +(waiting|rolling) +10%  next: 25% not before \S+ \(in \S+\), after soak 1h0m0s until`).MatchString(out)
	}, 10*time.Second, 50*time.Millisecond)

	code, out, errs = runCmd("advance", r.ID, "--server", server, "--dry-run")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, `"dry_run": true`)
	require.Regexp(t, `"to": \{\s+"percent": 25,`, out)

	code, out, errs = runCmd("status", "--server", server, "--app", "acme")
	require.Equal(t, 0, code, errs)
	require.Regexp(t, r.ID+` +acme +v2.0.1 `, out)
}
