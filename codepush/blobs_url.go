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

// validateRuntimeVersion checks an exact runtime version (Expo's): 1 to 255
// printable characters without spaces, as expo-updates sends it in a header.
func validateRuntimeVersion(field, v string) error {
	if v == "" || len(v) > 255 {
		return invalid(field, v, "a runtime version of 1 to 255 characters is required")
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return invalid(field, v, "a runtime version is printable ASCII without spaces")
		}
	}
	return nil
}

// Served returns a deployment's history as update checks see it: the
// in-memory view, oldest first, read without touching the Store. ok is
// false for an unknown app or deployment. key is the deployment key.
func (s *Service) Served(app, deployment string) (key string, h []Release, ok bool) {
	var dv *deploymentView
	s.views.Range(func(_, v any) bool {
		d := v.(*deploymentView)
		if d.app == app && d.name == deployment {
			dv = d
			return false
		}
		return true
	})
	if dv == nil {
		return "", nil, false
	}
	h = make([]Release, len(dv.releases))
	for i := range dv.releases {
		h[i] = dv.releases[i].Release
	}
	return dv.key, h, true
}

// Blobs returns the package storage the Service was configured with.
func (s *Service) Blobs() Blobs { return s.cfg.Blobs }

// UnfinishedRollout reports whether a rollout percentage leaves devices out
// (0 and 100 both mean everyone).
func UnfinishedRollout(rollout int) bool { return unfinishedRollout(rollout) }

// BaseURL is the base of the URLs the Service hands out for a request:
// Config.PublicURL, else a trusted proxy's X-Forwarded-Proto and
// X-Forwarded-Host, else the local address the request arrived on — never
// the Host header.
func (s *Service) BaseURL(r *http.Request) string { return s.baseURL(r) }
