package ioslane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

// upload sends the release's IPA once (UploadBuild lists the app's uploads
// first and resumes or returns an existing one) and waits for App Store
// Connect to turn it into a build.
func (r *iosRun) upload(ctx context.Context) error {
	x, d := r.x, &r.data
	if d.UploadID == "" {
		pattern := r.app.IOS.IPAAsset
		if x.Assets == nil || pattern == "" {
			return lane.Fail("ios.build_source is upload but no GitHub asset reader or ios.ipa_asset is configured")
		}
		f, name, err := x.Assets.FetchAsset(ctx, r.app.Repository, r.rel.Tag, pattern)
		if errors.Is(err, fs.ErrNotExist) {
			return r.wait(ctx, "asset", fmt.Sprintf("the asset %q has not appeared on the GitHub release %s", pattern, r.rel.Tag))
		}
		if err != nil {
			return fmt.Errorf("fetch %s from the GitHub release %s: %w", pattern, r.rel.Tag, err)
		}
		defer func() {
			f.Close()
			os.Remove(f.Name())
		}()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		read := x.IPAVersion
		if read == nil {
			read = func(r io.ReaderAt, size int64) (string, string, error) { return IPAVersionContext(ctx, r, size) }
		}
		version, build, err := read(f, fi.Size())
		switch {
		case err != nil:
			return lane.Fail("asset %s of %s: %v", name, r.rel.Tag, err)
		case version != d.Version:
			return lane.Fail("asset %s of %s is version %s, but the tag says %s", name, r.rel.Tag, version, d.Version)
		case d.BuildNumber != "" && build != d.BuildNumber:
			return lane.Fail("asset %s of %s is build %s, but this lane ships build %s; tag a new release for a new build", name, r.rel.Tag, build, d.BuildNumber)
		}
		if d.BuildNumber == "" {
			d.BuildNumber = build
		}
		// Recorded before any byte leaves: from here the lane is past its
		// point of no return, and a lane withdrawn meanwhile (its tag moved
		// or was deleted) refuses the write, so nothing is uploaded.
		d.Asset = name
		if err := r.save(ctx); err != nil {
			return err
		}
		up, err := x.ASC.UploadBuild(ctx, appstore.UploadRequest{AppID: d.AppID, Version: d.Version, BuildNumber: d.BuildNumber,
			Platform: appstore.PlatformIOS, FileName: path.Base(name), File: f, Size: fi.Size()})
		if err := ascFailure("upload "+name, err); err != nil {
			return err
		}
		d.UploadID, d.Asset = up.ID, name
		if err := r.save(ctx); err != nil {
			return err
		}
		if err := r.progress(ctx, "ios.uploaded", map[string]any{"asset": name, "upload_id": up.ID, "bytes": fi.Size()}); err != nil {
			return err
		}
	}
	up, err := x.ASC.BuildUpload(ctx, d.UploadID)
	if err := ascFailure("read upload "+d.UploadID, err); err != nil {
		return err
	}
	switch {
	case up.State == appstore.UploadFailed:
		var msgs []string
		for _, e := range up.Errors {
			msgs = append(msgs, fmt.Sprintf("%s: %s", e.Code, e.Description))
		}
		if len(msgs) == 0 {
			msgs = []string{"no reason given"}
		}
		return lane.Fail("App Store Connect refused the upload of %s: %s", d.label(), strings.Join(msgs, "; "))
	case up.State == appstore.UploadComplete && up.BuildID != "":
		d.BuildID = up.BuildID
		return r.reach(ctx, iosStepBuild)
	}
	return r.wait(ctx, "processing", fmt.Sprintf("upload of %s still %s", d.label(), up.State))
}
