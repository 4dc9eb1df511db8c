package gate

import (
	"context"
	"fmt"
	"strings"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/release"
)

// checkExpo is the native gate of an Expo Updates release: it targets one
// runtime version, and devices only take updates published for exactly the
// runtime version of their binary. The binaries with that runtime version
// are the recorded binaries whose version equals it (Expo's appVersion
// policy, or a string runtime version kept equal to the app version); the
// release's commit must have the native fingerprint of every one of them.
// It fails closed like the CodePush check: no commit, no recorded
// fingerprint, or no binary with that runtime version are refusals.
func (g *NativeGate) checkExpo(ctx context.Context, target OTAApp, runtimeVersion, commit string) error {
	if commit == "" {
		return refuse("commit", "", "the update names no commit, so its native fingerprint cannot be compared with the binaries of runtime version %q", runtimeVersion)
	}
	fp, err := g.fingerprint(ctx, target, commit)
	if err != nil {
		return err
	}
	bins, err := g.Store.Binaries(ctx, target.App, target.Platform)
	if err != nil {
		return fmt.Errorf("binaries of %s on %s: %w", target.App, target.Platform, err)
	}
	covered := WithRuntimeVersion(bins, runtimeVersion)
	if len(covered) == 0 {
		return refuse("runtimeVersion", runtimeVersion, "no recorded %s binary of %s has runtime version %q (recorded versions: %s)",
			target.Platform, target.App, runtimeVersion, versionList(bins))
	}
	covered, diffs, err := g.nativeDiffs(ctx, target, covered, fp)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return refuse("runtimeVersion", runtimeVersion, "commit %s changes native code that %d of the %d %s binaries with runtime version %q do not have:\n%s",
			shortSHA(commit), len(diffs), len(covered), target.Platform, runtimeVersion, strings.Join(diffs, "\n"))
	}
	return nil
}

// WithRuntimeVersion returns the binaries whose Expo runtime version is rv:
// those whose version is rv (compared as semantic versions when both are).
func WithRuntimeVersion(bins []release.Binary, rv string) []release.Binary {
	want, wantOK := codepush.NormalizeAppVersion(rv)
	var out []release.Binary
	for _, b := range bins {
		if b.Version == rv {
			out = append(out, b)
			continue
		}
		if v, ok := codepush.NormalizeAppVersion(b.Version); ok && wantOK && v.Compare(want) == 0 {
			out = append(out, b)
		}
	}
	return out
}
