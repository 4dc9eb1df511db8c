package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJobsCrashSafetyKeys(t *testing.T) {
	c, err := Parse([]byte("listen: 127.0.0.1:0\n"), t.TempDir())
	require.NoError(t, err)
	require.Equal(t, DefaultRescueAfter, c.Jobs.RescueAfter.D())
	require.Equal(t, DefaultActionTimeout, c.Jobs.ActionTimeout.D())

	c, err = Parse([]byte("jobs:\n  rescue_after: 3s\n  action_timeout: 10s\n"), t.TempDir())
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, c.Jobs.RescueAfter.D())
	require.Equal(t, 10*time.Second, c.Jobs.ActionTimeout.D())

	for yaml, want := range map[string]string{
		"jobs:\n  rescue_after: 500ms\n":   "jobs.rescue_after: 500ms is not between 1s and 10m",
		"jobs:\n  rescue_after: -5s\n":     "jobs.rescue_after: -5s is negative",
		"jobs:\n  rescue_after: 1h\n":      "jobs.rescue_after: 1h0m0s is not between 1s and 10m",
		"jobs:\n  action_timeout: 0.5s\n":  "jobs.action_timeout: 500ms is not between 1s and 10m",
		"jobs:\n  action_timeout: never\n": `jobs.action_timeout: "never" is not a duration`,
	} {
		_, err := Parse([]byte(yaml), t.TempDir())
		require.ErrorContains(t, err, want, yaml)
	}
}

// TestJobsQueueKeys: each queue has its own workers; jobs.workers, the old
// one-queue key, still sets the plan queue's; bad values name key and value.
func TestJobsQueueKeys(t *testing.T) {
	c, err := Parse([]byte("listen: 127.0.0.1:0\n"), t.TempDir())
	require.NoError(t, err)
	require.Equal(t, DefaultControlWorkers, c.Jobs.ControlWorkers)
	require.Equal(t, DefaultWorkers, c.Jobs.PlanWorkers)
	require.Equal(t, DefaultPlanPerRepository, c.Jobs.PlanPerRepository)

	c, err = Parse([]byte("jobs:\n  control_workers: 3\n  plan_workers: 40\n  plan_per_repository: 4\n"), t.TempDir())
	require.NoError(t, err)
	require.Equal(t, 3, c.Jobs.ControlWorkers)
	require.Equal(t, 40, c.Jobs.PlanWorkers)
	require.Equal(t, 4, c.Jobs.PlanPerRepository)

	c, err = Parse([]byte("jobs:\n  workers: 25\n"), t.TempDir())
	require.NoError(t, err)
	require.Equal(t, 25, c.Jobs.PlanWorkers, "the old key sets the plan queue")
	require.Equal(t, DefaultControlWorkers, c.Jobs.ControlWorkers)

	c, err = Parse([]byte("jobs:\n  workers: 25\n  plan_workers: 25\n"), t.TempDir())
	require.NoError(t, err)
	require.Equal(t, 25, c.Jobs.PlanWorkers)

	for yaml, want := range map[string]string{
		"jobs:\n  control_workers: -1\n":                       "jobs.control_workers: -1 is not between 1 and 1000",
		"jobs:\n  control_workers: 5000\n":                     "jobs.control_workers: 5000 is not between 1 and 1000",
		"jobs:\n  plan_workers: -2\n":                          "jobs.plan_workers: -2 is not between 1 and 1000",
		"jobs:\n  workers: -3\n":                               "jobs.workers: -3 is not between 1 and 1000",
		"jobs:\n  workers: 2000\n":                             "jobs.workers: 2000 is not between 1 and 1000",
		"jobs:\n  workers: 5\n  plan_workers: 8\n":             "jobs.workers: 5 differs from jobs.plan_workers: 8",
		"jobs:\n  plan_per_repository: -1\n":                   "jobs.plan_per_repository: -1 is not between 1 and jobs.plan_workers (10)",
		"jobs:\n  plan_workers: 2\n  plan_per_repository: 3\n": "jobs.plan_per_repository: 3 is not between 1 and jobs.plan_workers (2)",
		"jobs:\n  control_workers: many\n":                     `jobs.control_workers`,
	} {
		_, err := Parse([]byte(yaml), t.TempDir())
		require.ErrorContains(t, err, want, yaml)
	}
}
