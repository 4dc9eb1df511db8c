package codepush

import (
	"context"
	"net/http"
)

// BlobURLer is implemented by Blobs whose content devices download from
// elsewhere than this server: an object store behind a CDN, or presigned
// URLs. The Service then answers update checks (and Expo manifests) with
// these URLs instead of its own download route.
type BlobURLer interface {
	// BlobURL returns a URL from which the blob stored under key can be
	// downloaded unchanged. contentType, when not empty, is the type the
	// download should be served with where the store can say so (a presigned
	// URL's response-content-type); a CDN serves what was stored.
	BlobURL(ctx context.Context, key, contentType string) (string, error)
}

// packageURL is the download URL of the blob key: the Blobs' own URL when
// it has one, else this server's package route.
func (s *Service) packageURL(r *http.Request, key, contentType string) (string, error) {
	if u, ok := s.cfg.Blobs.(BlobURLer); ok {
		return u.BlobURL(r.Context(), key, contentType)
	}
	return s.baseURL(r) + PathPackages + key, nil
}

// setDownload fills the download URL (and size) of an available update: a
// diff package when the device's package hash has one, else the full
// package.
func (s *Service) setDownload(r *http.Request, req UpdateRequest, info *UpdateInfo) error {
	key, ctype := info.Release.BlobKey, "application/octet-stream"
	if d, ok := s.diffFor(req.DeploymentKey, info.Release, req.PackageHash); ok {
		key, ctype = d.BlobKey, "application/zip"
		info.PackageSize = d.Size
	}
	u, err := s.packageURL(r, key, ctype)
	if err != nil {
		return err
	}
	info.DownloadURL = u
	return nil
}
