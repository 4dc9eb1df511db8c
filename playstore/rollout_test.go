package playstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

func upload(t *testing.T, tb *testBundle, vc int64, size int) playstore.UploadResult {
	t.Helper()
	data := playstoretest.FakeBundle(vc, size)
	res, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: vc, Content: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	return res
}

// TestRollout drives versionCode 42 through 10 → 25 → halt → resume → 50 →
// 100 % and pins the exact request and track after each step.
func TestRollout(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()

	// 600 KiB with 256 KiB chunks: a resumable upload in three chunks.
	up := upload(t, tb, 42, 600<<10)
	require.False(t, up.Skipped)
	require.Equal(t, []int64{41, 42}, tb.fake.Bundles(pkg))
	require.Equal(t, 4, up.Calls, "insert, list bundles, upload, commit (chunks are one upload call)")
	require.Equal(t, 4, tb.fake.Calls(playstoretest.MethodBundlesUpload), "session start and three chunks")

	again := upload(t, tb, 42, 600<<10)
	require.True(t, again.Skipped, "the versionCode is in the app: nothing is sent again")
	require.Equal(t, up.SHA256, again.SHA256)
	require.Equal(t, 4, tb.fake.Calls(playstoretest.MethodBundlesUpload), "no upload request for the second run")

	res, err := tb.client.PutRelease(ctx, pkg, "production", playstore.Release{
		Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusInProgress, UserFraction: 0.1,
		ReleaseNotes:        []playstore.ReleaseNote{{Language: "en-US", Text: "Faster swaps."}, {Language: "de-DE", Text: "Schnelleres Tauschen."}},
		InAppUpdatePriority: 3,
	})
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, 4, res.Calls)
	golden(t, "rollout/01-start-10.txt", stepRecord(t, tb.fake, "production"))

	res, err = tb.client.SetFraction(ctx, pkg, "production", 42, 0.25)
	require.NoError(t, err)
	require.Equal(t, 4, res.Calls, "a rollout step is insert, get track, update track, commit")
	golden(t, "rollout/02-advance-25.txt", stepRecord(t, tb.fake, "production"))

	res, err = tb.client.Halt(ctx, pkg, "production", 42)
	require.NoError(t, err)
	require.True(t, res.Changed)
	golden(t, "rollout/03-halt-25.txt", stepRecord(t, tb.fake, "production"))

	commits := tb.fake.Commits(pkg)
	res, err = tb.client.Halt(ctx, pkg, "production", 42)
	require.NoError(t, err)
	require.False(t, res.Changed, "halting a halted release commits nothing")
	require.Equal(t, 3, res.Calls, "insert, get track, delete edit")
	require.Equal(t, commits, tb.fake.Commits(pkg))

	_, err = tb.client.SetFraction(ctx, pkg, "production", 42, 0.5)
	require.ErrorIs(t, err, playstore.ErrState, "a halted release is resumed, not advanced")

	_, err = tb.client.Resume(ctx, pkg, "production", 42, 0.1)
	require.ErrorIs(t, err, playstore.ErrInvalid, "resume below the halted fraction")

	res, err = tb.client.Resume(ctx, pkg, "production", 42, 0)
	require.NoError(t, err)
	require.True(t, res.Changed)
	golden(t, "rollout/04-resume-25.txt", stepRecord(t, tb.fake, "production"))

	res, err = tb.client.SetFraction(ctx, pkg, "production", 42, 0.5)
	require.NoError(t, err)
	golden(t, "rollout/05-advance-50.txt", stepRecord(t, tb.fake, "production"))

	_, err = tb.client.SetFraction(ctx, pkg, "production", 42, 0.25)
	require.ErrorIs(t, err, playstore.ErrInvalid, "a rollout is never lowered")

	res, err = tb.client.Complete(ctx, pkg, "production", 42)
	require.NoError(t, err)
	require.True(t, res.Changed)
	golden(t, "rollout/06-complete-100.txt", stepRecord(t, tb.fake, "production"))
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "completed",
		ReleaseNotes:        []playstoretest.LocalizedText{{Language: "en-US", Text: "Faster swaps."}, {Language: "de-DE", Text: "Schnelleres Tauschen."}},
		InAppUpdatePriority: 3}}, tb.fake.Track(pkg, "production"))

	res, err = tb.client.Complete(ctx, pkg, "production", 42)
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.Equal(t, 0, tb.fake.OpenEdits(pkg), "every edit is committed or deleted")
	require.Equal(t, 1, tb.fake.TokensIssued(), "the token is cached")

	st := tb.client.Stats()
	// Two advances at four calls, two refusals at three (insert, get, delete).
	require.Equal(t, playstore.OpStats{Ops: 4, Calls: 14}, st["SetFraction"])
}

