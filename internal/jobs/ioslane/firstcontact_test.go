package ioslane_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// runUntilWaiting runs the lane job until it snoozes on what (the lane's
// data says what it waits for), advancing the clock by every snooze.
func (b *iosBundle) runUntilWaiting(t *testing.T, what string) {
	t.Helper()
	for run := 0; run < 100; run++ {
		err := b.work(context.Background())
		var snooze *river.JobSnoozeError
		require.True(t, errors.As(err, &snooze), "run %d: %v (status %+v)", run, err, b.status(t))
		if b.laneData(t)["waiting"] == what {
			return
		}
		b.clock.Advance(snooze.Duration)
	}
	t.Fatalf("the lane never waited for %s", what)
}

// TestIOSWaitsHaveDeadlines: a wait on a review says what it waits for in
// the lane's status, and fails the lane with that reason once
// ios.review_timeout has passed; it never waits forever.
func TestIOSWaitsHaveDeadlines(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{external: true, polls: 1, configure: func(a *config.App) {
		a.IOS.ReviewTimeout = config.Duration(48 * time.Hour)
	}})
	b.runUntilWaiting(t, "beta_review")
	st := b.status(t)
	require.Equal(t, release.StatePending, st.State)
	require.True(t, strings.HasPrefix(st.Reason, "waiting: build 1.4.0 (45) is WAITING_FOR_REVIEW at Beta App Review (since "), st.Reason)
	require.Contains(t, st.Reason, "the lane fails if this lasts 48h0m0s")

	// Apple never answers.
	b.clock.Advance(48 * time.Hour)
	err := b.work(context.Background())
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	st = b.status(t)
	require.Equal(t, release.StateFailed, st.State)
	require.Equal(t, "build 1.4.0 (45) is WAITING_FOR_REVIEW at Beta App Review after 48h0m0s", st.Reason)
}

// TestIOSSkipsInternalGroupsWithAllBuilds: an internal group with access to
// all builds (hasAccessToAllBuilds) gets every build by itself, and Apple
// answers 422 "Cannot add internal group to a build" to adding one: the
// lane never POSTs it, and goes on.
func TestIOSSkipsInternalGroupsWithAllBuilds(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, configure: func(a *config.App) { a.IOS.InternalGroups = []string{"Everyone", "Team"} }})
	b.fake.AddGroup(appstoretest.BetaGroup{AppID: b.appID, Name: "Everyone", Internal: true, AllBuilds: true})
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State, b.status(t).Reason)
	bs, _ := b.fake.Build(b.buildID)
	require.Len(t, bs.Groups, 1, "only Team was linked")
	require.Equal(t, 1, b.fake.Mutations("POST /v1/builds/{id}/relationships/betaGroups"))

	// Only all-builds groups: no POST at all.
	b2 := setupIOS(t, store.SQLite, iosOpts{polls: 1, configure: func(a *config.App) { a.IOS.InternalGroups = []string{"Everyone"} }})
	b2.fake.AddGroup(appstoretest.BetaGroup{AppID: b2.appID, Name: "Everyone", Internal: true, AllBuilds: true})
	_, err = b2.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b2.status(t).State, b2.status(t).Reason)
	require.Zero(t, b2.fake.Mutations("POST /v1/builds/{id}/relationships/betaGroups"))
}

// TestIOSLinksTheEncryptionDeclaration: a build that uses non-exempt
// encryption goes to Beta App Review (and App Review) only once an app
// encryption declaration is linked to it; the lane links the one
// ios.encryption_declaration_id names, right after export compliance.
func TestIOSLinksTheEncryptionDeclaration(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{external: true, polls: 1, configure: func(a *config.App) { a.IOS.UsesNonExemptEncryption = true }})
	decl := b.fake.AddEncryptionDeclaration(b.appID, "APPROVED")
	app := b.ios.Apps["acme"]
	app.IOS.EncryptionDeclarationID = decl
	b.ios.Apps["acme"] = app

	b.runUntilWaiting(t, "beta_review")
	bs, _ := b.fake.Build(b.buildID)
	require.Equal(t, decl, bs.EncryptionDeclaration)
	require.Equal(t, appstore.BetaReviewWaiting, bs.BetaReview, "Apple took it for review")
	require.Equal(t, 1, b.fake.Mutations("PATCH /v1/builds/{id}/relationships/appEncryptionDeclaration"))

	// Without a declaration named, the lane says what is missing.
	b2 := setupIOS(t, store.SQLite, iosOpts{external: true, polls: 1, configure: func(a *config.App) { a.IOS.UsesNonExemptEncryption = true }})
	_, err := b2.runLane(t, nil)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	require.Contains(t, b2.status(t).Reason, "ios.encryption_declaration_id is empty")
}

