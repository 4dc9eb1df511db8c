package ioslane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

func (r *iosRun) submitBetaReview(ctx context.Context) error {
	if len(r.app.IOS.ExternalGroups) == 0 {
		// No external testers, no Beta App Review.
		return r.reach(ctx, iosStepBetaOK)
	}
	// Check the groups before anything goes to review.
	ids, err := r.groupIDs(ctx, "ios.external_groups", r.app.IOS.ExternalGroups, false)
	if err != nil {
		return err
	}
	r.data.ExternalGroupIDs = ids
	// Beta App Review takes a build only once the app's review information
	// and test information are complete: say what is missing rather than
	// send a submission Apple refuses. A person fills them in App Store
	// Connect and the next poll goes on.
	missing, err := r.x.ASC.BetaReviewMissing(ctx, r.data.AppID)
	if err := ascFailure("read the Beta App Review information of app "+r.data.AppID, err); err != nil {
		return err
	}
	if len(missing) > 0 {
		return r.wait(ctx, "beta_review_info", fmt.Sprintf("Beta App Review of build %s needs the app's test information in App Store Connect (TestFlight > Test Information): %s missing",
			r.data.label(), strings.Join(missing, ", ")))
	}
	// SubmitForBetaReview returns the build's existing submission if any.
	sub, err := r.x.ASC.SubmitForBetaReview(ctx, r.data.BuildID)
	if errors.Is(err, appstore.ErrConflict) {
		return r.wait(ctx, "beta_submit", fmt.Sprintf("build %s waits to be submitted to Beta App Review: %v", r.data.label(), err))
	}
	if err := ascFailure("submit "+r.data.label()+" to Beta App Review", err); err != nil {
		return err
	}
	if err := r.reach(ctx, iosStepBetaSubmit); err != nil {
		return err
	}
	return r.progress(ctx, "ios.beta_review_submitted", map[string]any{"submission_id": sub.ID, "state": string(sub.State)})
}

func (r *iosRun) awaitBetaReview(ctx context.Context) error {
	sub, err := r.x.ASC.BetaReviewSubmission(ctx, r.data.BuildID)
	if err := ascFailure("read the Beta App Review of "+r.data.label(), err); err != nil {
		return err
	}
	switch sub.State {
	case appstore.BetaReviewApproved:
		if err := r.reach(ctx, iosStepBetaOK); err != nil {
			return err
		}
		return r.progress(ctx, "ios.beta_approved", nil)
	case appstore.BetaReviewRejected:
		return lane.Fail("Beta App Review rejected build %s; see App Store Connect for the reviewer's notes, fix and tag a new build", r.data.label())
	}
	return r.wait(ctx, "beta_review", fmt.Sprintf("build %s is %s at Beta App Review", r.data.label(), sub.State))
}
