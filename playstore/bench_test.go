package playstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// BenchmarkRolloutStep measures what one rollout advance costs in Play API
// calls (the goal is four: insert, get track, update track, commit) and in
// wall time against the in-process fake.
func BenchmarkRolloutStep(b *testing.B) {
	tb := setup(b)
	ctx := context.Background()
	reset := func() {
		tb.fake.ConsoleUpdate(pkg, "production",
			playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
			playstoretest.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.05})
	}
	reset()
	before := tb.fake.Calls(playstoretest.MethodEditsInsert) + tb.fake.Calls(playstoretest.MethodTracksGet) +
		tb.fake.Calls(playstoretest.MethodTracksUpdate) + tb.fake.Calls(playstoretest.MethodEditsCommit) + tb.fake.Calls(playstoretest.MethodEditsDelete)
	calls := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%500 == 0 {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		res, err := tb.client.SetFraction(ctx, pkg, "production", 42, 0.05+0.9*float64(i%500+1)/501)
		if err != nil {
			b.Fatal(err)
		}
		calls += res.Calls
	}
	after := tb.fake.Calls(playstoretest.MethodEditsInsert) + tb.fake.Calls(playstoretest.MethodTracksGet) +
		tb.fake.Calls(playstoretest.MethodTracksUpdate) + tb.fake.Calls(playstoretest.MethodEditsCommit) + tb.fake.Calls(playstoretest.MethodEditsDelete)
	b.ReportMetric(float64(calls)/float64(b.N), "calls/step")
	b.ReportMetric(float64(after-before)/float64(b.N), "requests-seen-by-fake/step")
}

// BenchmarkStepReRun is the same step re-run after a crash: read-only,
// three calls (insert, get track, delete edit), nothing committed.
func BenchmarkStepReRun(b *testing.B) {
	tb := setup(b)
	ctx := context.Background()
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
		playstoretest.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.25})
	calls := 0
	for b.Loop() {
		res, err := tb.client.SetFraction(ctx, pkg, "production", 42, 0.25)
		if err != nil || res.Changed {
			b.Fatal(err, res.Changed)
		}
		calls += res.Calls
	}
	b.ReportMetric(float64(calls)/float64(b.N), "calls/step")
}

// TestRolloutStepCostsFourCalls pins the benchmark's figure in an ordinary test.
func TestRolloutStepCostsFourCalls(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
		playstoretest.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1})
	ctx := context.Background()
	for _, step := range []func() (playstore.Result, error){
		func() (playstore.Result, error) { return tb.client.SetFraction(ctx, pkg, "production", 42, 0.25) },
		func() (playstore.Result, error) { return tb.client.Halt(ctx, pkg, "production", 42) },
		func() (playstore.Result, error) { return tb.client.Resume(ctx, pkg, "production", 42, 0.5) },
		func() (playstore.Result, error) { return tb.client.Complete(ctx, pkg, "production", 42) },
	} {
		res, err := step()
		require.NoError(t, err)
		require.Equal(t, 4, res.Calls)
	}
	require.Equal(t, 4*4, tb.fake.Calls(playstoretest.MethodEditsInsert)+tb.fake.Calls(playstoretest.MethodTracksGet)+
		tb.fake.Calls(playstoretest.MethodTracksUpdate)+tb.fake.Calls(playstoretest.MethodEditsCommit)+tb.fake.Calls(playstoretest.MethodEditsDelete),
		"the fake saw exactly the calls the client counted")
}