// TestIOSChecksBetaReviewInfoFirst: before a build goes to Beta App Review
// the lane reads the app's review and test information; while something
// is missing it waits and its status names what, and once a person has
// filled it in the build is submitted.
func TestIOSChecksBetaReviewInfoFirst(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{external: true, polls: 1})
	b.fake.SetBetaAppInfo(b.appID, appstoretest.BetaAppReviewDetail{ContactFirstName: "Ada", ContactLastName: "Lovelace", ContactPhone: "+1 555 0100",
		ContactEmail: "ada@example.com", DemoAccountRequired: true, DemoAccountName: "reviewer"})
	b.runUntilWaiting(t, "beta_review_info")
	st := b.status(t)
	require.Contains(t, st.Reason, "Beta App Review of build 1.4.0 (45) needs the app's test information in App Store Connect")
	require.Contains(t, st.Reason, "betaAppReviewDetail.demoAccountPassword (demoAccountRequired is true), a betaAppLocalization with feedbackEmail and description missing")
	require.Zero(t, b.fake.Mutations("POST /v1/betaAppReviewSubmissions"), "nothing sent that Apple would refuse")

	b.fake.CompleteBetaAppInfo(b.appID)
	b.runUntilWaiting(t, "beta_review")
	bs, _ := b.fake.Build(b.buildID)
	require.Equal(t, appstore.BetaReviewWaiting, bs.BetaReview)
}

// TestIOSWritesWhatsNewOnEveryLocale: App Review refuses an update while a
// localization of its version lacks What's New. The lane writes it before
// the submission: the locale's ios.whats_new entry, else the default
// locale's text (here the release notes).
func TestIOSWritesWhatsNewOnEveryLocale(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true,
		options:   func(o *appstoretest.Options) { o.AppReviewTime = time.Hour },
		configure: func(a *config.App) { a.IOS.WhatsNew = map[string]string{"de-DE": "Schnellerer Checkout."} }})
	b.fake.SetLocales(b.appID, "en-US", "de-DE", "fr-FR")
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State, b.status(t).Reason)
	versionID, _ := b.laneData(t)["version_id"].(string)
	require.Equal(t, map[string]string{"en-US": b.rel.Notes, "de-DE": "Schnellerer Checkout.", "fr-FR": b.rel.Notes}, b.fake.WhatsNew(versionID))

	// An update whose release has no notes and no configured text fails
	// with the reason rather than being refused by Apple.
	b2 := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, noNotes: true})
	_, err = b2.runLane(t, nil)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	require.Contains(t, b2.status(t).Reason, "App Review needs What's New in every locale, but release v1.4.0+45 has no notes and ios.whats_new has no en-US entry")
}

// nextRelease records release v<version> of the app (the next tag) with
// its pending iOS lane, and makes it the bundle's release and lane.
func (b *iosBundle) nextRelease(t *testing.T, version string) {
	t.Helper()
	ctx := context.Background()
	rel, _, err := b.st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v" + version, Version: version, Commit: "c0ffee2", CreatedAt: b.clock.Now(),
		Notes: "Changes since v1.4.0:\n- Fix the reviewer's crash (0ddba11)"})
	require.NoError(t, err)
	require.NoError(t, b.st.SaveFingerprint(ctx, store.Fingerprint{App: "acme", Platform: release.IOS, Commit: "c0ffee2",
		Algorithm: nativecheck.Algorithm, Hash: "fp-ios-1", Data: []byte(`{}`), CreatedAt: b.clock.Now()}))
	l, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: rel.ID, Platform: release.IOS, Kind: release.KindStore, Plan: b.lane.Plan}, b.clock.Now())
	require.NoError(t, err)
	b.rel, b.lane = rel, l
}

