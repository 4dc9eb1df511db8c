package playstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// TestWireConformsToDiscovery runs a rollout, uploads both ways, vitals and
// failures through the real Go client. Every test's fake sits behind
// wirecheck (setup), which checks every request the client sends and every
// answer the fake gives against the discovery documents; this test makes
// sure one scenario reaches every method the client uses.
func TestWireConformsToDiscovery(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	upload(t, tb, 42, 600<<10) // resumable
	upload(t, tb, 43, 1000)    // multipart
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodTracksGet, Kind: playstoretest.FaultQuota})
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultAfterApply})
	_, err := tb.client.PutRelease(ctx, pkg, "production", playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1,
		ReleaseNotes: []playstore.ReleaseNote{{Language: "en-US", Text: "x"}}, InAppUpdatePriority: 2})
	require.NoError(t, err)
	for _, step := range []func() error{
		func() error { _, err := tb.client.SetFraction(ctx, pkg, "production", 42, 0.25); return err },
		func() error { _, err := tb.client.Halt(ctx, pkg, "production", 42); return err },
		func() error { _, err := tb.client.Resume(ctx, pkg, "production", 42, 0.5); return err },
		func() error { _, err := tb.client.Complete(ctx, pkg, "production", 42); return err },
		func() error {
			_, err := tb.client.Promote(ctx, pkg, "production", "beta", 42, playstore.StatusCompleted, 0)
			return err
		},
	} {
		require.NoError(t, step())
	}
	tb.fake.SetReviewMode(pkg, playstoretest.ReviewNotSentRequired)
	_, err = tb.client.PutRelease(ctx, pkg, "internal", playstore.Release{VersionCodes: []int64{43}, Status: "draft"})
	require.NoError(t, err)
	_, err = tb.client.ReleaseSummaries(ctx, pkg, "production")
	require.NoError(t, err)
	scriptVitals(tb.fake)
	_, err = tb.client.Vitals(ctx, pkg, 42, time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)

	seen := map[string]bool{}
	for _, x := range tb.fake.Exchanges() {
		seen[x.Method] = true
	}
	for _, m := range []string{playstoretest.MethodEditsInsert, playstoretest.MethodEditsDelete, playstoretest.MethodEditsCommit,
		playstoretest.MethodTracksGet, playstoretest.MethodTracksUpdate, playstoretest.MethodBundlesList, playstoretest.MethodBundlesUpload, playstoretest.MethodReleasesList,
		playstoretest.MethodCrashRateGet, playstoretest.MethodCrashRateQuery, playstoretest.MethodAnrRateGet, playstoretest.MethodAnrRateQuery} {
		require.True(t, seen[m], "scenario never exercised %s", m)
	}
}
