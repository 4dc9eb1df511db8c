package appstore_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

// TestGoldenRequestBodies pins the exact bytes of every mutation the client
// sends. Run with -update after a deliberate change and review the diff.
func TestGoldenRequestBodies(t *testing.T) {
	t.Parallel()
	type step func(t *testing.T, b *testBundle, buildID, versionID string)
	cases := []struct {
		name string
		// method and path of the mutation whose body is pinned
		method, path string
		run          step
	}{
		{"set_encryption", "PATCH", "/v1/builds/{build}", func(t *testing.T, b *testBundle, buildID, _ string) {
			_, err := b.client.SetUsesNonExemptEncryption(ctx(t), buildID, false)
			require.NoError(t, err)
		}},
		{"expire_build", "PATCH", "/v1/builds/{build}", func(t *testing.T, b *testBundle, buildID, _ string) {
			_, err := b.client.ExpireBuild(ctx(t), buildID)
			require.NoError(t, err)
		}},
		{"what_to_test_create", "POST", "/v1/betaBuildLocalizations", func(t *testing.T, b *testBundle, buildID, _ string) {
			_, err := b.client.SetWhatToTest(ctx(t), buildID, "en-US", "Swap flow: try \"Trade\" & <report> bugs")
			require.NoError(t, err)
		}},
		{"what_to_test_update", "PATCH", "/v1/betaBuildLocalizations/", func(t *testing.T, b *testBundle, buildID, _ string) {
			_, err := b.client.SetWhatToTest(ctx(t), buildID, "en-US", "first")
			require.NoError(t, err)
			_, err = b.client.SetWhatToTest(ctx(t), buildID, "en-US", "second")
			require.NoError(t, err)
		}},
		{"add_to_groups", "POST", "/v1/builds/{build}/relationships/betaGroups", func(t *testing.T, b *testBundle, buildID, _ string) {
			g1 := b.fake.AddBetaGroup(b.appID, "Team", true)
			g2 := b.fake.AddBetaGroup(b.appID, "QA", true)
			_, err := b.client.AddBuildToGroups(ctx(t), buildID, g1, g2)
			require.NoError(t, err)
		}},
		{"beta_review_submit", "POST", "/v1/betaAppReviewSubmissions", func(t *testing.T, b *testBundle, buildID, _ string) {
			_, err := b.client.SubmitForBetaReview(ctx(t), buildID)
			require.NoError(t, err)
		}},
		{"version_create", "POST", "/v1/appStoreVersions", func(t *testing.T, b *testBundle, _, _ string) {
			_, created, err := b.client.FindOrCreateAppStoreVersion(ctx(t), b.appID, appstore.PlatformIOS, "1.3.0")
			require.NoError(t, err)
			require.True(t, created)
		}},
		{"attach_build", "PATCH", "/v1/appStoreVersions/{version}/relationships/build", func(t *testing.T, b *testBundle, buildID, versionID string) {
			require.NoError(t, b.client.AttachBuild(ctx(t), versionID, buildID))
		}},
		{"review_submission_create", "POST", "/v1/reviewSubmissions", submitForReview},
		{"review_submission_item", "POST", "/v1/reviewSubmissionItems", submitForReview},
		{"review_submission_submit", "PATCH", "/v1/reviewSubmissions/", submitForReview},
		{"phased_release_create", "POST", "/v1/appStoreVersionPhasedReleases", func(t *testing.T, b *testBundle, _, versionID string) {
			_, err := b.client.CreatePhasedRelease(ctx(t), versionID, appstore.PhasedInactive)
			require.NoError(t, err)
		}},
		{"phased_release_pause", "PATCH", "/v1/appStoreVersionPhasedReleases/", func(t *testing.T, b *testBundle, _, versionID string) {
			_, err := b.client.CreatePhasedRelease(ctx(t), versionID, appstore.PhasedInactive)
			require.NoError(t, err)
			require.NoError(t, b.fake.ReleaseVersion(versionID))
			_, err = b.client.PausePhasedRelease(ctx(t), versionID)
			require.NoError(t, err)
		}},
		{"release_request", "POST", "/v1/appStoreVersionReleaseRequests", func(t *testing.T, b *testBundle, buildID, versionID string) {
			submitForReview(t, b, buildID, versionID)
			require.NoError(t, b.fake.SetVersionState(versionID, appstore.VersionPendingDeveloperRelease))
			_, err := b.client.ReleaseVersion(ctx(t), versionID)
			require.NoError(t, err)
		}},
		{"phased_release_resume", "PATCH", "/v1/appStoreVersionPhasedReleases/", func(t *testing.T, b *testBundle, _, versionID string) {
			_, err := b.client.CreatePhasedRelease(ctx(t), versionID, appstore.PhasedInactive)
			require.NoError(t, err)
			require.NoError(t, b.fake.ReleaseVersion(versionID))
			_, err = b.client.PausePhasedRelease(ctx(t), versionID)
			require.NoError(t, err)
			_, err = b.client.ResumePhasedRelease(ctx(t), versionID)
			require.NoError(t, err)
		}},
		{"phased_release_complete", "PATCH", "/v1/appStoreVersionPhasedReleases/", func(t *testing.T, b *testBundle, _, versionID string) {
			_, err := b.client.CreatePhasedRelease(ctx(t), versionID, appstore.PhasedInactive)
			require.NoError(t, err)
			require.NoError(t, b.fake.ReleaseVersion(versionID))
			_, err = b.client.CompletePhasedRelease(ctx(t), versionID)
			require.NoError(t, err)
		}},
		{"build_upload_create", "POST", "/v1/buildUploads", uploadSmall},
		{"build_upload_reserve", "POST", "/v1/buildUploadFiles", uploadSmall},
		{"build_upload_commit", "PATCH", "/v1/buildUploadFiles/", uploadSmall},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.3.0", BuildNumber: "7", State: appstore.ProcessingStateValid,
				UsesNonExemptEncryption: ptr(false)})
			if tc.name == "set_encryption" {
				buildID = b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.3.0", BuildNumber: "8", State: appstore.ProcessingStateValid})
			}
			b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.2.0", appstore.VersionReadyForDistribution)
			versionID := ""
			if tc.name != "version_create" {
				versionID = b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.3.0", appstore.VersionPrepareForSubmission)
			}
			tc.run(t, b, buildID, versionID)
			path := strings.NewReplacer("{build}", buildID, "{version}", versionID).Replace(tc.path)
			var got []byte
			for _, m := range b.mutations() {
				if m.Method == tc.method && (m.Path == path || strings.HasSuffix(path, "/") && strings.HasPrefix(m.Path, path)) {
					got = m.Body
				}
			}
			require.NotNil(t, got, "no %s %s was sent", tc.method, path)
			golden := filepath.Join("testdata", "golden", tc.name+".json")
			got = append(bytes.TrimSpace(got), '\n')
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file; run go test ./appstore -run TestGolden -update")
			require.Equal(t, string(want), string(got))
		})
	}
}

func submitForReview(t *testing.T, b *testBundle, buildID, versionID string) {
	require.NoError(t, b.client.AttachBuild(ctx(t), versionID, buildID))
	whatsNew(t, b, versionID)
	_, err := b.client.SubmitForReview(ctx(t), b.appID, appstore.PlatformIOS, versionID)
	require.NoError(t, err)
}

func uploadSmall(t *testing.T, b *testBundle, _, _ string) {
	data := []byte("PK\x03\x04 not really an ipa, but bytes are bytes")
	_, err := b.client.UploadBuild(ctx(t), appstore.UploadRequest{AppID: b.appID, Version: "1.4.0", BuildNumber: "9",
		FileName: "SwapJoy.ipa", File: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
}
