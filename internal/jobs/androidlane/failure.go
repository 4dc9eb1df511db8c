package androidlane

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/api/googleapi"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/playstore"
)

// playFailure sorts a Play error: Play's answers that say the request or the
// track is wrong fail the lane; everything else (5xx, quota, network, the
// database behind the versionCode ledger) is retried.
func playFailure(step string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if playstore.IsTemporary(err) {
		return fmt.Errorf("%s: %w", step, err)
	}
	// Google's token endpoint refusing the service account (revoked or
	// deleted key, wrong project) needs a person, not a retry.
	if playstore.CredentialsRefused(err) {
		return &lane.Failure{Reason: step + ": Google refused the service account's credentials; check playstore.service_account"}
	}
	for _, kind := range []error{playstore.ErrConflict, playstore.ErrState, playstore.ErrInvalid, playstore.ErrNotFound, playstore.ErrVersionCodeReused} {
		if errors.Is(err, kind) {
			return &lane.Failure{Reason: fmt.Sprintf("%s: %v", step, err)}
		}
	}
	if code := httpStatus(err); code >= 400 && code < 500 {
		return &lane.Failure{Reason: fmt.Sprintf("%s: %v", step, err)}
	}
	return fmt.Errorf("%s: %w", step, err)
}

// httpStatus is the HTTP status of a Google API error, 0 if none.
func httpStatus(err error) int {
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code
	}
	return 0
}
