package playstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// atTen starts versionCode 42 at 10 % on production.
func atTen(t *testing.T, tb *testBundle) {
	t.Helper()
	upload(t, tb, 42, 1024)
	_, err := tb.client.PutRelease(context.Background(), pkg, "production", playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1})
	require.NoError(t, err)
}

func wantProduction(fraction float64, status string) []playstoretest.Release {
	r := playstoretest.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: status, UserFraction: fraction}
	return []playstoretest.Release{{Name: "1.4.1", VersionCodes: []int64{41}, Status: "completed"}, r}
}

// commitQueries returns the query strings of every commit sent so far.
func commitQueries(tb *testBundle) []url.Values {
	var qs []url.Values
	for _, x := range tb.fake.Exchanges() {
		if x.Method == playstoretest.MethodEditsCommit {
			q, _ := url.ParseQuery(x.Query)
			qs = append(qs, q)
		}
	}
	return qs
}

func TestCommitFailsAfterPlayAppliedIt(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	commits := tb.fake.Commits(pkg)
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultAfterApply})

	res, err := tb.client.SetFraction(context.Background(), pkg, "production", 42, 0.25)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, commits+1, tb.fake.Commits(pkg), "the change was applied once, never re-committed")
	require.Equal(t, 7, res.Calls, "insert, get, put, commit (500); insert, get (already 25 %), delete")
	require.Equal(t, wantProduction(0.25, "inProgress"), tb.fake.Track(pkg, "production"))
	require.Equal(t, 0, tb.fake.OpenEdits(pkg))
}

func TestCommitFailsBeforeApplyIsRedoneFromAFreshRead(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	commits := tb.fake.Commits(pkg)
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultUnavailable})

	res, err := tb.client.Halt(context.Background(), pkg, "production", 42)
	require.NoError(t, err)
	require.Equal(t, 8, res.Calls, "insert, get, put, commit (503); insert, get, put, commit")
	require.Equal(t, commits+1, tb.fake.Commits(pkg))
	require.Equal(t, wantProduction(0.1, "halted"), tb.fake.Track(pkg, "production"))
}

func TestExpiredEditStartsAFreshOne(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	// The edit expires while the client holds it (a long GC pause, a slow disk).
	tb.fake.Before(playstoretest.MethodTracksUpdate, func() { tb.fake.Advance(2 * time.Hour) })

	res, err := tb.client.SetFraction(context.Background(), pkg, "production", 42, 0.25)
	require.NoError(t, err)
	require.Equal(t, 7, res.Calls, "insert, get, put (expired); insert, get, put, commit")
	require.True(t, res.Changed, "the step needed doing, though the first edit never got to write it")
	require.Equal(t, wantProduction(0.25, "inProgress"), tb.fake.Track(pkg, "production"))
	var sawExpired bool
	for _, x := range tb.fake.Exchanges() {
		sawExpired = sawExpired || bytes.Contains(x.ResponseBody, []byte("This edit has expired, please create a new Edit."))
	}
	require.True(t, sawExpired)
}

func TestConcurrentEditCommittedBySomeoneElse(t *testing.T) {
	t.Parallel()
	t.Run("unrelated change is kept and ours re-applied", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		atTen(t, tb)
		other := otherClient(t, tb)
		// Another user of the API commits to beta between our PUT and commit.
		tb.fake.Before(playstoretest.MethodEditsCommit, func() {
			_, err := other.PutRelease(context.Background(), pkg, "beta", playstore.Release{VersionCodes: []int64{42}, Status: "completed"})
			require.NoError(t, err)
		})
		res, err := tb.client.SetFraction(context.Background(), pkg, "production", 42, 0.25)
		require.NoError(t, err)
		require.Equal(t, 8, res.Calls, "insert, get, put, commit (edit deleted); insert, get, put, commit")
		require.Equal(t, wantProduction(0.25, "inProgress"), tb.fake.Track(pkg, "production"))
		require.Equal(t, []playstoretest.Release{{VersionCodes: []int64{42}, Status: "completed"}}, tb.fake.Track(pkg, "beta"))
	})
	t.Run("a rival release started meanwhile is not overwritten", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		upload(t, tb, 42, 1024)
		tb.fake.Before(playstoretest.MethodEditsCommit, func() {
			tb.fake.ConsoleUpdate(pkg, "production",
				playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
				playstoretest.Release{VersionCodes: []int64{43}, Status: "inProgress", UserFraction: 0.05})
		})
		_, err := tb.client.PutRelease(context.Background(), pkg, "production", playstore.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1})
		require.ErrorIs(t, err, playstore.ErrConflict)
		require.Equal(t, []playstoretest.Release{
			{VersionCodes: []int64{41}, Status: "completed"},
			{VersionCodes: []int64{43}, Status: "inProgress", UserFraction: 0.05},
		}, tb.fake.Track(pkg, "production"))
	})
}

