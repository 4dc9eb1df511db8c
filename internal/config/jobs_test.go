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
