package androidlane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
)

// uploadAsset uploads the release's AAB from GitHub. The versionCode comes
// from the AAB's own manifest, read before anything is sent, and is kept in
// the lane's data at once: a retry uploads that versionCode or nothing, and
// UploadBundle skips the bytes when Play already has it.
func (a *Android) uploadAsset(ctx context.Context, l release.Lane, rel release.Release, app config.App, data *androidLaneData) error {
	if a.Assets == nil {
		return lane.Fail("android.aab_asset is %q but no GitHub asset reader is configured", app.Android.AABAsset)
	}
	f, name, err := a.Assets.FetchAsset(ctx, app.Repository, rel.Tag, app.Android.AABAsset)
	if errors.Is(err, fs.ErrNotExist) {
		return a.wait(ctx, l, app, data, fmt.Sprintf("waiting for the asset %q on the GitHub release %s", app.Android.AABAsset, rel.Tag))
	}
	if err != nil {
		return fmt.Errorf("fetch %s from the GitHub release %s: %w", app.Android.AABAsset, rel.Tag, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	read := a.BundleVersionCode
	if read == nil {
		read = ManifestVersionCode
	}
	vc, err := read(f, fi.Size())
	if err != nil {
		return lane.Fail("asset %s of %s: %v", name, rel.Tag, err)
	}
	switch {
	case data.VersionCode == 0:
		data.VersionCode, data.Asset, data.WaitingSince = vc, name, time.Time{}
		if err := a.Store.SetLaneData(ctx, l.ID, *data, a.now()); err != nil {
			return err
		}
	case data.VersionCode != vc:
		return lane.Fail("asset %s of %s now declares versionCode %d, but this lane already chose versionCode %d; tag a new release for a new build", name, rel.Tag, vc, data.VersionCode)
	}
	// UploadBundle lists the app's bundles first and sends nothing when
	// Play already has vc; it records vc in the ledger before any byte leaves.
	res, err := a.Play.UploadBundle(ctx, data.Package, playstore.Bundle{VersionCode: vc, Content: f, Size: fi.Size()})
	if err := playFailure(fmt.Sprintf("upload %s (versionCode %d)", name, vc), err); err != nil {
		return err
	}
	data.Uploaded = true
	if err := a.Store.SetLaneData(ctx, l.ID, *data, a.now()); err != nil {
		return err
	}
	return lane.Progress(ctx, a.Store, l, "android.bundle_uploaded", map[string]any{"version_code": vc, "asset": name, "skipped": res.Skipped, "sha256": res.SHA256, "calls": res.Calls}, a.now())
}