func otherClient(t *testing.T, tb *testBundle) *playstore.Client {
	t.Helper()
	sa, err := tb.fake.ServiceAccountJSON(tb.url, "someone-else@fake-project.iam.gserviceaccount.com")
	require.NoError(t, err)
	c, err := playstore.New(context.Background(), playstore.Config{CredentialsJSON: sa, Endpoint: tb.url + "/"})
	require.NoError(t, err)
	return c
}

func TestChangesNotSentForReviewBothWays(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	ctx := context.Background()
	before := len(commitQueries(tb))

	tb.fake.SetReviewMode(pkg, playstoretest.ReviewNotSentRequired)
	_, err := tb.client.SetFraction(ctx, pkg, "production", 42, 0.25)
	require.NoError(t, err)
	qs := commitQueries(tb)[before:]
	require.Len(t, qs, 2)
	require.Equal(t, "false", qs[0].Get("changesNotSentForReview"))
	require.Equal(t, "true", qs[1].Get("changesNotSentForReview"))

	// The flag is remembered for the app …
	_, err = tb.client.SetFraction(ctx, pkg, "production", 42, 0.5)
	require.NoError(t, err)
	qs = commitQueries(tb)[before:]
	require.Len(t, qs, 3)
	require.Equal(t, "true", qs[2].Get("changesNotSentForReview"))

	// … until Play sends changes to review again and refuses the flag.
	tb.fake.SetReviewMode(pkg, playstoretest.ReviewAutomatic)
	_, err = tb.client.Halt(ctx, pkg, "production", 42)
	require.NoError(t, err)
	qs = commitQueries(tb)[before:]
	require.Len(t, qs, 5)
	require.Equal(t, "true", qs[3].Get("changesNotSentForReview"))
	require.Equal(t, "false", qs[4].Get("changesNotSentForReview"))
	require.Equal(t, wantProduction(0.5, "halted"), tb.fake.Track(pkg, "production"))
}

func TestServerErrorAndQuotaBurstsAreRetried(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsInsert, Kind: playstoretest.FaultTooManyRequests})
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodTracksGet, Kind: playstoretest.FaultInternal, Times: 2})
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodTracksUpdate, Kind: playstoretest.FaultQuota, Times: 2})
	commits := tb.fake.Commits(pkg)

	res, err := tb.client.SetFraction(context.Background(), pkg, "production", 42, 0.25)
	require.NoError(t, err)
	require.Equal(t, 9, res.Calls, "4 + 1 insert + 2 gets + 2 puts retried")
	require.Equal(t, commits+1, tb.fake.Commits(pkg))
	require.Equal(t, wantProduction(0.25, "inProgress"), tb.fake.Track(pkg, "production"))
	require.Equal(t, []time.Duration{time.Second, time.Second, 2 * time.Second, time.Second, 2 * time.Second}, tb.slept(), "exponential backoff per call")
}

