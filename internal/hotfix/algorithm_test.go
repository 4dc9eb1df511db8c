package hotfix_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/hotfix"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// TestHotfixToBinaryOfAnOlderAlgorithm: a binary recorded under an older
// fingerprint algorithm (a hash no current fingerprint can equal) is judged
// under the current rules: its commit is fingerprinted again through
// GitHub, as the planner does for the live binary, so a JS-only hotfix
// reaches it and a native one is refused naming the files. When its commit
// cannot be read, the hotfix is refused, not waved through.
func TestHotfixToBinaryOfAnOlderAlgorithm(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			ios := release.IOS
			// 1.4.1 was built from fix, and recorded by releasepilot-native/1.
			require.NoError(t, b.st.SaveFingerprint(b.ctx, store.Fingerprint{App: "acme", Platform: ios, Commit: b.fix,
				Algorithm: "releasepilot-native/1", Hash: "v1-fix", Data: []byte(`{}`), CreatedAt: b.now}))
			_, err := b.st.RecordBinary(b.ctx, release.Binary{App: "acme", Platform: ios, Version: "1.4.1", BuildNumber: "41", Commit: b.fix,
				Fingerprint: "v1-fix", CreatedAt: b.now.Add(1)})
			require.NoError(t, err)

			r, err := b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: b.fix2, TargetRange: "1.4.1", Package: bundle(t, "fix 2")})
			require.NoError(t, err, "JS only against the binary's commit under the current rules")
			require.Equal(t, "1.4.1", r.AppVersion)
			stored, err := b.st.GetFingerprint(b.ctx, "acme", ios, b.fix, nativecheck.Algorithm)
			require.NoError(t, err, "the binary's commit was fingerprinted again and recorded")
			require.Len(t, stored.Hash, 64)

			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: b.nat, TargetRange: "1.4.1", Package: bundle(t, "native")})
			require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "%v", err)
			require.ErrorContains(t, err, "binary 1.4.1 (build 41")
			require.ErrorContains(t, err, "file changed: ios/Podfile")

			// Without a range: every binary the commit can run on, the
			// one of the older algorithm included.
			r, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: b.fix2, Package: bundle(t, "fix 2 everywhere")})
			require.NoError(t, err)
			require.Equal(t, "1.4.0 || 1.4.1", r.AppVersion)

			// 1.4.3, also of the older algorithm, while GitHub is down:
			// nothing shows it matches, so it is refused with the reason.
			other := b.gh.Repo("acme/mobile").Commit("1.4.2 build", map[string]string{"ios/Podfile": "platform :ios, '15.0'\n", "android/build.gradle": "x\n",
				"src/App.tsx": "v4\n", "package.json": `{"name":"acme"}`}, b.fix2)
			_, err = b.st.RecordBinary(b.ctx, release.Binary{App: "acme", Platform: ios, Version: "1.4.3", BuildNumber: "43", Commit: other,
				Fingerprint: "v1-other", CreatedAt: b.now.Add(3)})
			require.NoError(t, err)
			b.gh.Fail = func(r *http.Request) int { return http.StatusBadGateway }
			_, err = b.h.Hotfix(b.ctx, hotfix.Input{App: "acme", Platform: ios, Commit: b.fix2, TargetRange: "1.4.3", Package: bundle(t, "unreadable")})
			require.Equal(t, codepush.KindConflict, codepush.KindOf(err), "%v", err)
			require.ErrorContains(t, err, "binary 1.4.3 (build 43")
			require.ErrorContains(t, err, "not recorded under the current rules")
			b.gh.Fail = nil
		})
	}
}
