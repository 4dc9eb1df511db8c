package androidlane_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// TestAndroidLaneHoldsWhileChangesInReview: a scheduled step never cancels
// changes someone else has in review. While a release of the app is in
// review the step's commit is refused (changesInReviewBehavior=
// ERROR_IF_IN_REVIEW); the lane holds at its percentage with the reason and
// moves on once the review has ended.
func TestAndroidLaneHoldsWhileChangesInReview(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			testHoldsWhileChangesInReview(t, e)
		})
	}
}

func testHoldsWhileChangesInReview(t *testing.T, e store.Engine) {
	ctx := context.Background()
	b := setupAndroid(t, e, nil)
	b.vitals(0.002, 0.001, 5000)
	require.NoError(t, b.work(t))
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 10, b.status(t).Percent)

	// A beta release made in the Play Console goes to review.
	b.fake.ConsoleUpdate(androidPkg, playstore.TrackBeta, playstoretest.Release{Name: "1.5.0-beta (43)", VersionCodes: []int64{43}, Status: playstoretest.StatusCompleted})
	b.fake.SetLifecycleState(androidPkg, 43, playstoretest.LifecycleInReview)

	b.advance(time.Hour)
	require.Error(t, b.ro.Pass(ctx))
	st := b.status(t)
	require.Equal(t, 10, st.Percent, "the step did not happen")
	require.NotEqual(t, release.StateHalted, st.State)
	require.Contains(t, st.Reason, "changes of the app are in review")
	require.Equal(t, b.now.Add(time.Minute), st.NextEligibleAt, "tried again later")
	require.Zero(t, b.fake.ReviewsCancelled(androidPkg), "the review in progress was left alone")
	require.Equal(t, 0.1, b.fake.Track(androidPkg, playstore.TrackProduction)[1].UserFraction)

	// Still in review a minute later: still holding.
	b.advance(time.Minute)
	require.Error(t, b.ro.Pass(ctx))
	require.Equal(t, 10, b.status(t).Percent)

	// The review ends; the next pass takes the step.
	b.fake.SetLifecycleState(androidPkg, 43, playstoretest.LifecyclePublished)
	b.advance(time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 25, b.status(t).Percent)
	require.Equal(t, 0.25, b.fake.Track(androidPkg, playstore.TrackProduction)[1].UserFraction)
	require.Zero(t, b.fake.ReviewsCancelled(androidPkg))
}

// TestAndroidLaneHaltsAFullRollout: a halt command on a lane at 100 %
// halts the fully rolled-out release on Play (the previous one takes its
// place); a resume serves it to everyone again.
func TestAndroidLaneHaltsAFullRollout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAndroid(t, store.SQLite, nil)
	require.NoError(t, b.work(t))
	require.NoError(t, b.ro.Pass(ctx))
	_, err := b.ro.Command(ctx, b.lane.ID, release.CmdComplete, "token:alice", "looks good")
	require.NoError(t, err)
	require.Equal(t, release.StateCompleted, b.status(t).State)
	require.Equal(t, []playstoretest.Release{{Name: "1.4.0 (42)", VersionCodes: []int64{42}, Status: "completed", InAppUpdatePriority: 2,
		ReleaseNotes: b.fake.Track(androidPkg, playstore.TrackProduction)[0].ReleaseNotes}}, b.fake.Track(androidPkg, playstore.TrackProduction))

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "token:alice", "crash on start for Android 15")
	require.NoError(t, err)
	st := b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, 100, st.Percent)
	prod := b.fake.Track(androidPkg, playstore.TrackProduction)
	require.Len(t, prod, 1)
	require.Equal(t, "halted", prod[0].Status)
	require.Zero(t, prod[0].UserFraction, "a halted full rollout has no fraction")

	// A pass leaves a halted lane alone.
	b.advance(time.Hour)
	before := b.calls()
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, before, b.calls())

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdResume, "token:alice", "hotfixed server side")
	require.NoError(t, err)
	require.Equal(t, release.StateCompleted, b.status(t).State)
	require.Equal(t, "completed", b.fake.Track(androidPkg, playstore.TrackProduction)[0].Status)
}