func TestRetriesGiveUpWithATemporaryError(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodTracksGet, Kind: playstoretest.FaultUnavailable, Times: 5}) // all five attempts
	_, err := tb.client.SetFraction(context.Background(), pkg, "production", 42, 0.25)
	require.Error(t, err)
	require.True(t, playstore.IsTemporary(err), "%v", err)
	require.Equal(t, wantProduction(0.1, "inProgress"), tb.fake.Track(pkg, "production"))
	require.Equal(t, 0, tb.fake.OpenEdits(pkg), "the edit was deleted")

	// Permanent errors are not temporary.
	_, err = tb.client.Halt(context.Background(), pkg, "production", 7)
	require.False(t, playstore.IsTemporary(err))
}

// crashAfter returns a context that is cancelled once Play has applied the
// next request of method and before its answer reaches the client: the
// process "dies" with the change made and no word of it.
func crashAfter(t *testing.T, tb *testBundle, method string) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tb.fake.After(method, func() {
		cancel()
		// Hold the answer until the client gave up on it.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && tb.fake.Calls(playstoretest.MethodEditsDelete) == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	return ctx
}

func TestCrashBetweenStepsIsReRun(t *testing.T) {
	t.Parallel()
	t.Run("crash after the commit reached Play", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		atTen(t, tb)
		ctx := crashAfter(t, tb, playstoretest.MethodEditsCommit)
		_, err := tb.client.SetFraction(ctx, pkg, "production", 42, 0.25)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 0.25, tb.fake.Track(pkg, "production")[1].UserFraction, "Play applied the commit")

		// A new process (same ledger) re-runs the step: nothing to do.
		c := tb.newClient(t, tb.saJSON)
		commits := tb.fake.Commits(pkg)
		res, err := c.SetFraction(context.Background(), pkg, "production", 42, 0.25)
		require.NoError(t, err)
		require.False(t, res.Changed)
		require.Equal(t, commits, tb.fake.Commits(pkg))
	})
	t.Run("upload committed, then crash", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		ctx := crashAfter(t, tb, playstoretest.MethodEditsCommit)
		data := playstoretest.FakeBundle(42, 2048)
		_, err := tb.client.UploadBundle(ctx, pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, []int64{41, 42}, tb.fake.Bundles(pkg), "Play applied the commit")

		uploads := tb.fake.Calls(playstoretest.MethodBundlesUpload)
		res, err := tb.newClient(t, tb.saJSON).UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.NoError(t, err)
		require.True(t, res.Skipped, "no double upload")
		require.Equal(t, uploads, tb.fake.Calls(playstoretest.MethodBundlesUpload))
	})
	t.Run("a commit that failed before Play applied it leaves the versionCode free", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultInternal})
		data := playstoretest.FakeBundle(42, 2048)
		res, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.NoError(t, err, "the edit was deleted, bundle and all: 42 goes again in a fresh edit")
		require.False(t, res.Skipped)
		require.Equal(t, sha256Hex(data), res.SHA256)
		require.Equal(t, 2, tb.fake.Calls(playstoretest.MethodBundlesUpload))
		require.Equal(t, 9, res.Calls, "insert, list, upload, commit (500), delete (the edit never committed); insert, list, upload, commit")
		require.Equal(t, []int64{41, 42}, tb.fake.Bundles(pkg))
		require.Equal(t, 0, tb.fake.OpenEdits(pkg))
		st, err := tb.ledger.State(context.Background(), pkg, 42)
		require.NoError(t, err)
		require.Equal(t, playstore.VersionCodeCommitted, st)
	})
	t.Run("a commit Play applied but whose answer was lost is not redone", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultAfterApply})
		data := playstoretest.FakeBundle(42, 2048)
		res, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.NoError(t, err)
		require.False(t, res.Skipped)
		require.Equal(t, sha256Hex(data), res.SHA256)
		require.Equal(t, 5, res.Calls, "insert, list, upload, commit (500), delete (already committed)")
		require.Equal(t, 1, tb.fake.Calls(playstoretest.MethodBundlesUpload))
		require.Equal(t, []int64{41, 42}, tb.fake.Bundles(pkg))
	})
	t.Run("a commit whose outcome stays unknown reserves the versionCode", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultInternal})
		// The probe cannot tell either: every delete fails.
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsDelete, Kind: playstoretest.FaultUnavailable, Times: 5})
		data := playstoretest.FakeBundle(42, 2048)
		res, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.ErrorIs(t, err, playstore.ErrVersionCodeReused)
		require.ErrorContains(t, err, "commit outcome is unknown")
		var re *playstore.VersionCodeReusedError
		require.True(t, errors.As(err, &re))
		require.Equal(t, int64(43), re.Next)
		require.Empty(t, res.SHA256, "Play does not hold the bundle: no hash is reported")
		require.Equal(t, 1, tb.fake.Calls(playstoretest.MethodBundlesUpload), "42 was sent once and never again")
		require.Equal(t, []int64{41}, tb.fake.Bundles(pkg))

		next, err := tb.client.NextVersionCode(context.Background(), pkg)
		require.NoError(t, err)
		require.Equal(t, int64(43), next)
		res = upload(t, tb, next, 2048)
		require.False(t, res.Skipped)
		require.Equal(t, []int64{41, 43}, tb.fake.Bundles(pkg))
	})
	t.Run("an unknown commit that Play did apply is found on the next run", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultAfterApply})
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsDelete, Kind: playstoretest.FaultUnavailable, Times: 5})
		data := playstoretest.FakeBundle(42, 2048)
		res, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.NoError(t, err, "the fresh edit lists 42")
		require.True(t, res.Skipped)
		require.Equal(t, sha256Hex(data), res.SHA256)
		require.Equal(t, 1, tb.fake.Calls(playstoretest.MethodBundlesUpload))
	})
	t.Run("versionCodes only go up", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		data := playstoretest.FakeBundle(40, 100)
		_, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 40, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.ErrorIs(t, err, playstore.ErrVersionCodeReused)
		require.ErrorContains(t, err, "Play already has versionCode 41")
		require.Zero(t, tb.fake.Calls(playstoretest.MethodBundlesUpload))
	})
}

