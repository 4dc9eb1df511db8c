package sandbox_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/sandbox"
)

// TestDemo runs the whole product against the fakes: a store release through
// the Play staged rollout, then a JS-only release over the air, and a device
// update check that receives it.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := sandbox.Run(ctx, &out, sandbox.Options{DataDir: t.TempDir(), Soak: time.Second, Timeout: 2 * time.Minute})
	require.NoError(t, err, out.String())
	text := out.String()
	for _, want := range []string{
		"[android] planned as a store lane: no android binary has been recorded",
		"[android] rolled out to 10%",
		"[android] rolled out to 100%",
		"[android] planned as an OTA lane: JS-only change",
		"is available (target 1.0.0)",
	} {
		require.Contains(t, text, want)
	}
}
