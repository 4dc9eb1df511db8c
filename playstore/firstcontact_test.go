package playstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// TestEmptyTrackIsATrackWithoutReleases: Play answers edits.tracks.get of
// a track that never had a release with 404 trackEmpty ("Track not found:
// no APK version codes in the specified track."). That is a track with no
// releases: reading it gives none, and a first release can be put on it.
func TestEmptyTrackIsATrackWithoutReleases(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.fake.SeedBundles(pkg, 42)

	ts, err := tb.client.Track(ctx, pkg, playstore.TrackInternal)
	require.NoError(t, err)
	require.Equal(t, playstore.TrackState{Track: playstore.TrackInternal}, ts)
	var sawEmpty bool
	for _, x := range tb.fake.Exchanges() {
		sawEmpty = sawEmpty || (x.Method == playstoretest.MethodTracksGet && x.Status == 404)
	}
	require.True(t, sawEmpty, "the fake answers 404 trackEmpty for a never-used track")

	res, err := tb.client.PutRelease(ctx, pkg, playstore.TrackInternal, playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusCompleted})
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "completed"}}, tb.fake.Track(pkg, playstore.TrackInternal))

	// A track Play does not know at all is still not found.
	_, err = tb.client.Track(ctx, pkg, "nightly")
	require.ErrorIs(t, err, playstore.ErrNotFound)
}

// TestRolloutStepsNeverCancelAReview: commits that only move a rollout
// (fraction, halt, resume, complete) send changesInReviewBehavior=
// ERROR_IF_IN_REVIEW, so a scheduled step never cancels changes someone
// else has in review: while a release is in review they fail with
// ErrChangesInReview and change nothing; afterwards they go through. A
// commit without the flag (Play's default) cancels the review.
func TestRolloutStepsNeverCancelAReview(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.fake.SeedBundles(pkg, 42, 43)
	_, err := tb.client.PutRelease(ctx, pkg, playstore.TrackProduction, playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusInProgress, UserFraction: 0.1})
	require.NoError(t, err)
	// Someone else's beta release is in review.
	tb.fake.ConsoleUpdate(pkg, playstore.TrackBeta, playstoretest.Release{Name: "1.5.0", VersionCodes: []int64{43}, Status: playstoretest.StatusCompleted})
	tb.fake.SetLifecycleState(pkg, 43, playstoretest.LifecycleInReview)
	before := tb.fake.Track(pkg, playstore.TrackProduction)

	for name, step := range map[string]func() error{
		"SetFraction": func() error {
			_, err := tb.client.SetFraction(ctx, pkg, playstore.TrackProduction, 42, 0.25)
			return err
		},
		"Halt":     func() error { _, err := tb.client.Halt(ctx, pkg, playstore.TrackProduction, 42); return err },
		"Complete": func() error { _, err := tb.client.Complete(ctx, pkg, playstore.TrackProduction, 42); return err },
	} {
		err := step()
		require.ErrorIs(t, err, playstore.ErrChangesInReview, name)
		require.False(t, playstore.IsTemporary(err), "%s: not retried at once; the caller tries again later", name)
	}
	require.Equal(t, before, tb.fake.Track(pkg, playstore.TrackProduction), "nothing changed")
	require.Zero(t, tb.fake.ReviewsCancelled(pkg))
	require.Zero(t, tb.fake.OpenEdits(pkg), "the refused edits were discarded")
	var commits []string
	for _, x := range tb.fake.Exchanges() {
		if x.Method == playstoretest.MethodEditsCommit && x.Status == 400 {
			commits = append(commits, x.Query)
		}
	}
	require.Len(t, commits, 3)
	for _, q := range commits {
		require.Contains(t, q, "changesInReviewBehavior=ERROR_IF_IN_REVIEW")
	}

	// The review ends: the step goes through.
	tb.fake.SetLifecycleState(pkg, 43, playstoretest.LifecyclePublished)
	_, err = tb.client.SetFraction(ctx, pkg, playstore.TrackProduction, 42, 0.25)
	require.NoError(t, err)
	require.Equal(t, 0.25, tb.fake.Track(pkg, playstore.TrackProduction)[1].UserFraction)

	// A commit that is not a rollout step keeps Play's default, which
	// cancels a review in progress: the fake models both behaviours.
	tb.fake.SetLifecycleState(pkg, 43, playstoretest.LifecycleInReview)
	_, err = tb.client.SetReleaseNotes(ctx, pkg, playstore.TrackProduction, 42, []playstore.ReleaseNote{{Language: "en-US", Text: "Fixes"}})
	require.NoError(t, err)
	require.Equal(t, 1, tb.fake.ReviewsCancelled(pkg))
}