func TestPerMinuteQuotaIsWaitedOut(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	// Backoff sleeps move the fake's clock, so a quota window really passes.
	c, err := playstore.New(context.Background(), playstore.Config{CredentialsJSON: tb.saJSON, Endpoint: tb.url + "/",
		Retry: playstore.RetryPolicy{MaxAttempts: 8, BaseDelay: 10 * time.Second, MaxDelay: 40 * time.Second},
		Sleep: func(ctx context.Context, d time.Duration) error { tb.fake.Advance(d); return nil }})
	require.NoError(t, err)
	tb.fake.Advance(time.Minute - tb.fake.Now().Sub(tb.fake.Now().Truncate(time.Minute))) // start of a minute
	tb.fake.SetQueriesPerMinute(6)

	res, err := c.SetFraction(context.Background(), pkg, "production", 42, 0.25)
	require.NoError(t, err)
	res, err = c.SetFraction(context.Background(), pkg, "production", 42, 0.5)
	require.NoError(t, err, "the second step crosses the limit and waits for the next minute")
	require.Greater(t, res.Calls, 4)
	require.Equal(t, wantProduction(0.5, "inProgress"), tb.fake.Track(pkg, "production"))
	var quota int
	for _, x := range tb.fake.Exchanges() {
		if x.Status == 403 && bytes.Contains(x.ResponseBody, []byte(`"reason":"rateLimitExceeded"`)) {
			quota++
		}
	}
	require.Positive(t, quota)
}