// TestIOSRejectedVersionIsResubmittedWithTheNextBuild: App Review rejects
// the version; its submission stays open in UNRESOLVED_ISSUES. The lane
// fails with the rejection; the next tag's lane attaches its new build to
// the same version and submits that submission again (never "already
// submitted"), and the version is approved.
func TestIOSRejectedVersionIsResubmittedWithTheNextBuild(t *testing.T) {
	t.Parallel()
	for name, next := range map[string]string{"same marketing version": "1.4.0+46", "next marketing version": "1.4.1+46"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true})
			b.runUntilWaiting(t, "app_review")
			first, _ := b.laneData(t)["version_id"].(string)
			require.NoError(t, b.fake.SetVersionState(first, appstore.VersionRejected))
			_, err := b.runLane(t, nil)
			var cancel *river.JobCancelError
			require.ErrorAs(t, err, &cancel)
			require.Contains(t, b.status(t).Reason, "App Review: App Store version 1.4.0 with build 1.4.0 (45) is REJECTED")

			// CI uploads the fixed build; the next tag ships it.
			marketing, _, _ := strings.Cut(next, "+")
			fixed := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: marketing, BuildNumber: "46", Polls: 1})
			b.nextRelease(t, next)
			b.runUntilWaiting(t, "app_review")
			require.Equal(t, first, b.laneData(t)["version_id"], "the rejected version is reused")
			state, attached, _ := b.fake.Version(first)
			require.Equal(t, appstore.VersionWaitingForReview, state)
			require.Equal(t, fixed, attached)
			require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissions"), "the rejected submission was submitted again, not recreated")
			require.Equal(t, 2, b.fake.Mutations("PATCH /v1/reviewSubmissions/{id}"))
			require.Equal(t, 1, b.fake.Mutations("POST /v1/reviewSubmissionItems"))
			require.Equal(t, 1, b.fake.Mutations("POST /v1/appStoreVersions"))

			require.NoError(t, b.fake.SetVersionState(first, appstore.VersionPendingDeveloperRelease))
			_, err = b.runLane(t, nil)
			require.NoError(t, err)
			st := b.status(t)
			require.Equal(t, release.StateRolling, st.State, st.Reason)
			require.Contains(t, st.Reason, "build "+marketing+" (46) is approved for the App Store")
		})
	}
}

// TestIOSReusesAnEditableVersion: a version prepared in App Store Connect
// (and never submitted) blocks creating another; the lane renames it to
// its own version string, as fastlane's deliver does, instead of waiting.
// One that belongs to another release in flight is not taken: the lane
// fails saying which.
func TestIOSReusesAnEditableVersion(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true, options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})
	draft := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.3.9", appstore.VersionPrepareForSubmission)
	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	require.Equal(t, release.StateRolling, b.status(t).State, b.status(t).Reason)
	require.Equal(t, draft, b.laneData(t)["version_id"])
	require.Zero(t, b.fake.Mutations("POST /v1/appStoreVersions"), "no version was created")
	v, err := b.asc.AppStoreVersion(context.Background(), draft)
	require.NoError(t, err)
	require.Equal(t, "1.4.0", v.VersionString)

	// Another release's lane holds the editable version: not taken.
	b2 := setupIOS(t, store.SQLite, iosOpts{polls: 1, appStore: true, phased: true})
	b2.runUntilWaiting(t, "app_review")
	held, _ := b2.laneData(t)["version_id"].(string)
	require.NoError(t, b2.fake.SetVersionState(held, appstore.VersionDeveloperRejected)) // pulled back, still 1.4.0's
	b2.fake.AddBuild(appstoretest.Build{AppID: b2.appID, Version: "1.5.0", BuildNumber: "50", Polls: 1})
	b2.nextRelease(t, "1.5.0+50")
	_, err = b2.runLane(t, nil)
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	require.Contains(t, b2.status(t).Reason, "version 1.4.0 ("+held+") is DEVELOPER_REJECTED and belongs to release v1.4.0+45, still in flight")
}
