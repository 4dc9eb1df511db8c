package ioslane

import (
	"context"
	"errors"
	"fmt"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

func (r *iosRun) appStoreVersion(ctx context.Context) error {
	// Finds the version first; creates it (release type MANUAL, so the
	// reconciler decides when it goes live) only when missing.
	v, created, err := r.x.ASC.FindOrCreateAppStoreVersion(ctx, r.data.AppID, appstore.PlatformIOS, r.data.Version)
	var editable *appstore.EditableVersionError
	reused := ""
	if errors.As(err, &editable) {
		// A prepared or rejected version blocks a new one: reuse it for
		// this release by renaming it, as fastlane's deliver does — unless
		// another release in flight owns it.
		if tag, err := r.versionOwner(ctx, editable.Version.ID); err != nil || tag != "" {
			if err != nil {
				return err
			}
			return lane.Fail("App Store version %s cannot be created: version %s (%s) is %s and belongs to release %s, still in flight; App Store Connect edits one version at a time, so finish or cancel that release first",
				r.data.Version, editable.Version.VersionString, editable.Version.ID, editable.Version.AppVersionState, tag)
		}
		reused = editable.Version.VersionString
		// SetVersionString and SetReleaseType read first and send nothing
		// when there is nothing to change.
		if _, err = r.x.ASC.SetVersionString(ctx, editable.Version.ID, r.data.Version); err == nil {
			v, err = r.x.ASC.SetReleaseType(ctx, editable.Version.ID, appstore.ReleaseManual)
		}
		if err := ascFailure(fmt.Sprintf("reuse App Store version %s as %s", reused, r.data.Version), err); err != nil {
			return err
		}
	}
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
	details := map[string]any{"version_id": v.ID, "created": created, "state": string(v.AppVersionState)}
	if reused != "" {
		details["reused_from"] = reused
	}
	return r.progress(ctx, "ios.app_store_version", details)
}

// versionOwner returns the tag of another release whose iOS lane is in
// flight (neither finished nor failed) with App Store version versionID
// ("" when none).
func (r *iosRun) versionOwner(ctx context.Context, versionID string) (string, error) {
	rels, err := r.x.Store.ListReleases(ctx, r.rel.App, 200)
	if err != nil {
		return "", err
	}
	for _, rel := range rels {
		if rel.ID == r.rel.ID {
			continue
		}
		lanes, err := r.x.Store.Lanes(ctx, rel.ID)
		if err != nil {
			return "", err
		}
		for _, l := range lanes {
			if l.Platform != release.IOS || l.Kind != release.KindStore || l.Status.State.Terminal() {
				continue
			}
			var other iosLaneData
			if err := r.x.Store.LaneData(ctx, l.ID, &other); err != nil {
				return "", err
			}
			if other.VersionID == versionID {
				return rel.Tag, nil
			}
		}
	}
	return "", nil
}

func (r *iosRun) attachBuild(ctx context.Context) error {
	// AttachBuild reads the attached build first and sends nothing if it is ours.
	err := r.x.ASC.AttachBuild(ctx, r.data.VersionID, r.data.BuildID)
	if err := ascFailure("attach build "+r.data.label()+" to App Store version "+r.data.Version, err); err != nil {
		return err
	}
	return r.reach(ctx, iosStepAttached)
}