func TestReviewRefusalThatDeletesTheEdit(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	tb.fake.SetReviewMode(pkg, playstoretest.ReviewNotSentRequired)
	tb.fake.SetReviewRefusalDeletesEdit(pkg, true)
	commits := tb.fake.Commits(pkg)

	res, err := tb.client.SetFraction(context.Background(), pkg, "production", 42, 0.25)
	require.NoError(t, err)
	require.Equal(t, 9, res.Calls, "insert, get, put, commit (refused), commit (edit deleted); insert, get, put, commit with the flag")
	require.Equal(t, commits+1, tb.fake.Commits(pkg))
	require.Equal(t, wantProduction(0.25, "inProgress"), tb.fake.Track(pkg, "production"))
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodTracksGet, Kind: playstoretest.FaultTooManyRequests, RetryAfter: 7 * time.Second})
	_, err := tb.client.Halt(context.Background(), pkg, "production", 42)
	require.NoError(t, err)
	require.Equal(t, []time.Duration{7 * time.Second}, tb.slept())
}

func TestUploadFaults(t *testing.T) {
	t.Parallel()
	t.Run("a lost chunk is resent by the Go client", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodBundlesUploadChunk, Kind: playstoretest.FaultUnavailable})
		res := upload(t, tb, 42, 600<<10)
		require.False(t, res.Skipped)
		require.Equal(t, 4, res.Calls)
		require.Equal(t, 5, tb.fake.Calls(playstoretest.MethodBundlesUpload), "session, three chunks, one resent")
		require.Equal(t, []int64{41, 42}, tb.fake.Bundles(pkg))
	})
	t.Run("a failed upload request leaves the versionCode free", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodBundlesUpload, Kind: playstoretest.FaultInternal})
		data := playstoretest.FakeBundle(42, 1024)
		res, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.Error(t, err)
		require.True(t, playstore.IsTemporary(err))
		require.Empty(t, res.SHA256)
		require.Equal(t, 0, tb.fake.OpenEdits(pkg))
		// No commit was ever requested for that edit: Play never held 42.
		res, err = tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.NoError(t, err)
		require.False(t, res.Skipped)
		require.Equal(t, sha256Hex(data), res.SHA256)
		require.Equal(t, 2, tb.fake.Calls(playstoretest.MethodBundlesUpload))
		require.Equal(t, []int64{41, 42}, tb.fake.Bundles(pkg))
	})
	t.Run("a lower versionCode than one sent to commit is refused", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		require.NoError(t, tb.ledger.Record(context.Background(), pkg, 44))
		require.NoError(t, tb.ledger.Committing(context.Background(), pkg, 44))
		data := playstoretest.FakeBundle(43, 1024)
		_, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 43, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.ErrorIs(t, err, playstore.ErrVersionCodeReused)
		require.ErrorContains(t, err, "versionCode 44 was already sent to commit")
		require.Zero(t, tb.fake.Calls(playstoretest.MethodBundlesUpload))
	})
	t.Run("a bundle whose manifest disagrees is refused", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		data := playstoretest.FakeBundle(45, 1024)
		_, err := tb.client.UploadBundle(context.Background(), pkg, playstore.Bundle{VersionCode: 44, Content: bytes.NewReader(data), Size: int64(len(data))})
		require.ErrorIs(t, err, playstore.ErrInvalid)
		require.ErrorContains(t, err, "declared versionCode 44 but Play read 45")
		require.Equal(t, []int64{41}, tb.fake.Bundles(pkg), "nothing committed")
		next, err := tb.client.NextVersionCode(context.Background(), pkg)
		require.NoError(t, err)
		require.Equal(t, int64(46), next, "both 44 and 45 count as used")
	})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestGivingUpOnCommitsLeavesNothingOpen(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultUnavailable, Times: 4})
	commits := tb.fake.Calls(playstoretest.MethodEditsCommit)
	_, err := tb.client.SetFraction(context.Background(), pkg, "production", 42, 0.25)
	require.ErrorContains(t, err, "no edit committed after 4 attempts")
	require.True(t, playstore.IsTemporary(err), "a job may try the step again later")
	require.Equal(t, commits+4, tb.fake.Calls(playstoretest.MethodEditsCommit), "each commit sent once, from a fresh read")
	require.Equal(t, 0, tb.fake.OpenEdits(pkg))
	require.Equal(t, wantProduction(0.1, "inProgress"), tb.fake.Track(pkg, "production"))
}
