package appstore_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

func TestAppStoreReleaseFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := ctx(t)
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.9.0", appstore.VersionReadyForDistribution)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0.0", BuildNumber: "12", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})

	v, created, err := b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "2.0.0")
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, appstore.VersionPrepareForSubmission, v.AppVersionState)
	require.Equal(t, appstore.ReleaseManual, v.ReleaseType)

	// Submitting without a build fails with Apple's associatedErrors shape.
	_, err = b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v.ID)
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 409, apiErr.Status)
	require.Contains(t, string(apiErr.Errors[0].Meta), "associatedErrors")

	require.NoError(t, b.client.AttachBuild(c, v.ID, buildID))
	_, attached, _ := b.fake.Version(v.ID)
	require.Equal(t, buildID, attached)

	_, err = b.client.CreatePhasedRelease(c, v.ID, appstore.PhasedInactive)
	require.NoError(t, err)
	whatsNew(t, b, v.ID)
	sub, err := b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v.ID)
	require.NoError(t, err, "the draft submission left by the failed attempt is reused")
	require.Equal(t, appstore.ReviewWaitingForReview, sub.State)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissions"))
	v, err = b.client.AppStoreVersion(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.VersionWaitingForReview, v.AppVersionState)

	// A new version cannot be created while this one is in review.
	_, _, err = b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "2.0.1")
	require.ErrorIs(t, err, appstore.ErrConflict)

	require.NoError(t, b.fake.SetVersionState(v.ID, appstore.VersionPendingDeveloperRelease))
	sub, err = b.client.ReviewSubmission(c, sub.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.ReviewComplete, sub.State)

	// Before release, the phased release cannot be paused.
	_, err = b.client.PausePhasedRelease(c, v.ID)
	require.ErrorIs(t, err, appstore.ErrConflict)

	require.NoError(t, b.fake.ReleaseVersion(v.ID))
	pr, err := b.client.PhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedActive, pr.State)
	require.Equal(t, 1, pr.CurrentDayNumber)

	b.clock.Advance(2*24*time.Hour + time.Hour)
	pr, err = b.client.PausePhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedPaused, pr.State)
	require.Equal(t, 3, pr.CurrentDayNumber)
	b.clock.Advance(5 * 24 * time.Hour)
	pr, err = b.client.PhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, 3, pr.CurrentDayNumber, "the day does not advance while paused")
	require.Equal(t, 5, pr.TotalPauseDuration)
	pr, err = b.client.ResumePhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedActive, pr.State)
	pr, err = b.client.CompletePhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedComplete, pr.State)
	require.Equal(t, 7, pr.CurrentDayNumber)
	_, err = b.client.PausePhasedRelease(c, v.ID)
	require.ErrorIs(t, err, appstore.ErrConflict)
	require.Equal(t, 3, b.fake.Mutations("PATCH /v1/appStoreVersionPhasedReleases/{id}"))
}

// TestPhasedReleasePauses follows Apple's current help: a phased release
// can be paused for up to 30 days at a time, any number of times.
func TestPhasedReleasePauses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := ctx(t)
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.0", appstore.VersionReadyForDistribution)
	v := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.1", appstore.VersionPendingDeveloperRelease)
	_, err := b.client.CreatePhasedRelease(c, v, appstore.PhasedInactive)
	require.NoError(t, err)
	require.NoError(t, b.fake.ReleaseVersion(v))

	_, err = b.client.PausePhasedRelease(c, v)
	require.NoError(t, err)
	b.clock.Advance(20 * 24 * time.Hour)
	_, err = b.client.ResumePhasedRelease(c, v)
	require.NoError(t, err)
	_, err = b.client.PausePhasedRelease(c, v)
	require.NoError(t, err, "pauses are unlimited in number")
	b.clock.Advance(29 * 24 * time.Hour)
	pr, err := b.client.PhasedRelease(c, v)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedPaused, pr.State, "49 days of pause in all, 29 of them in this pause: still paused")
	require.Equal(t, 1, pr.CurrentDayNumber, "a paused release stays on its day")

	b.clock.Advance(24 * time.Hour)
	pr, err = b.client.PhasedRelease(c, v)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedActive, pr.State, "one pause lasts at most 30 days")
	require.Equal(t, 50, pr.TotalPauseDuration)
	_, err = b.client.PausePhasedRelease(c, v)
	require.NoError(t, err, "and the release can be paused again")
}

func TestPhasedReleaseRefusedOnFirstVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.0", appstore.VersionPrepareForSubmission)
	_, err := b.client.CreatePhasedRelease(ctx(t), v, appstore.PhasedInactive)
	require.ErrorIs(t, err, appstore.ErrConflict)
	_, err = b.client.PhasedRelease(ctx(t), v)
	require.ErrorIs(t, err, appstore.ErrNotFound)
}

func TestSubmitForReviewWhileAnotherIsInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := ctx(t)
	build1 := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "3.0", BuildNumber: "1", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})
	v1 := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "3.0", appstore.VersionPrepareForSubmission)
	require.NoError(t, b.client.AttachBuild(c, v1, build1))
	_, err := b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v1)
	require.NoError(t, err)
	v2 := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformTVOS, "3.0", appstore.VersionPrepareForSubmission)
	_, err = b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v2)
	require.True(t, errors.Is(err, appstore.ErrSubmissionInFlight))
}

func TestUploadBuild(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.UploadPartSize = 1000; o.fake.UploadProcessingPolls = 2 })
	c := ctx(t)
	data := make([]byte, 2500)
	_, err := rand.Read(data)
	require.NoError(t, err)
	b.fake.Inject(appstoretest.Fault{Status: 503, Method: "PUT"}) // one part fails once
	req := appstore.UploadRequest{AppID: b.appID, Version: "4.0", BuildNumber: "100", FileName: "App.ipa", File: bytes.NewReader(data), Size: int64(len(data))}
	up, err := b.client.UploadBuild(c, req)
	require.NoError(t, err)
	require.Equal(t, appstore.UploadProcessing, up.State)
	require.EqualValues(t, 4, b.client.UploadParts(), "3 parts, one re-sent")

	up, err = b.client.BuildUpload(c, up.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.UploadComplete, up.State)
	require.NotEmpty(t, up.BuildID)
	bs, ok := b.fake.Build(up.BuildID)
	require.True(t, ok)
	require.Equal(t, appstore.ProcessingStateProcessing, bs.ProcessingState)
	files := b.fake.MutationCounts()
	require.Equal(t, 1, files["POST /v1/buildUploadFiles"])

	// Uploading the same version again never uploads twice.
	again, err := b.client.UploadBuild(c, req)
	require.NoError(t, err)
	require.Equal(t, up.ID, again.ID)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/buildUploads"))
	require.Equal(t, 1, b.fake.Mutations("PATCH /v1/buildUploadFiles/{id}"))
}

func TestUploadBuildChecksumMismatch(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.UploadPartSize = 10 })
	data := []byte("0123456789abcdefghij")
	// A reader that changes between the checksum pass and the part upload
	// simulates corruption in transit; the fake must refuse the commit.
	r := &flippingReader{data: data}
	_, err := b.client.UploadBuild(ctx(t), appstore.UploadRequest{AppID: b.appID, Version: "4.0", BuildNumber: "101", FileName: "App.ipa", File: r, Size: int64(len(data))})
	require.ErrorIs(t, err, appstore.ErrConflict)
	require.Contains(t, err.Error(), "checksum")
	require.Equal(t, 0, b.fake.Mutations("PATCH /v1/buildUploadFiles/{id}"))
}

type flippingReader struct {
	data  []byte
	reads int
}

func (f *flippingReader) ReadAt(p []byte, off int64) (int, error) {
	f.reads++
	n := copy(p, f.data[off:])
	if f.reads > 2 && n > 0 { // the checksum pass reads first; later part reads get a flipped byte
		p[0] ^= 0xff
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestUploadFailedState(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.UploadProcessingPolls = 3 })
	data := []byte("ipa bytes")
	up, err := b.client.UploadBuild(ctx(t), appstore.UploadRequest{AppID: b.appID, Version: "4.0", BuildNumber: "102", FileName: "App.ipa", File: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	require.NoError(t, b.fake.FailUpload(up.ID, "90062", "The value for key CFBundleShortVersionString must be higher"))
	up, err = b.client.BuildUpload(ctx(t), up.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.UploadFailed, up.State)
	require.Equal(t, "90062", up.Errors[0].Code)

	// FAILED is terminal: uploading again starts a new upload.
	again, err := b.client.UploadBuild(ctx(t), appstore.UploadRequest{AppID: b.appID, Version: "4.0", BuildNumber: "102", FileName: "App.ipa", File: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	require.NotEqual(t, up.ID, again.ID)
	require.Equal(t, 2, b.fake.Mutations("POST /v1/buildUploads"))
}

func TestUploadResumesAfterFailedCommit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.UploadPartSize = 8; o.fake.UploadProcessingPolls = 2 })
	data := []byte("0123456789abcdefghijklmnop")
	req := appstore.UploadRequest{AppID: b.appID, Version: "4.1", BuildNumber: "7", FileName: "App.ipa", File: bytes.NewReader(data), Size: int64(len(data))}
	b.fake.Inject(appstoretest.Fault{Status: 503, Method: "PATCH", PathPrefix: "/v1/buildUploadFiles/", Times: -1})
	_, err := b.client.UploadBuild(ctx(t), req)
	require.ErrorIs(t, err, appstore.ErrUnavailable)
	b.fake.ClearFaults()

	up, err := b.client.UploadBuild(ctx(t), req)
	require.NoError(t, err)
	require.Equal(t, appstore.UploadProcessing, up.State)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/buildUploads"), "the awaiting upload is resumed")
	require.Equal(t, 1, b.fake.Mutations("POST /v1/buildUploadFiles"), "and so is its reservation")
	require.Equal(t, 1, b.fake.Mutations("PATCH /v1/buildUploadFiles/{id}"))
	require.EqualValues(t, 8, b.client.UploadParts(), "4 parts, sent twice")
}

// TestUploadResumeAfterUploadURLsExpired: a run reserved the file and
// failed before the commit; the next run comes after the reservation's
// presigned URLs expired (about a week, ref §3.3). The storage host refuses
// them, so the client reserves the file again, once, and finishes the same
// upload through the new URLs.
func TestUploadResumeAfterUploadURLsExpired(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.UploadPartSize = 8; o.fake.UploadProcessingPolls = 2 })
	data := []byte("0123456789abcdefghijklmnop")
	req := appstore.UploadRequest{AppID: b.appID, Version: "4.1", BuildNumber: "8", FileName: "App.ipa", File: bytes.NewReader(data), Size: int64(len(data))}
	b.fake.Inject(appstoretest.Fault{Status: 503, Method: "PATCH", PathPrefix: "/v1/buildUploadFiles/", Times: -1})
	_, err := b.client.UploadBuild(ctx(t), req)
	require.ErrorIs(t, err, appstore.ErrUnavailable)
	b.fake.ClearFaults()
	b.clock.Advance(appstoretest.UploadURLLifetime + time.Hour)

	up, err := b.client.UploadBuild(ctx(t), req)
	require.NoError(t, err)
	require.Equal(t, appstore.UploadProcessing, up.State)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/buildUploads"), "the awaiting upload is resumed")
	require.Equal(t, 2, b.fake.Mutations("POST /v1/buildUploadFiles"), "its expired reservation is replaced once")
	require.Equal(t, 1, b.fake.Mutations("PATCH /v1/buildUploadFiles/{id}"))
	require.EqualValues(t, 4+1+4, b.client.UploadParts(), "4 parts, 1 refused, 4 to the new URLs")
	up, err = b.client.BuildUpload(ctx(t), up.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.UploadComplete, up.State)
	require.NotEmpty(t, up.BuildID)
}

