package ioslane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

// whatsNew writes App Store "What's New" on every localization of an
// update before it goes to App Review, which refuses an update without it
// (409, one error per locale). The text of a locale is its ios.whats_new
// entry, else the default locale's (ios.locale), else the release notes.
// An app's first version takes none.
func (r *iosRun) whatsNew(ctx context.Context) error {
	update, err := r.x.ASC.HasReleasedVersion(ctx, r.data.AppID, appstore.PlatformIOS)
	if err := ascFailure("read whether app "+r.data.AppID+" has a version on the App Store", err); err != nil {
		return err
	}
	if !update {
		return r.reach(ctx, iosStepWhatsNew)
	}
	texts := r.app.IOS.WhatsNew
	locale := r.app.IOS.Locale
	if locale == "" {
		locale = "en-US"
	}
	text, ok := texts[locale]
	if !ok {
		text = WhatToTest(r.rel.Notes) // the same 4,000 characters
	}
	if strings.TrimSpace(text) == "" {
		return lane.Fail("App Store version %s is an update: App Review needs What's New in every locale, but release %s has no notes and ios.whats_new has no %s entry",
			r.data.Version, r.rel.Tag, locale)
	}
	// SetWhatsNew reads the localizations first and writes only those
	// that differ.
	changed, err := r.x.ASC.SetWhatsNew(ctx, r.data.VersionID, texts, text)
	var ve *appstore.ValidationError
	if errors.As(err, &ve) {
		return lane.Fail("What's New of App Store version %s: %v", r.data.Version, err)
	}
	if err := ascFailure("write What's New of App Store version "+r.data.Version, err); err != nil {
		return err
	}
	if err := r.reach(ctx, iosStepWhatsNew); err != nil {
		return err
	}
	return r.progress(ctx, "ios.whats_new", map[string]any{"version_id": r.data.VersionID, "locales": changed})
}

func (r *iosRun) submitForReview(ctx context.Context) error {
	if r.data.Phased {
		// The phased release must exist before review: a version approved
		// without one goes to everyone at once when released, and Apple
		// allows setting it up only until the version is released.
		// CreatePhasedRelease reads first, so this also verifies it.
		pr, err := r.x.ASC.CreatePhasedRelease(ctx, r.data.VersionID, appstore.PhasedInactive)
		if err := ascFailure("set up the phased release of App Store version "+r.data.Version, err); err != nil {
			return err
		}
		if pr.State != appstore.PhasedInactive {
			return lane.Fail("the phased release of App Store version %s is already %s before review", r.data.Version, pr.State)
		}
	}
	// SubmitForReview reads the version and the app's open submissions
	// first and reuses the one holding this version.
	sub, err := r.x.ASC.SubmitForReview(ctx, r.data.AppID, appstore.PlatformIOS, r.data.VersionID)
	if errors.Is(err, appstore.ErrSubmissionInFlight) {
		return r.wait(ctx, "review_submit", fmt.Sprintf("App Store version %s waits to be submitted: another submission of the app is in review", r.data.Version))
	}
	if err := ascFailure("submit App Store version "+r.data.Version+" for review", err); err != nil {
		return err
	}
	r.data.ReviewSubmissionID = sub.ID
	if err := r.reach(ctx, iosStepSubmitted); err != nil {
		return err
	}
	return r.progress(ctx, "ios.app_store_submitted", map[string]any{"version_id": r.data.VersionID, "submission_id": sub.ID, "state": string(sub.State)})
}

func (r *iosRun) awaitAppReview(ctx context.Context) error {
	v, err := r.x.ASC.AppStoreVersion(ctx, r.data.VersionID)
	if err := ascFailure("read App Store version "+r.data.Version, err); err != nil {
		return err
	}
	switch v.AppVersionState {
	case appstore.VersionReadyForDistribution, appstore.VersionPendingAppleRelease, appstore.VersionProcessingForDistribution:
		// Approved and released (or about to be) by App Store Connect, not
		// by the reconciler: the release type was changed after the lane
		// set it to MANUAL. With our phased release Apple starts at day 1
		// and the reconciler can still pause it; without one everyone gets
		// it at once, and the lane must not report that as its success.
		if !r.data.Phased {
			return lane.Fail("App Store version %s is %s: App Store Connect released it on approval (release type %s), not releasepilot; it reaches everyone at once",
				r.data.Version, v.AppVersionState, v.ReleaseType)
		}
		_, err := r.x.ASC.PhasedRelease(ctx, r.data.VersionID)
		if errors.Is(err, appstore.ErrNotFound) {
			return lane.Fail("App Store version %s is %s without a phased release: App Store Connect released it on approval (release type %s), so it reaches everyone at once",
				r.data.Version, v.AppVersionState, v.ReleaseType)
		}
		if err := ascFailure("read the phased release of "+r.data.Version, err); err != nil {
			return err
		}
		fallthrough
	case appstore.VersionPendingDeveloperRelease, appstore.VersionAccepted:
		if err := r.reach(ctx, iosStepApproved); err != nil {
			return err
		}
		return r.progress(ctx, "ios.app_store_approved", map[string]any{"version_id": v.ID, "state": string(v.AppVersionState)})
	case appstore.VersionRejected, appstore.VersionMetadataRejected, appstore.VersionDeveloperRejected, appstore.AppVersionState("INVALID_BINARY"):
		return lane.Fail("App Review: App Store version %s with build %s is %s; see the Resolution Center in App Store Connect", r.data.Version, r.data.label(), v.AppVersionState)
	}
	return r.wait(ctx, "app_review", fmt.Sprintf("App Store version %s is %s", r.data.Version, v.AppVersionState))
}
