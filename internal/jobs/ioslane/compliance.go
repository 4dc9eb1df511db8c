package ioslane

import (
	"context"
	"errors"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

func (r *iosRun) exportCompliance(ctx context.Context) error {
	// SetUsesNonExemptEncryption reads the build first and sends nothing
	// when the answer is already given.
	want := r.app.IOS.UsesNonExemptEncryption
	_, err := r.x.ASC.SetUsesNonExemptEncryption(ctx, r.data.BuildID, want)
	var mismatch *appstore.EncryptionMismatchError
	if errors.As(err, &mismatch) {
		return lane.Fail("ios.uses_non_exempt_encryption is %t, but build %s already declares usesNonExemptEncryption=%t (its Info.plist's ITSAppUsesNonExemptEncryption, or an answer in App Store Connect); make them agree and tag a new build",
			want, r.data.label(), mismatch.Declared)
	}
	if err := ascFailure("set export compliance of "+r.data.label(), err); err != nil {
		return err
	}
	return r.reach(ctx, iosStepCompliance)
}