// TestUploadFreshReservationRefusedIsNotRepeated: a part refused on a
// reservation made by the same call is a client error, not an expiry; the
// client does not reserve again.
func TestUploadFreshReservationRefusedIsNotRepeated(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.UploadPartSize = 8 })
	data := []byte("0123456789abcdefghijklmnop")
	b.fake.Inject(appstoretest.Fault{Status: 403, Method: "PUT"})
	_, err := b.client.UploadBuild(ctx(t), appstore.UploadRequest{AppID: b.appID, Version: "4.1", BuildNumber: "9", FileName: "App.ipa", File: bytes.NewReader(data), Size: int64(len(data))})
	require.Error(t, err)
	require.Contains(t, err.Error(), "part 1: HTTP 403")
	require.Equal(t, 1, b.fake.Mutations("POST /v1/buildUploadFiles"))
	require.EqualValues(t, 1, b.client.UploadParts())
}

func TestAutomaticReviewsAndManualRelease(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.BetaReviewTime = time.Hour; o.fake.AppReviewTime = 24 * time.Hour })
	c := ctx(t)
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "6.0", appstore.VersionReadyForDistribution)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "6.1", BuildNumber: "61", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})

	_, err := b.client.SubmitForBetaReview(c, buildID)
	require.NoError(t, err)
	b.clock.Advance(time.Hour)
	sub, err := b.client.BetaReviewSubmission(c, buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaReviewApproved, sub.State)

	v, _, err := b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "6.1")
	require.NoError(t, err)
	require.NoError(t, b.client.AttachBuild(c, v.ID, buildID))
	whatsNew(t, b, v.ID)
	_, err = b.client.CreatePhasedRelease(c, v.ID, appstore.PhasedInactive)
	require.NoError(t, err)
	_, err = b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v.ID)
	require.NoError(t, err)

	_, err = b.client.ReleaseVersion(c, v.ID)
	require.ErrorIs(t, err, appstore.ErrConflict, "not approved yet")
	require.Equal(t, 0, b.fake.Mutations("POST /v1/appStoreVersionReleaseRequests"))

	b.clock.Advance(24 * time.Hour)
	v, err = b.client.AppStoreVersion(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.VersionPendingDeveloperRelease, v.AppVersionState)
	for i := 0; i < 2; i++ {
		v, err = b.client.ReleaseVersion(c, v.ID)
		require.NoError(t, err)
		require.Equal(t, appstore.VersionReadyForDistribution, v.AppVersionState)
	}
	require.Equal(t, 1, b.fake.Mutations("POST /v1/appStoreVersionReleaseRequests"))
	pr, err := b.client.PhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedActive, pr.State)
	require.Equal(t, 1, pr.CurrentDayNumber)
	b.clock.Advance(4*24*time.Hour + time.Minute)
	pr, err = b.client.PhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, 5, pr.CurrentDayNumber)
	b.clock.Advance(3 * 24 * time.Hour)
	pr, err = b.client.PhasedRelease(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.PhasedComplete, pr.State, "day 7 is over: 100 %")
}
