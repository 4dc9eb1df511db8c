package appstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

// processingPolls is the processing wait the call-count figures assume: the
// build is listed as PROCESSING nine times and VALID on the tenth poll.
const processingPolls = 10

// testFlightRelease drives one TestFlight release the way a lane job will:
// resolve the app, poll for the build until processing ends, answer export
// compliance, set What to Test, give the build to the internal group,
// submit it to Beta App Review, read the review state (approved on the
// first read here), then give it to the external group.
func testFlightRelease(c context.Context, b *testBundle) error {
	app, err := b.client.FindApp(c, "com.swapjoy.app")
	if err != nil {
		return err
	}
	var build appstore.Build
	for i := 0; ; i++ {
		builds, err := b.client.FindBuilds(c, appstore.BuildQuery{AppID: app.ID, Version: "5.0.1", BuildNumber: "501", Platform: appstore.PlatformIOS})
		if err != nil {
			return err
		}
		if len(builds) == 1 && builds[0].ProcessingState.Done() {
			build = builds[0]
			break
		}
		if i > 50 {
			return fmt.Errorf("build never finished processing")
		}
	}
	if build.ProcessingState != appstore.ProcessingStateValid {
		return fmt.Errorf("build is %s", build.ProcessingState)
	}
	if _, err := b.client.SetUsesNonExemptEncryption(c, build.ID, false); err != nil {
		return err
	}
	if _, err := b.client.SetWhatToTest(c, build.ID, "en-US", "Swap flow rewrite; please try trading two items."); err != nil {
		return err
	}
	groups, err := b.client.BetaGroups(c, app.ID)
	if err != nil {
		return err
	}
	var internal, external []string
	for _, g := range groups {
		if g.IsInternalGroup {
			internal = append(internal, g.ID)
		} else {
			external = append(external, g.ID)
		}
	}
	if _, err := b.client.AddBuildToGroups(c, build.ID, internal...); err != nil {
		return err
	}
	if _, err := b.client.SubmitForBetaReview(c, build.ID); err != nil {
		return err
	}
	if err := b.fake.SetBetaReview(build.ID, appstore.BetaReviewApproved); err != nil {
		return err
	}
	sub, err := b.client.BetaReviewSubmission(c, build.ID)
	if err != nil {
		return err
	}
	if sub.State != appstore.BetaReviewApproved {
		return fmt.Errorf("beta review is %s", sub.State)
	}
	_, err = b.client.AddBuildToGroups(c, build.ID, external...)
	return err
}

func seedRelease(b *testBundle) {
	b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "5.0.1", BuildNumber: "501", Polls: processingPolls})
	b.fake.AddBetaGroup(b.appID, "SwapJoy team", true)
	b.fake.AddBetaGroup(b.appID, "Public beta", false)
}

// TestTestFlightReleaseCallCount pins how many App Store Connect calls one
// TestFlight release costs (see BENCHMARKS.md at the repository root). A change here is a
// change in the hourly budget every release spends.
func TestTestFlightReleaseCallCount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedRelease(b)
	var hooked atomic.Int64
	b.client.OnRequest = func(method, path string, status int) {
		if status/100 == 2 {
			hooked.Add(1)
		}
	}
	require.NoError(t, testFlightRelease(ctx(t), b))
	require.Equal(t, b.client.Calls(), hooked.Load(), "OnRequest sees every call, all successful here")
	perKind := map[string]int{}
	for _, r := range b.requests() {
		perKind[r.Method+" "+r.Path]++
	}
	t.Logf("App Store Connect calls for one TestFlight release (%d-poll wait): %d; by request: %v", processingPolls, b.client.Calls(), perKind)
	// 1 app + 10 polls + 2 encryption (read, patch) + 2 what-to-test (read,
	// create) + 1 groups + 2 internal group (read, link) + 2 beta review
	// (read, submit) + 1 review state + 2 external group (read, link).
	require.EqualValues(t, 23, b.client.Calls())
	require.EqualValues(t, b.fake.Requests(), b.client.Calls())
	require.Equal(t, 5, len(b.mutations()))
}

func BenchmarkTestFlightRelease(bm *testing.B) {
	var calls int64
	for i := 0; i < bm.N; i++ {
		b := setup(bm)
		seedRelease(b)
		if err := testFlightRelease(ctx(bm), b); err != nil {
			bm.Fatal(err)
		}
		calls += b.client.Calls()
	}
	bm.ReportMetric(float64(calls)/float64(bm.N), "asc-calls/op")
}

// TestAppStoreReleaseCallCount pins the calls of the App Store lane: version,
// build, phased release, review submission, one review-state poll, the
// manual release, and one phased-release read per day for 7 days.
func TestAppStoreReleaseCallCount(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.AppReviewTime = 24 * time.Hour })
	c := ctx(t)
	b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "4.9", appstore.VersionReadyForDistribution)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "5.0", BuildNumber: "50", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: ptr(false)})

	v, _, err := b.client.FindOrCreateAppStoreVersion(c, b.appID, appstore.PlatformIOS, "5.0")
	require.NoError(t, err)
	require.NoError(t, b.client.AttachBuild(c, v.ID, buildID))
	whatsNew(t, b, v.ID)
	_, err = b.client.CreatePhasedRelease(c, v.ID, appstore.PhasedInactive)
	require.NoError(t, err)
	_, err = b.client.SubmitForReview(c, b.appID, appstore.PlatformIOS, v.ID)
	require.NoError(t, err)
	b.clock.Advance(24 * time.Hour)
	v, err = b.client.AppStoreVersion(c, v.ID)
	require.NoError(t, err)
	require.Equal(t, appstore.VersionPendingDeveloperRelease, v.AppVersionState)
	_, err = b.client.ReleaseVersion(c, v.ID)
	require.NoError(t, err)
	var pr *appstore.PhasedRelease
	for day := 0; day < 7; day++ {
		pr, err = b.client.PhasedRelease(c, v.ID)
		require.NoError(t, err)
		b.clock.Advance(24 * time.Hour)
	}
	require.Equal(t, 7, pr.CurrentDayNumber)
	t.Logf("App Store Connect calls for one App Store release: %d (%d mutations)", b.client.Calls(), len(b.mutations()))
	// version 3 (find it, look for an editable one, create) + attach 2 +
	// What's New 2 (read the localizations, PATCH the one) + phased 2 +
	// submission 6 (the version's state first, so an approved version is
	// never submitted again) + review poll 1 + release 3 + 7 daily reads.
	require.EqualValues(t, 26, b.client.Calls())
	require.Equal(t, 8, len(b.mutations()))
}
