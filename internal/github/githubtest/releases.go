package githubtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// releaseObj is a GitHub release with its uploaded assets.
type releaseObj struct {
	id     int64
	tag    string
	assets []*assetObj
	at     time.Time
}

type assetObj struct {
	id      int64
	name    string
	content []byte
}

// downloadPrefix is where asset bytes are served, like GitHub's signed
// object-storage URLs: no API token is needed (or sent) there.
const downloadPrefix = "/_downloads/"

// Release publishes a release for tag with the given assets (name → bytes),
// as `gh release create tag files…` does. It returns the release id.
func (r *Repo) Release(tag string, assets map[string][]byte) int64 {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.s.nextID++
	rel := &releaseObj{id: r.s.nextID, tag: tag, at: r.tick()}
	names := make([]string, 0, len(assets))
	for n := range assets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.s.nextID++
		a := &assetObj{id: r.s.nextID, name: n, content: append([]byte(nil), assets[n]...)}
		rel.assets = append(rel.assets, a)
		r.s.assets[a.id] = a
	}
	r.releases = append(r.releases, rel)
	return rel.id
}

func (s *Server) assetJSON(r *http.Request, repo *Repo, a *assetObj, at time.Time) map[string]any {
	sum := sha256.Sum256(a.content)
	return map[string]any{
		"id": a.id, "node_id": fmt.Sprintf("RA_%d", a.id), "name": a.name, "label": "", "state": "uploaded",
		"content_type": "application/octet-stream", "size": len(a.content), "download_count": 0,
		"digest":               "sha256:" + hex.EncodeToString(sum[:]),
		"url":                  s.apiURL(r, repo, "releases/assets/"+strconv.FormatInt(a.id, 10)),
		"browser_download_url": "https://github.com/" + repo.fullName + "/releases/download/" + a.name,
		"uploader":             simpleUser(r.Host, "release-bot", 42, "User"),
		"created_at":           at.UTC().Format(time.RFC3339), "updated_at": at.UTC().Format(time.RFC3339),
	}
}

// serveReleaseByTag answers GET /repos/{o}/{r}/releases/tags/{tag}.
func (s *Server) serveReleaseByTag(w http.ResponseWriter, r *http.Request, repo *Repo, tag string) {
	for i := len(repo.releases) - 1; i >= 0; i-- {
		rel := repo.releases[i]
		if rel.tag != tag {
			continue
		}
		assets := make([]map[string]any, 0, len(rel.assets))
		for _, a := range rel.assets {
			assets = append(assets, s.assetJSON(r, repo, a, rel.at))
		}
		relURL := s.apiURL(r, repo, "releases/"+strconv.FormatInt(rel.id, 10))
		writeJSON(w, http.StatusOK, map[string]any{
			"id": rel.id, "node_id": fmt.Sprintf("RE_%d", rel.id), "tag_name": rel.tag, "target_commitish": repo.defaultBranch,
			"name": rel.tag, "draft": false, "prerelease": false,
			"created_at": rel.at.UTC().Format(time.RFC3339), "published_at": rel.at.UTC().Format(time.RFC3339),
			"url": relURL, "assets_url": relURL + "/assets",
			"upload_url":  "https://uploads.github.com/repos/" + repo.fullName + "/releases/" + strconv.FormatInt(rel.id, 10) + "/assets{?name,label}",
			"html_url":    "https://github.com/" + repo.fullName + "/releases/tag/" + rel.tag,
			"tarball_url": s.apiURL(r, repo, "tarball/"+rel.tag), "zipball_url": s.apiURL(r, repo, "zipball/"+rel.tag),
			"author": simpleUser(r.Host, "release-bot", 42, "User"),
			"assets": assets,
		})
		return
	}
	notFound(w, docsBase+"/releases/releases#get-a-release-by-tag-name")
}

// serveAsset answers GET /repos/{o}/{r}/releases/assets/{id}: the asset's
// JSON, or with Accept: application/octet-stream a 302 to its bytes, as
// GitHub redirects to object storage.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, repo *Repo, id string) {
	n, err := strconv.ParseInt(id, 10, 64)
	a := s.assets[n]
	if err != nil || a == nil {
		notFound(w, docsBase+"/releases/assets#get-a-release-asset")
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/octet-stream") {
		w.Header().Set("Location", "http://"+r.Host+downloadPrefix+id)
		w.WriteHeader(http.StatusFound)
		return
	}
	writeJSON(w, http.StatusOK, s.assetJSON(r, repo, a, time.Time{}))
}

// serveDownload serves asset bytes at the redirect target.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, downloadPrefix), 10, 64)
	a := s.assets[n]
	if err != nil || a == nil {
		http.Error(w, "The specified key does not exist.", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(a.content)))
	_, _ = w.Write(a.content)
}
