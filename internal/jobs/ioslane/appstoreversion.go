package ioslane

import (
	"context"
	"errors"
	"fmt"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

func (r *iosRun) appStoreVersion(ctx context.Context) error {
	// Finds the version first; creates it (release type MANUAL, so the
	// reconciler decides when it goes live) only when missing.
	v, created, err := r.x.ASC.FindOrCreateAppStoreVersion(ctx, r.data.AppID, appstore.PlatformIOS, r.data.Version)
	if errors.Is(err, appstore.ErrConflict) {
		// Another version is in flight (in review, or approved and not
		// released): only one can be edited at a time. It ends on its own.
		return r.wait(ctx, "app_store_version", fmt.Sprintf("App Store version %s cannot be created yet: %v", r.data.Version, err))
	}
	if err := ascFailure("find or create App Store version "+r.data.Version, err); err != nil {
		return err
	}
	switch v.AppVersionState {
	case appstore.VersionReadyForDistribution, appstore.VersionProcessingForDistribution, appstore.VersionReplacedWithNewVersion,
		appstore.VersionPendingAppleRelease:
		return lane.Fail("App Store version %s is already %s; tag a new version", r.data.Version, v.AppVersionState)
	}
	if v.ReleaseType != appstore.ReleaseManual {
		// FindOrCreateAppStoreVersion makes an editable version MANUAL; one
		// it could not change would go live on approval without the
		// reconciler.
		return lane.Fail("App Store version %s has release type %s and is %s, so it cannot be made MANUAL; releasepilot must decide when it goes live",
			r.data.Version, v.ReleaseType, v.AppVersionState)
	}
	r.data.VersionID = v.ID
	if err := r.reach(ctx, iosStepVersion); err != nil {
		return err
	}
	return r.progress(ctx, "ios.app_store_version", map[string]any{"version_id": v.ID, "created": created, "state": string(v.AppVersionState)})
}

func (r *iosRun) attachBuild(ctx context.Context) error {
	// AttachBuild reads the attached build first and sends nothing if it is ours.
	err := r.x.ASC.AttachBuild(ctx, r.data.VersionID, r.data.BuildID)
	if err := ascFailure("attach build "+r.data.label()+" to App Store version "+r.data.Version, err); err != nil {
		return err
	}
	return r.reach(ctx, iosStepAttached)
}
