package sandbox_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore/appstoretest/specvalidate"
	"github.com/swapjoy/releasepilot/internal/sandbox"
	"github.com/swapjoy/releasepilot/playstore/playstoretest/wirecheck"
)

// TestDemo runs the whole product against the fakes: a store release through
// TestFlight and the App Store phased release (completed by command) and
// through the Play staged rollout, then a JS-only release over the air on
// both platforms, device update checks that receive it, an OTA tag refused
// for its native change with the files that differ, and a release whose
// iOS phased release its Sentry gate halts when crash-free sessions drop.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	// Every request to App Store Connect and Play, and every answer, is
	// checked against Apple's OpenAPI spec and Google's discovery documents.
	wrap := func(kind string, h http.Handler) http.Handler {
		if kind == "appstore" {
			return specvalidate.Handler(t, h)
		}
		return wirecheck.Handler(t, h)
	}
	err := sandbox.Run(ctx, &out, sandbox.Options{DataDir: t.TempDir(), Soak: time.Second, Timeout: 2 * time.Minute, WrapFakes: wrap})
	require.NoError(t, err, out.String())
	text := out.String()
	for _, want := range []string{
		"[ios] planned as a store lane: no ios binary has been recorded",
		"[ios] in TestFlight for [QA Public beta]",
		"[ios] ios.app store approved",
		"[ios] rolled out to 1%",
		"[ios] complete by command: 100% (completed)",
		"[ios] planned as an OTA lane: JS-only change",
		"[ios] v1 is available (target 1.0.0)",
		"[android] planned as a store lane: no android binary has been recorded",
		"[android] rolled out to 10%",
		"[android] rolled out to 100%",
		"[android] planned as an OTA lane: JS-only change",
		"[android] v1 is available (target 1.0.0)",
		// The OTA tag with a native change is refused, naming the files.
		"[ios] planned as a refused lane: OTA refused: native code differs from the live ios binary 1.0.0 (1): ios: native change\n     file changed: ios/Podfile",
		"[android] planned as a refused lane: OTA refused: native code differs from the live android binary 1.0.0 (2): android: native change\n     file changed: android/app/build.gradle",
		// The crash spike halts the iOS phased release; Android completes.
		"[sentry] release com.acme.demo@1.1.0+2: a crash spike, 91% of sessions crash-free; nobody touches the release",
		"[ios] HALTED by its gate, nobody acting: gate sentry crash_free_rate(session) failed 2 times in a row (failure_limit 1): 0.91 is below min 0.99 over ",
		`release:"com.acme.demo@1.1.0+2"`,
		"[ios] the phased release is PAUSED on App Store Connect; a person resumes it",
	} {
		require.Contains(t, text, want)
	}
	// 1.1.0 reached everyone on Android while its iOS rollout stood halted.
	v110 := text[strings.Index(text, "5. Tag v1.1.0"):]
	require.Contains(t, v110, "[android] rolled out to 100%")
	require.NotContains(t, v110, "complete by command")
}
