package appstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

func TestTestFlightFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := ctx(t)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.2.3", BuildNumber: "45", Polls: 3})
	internal := b.fake.AddBetaGroup(b.appID, "Team", true)
	external := b.fake.AddBetaGroup(b.appID, "Beta", false)

	app, err := b.client.FindApp(c, "com.swapjoy.app")
	require.NoError(t, err)
	require.Equal(t, b.appID, app.ID)

	var builds []appstore.Build
	for i := 0; i < 3; i++ {
		builds, err = b.client.FindBuilds(c, appstore.BuildQuery{AppID: app.ID, Version: "1.2.3", BuildNumber: "45", Platform: appstore.PlatformIOS})
		require.NoError(t, err)
		require.Len(t, builds, 1)
	}
	require.Equal(t, appstore.ProcessingStateValid, builds[0].ProcessingState)
	require.Equal(t, buildID, builds[0].ID)

	_, err = b.client.SetUsesNonExemptEncryption(c, buildID, false)
	require.NoError(t, err)
	_, err = b.client.SetWhatToTest(c, buildID, "en-US", "Try the new swap flow")
	require.NoError(t, err)
	groups, err := b.client.BetaGroups(c, app.ID)
	require.NoError(t, err)
	require.Len(t, groups, 2)
	added, err := b.client.AddBuildToGroups(c, buildID, internal)
	require.NoError(t, err)
	require.Equal(t, []string{internal}, added)
	sub, err := b.client.SubmitForBetaReview(c, buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaReviewWaiting, sub.State)
	require.NoError(t, b.fake.SetBetaReview(buildID, appstore.BetaReviewApproved))
	sub, err = b.client.BetaReviewSubmission(c, buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaReviewApproved, sub.State)
	_, err = b.client.AddBuildToGroups(c, buildID, internal, external)
	require.NoError(t, err)
	detail, err := b.client.BuildBetaDetail(c, buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.BetaStateInBetaTesting, detail.InternalBuildState)
	require.Equal(t, appstore.BetaStateInBetaTesting, detail.ExternalBuildState)

	st, ok := b.fake.Build(buildID)
	require.True(t, ok)
	require.Equal(t, []string{internal, external}, st.Groups)
	require.Equal(t, "Try the new swap flow", st.WhatsNew["en-US"])
}

func TestBetaGroupsFollowsPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := 0; i < 450; i++ {
		b.fake.AddBetaGroup(b.appID, fmt.Sprintf("group %03d", i), i%2 == 0)
	}
	groups, err := b.client.BetaGroups(ctx(t), b.appID)
	require.NoError(t, err)
	require.Len(t, groups, 450)
	seen := map[string]bool{}
	for _, g := range groups {
		seen[g.ID] = true
	}
	require.Len(t, seen, 450, "no group twice")
	require.EqualValues(t, 3, b.client.Calls(), "200 + 200 + 50")
}

func TestProcessingTimeOnTheClock(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.fake.ProcessingTime = 20 * time.Minute })
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.0", BuildNumber: "1"})
	got, err := b.client.Build(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.ProcessingStateProcessing, got.ProcessingState, "one poll is enough, but not 20 minutes")
	b.clock.Advance(20 * time.Minute)
	got, err = b.client.Build(ctx(t), buildID)
	require.NoError(t, err)
	require.Equal(t, appstore.ProcessingStateValid, got.ProcessingState)
}
