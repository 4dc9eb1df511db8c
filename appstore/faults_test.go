package appstore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	rl, ok := appstore.ParseRateLimit("user-hour-lim:3500;user-hour-rem:500;")
	require.True(t, ok)
	require.Equal(t, appstore.RateLimit{Limit: 3500, Remaining: 500, Known: true}, rl)
	rl, ok = appstore.ParseRateLimit(" user-hour-rem:0 ; user-hour-lim:3600")
	require.True(t, ok)
	require.Equal(t, 0, rl.Remaining)
	_, ok = appstore.ParseRateLimit("")
	require.False(t, ok)
	_, ok = appstore.ParseRateLimit("user-hour-lim:x;user-hour-rem:;")
	require.False(t, ok)
}

func TestRateLimitHeaderExposed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.False(t, b.client.RateLimit().Known)
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err)
	require.Equal(t, appstore.RateLimit{Limit: 3600, Remaining: 3599, Known: true}, b.client.RateLimit())
}

func Test429WithExhaustedBudgetIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.SetRemaining(b.key.ID, 0)
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.ErrorIs(t, err, appstore.ErrRateLimited)
	var rle *appstore.RateLimitError
	require.ErrorAs(t, err, &rle)
	require.Equal(t, 0, rle.RateLimit.Remaining)
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.True(t, apiErr.HasCode("RATE_LIMIT_EXCEEDED"))
	require.EqualValues(t, 1, b.client.Calls(), "no retry into an exhausted budget")
	require.Empty(t, b.slept)
}

func TestHourlyLimitRollsOver(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.HourlyLimit = 3 })
	for i := 0; i < 3; i++ {
		_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
		require.NoError(t, err)
	}
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.ErrorIs(t, err, appstore.ErrRateLimited)
	b.clock.Advance(time.Hour)
	_, err = b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err, "the rolling window frees the budget after an hour")
}

func Test429WithBudgetLeftIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultRateLimit, Times: 2})
	// The first response carries the header; a burst 429 with budget left
	// (e.g. a per-minute burst limit) is retried with backoff.
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err)
	require.EqualValues(t, 3, b.client.Calls())
	require.Len(t, b.slept, 2)
}

func TestServerErrorBurstThenSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.0", BuildNumber: "1", State: appstore.ProcessingStateValid})
	b.fake.Inject(appstoretest.Fault{Status: 503, Method: "GET", PathPrefix: "/v1/builds/", Times: 3})
	got, err := b.client.Build(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, buildID, got.ID)
	require.EqualValues(t, 4, b.client.Calls())
	require.Len(t, b.slept, 3)
	for i, d := range b.slept {
		lo := time.Second << i / 2
		require.GreaterOrEqual(t, d, lo, "backoff %d", i)
		require.LessOrEqual(t, d, time.Second<<i, "backoff %d", i)
	}
}

func TestServerErrorsExhaustRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Inject(appstoretest.Fault{Status: 500, Times: -1})
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.ErrorIs(t, err, appstore.ErrUnavailable)
	require.EqualValues(t, 5, b.client.Calls(), "1 attempt + MaxRetries 4")
}

func TestCreateIsNotRetriedAfter5xx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.0", BuildNumber: "1", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})
	b.fake.Inject(appstoretest.Fault{Status: 500, Method: "POST", PathPrefix: "/v1/betaAppReviewSubmissions"})
	_, err := b.client.SubmitForBetaReview(ctx(t), buildID)
	require.ErrorIs(t, err, appstore.ErrUnavailable)
	require.Equal(t, 0, b.fake.Mutations("POST /v1/betaAppReviewSubmissions"))
	// The job runs again: read-first makes the retry safe.
	_, err = b.client.SubmitForBetaReview(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/betaAppReviewSubmissions"))
}

func TestHangingAttemptTimesOutAndRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.client.AttemptTimeout = 100 * time.Millisecond
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultHang, Method: "GET", PathPrefix: "/v1/apps"})
	app, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err)
	require.Equal(t, b.appID, app.ID)
	require.EqualValues(t, 2, b.client.Calls())
}

func TestContextDeadlineWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultHang, Times: -1})
	c, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.client.FindApp(c, "com.swapjoy.app")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestMalformedBodyIsRetriedForReads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultMalformed, Method: "GET"})
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err)
	require.EqualValues(t, 2, b.client.Calls())
}

func TestTokenExpiresMidWaitIsReminted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.0", BuildNumber: "1", Polls: 4})
	var got *appstore.Build
	var err error
	for i := 0; i < 4; i++ {
		got, err = b.client.Build(ctx(t), buildID)
		require.NoError(t, err)
		b.clock.Advance(8 * time.Minute) // a 32-minute wait outlives two tokens
	}
	require.Equal(t, appstore.ProcessingStateValid, got.ProcessingState)
	require.GreaterOrEqual(t, b.tokens.Minted(), 2)
	require.EqualValues(t, 4, b.client.Calls(), "proactive re-mint: no 401 round trips")
}

func Test401ReMintsOnceAndRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Inject(appstoretest.Fault{Status: http.StatusUnauthorized})
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err)
	require.Equal(t, 2, b.tokens.Minted())
	require.EqualValues(t, 2, b.client.Calls())

	b.fake.Inject(appstoretest.Fault{Status: http.StatusUnauthorized, Times: -1})
	_, err = b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.ErrorIs(t, err, appstore.ErrUnauthorized)
	require.EqualValues(t, 4, b.client.Calls(), "a persistent 401 is tried twice, not forever")
	// Apple's 401s can be transient: after the re-mint it is still worth a
	// later try (the job's backoff), so it is not a permanent failure.
	require.True(t, appstore.Temporary(err), "a 401 after a re-mint is temporary")
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.True(t, apiErr.AfterReauth)
	b.fake.ClearFaults()
	_, err = b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err, "the later try succeeds")
}

func TestSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var logs bytes.Buffer
	b.client.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.fake.Inject(appstoretest.Fault{Status: http.StatusUnauthorized, Times: -1})
	b.fake.Inject(appstoretest.Fault{Status: 500, Times: 2})
	tok, err := b.tokens.Token()
	require.NoError(t, err)
	_, err = b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.Error(t, err)
	_, err2 := b.client.Build(ctx(t), "nope")
	require.Error(t, err2)
	d := b.key.PrivateKey.D.Text(16)
	sig := tok[strings.LastIndex(tok, ".")+1:]
	for _, s := range []string{err.Error(), err2.Error(), logs.String()} {
		require.NotContains(t, s, sig)
		require.NotContains(t, s, d)
		require.NotContains(t, s, "Bearer")
	}
	require.Contains(t, logs.String(), "re-minting")
}

func TestBuildEndsInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0", BuildNumber: "3", Result: appstore.ProcessingStateInvalid, Polls: 2})
	var got []appstore.Build
	var err error
	for i := 0; i < 2; i++ {
		got, err = b.client.FindBuilds(ctx(t), appstore.BuildQuery{AppID: b.appID, Version: "2.0", BuildNumber: "3"})
		require.NoError(t, err)
	}
	require.Len(t, got, 1)
	require.Equal(t, appstore.ProcessingStateInvalid, got[0].ProcessingState)
	require.True(t, got[0].ProcessingState.Done())
	detail, err := b.client.BuildBetaDetail(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaStateProcessingException, detail.InternalBuildState)

	_, err = b.client.SetUsesNonExemptEncryption(ctx(t), buildID, false)
	require.ErrorIs(t, err, appstore.ErrConflict)
	_, err = b.client.SubmitForBetaReview(ctx(t), buildID)
	require.ErrorIs(t, err, appstore.ErrInvalid)
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 422, apiErr.Status)
	require.Contains(t, apiErr.Error(), "not in a valid processing state")
}

func TestBetaReviewRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0", BuildNumber: "3", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})
	external := b.fake.AddBetaGroup(b.appID, "Public", false)
	_, err := b.client.SubmitForBetaReview(ctx(t), buildID)
	require.NoError(t, err)
	require.NoError(t, b.fake.SetBetaReview(buildID, appstore.BetaReviewRejected))
	sub, err := b.client.BetaReviewSubmission(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaReviewRejected, sub.State)
	detail, err := b.client.BuildBetaDetail(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaStateBetaRejected, detail.ExternalBuildState)
	_, err = b.client.AddBuildToGroups(ctx(t), buildID, external)
	require.ErrorIs(t, err, appstore.ErrInvalid)
	// Submitting again returns the rejected submission instead of a second POST.
	sub, err = b.client.SubmitForBetaReview(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaReviewRejected, sub.State)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/betaAppReviewSubmissions"))
}

func TestAnotherBuildInReview(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0", BuildNumber: "3", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})
	second := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0", BuildNumber: "4", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})
	_, err := b.client.SubmitForBetaReview(ctx(t), first)
	require.NoError(t, err)
	_, err = b.client.SubmitForBetaReview(ctx(t), second)
	require.ErrorIs(t, err, appstore.ErrConflict)
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.True(t, apiErr.HasCode("STATE_ERROR"))
	require.Equal(t, "Another build is in review.", apiErr.Errors[0].Detail)
	require.False(t, apiErr.Temporary())
}

func TestWhatToTestTooLongIsRefusedBeforeAnyCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0", BuildNumber: "3", State: appstore.ProcessingStateValid})
	_, err := b.client.SetWhatToTest(ctx(t), buildID, "en-US", strings.Repeat("é", appstore.MaxWhatToTest+1))
	require.ErrorIs(t, err, appstore.ErrInvalid)
	var ve *appstore.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "whatsNew", ve.Field)
	require.Contains(t, err.Error(), "4001 characters")
	require.EqualValues(t, 0, b.client.Calls())
	// Exactly 4,000 multi-byte characters is fine.
	_, err = b.client.SetWhatToTest(ctx(t), buildID, "en-US", strings.Repeat("é", appstore.MaxWhatToTest))
	require.NoError(t, err)
}

func TestIdempotentMutations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0", BuildNumber: "3", State: appstore.ProcessingStateValid})
	g1 := b.fake.AddBetaGroup(b.appID, "Team", true)
	g2 := b.fake.AddBetaGroup(b.appID, "QA", true)
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.9", appstore.VersionReadyForDistribution)
	c := ctx(t)
	for i := 0; i < 2; i++ {
		_, err := b.client.SetUsesNonExemptEncryption(c, buildID, false)
		require.NoError(t, err)
		_, err = b.client.SetWhatToTest(c, buildID, "en-US", "notes")
		require.NoError(t, err)
		added, err := b.client.AddBuildToGroups(c, buildID, g1, g2, g1)
		require.NoError(t, err)
		if i == 1 {
			require.Empty(t, added)
		}
		_, err = b.client.SubmitForBetaReview(c, buildID)
		require.NoError(t, err)
		v, _, err := b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "2.0")
		require.NoError(t, err)
		require.NoError(t, b.client.AttachBuild(c, v.ID, buildID))
		whatsNew(t, b, v.ID)
		_, err = b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v.ID)
		require.NoError(t, err)
		_, err = b.client.CreatePhasedRelease(c, v.ID, appstore.PhasedInactive)
		require.NoError(t, err)
	}
	require.Equal(t, map[string]int{
		"PATCH /v1/appStoreVersionLocalizations/{id}":         1,
		"PATCH /v1/builds/{id}":                               1,
		"POST /v1/betaBuildLocalizations":                     1,
		"POST /v1/builds/{id}/relationships/betaGroups":       1,
		"POST /v1/betaAppReviewSubmissions":                   1,
		"POST /v1/appStoreVersions":                           1,
		"PATCH /v1/appStoreVersions/{id}/relationships/build": 1,
		"POST /v1/reviewSubmissions":                          1,
		"POST /v1/reviewSubmissionItems":                      1,
		"PATCH /v1/reviewSubmissions/{id}":                    1,
		"POST /v1/appStoreVersionPhasedReleases":              1,
	}, b.fake.MutationCounts())
}