// TestVitalsUsersAreNotSummedAndRatesArePercentages: the Reporting API
// says its daily distinct users must not be aggregated further (a user
// active on two days would count twice), and its discovery document gives
// every rate as a percentage of distinct users. Two days of 1,000 users are
// at least 1,000 users, not 2,000; "0.4" is 0.4 %.
func TestVitalsUsersAreNotSummedAndRatesArePercentages(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, playstoretest.VitalsSeries{FreshUntil: day(18), Points: []playstoretest.VitalsPoint{
		{Day: day(16), VersionCode: 42, Rate: 0.004, DistinctUsers: 1000},
		{Day: day(17), VersionCode: 42, Rate: 0.002, DistinctUsers: 3000},
	}})
	v, err := tb.client.Vitals(context.Background(), pkg, 42, day(16))
	require.NoError(t, err)
	require.Equal(t, int64(1000), v.Crash.MinDailyUsers)
	require.InDelta(t, (0.004*1000+0.002*3000)/4000, v.Crash.Rate, 1e-12, "user-weighted, as Play's own 7-day rates")
	require.InDelta(t, 0.004, v.Crash.Daily[0].Rate, 1e-12)
	var answer string
	for _, x := range tb.fake.Exchanges() {
		if x.Method == playstoretest.MethodCrashRateQuery {
			answer = string(x.ResponseBody)
		}
	}
	require.Contains(t, answer, `"value":"0.4"`, "the fake answers in percent, as the discovery document says")

	// A client told the rates are fractions reads "0.4" as 40 %; one that
	// reads a percentage over 100 says the unit is wrong.
	c, err := playstore.New(context.Background(), playstore.Config{CredentialsJSON: tb.saJSON, Endpoint: tb.url + "/", ReportingEndpoint: tb.url + "/",
		VitalsUnit: playstore.VitalsFraction})
	require.NoError(t, err)
	v, err = c.Vitals(context.Background(), pkg, 42, day(16))
	require.NoError(t, err)
	require.InDelta(t, 0.4, v.Crash.Daily[0].Rate, 1e-12)
	tb.fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, playstoretest.VitalsSeries{FreshUntil: day(18), Points: []playstoretest.VitalsPoint{
		{Day: day(16), VersionCode: 42, Rate: 2, DistinctUsers: 1000}}})
	_, err = tb.client.Vitals(context.Background(), pkg, 42, day(16))
	require.ErrorContains(t, err, "playstore.vitals_unit")
	_, err = playstore.New(context.Background(), playstore.Config{CredentialsJSON: tb.saJSON, VitalsUnit: "permille"})
	require.ErrorIs(t, err, playstore.ErrInvalid)
}

// TestHaltAFullyRolledOutRelease: Play lets a completed release be halted
// through the Publishing API (support.google.com/googleplay/android-developer
// /answer/16285429): the previous fully rolled-out release takes its place,
// and a resume serves it to everyone again, or to a fraction. Play refuses
// it for the first release of a track and on internal testing tracks.
func TestHaltAFullyRolledOutRelease(t *testing.T) {
	t.Parallel()
	tb := setup(t) // 41 completed on production
	ctx := context.Background()
	tb.fake.SeedBundles(pkg, 42)
	_, err := tb.client.PutRelease(ctx, pkg, playstore.TrackProduction, playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusCompleted})
	require.NoError(t, err)

	res, err := tb.client.Halt(ctx, pkg, playstore.TrackProduction, 42)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "halted"}}, tb.fake.Track(pkg, playstore.TrackProduction))
	res, err = tb.client.Halt(ctx, pkg, playstore.TrackProduction, 42)
	require.NoError(t, err)
	require.False(t, res.Changed, "halted already")

	_, err = tb.client.Resume(ctx, pkg, playstore.TrackProduction, 42, 0)
	require.NoError(t, err)
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "completed"}}, tb.fake.Track(pkg, playstore.TrackProduction))

	// Halted again, then resumed to a fraction.
	_, err = tb.client.Halt(ctx, pkg, playstore.TrackProduction, 42)
	require.NoError(t, err)
	_, err = tb.client.Resume(ctx, pkg, playstore.TrackProduction, 42, 0.2)
	require.NoError(t, err)
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.2}}, tb.fake.Track(pkg, playstore.TrackProduction))

	// The first release of a track has nothing to fall back to.
	_, err = tb.client.PutRelease(ctx, pkg, playstore.TrackBeta, playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusCompleted})
	require.NoError(t, err)
	_, err = tb.client.Halt(ctx, pkg, playstore.TrackBeta, 42)
	require.ErrorContains(t, err, "first release on a track cannot be halted")
	require.Equal(t, "completed", tb.fake.Track(pkg, playstore.TrackBeta)[0].Status)
}