func TestPromoteAndNotes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	upload(t, tb, 42, 1024) // one chunk: multipart

	_, err := tb.client.PutRelease(ctx, pkg, "internal", playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusCompleted,
		ReleaseNotes: []playstore.ReleaseNote{{Language: "en-US", Text: "Beta."}}})
	require.NoError(t, err)
	_, err = tb.client.SetReleaseNotes(ctx, pkg, "internal", 42, []playstore.ReleaseNote{{Language: "en-US", Text: "Faster swaps."}, {Language: "fr-FR", Text: "Échanges plus rapides."}})
	require.NoError(t, err)

	res, err := tb.client.Promote(ctx, pkg, "internal", "production", 42, playstore.StatusInProgress, 0.1)
	require.NoError(t, err)
	require.True(t, res.Changed)
	golden(t, "promote/internal-to-production-10.txt", stepRecord(t, tb.fake, "production"))
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "completed",
		ReleaseNotes: []playstoretest.LocalizedText{{Language: "en-US", Text: "Faster swaps."}, {Language: "fr-FR", Text: "Échanges plus rapides."}}}},
		tb.fake.Track(pkg, "internal"), "the source track is left alone")

	res, err = tb.client.Promote(ctx, pkg, "internal", "production", 42, playstore.StatusInProgress, 0.1)
	require.NoError(t, err)
	require.False(t, res.Changed, "promoting again changes nothing")
}

func TestInputErrorsNameFieldAndValue(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		r    playstore.Release
		want string
	}{
		{playstore.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 1}, "userFraction 1: must be strictly between 0 and 1"},
		{playstore.Release{VersionCodes: []int64{42}, Status: "inProgress"}, "userFraction 0: must be strictly between 0 and 1"},
		{playstore.Release{VersionCodes: []int64{42}, Status: "completed", UserFraction: 0.5}, "userFraction 0.5 with status completed"},
		{playstore.Release{VersionCodes: []int64{42}, Status: "Completed"}, `status "Completed"`},
		{playstore.Release{VersionCodes: []int64{42}, Status: "draft", InAppUpdatePriority: 6}, "inAppUpdatePriority 6"},
		{playstore.Release{Status: "draft"}, "versionCodes is empty"},
	} {
		_, err := tb.client.PutRelease(ctx, pkg, "production", tc.r)
		require.ErrorIs(t, err, playstore.ErrInvalid)
		require.ErrorContains(t, err, tc.want)
	}
	_, err := tb.client.SetFraction(ctx, pkg, "production", 42, 1.0)
	require.ErrorContains(t, err, "userFraction 1")
	require.Zero(t, tb.fake.Calls(playstoretest.MethodEditsInsert), "bad input never reaches Play")

	_, err = tb.client.Halt(ctx, pkg, "production", 99)
	require.True(t, errors.Is(err, playstore.ErrNotFound), "%v", err)
}

