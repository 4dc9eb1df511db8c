package appstore_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

// TestFindVersionMakesItManual: a version someone made in App Store
// Connect (default AFTER_APPROVAL, or SCHEDULED) would go live to everyone
// on approval; finding it sets it to MANUAL, once, and a version past
// review is left alone.
func TestFindVersionMakesItManual(t *testing.T) {
	t.Parallel()
	for _, rt := range []appstore.ReleaseType{appstore.ReleaseAfterApproval, appstore.ReleaseScheduled} {
		t.Run(string(rt), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := ctx(t)
			b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.9.0", appstore.VersionReadyForDistribution)
			id := b.fake.AddVersion(appstoretest.AppStoreVersion{AppID: b.appID, VersionString: "2.0.0", ReleaseType: rt})
			v, created, err := b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "2.0.0")
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, id, v.ID)
			require.Equal(t, appstore.ReleaseManual, v.ReleaseType)
			require.Equal(t, appstore.ReleaseManual, b.fake.ReleaseType(id))
			require.Equal(t, 1, b.fake.Mutations("PATCH /v1/appStoreVersions/{id}"))
			_, _, err = b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "2.0.0")
			require.NoError(t, err)
			require.Equal(t, 1, b.fake.Mutations("PATCH /v1/appStoreVersions/{id}"), "read before write")
		})
	}
	b := setup(t)
	id := b.fake.AddVersion(appstoretest.AppStoreVersion{AppID: b.appID, VersionString: "1.9.0", State: appstore.VersionReadyForDistribution})
	v, _, err := b.client.FindOrCreateAppStoreVersion(ctx(t), b.appID, appstore.PlatformIOS, "1.9.0")
	require.NoError(t, err)
	require.Equal(t, appstore.ReleaseAfterApproval, v.ReleaseType, "a released version is reported as it is")
	require.Equal(t, appstore.ReleaseAfterApproval, b.fake.ReleaseType(id))
	require.Equal(t, 0, b.fake.Mutations("PATCH /v1/appStoreVersions/{id}"))
}

// readyToSubmit makes version 2.0.0 with a build attached.
func readyToSubmit(t *testing.T, b *testBundle) string {
	t.Helper()
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.9.0", appstore.VersionReadyForDistribution)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0.0", BuildNumber: "12", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})
	v, _, err := b.client.FindOrCreateAppStoreVersion(ctx(t), b.appID, appstore.PlatformIOS, "2.0.0")
	require.NoError(t, err)
	require.NoError(t, b.client.AttachBuild(ctx(t), v.ID, buildID))
	whatsNew(t, b, v.ID)
	return v.ID
}

// TestSubmitForReviewAnswerLost: App Store Connect applies the submit and
// the answer is lost (5xx or a dropped connection). The client does not
// repeat the PATCH blindly: it reads the submission and reports success.
func TestSubmitForReviewAnswerLost(t *testing.T) {
	t.Parallel()
	for name, kind := range map[string]appstoretest.FaultKind{"5xx": appstoretest.FaultAnswerLost, "dropped": appstoretest.FaultConnectionLost} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			vid := readyToSubmit(t, b)
			b.fake.Inject(appstoretest.Fault{Kind: kind, Method: "PATCH", PathPrefix: "/v1/reviewSubmissions/"})
			sub, err := b.client.SubmitForReview(ctx(t), b.appID, appstore.PlatformIOS, vid)
			require.NoError(t, err)
			require.Equal(t, appstore.ReviewWaitingForReview, sub.State)
			require.Equal(t, 1, b.fake.FaultsHit())
			require.Equal(t, 1, b.fake.Mutations("PATCH /v1/reviewSubmissions/{id}"))

			// A re-run (the job lost the answer too) finds it submitted.
			again, err := b.client.SubmitForReview(ctx(t), b.appID, appstore.PlatformIOS, vid)
			require.NoError(t, err)
			require.Equal(t, sub.ID, again.ID)
			require.Equal(t, 1, b.fake.Mutations("PATCH /v1/reviewSubmissions/{id}"))
			require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissions"))
		})
	}
}

