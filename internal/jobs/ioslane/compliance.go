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
	if want {
		// Non-exempt encryption needs an app encryption declaration linked
		// to the build before Apple reviews it for TestFlight or the App
		// Store. SetEncryptionDeclaration reads the link first.
		decl := r.app.IOS.EncryptionDeclarationID
		if decl == "" {
			return lane.Fail("build %s uses non-exempt encryption, but ios.encryption_declaration_id is empty: Apple needs an app encryption declaration linked to the build; name the declaration's App Store Connect id there",
				r.data.label())
		}
		err := r.x.ASC.SetEncryptionDeclaration(ctx, r.data.BuildID, decl)
		if errors.Is(err, appstore.ErrConflict) || errors.Is(err, appstore.ErrNotFound) {
			return lane.Fail("link build %s to the app encryption declaration %s (ios.encryption_declaration_id): %v", r.data.label(), decl, err)
		}
		if err := ascFailure("link build "+r.data.label()+" to the app encryption declaration "+decl, err); err != nil {
			return err
		}
	}
	return r.reach(ctx, iosStepCompliance)
}
