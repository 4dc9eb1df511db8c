package github

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// MaxAssetBytes bounds a downloaded release asset (4 GiB: App Store and Play
// accept nothing larger).
const MaxAssetBytes = 4 << 30

// FetchAsset downloads the first asset of the GitHub release at tag whose
// name matches the glob pattern into a new temporary file, positioned at 0.
// The caller closes and removes it. A missing release or asset matches
// fs.ErrNotExist and the error lists the assets that are there.
func (r *Repo) FetchAsset(ctx context.Context, tag, pattern string) (*os.File, string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, "", fmt.Errorf("asset pattern %q: %w", pattern, err)
	}
	rel, resp, err := r.gh.Repositories.GetReleaseByTag(ctx, r.owner, r.name, tag)
	if err != nil {
		return nil, "", apiErr("get release "+tag, resp, err)
	}
	var names []string
	for _, a := range rel.Assets {
		name := a.GetName()
		names = append(names, name)
		if ok, _ := path.Match(pattern, name); !ok {
			continue
		}
		if a.GetSize() > MaxAssetBytes {
			return nil, "", fmt.Errorf("asset %s of release %s is %d bytes, over the %d-byte limit", name, tag, a.GetSize(), int64(MaxAssetBytes))
		}
		rc, _, err := r.dl.Repositories.DownloadReleaseAsset(ctx, r.owner, r.name, a.GetID(), downloadClient)
		if err != nil {
			return nil, "", apiErr("download asset "+name, nil, err)
		}
		defer rc.Close()
		f, err := os.CreateTemp("", "releasepilot-asset-*-"+path.Base(name))
		if err != nil {
			return nil, "", err
		}
		n, err := io.Copy(f, io.LimitReader(rc, MaxAssetBytes+1))
		if err == nil && n > MaxAssetBytes {
			err = fmt.Errorf("asset %s is over the %d-byte limit", name, int64(MaxAssetBytes))
		}
		if err == nil && a.GetSize() > 0 && n != int64(a.GetSize()) {
			err = fmt.Errorf("asset %s: got %d bytes, the release lists %d", name, n, a.GetSize())
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, "", fmt.Errorf("download asset %s: %w", name, err)
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("release %s has no asset matching %q (assets: %s): %w", tag, pattern, strings.Join(names, ", "), fs.ErrNotExist)
}

// downloadClient follows the redirect to object storage; it is a plain
// client, so the API token is never sent there.
var downloadClient = &http.Client{}