func TestReleaseSummariesTellCommittedFromLive(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	upload(t, tb, 42, 1024)
	tb.fake.SetReviewMode(pkg, playstoretest.ReviewNotSentRequired)
	_, err := tb.client.PutRelease(ctx, pkg, "production", playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1})
	require.NoError(t, err)
	edits := tb.fake.Calls(playstoretest.MethodEditsInsert)

	sums, err := tb.client.ReleaseSummaries(ctx, pkg, "production")
	require.NoError(t, err)
	require.Equal(t, []playstore.ReleaseSummary{
		{Name: "1.4.1", VersionCodes: []int64{41}, State: playstore.LifecyclePublished},
		{Name: "1.4.2", VersionCodes: []int64{42}, State: playstore.LifecycleNotSentForReview},
	}, sums)
	require.Equal(t, edits, tb.fake.Calls(playstoretest.MethodEditsInsert), "no edit for a summary read")

	tb.fake.SetLifecycleState(pkg, 42, playstoretest.LifecycleInReview)
	sums, err = tb.client.ReleaseSummaries(ctx, pkg, "production")
	require.NoError(t, err)
	require.Equal(t, playstore.LifecycleInReview, sums[1].State)
}

func TestPromoteRefusesBadTargetsBeforeCallingPlay(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	_, err := tb.client.Promote(ctx, pkg, "beta", "beta", 41, playstore.StatusCompleted, 0)
	require.ErrorIs(t, err, playstore.ErrInvalid)
	_, err = tb.client.Promote(ctx, pkg, "beta", "production", 41, playstore.StatusHalted, 0.1)
	require.ErrorIs(t, err, playstore.ErrInvalid)
	_, err = tb.client.Promote(ctx, pkg, "beta", "production", 41, playstore.StatusInProgress, 1)
	require.ErrorContains(t, err, "userFraction 1")
	require.Zero(t, tb.fake.Calls(playstoretest.MethodEditsInsert))

	_, err = tb.client.Promote(ctx, pkg, "beta", "production", 41, playstore.StatusCompleted, 0)
	require.ErrorIs(t, err, playstore.ErrNotFound, "41 is not on beta")
	require.Equal(t, 0, tb.fake.OpenEdits(pkg))
}

// TestCompleteLeavesAHaltedReleaseHalted: a release halted outside the
// caller (in the Play Console) is not completed by Complete — the track is
// read inside the edit, so the refusal costs no extra call and commits
// nothing. Resume with fraction 1, a person's decision, serves it to
// everyone; run again, it changes nothing.
func TestCompleteLeavesAHaltedReleaseHalted(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{Name: "1.4.1", VersionCodes: []int64{41}, Status: "completed"},
		playstoretest.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: "halted", UserFraction: 0.5})
	halted := tb.fake.TrackJSON(pkg, "production")

	res, err := tb.client.Complete(ctx, pkg, "production", 42)
	var se *playstore.StateError
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, playstore.ErrState)
	require.Equal(t, playstore.StatusHalted, se.Status)
	require.Equal(t, "Complete", se.Op)
	require.False(t, res.Changed)
	require.Equal(t, 3, res.Calls, "insert, get track, delete edit: the track read inside the edit is the check")
	require.Zero(t, tb.fake.Commits(pkg))
	require.Equal(t, string(halted), string(tb.fake.TrackJSON(pkg, "production")), "still halted")
	require.Equal(t, 0, tb.fake.OpenEdits(pkg))

	_, err = tb.client.Resume(ctx, pkg, "production", 42, 1.5)
	require.ErrorIs(t, err, playstore.ErrInvalid)

	res, err = tb.client.Resume(ctx, pkg, "production", 42, 1)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, 4, res.Calls)
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "completed"}}, tb.fake.Track(pkg, "production"),
		"served to everyone; the older completed release left the track")

	res, err = tb.client.Resume(ctx, pkg, "production", 42, 1)
	require.NoError(t, err)
	require.False(t, res.Changed, "already completed")
	require.Equal(t, 3, res.Calls)
	res, err = tb.client.Complete(ctx, pkg, "production", 42)
	require.NoError(t, err)
	require.False(t, res.Changed)

	// An inProgress release is completed by Complete, not by Resume.
	tb.fake.ConsoleUpdate(pkg, "production", playstoretest.Release{Name: "1.4.3", VersionCodes: []int64{43}, Status: "inProgress", UserFraction: 0.2})
	_, err = tb.client.Resume(ctx, pkg, "production", 43, 1)
	require.ErrorAs(t, err, &se)
	require.Equal(t, playstore.StatusInProgress, se.Status)
}