// TestSubmitForReviewAfterApproval: a re-run after App Review approved the
// version (its submission COMPLETE) creates no second submission.
func TestSubmitForReviewAfterApproval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	vid := readyToSubmit(t, b)
	sub, err := b.client.SubmitForReview(ctx(t), b.appID, appstore.PlatformIOS, vid)
	require.NoError(t, err)
	require.NoError(t, b.fake.SetVersionState(vid, appstore.VersionPendingDeveloperRelease))
	again, err := b.client.SubmitForReview(ctx(t), b.appID, appstore.PlatformIOS, vid)
	require.NoError(t, err)
	require.Equal(t, sub.ID, again.ID)
	require.Equal(t, appstore.ReviewComplete, again.State)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissions"))
	require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissionItems"))
	require.Equal(t, 1, b.fake.Mutations("PATCH /v1/reviewSubmissions/{id}"))
}

// TestFakeVersionStateRules: a phased release can only be set up before
// release, and an approved version cannot be put in a submission again.
func TestFakeVersionStateRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := ctx(t)
	vid := readyToSubmit(t, b)
	require.NoError(t, b.fake.SetVersionState(vid, appstore.VersionReadyForDistribution))
	_, err := b.client.CreatePhasedRelease(c, vid, appstore.PhasedInactive)
	require.ErrorIs(t, err, appstore.ErrConflict, "no phased release for a released version")
	require.NoError(t, b.fake.SetVersionState(vid, appstore.VersionPendingDeveloperRelease))
	_, err = b.client.CreatePhasedRelease(c, vid, appstore.PhasedInactive)
	require.NoError(t, err)
}

// TestSubmitForReviewNeedsExportCompliance: App Store Connect refuses to
// submit a version whose build has no usesNonExemptEncryption answer, with
// a 409 STATE_ERROR whose reason is in meta.associatedErrors under the
// build (ref §2.1). Once the answer is given the same call goes through,
// reusing the draft submission it made.
func TestSubmitForReviewNeedsExportCompliance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := ctx(t)
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.9.0", appstore.VersionReadyForDistribution)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "2.0.0", BuildNumber: "12", State: appstore.ProcessingStateValid})
	v, _, err := b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "2.0.0")
	require.NoError(t, err)
	require.NoError(t, b.client.AttachBuild(c, v.ID, buildID))
	whatsNew(t, b, v.ID)

	_, err = b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v.ID)
	require.ErrorIs(t, err, appstore.ErrConflict)
	require.False(t, appstore.Temporary(err))
	var apiErr *appstore.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "/v1/reviewSubmissionItems", apiErr.Path)
	require.Len(t, apiErr.Errors, 1)
	outer := apiErr.Errors[0]
	require.Equal(t, "409", outer.Status)
	require.Equal(t, "STATE_ERROR", outer.Code)
	require.Equal(t, "The request cannot be fulfilled because of the state of another resource.", outer.Title)
	require.Equal(t, "Submit for review errors found.", outer.Detail)
	require.NotEmpty(t, outer.ID)
	var meta struct {
		AssociatedErrors map[string][]appstore.ErrorItem `json:"associatedErrors"`
	}
	require.NoError(t, json.Unmarshal(outer.Meta, &meta))
	require.Len(t, meta.AssociatedErrors, 1)
	inner := meta.AssociatedErrors["/v1/builds/"+buildID]
	require.Len(t, inner, 1, "the reason is filed under the build: %s", outer.Meta)
	require.NotEmpty(t, inner[0].ID)
	inner[0].ID = ""
	require.Equal(t, appstore.ErrorItem{Status: "409", Code: "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
		Title:  "The provided entity is missing a required attribute",
		Detail: "You must provide a value for the attribute 'usesNonExemptEncryption' with this request",
		Source: &appstore.ErrorSource{Pointer: "/data/attributes/usesNonExemptEncryption"}}, inner[0])
	require.Equal(t, 0, b.fake.Mutations("POST /v1/reviewSubmissionItems"))
	require.Equal(t, 0, b.fake.Mutations("PATCH /v1/reviewSubmissions/{id}"))
	state, _, _ := b.fake.Version(v.ID)
	require.Equal(t, appstore.VersionPrepareForSubmission, state)

	_, err = b.client.SetUsesNonExemptEncryption(c, buildID, false)
	require.NoError(t, err)
	sub, err := b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.ReviewWaitingForReview, sub.State)
	require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissions"), "the draft made by the refused run is reused")
	require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissionItems"))
}