func TestErrorsMatchSentinels(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.client.Build(ctx(t), "missing-build")
	require.ErrorIs(t, err, appstore.ErrNotFound)
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "NOT_FOUND", apiErr.Errors[0].Code)
	require.NotEmpty(t, apiErr.Errors[0].ID)
	require.Equal(t, "/v1/builds/missing-build", apiErr.Path)

	_, err = b.client.FindApp(ctx(t), "com.swapjoy")
	require.ErrorIs(t, err, appstore.ErrNotFound, "prefix matches from the filter are not the app")
	app, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err)
	require.Equal(t, "1234567890", app.ID, "the filter also returns com.swapjoy.app.widget; exact match wins")

	_, err = b.client.Build(ctx(t), "../apps")
	require.True(t, errors.Is(err, appstore.ErrInvalid))
}

func TestTemporaryClassifiesErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.client.FindBuild(ctx(t), b.appID, appstore.PlatformIOS, "9.9", "1")
	require.ErrorIs(t, err, appstore.ErrNotFound)
	require.False(t, appstore.Temporary(err), "not found yet is a state, not a failure; callers check ErrNotFound first")
	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "9.9", BuildNumber: "1"})
	got, err := b.client.FindBuild(ctx(t), b.appID, appstore.PlatformIOS, "9.9", "1")
	require.NoError(t, err)
	require.Equal(t, "1", got.Version)

	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "7.0.0", BuildNumber: "70"})
	got, err = b.client.FindBuild(ctx(t), b.appID, appstore.PlatformIOS, "7.0", "70")
	require.NoError(t, err, "the X.Y.0 spelling of the upload is found from the tag's X.Y")
	require.Equal(t, "70", got.Version)

	b.fake.Inject(appstoretest.Fault{Status: 500, Times: -1})
	_, err = b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.True(t, appstore.Temporary(err))
	b.fake.ClearFaults()
	b.fake.SetRemaining(b.key.ID, 0)
	_, err = b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.True(t, appstore.Temporary(err))
	_, err = b.client.SetWhatToTest(ctx(t), "b", "", "x")
	require.False(t, appstore.Temporary(err))
	require.False(t, appstore.Temporary(nil))
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultRateLimit, RetryAfter: 7 * time.Second})
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{7 * time.Second}, b.slept)

	// Longer than MaxBackoff: not worth blocking a worker; the error says how long.
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultRateLimit, RetryAfter: 10 * time.Minute})
	_, err = b.client.FindApp(ctx(t), "com.swapjoy.app")
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 10*time.Minute, apiErr.RetryAfter)
	require.True(t, appstore.Temporary(err))
}

func TestRetryAfterPastDeadlineGivesUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.client.MaxBackoff = time.Hour
	b.fake.Inject(appstoretest.Fault{Status: 503, RetryAfter: 30 * time.Minute})
	_, err := b.client.FindApp(ctx(t), "com.swapjoy.app")
	require.ErrorIs(t, err, appstore.ErrUnavailable)
	require.Contains(t, err.Error(), "would pass the deadline")
	require.Empty(t, b.slept)
}

func TestTokenExpiresDuringRetryBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.client.BaseBackoff = 20 * time.Minute
	b.client.MaxBackoff = 20 * time.Minute
	b.fake.Inject(appstoretest.Fault{Status: 502, Times: 2})
	// No deadline: the (fake-clock) backoff of 10–20 minutes outlives the
	// 15-minute token, so each retry must carry a freshly minted one.
	_, err := b.client.FindApp(context.Background(), "com.swapjoy.app")
	require.NoError(t, err)
	require.Len(t, b.slept, 2)
	require.GreaterOrEqual(t, b.tokens.Minted(), 2)
	require.EqualValues(t, 3, b.client.Calls(), "no 401 round trip")
}
