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
