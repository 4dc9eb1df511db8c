package playstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

func TestStartRefusedWhileAnotherReleaseIsInProgress(t *testing.T) {
	t.Parallel()
	for _, other := range []string{"inProgress", "halted"} {
		t.Run(other, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			ctx := context.Background()
			upload(t, tb, 42, 1024)
			before := []playstoretest.Release{
				{Name: "1.4.1", VersionCodes: []int64{41}, Status: "completed"},
				{Name: "hotfix", VersionCodes: []int64{40041}, Status: other, UserFraction: 0.2},
			}
			tb.fake.ConsoleUpdate(pkg, "production", before...)
			commits := tb.fake.Commits(pkg)

			_, err := tb.client.PutRelease(ctx, pkg, "production", playstore.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1})
			require.ErrorIs(t, err, playstore.ErrConflict)
			var ce *playstore.ReleaseConflictError
			require.True(t, errors.As(err, &ce))
			require.Equal(t, []int64{40041}, ce.Other.VersionCodes)
			require.Equal(t, playstore.Status(other), ce.Other.Status)
			require.ErrorContains(t, err, `track "production": release [40041] (status `+other+` at 20%) is in the way of versionCode 42`)
			require.ErrorContains(t, err, "left untouched")

			_, err = tb.client.PutRelease(ctx, pkg, "production", playstore.Release{VersionCodes: []int64{42}, Status: "completed"})
			require.ErrorIs(t, err, playstore.ErrConflict, "completing ours would silently supersede theirs")

			require.Equal(t, before, tb.fake.Track(pkg, "production"), "the other release is untouched")
			require.Equal(t, commits, tb.fake.Commits(pkg))
			require.Equal(t, 0, tb.fake.OpenEdits(pkg), "the refused edit was deleted")
		})
	}
}

func TestOtherReleasesAreWrittenBackUnchanged(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	upload(t, tb, 42, 1024)
	// Someone's draft for the next version sits beside the live release.
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{Name: "1.4.1", VersionCodes: []int64{41}, Status: "completed", ReleaseNotes: []playstoretest.LocalizedText{{Language: "en-US", Text: "Old."}}},
		playstoretest.Release{Name: "1.5.0-draft", VersionCodes: []int64{50}, Status: "draft"},
	)
	_, err := tb.client.PutRelease(ctx, pkg, "production", playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1})
	require.NoError(t, err)
	golden(t, "merge/draft-and-completed-kept.txt", stepRecord(t, tb.fake, "production"))

	_, err = tb.client.PutRelease(ctx, pkg, "production", playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: "draft"})
	require.ErrorIs(t, err, playstore.ErrState, "ours is already rolling out")

	// A completed release stays until ours replaces it on completion.
	_, err = tb.client.SetFraction(ctx, pkg, "production", 42, 0.5)
	require.NoError(t, err)
	require.Len(t, tb.fake.Track(pkg, "production"), 3)
	_, err = tb.client.Complete(ctx, pkg, "production", 42)
	require.NoError(t, err)
	require.Equal(t, []playstoretest.Release{
		{Name: "1.5.0-draft", VersionCodes: []int64{50}, Status: "draft"},
		{Name: "1.4.2", VersionCodes: []int64{42}, Status: "completed"},
	}, tb.fake.Track(pkg, "production"))
}

func TestHaltNeverTouchesOthers(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
		playstoretest.Release{VersionCodes: []int64{43}, Status: "inProgress", UserFraction: 0.3},
	)
	_, err := tb.client.Halt(ctx, pkg, "production", 41)
	require.ErrorIs(t, err, playstore.ErrConflict, "a completed release under someone else's staged rollout is not halted")
	_, err = tb.client.Halt(ctx, pkg, "production", 42)
	require.ErrorIs(t, err, playstore.ErrNotFound)
	require.Equal(t, playstoretest.Release{VersionCodes: []int64{43}, Status: "inProgress", UserFraction: 0.3}, tb.fake.Track(pkg, "production")[1])
}

func TestOurReleaseKeepsFieldsThePackageDoesNotModel(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	ct := &playstoretest.CountryTargeting{Countries: []string{"DE", "AT"}}
	// Someone limited our rollout to two countries in the Console.
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
		playstoretest.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1, CountryTargeting: ct})

	_, err := tb.client.SetFraction(ctx, pkg, "production", 42, 0.25)
	require.NoError(t, err)
	_, err = tb.client.Halt(ctx, pkg, "production", 42)
	require.NoError(t, err)
	_, err = tb.client.Resume(ctx, pkg, "production", 42, 0)
	require.NoError(t, err)
	require.Equal(t, ct, tb.fake.Track(pkg, "production")[1].CountryTargeting, "targeting survives advance, halt and resume")

	_, err = tb.client.Complete(ctx, pkg, "production", 42)
	require.NoError(t, err, "Play allows targeting on inProgress only; completing drops it")
	require.Equal(t, []playstoretest.Release{{VersionCodes: []int64{42}, Status: "completed"}}, tb.fake.Track(pkg, "production"))
}
