// Package githubtest is a GitHub REST API fake for tests: an http.Handler
// serving in-memory repositories built in Go (commits, trees with real git
// object SHAs, lightweight and annotated tags, releases with assets,
// deployments and their statuses), with GitHub's error bodies, pagination
// Link headers, rate-limit headers and budgets per credential, secondary
// rate limits with Retry-After, bearer-token checking, GitHub Apps (JWTs
// checked by GitHub's rules, expiring installation tokens), the
// 100,000-entry truncation of recursive trees and compare's 300-file cap.
// It also builds and signs webhook deliveries exactly as GitHub does, and
// carries GitHub's own example deliveries (@octokit/webhooks-examples).
//
// Point go-github at it with a BaseURL of server.URL + "/" (the trailing
// slash is required).
package githubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the rules the fake enforces, as GitHub documents them.
const (
	DefaultTreeLimit        = 100000
	DefaultCompareFileLimit = 300
	DefaultRateLimit        = 5000
	maxContentsSize         = 1 << 20 // contents API inlines files up to 1 MB
)

// Server is the fake. Configure its fields before serving.
type Server struct {
	// Token, when set, must arrive as "Authorization: Bearer <Token>" (or
	// "token <Token>"); otherwise the fake answers 401 Bad credentials.
	// Once a GitHub App is added (NewApp), repository requests need Token
	// or one of the app's unexpired installation tokens.
	Token string
	// TreeLimit caps a recursive tree listing (DefaultTreeLimit when 0);
	// beyond it the response is cut and "truncated" is true.
	TreeLimit int
	// CompareFileLimit caps compare's file list (DefaultCompareFileLimit).
	CompareFileLimit int
	// RateLimit is the hourly request budget of each credential (the
	// token, each app installation, anonymous callers): DefaultRateLimit
	// when 0. SetRateLimit overrides it for one credential.
	RateLimit int
	// Fail, when it returns a non-zero status for a request, makes the fake
	// answer with that status and GitHub's error body.
	Fail func(r *http.Request) int
	// SecondaryLimit, when it returns a positive duration for a request,
	// refuses it as GitHub's secondary rate limit does: 403 with a
	// Retry-After of that many seconds.
	SecondaryLimit func(r *http.Request) time.Duration
	// DropAfter, when it returns true for a request, makes the fake do
	// what the request asks and then drop the connection without an
	// answer: the client cannot tell whether its change happened (a crash
	// or a network cut at the worst moment).
	DropAfter func(r *http.Request) bool
	// TokenTTL is how long an installation token lives (one hour, as
	// GitHub's, when 0).
	TokenTTL time.Duration
	// Now is the clock for rate-limit resets, token expiry and JWT checks
	// (time.Now when nil).
	Now func() time.Time

	mu       sync.Mutex
	repos    map[string]*Repo
	limits   map[string]*rateState
	requests []string
	// assets by id, across repositories, and the id counter for releases,
	// deployments and their statuses.
	assets map[int64]*assetObj
	nextID int64
	apps   map[int64]*appObj
	// installations by id, and installation tokens.
	installs map[int64]*installObj
	tokens   map[string]*tokenObj
	minted   int
	denied   int
}

// New returns an empty fake.
func New() *Server { return &Server{repos: map[string]*Repo{}} }

// Repo returns the repository fullName ("owner/name"), creating it with
// default branch "main" on first use.
func (s *Server) Repo(fullName string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos == nil {
		s.repos = map[string]*Repo{}
	}
	if s.assets == nil {
		s.assets = map[int64]*assetObj{}
	}
	key := strings.ToLower(fullName)
	if r := s.repos[key]; r != nil {
		return r
	}
	r := &Repo{
		s: s, fullName: fullName, defaultBranch: "main",
		blobs: map[string][]byte{}, trees: map[string][]treeEntry{},
		commits: map[string]*commitObj{}, tags: map[string]*tagObj{}, refs: map[string]string{},
		clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	s.repos[key] = r
	return r
}

// Requests returns "METHOD path?query" of every request served so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

const docsBase = "https://docs.github.com/rest"

type apiError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
	Status           string `json:"status"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, message, doc string) {
	writeJSON(w, status, apiError{Message: message, DocumentationURL: doc, Status: strconv.Itoa(status)})
}

func notFound(w http.ResponseWriter, doc string) {
	writeError(w, http.StatusNotFound, "Not Found", doc)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.DropAfter != nil && s.DropAfter(r) {
		// Do the work, then cut the connection before the answer.
		s.serve(httptest.NewRecorder(), r)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	s.serve(w, r)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.Header().Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%d", len(s.requests)))

	if strings.HasPrefix(r.URL.Path, downloadPrefix) {
		s.serveDownload(w, r)
		return
	}
	// Path: /app/… (authenticated as the app) or /repos/{owner}/{repo}/{rest...}
	if strings.HasPrefix(r.URL.Path, "/app/") {
		s.serveApp(w, r)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/", 4)
	if len(parts) == 4 && parts[0] == "repos" && parts[3] == "installation" {
		s.serveRepoInstallation(w, r, parts[1]+"/"+parts[2])
		return
	}
	fullName := ""
	if len(parts) >= 3 && parts[0] == "repos" {
		fullName = parts[1] + "/" + parts[2]
	}
	cred, ok := s.authenticate(w, r, fullName)
	if !ok {
		return
	}
	if !s.rateLimit(w, r, cred) {
		return
	}
	if s.Fail != nil {
		if code := s.Fail(r); code != 0 {
			writeError(w, code, http.StatusText(code), docsBase)
			return
		}
	}
	if len(parts) < 4 || parts[0] != "repos" {
		notFound(w, docsBase)
		return
	}
	repo := s.repos[strings.ToLower(fullName)]
	if repo == nil {
		notFound(w, docsBase+"/repos/repos#get-a-repository")
		return
	}
	rest := parts[3]
	if rest == "deployments" || strings.HasPrefix(rest, "deployments/") {
		s.serveDeployments(w, r, repo, strings.TrimPrefix(strings.TrimPrefix(rest, "deployments"), "/"))
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound, "Not Found", docsBase)
		return
	}
	unescape := func(p string) string {
		u, err := url.PathUnescape(p)
		if err != nil {
			return p
		}
		return u
	}
	switch {
	case strings.HasPrefix(rest, "git/trees/"):
		s.serveTree(w, r, repo, unescape(strings.TrimPrefix(rest, "git/trees/")))
	case strings.HasPrefix(rest, "git/blobs/"):
		s.serveBlob(w, r, repo, unescape(strings.TrimPrefix(rest, "git/blobs/")))
	case strings.HasPrefix(rest, "git/ref/"):
		s.serveRef(w, r, repo, unescape(strings.TrimPrefix(rest, "git/ref/")))
	case strings.HasPrefix(rest, "git/tags/"):
		s.serveTag(w, r, repo, unescape(strings.TrimPrefix(rest, "git/tags/")))
	case strings.HasPrefix(rest, "contents/") || rest == "contents":
		s.serveContents(w, r, repo, unescape(strings.TrimPrefix(strings.TrimPrefix(rest, "contents"), "/")))
	case strings.HasPrefix(rest, "compare/"):
		s.serveCompare(w, r, repo, unescape(strings.TrimPrefix(rest, "compare/")))
	case rest == "tags":
		s.serveTags(w, r, repo)
	case strings.HasPrefix(rest, "releases/tags/"):
		s.serveReleaseByTag(w, r, repo, unescape(strings.TrimPrefix(rest, "releases/tags/")))
	case strings.HasPrefix(rest, "releases/assets/"):
		s.serveAsset(w, r, repo, strings.TrimPrefix(rest, "releases/assets/"))
	default:
		notFound(w, docsBase)
	}
}

// rateState is one credential's hourly budget.
type rateState struct {
	limit int // 0: the server's RateLimit
	used  int
	reset time.Time
}

// SetRateLimit sets the hourly budget of one credential: "token",
// InstallationKey(id) or "anonymous".
func (s *Server) SetRateLimit(key string, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit(key).limit = limit
}

// InstallationKey names an app installation's budget for SetRateLimit and
// Used.
func InstallationKey(id int64) string { return fmt.Sprintf("installation:%d", id) }

// Used reports how many requests a credential spent in its current hour.
func (s *Server) Used(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit(key).used
}

func (s *Server) limit(key string) *rateState {
	if s.limits == nil {
		s.limits = map[string]*rateState{}
	}
	st := s.limits[key]
	if st == nil {
		st = &rateState{}
		s.limits[key] = st
	}
	return st
}

// rateLimit writes GitHub's rate-limit headers for the credential's budget
// and refuses the request once it is spent, with the 403 body go-github
// recognises; a secondary limit is refused with Retry-After.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, key string) bool {
	st := s.limit(key)
	limit := st.limit
	if limit <= 0 {
		limit = s.RateLimit
	}
	if limit <= 0 {
		limit = DefaultRateLimit
	}
	now := s.now()
	if st.reset.IsZero() || !now.Before(st.reset) {
		st.reset, st.used = now.Add(time.Hour).Truncate(time.Second), 0
	}
	exceeded := st.used >= limit
	if !exceeded {
		st.used++
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-st.used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(st.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(st.used))
	h.Set("X-RateLimit-Resource", "core")
	if exceeded {
		writeError(w, http.StatusForbidden, "API rate limit exceeded for user ID 1.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
		return false
	}
	if s.SecondaryLimit != nil {
		if d := s.SecondaryLimit(r); d > 0 {
			h.Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
			writeError(w, http.StatusForbidden, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
				"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
			return false
		}
	}
	return true
}

func (s *Server) apiURL(r *http.Request, repo *Repo, rest string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/repos/%s/%s", scheme, r.Host, repo.fullName, rest)
}

type jsonTreeEntry struct {
	Path string `json:"path"`
	Mode string `json:"mode"`
	Type string `json:"type"`
	SHA  string `json:"sha"`
	Size *int   `json:"size,omitempty"`
	URL  string `json:"url"`
}

func (s *Server) serveTree(w http.ResponseWriter, r *http.Request, repo *Repo, name string) {
	const doc = docsBase + "/git/trees#get-a-tree"
	_, tree, ok := repo.peel(name)
	if !ok {
		notFound(w, doc)
		return
	}
	limit := s.TreeLimit
	if limit <= 0 {
		limit = DefaultTreeLimit
	}
	recursive := r.URL.Query().Get("recursive") != "" && r.URL.Query().Get("recursive") != "0" && r.URL.Query().Get("recursive") != "false"
	out := []jsonTreeEntry{}
	truncated := false
	var walk func(sha, prefix string) bool
	walk = func(sha, prefix string) bool {
		for _, e := range repo.trees[sha] {
			if len(out) >= limit {
				truncated = true
				return false
			}
			je := jsonTreeEntry{Path: prefix + e.name, Mode: e.mode, Type: e.typ, SHA: e.sha}
			if e.typ == "blob" {
				size := e.size
				je.Size = &size
				je.URL = s.apiURL(r, repo, "git/blobs/"+e.sha)
			} else {
				je.URL = s.apiURL(r, repo, "git/trees/"+e.sha)
			}
			out = append(out, je)
			if recursive && e.typ == "tree" && !walk(e.sha, prefix+e.name+"/") {
				return false
			}
		}
		return true
	}
	walk(tree, "")
	writeJSON(w, http.StatusOK, map[string]any{
		"sha": tree, "url": s.apiURL(r, repo, "git/trees/"+tree), "tree": out, "truncated": truncated,
	})
}

func encodeBase64Lines(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(enc) > 60 {
		sb.WriteString(enc[:60])
		sb.WriteByte('\n')
		enc = enc[60:]
	}
	sb.WriteString(enc)
	sb.WriteByte('\n')
	return sb.String()
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, repo *Repo, sha string) {
	c, ok := repo.blobs[sha]
	if !ok {
		notFound(w, docsBase+"/git/blobs#get-a-blob")
		return
	}
	if accept := r.Header.Get("Accept"); strings.Contains(accept, ".raw") {
		w.Header().Set("Content-Type", "application/vnd.github.raw")
		_, _ = w.Write(c)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sha": sha, "node_id": "B_" + short(sha), "size": len(c), "url": s.apiURL(r, repo, "git/blobs/"+sha),
		"content": encodeBase64Lines(c), "encoding": "base64",
	})
}

func (s *Server) serveContents(w http.ResponseWriter, r *http.Request, repo *Repo, p string) {
	const doc = docsBase + "/repos/contents#get-repository-content"
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = repo.defaultBranch
	}
	commit, _, ok := repo.peel(ref)
	if !ok || commit == "" {
		writeError(w, http.StatusNotFound, "No commit found for the ref "+ref, doc)
		return
	}
	p = strings.Trim(p, "/")
	files := repo.commits[commit].files
	if c, ok := files[p]; ok {
		sha := BlobSHA([]byte(c))
		name := p[strings.LastIndex(p, "/")+1:]
		body := map[string]any{
			"type": "file", "encoding": "base64", "size": len(c), "name": name, "path": p, "sha": sha,
			"content":      encodeBase64Lines([]byte(c)),
			"url":          s.apiURL(r, repo, "contents/"+p+"?ref="+url.QueryEscape(ref)),
			"git_url":      s.apiURL(r, repo, "git/blobs/"+sha),
			"html_url":     "https://github.com/" + repo.fullName + "/blob/" + ref + "/" + p,
			"download_url": "https://raw.githubusercontent.com/" + repo.fullName + "/" + ref + "/" + p,
		}
		if len(c) > maxContentsSize {
			body["content"], body["encoding"] = "", "none"
		}
		writeJSON(w, http.StatusOK, body)
		return
	}
	// A directory lists its direct children.
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	var list []map[string]any
	for fp, c := range files {
		rest, ok := strings.CutPrefix(fp, prefix)
		if !ok {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		if isDir {
			list = append(list, map[string]any{"type": "dir", "name": name, "path": prefix + name, "size": 0})
		} else {
			list = append(list, map[string]any{"type": "file", "name": name, "path": prefix + name, "size": len(c), "sha": BlobSHA([]byte(c))})
		}
	}
	if len(list) == 0 {
		notFound(w, doc)
		return
	}
	sort.Slice(list, func(i, j int) bool { return list[i]["name"].(string) < list[j]["name"].(string) })
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) serveRef(w http.ResponseWriter, r *http.Request, repo *Repo, ref string) {
	full := "refs/" + strings.TrimPrefix(ref, "refs/")
	sha, ok := repo.refs[full]
	if !ok {
		notFound(w, docsBase+"/git/refs#get-a-reference")
		return
	}
	typ, kind := "commit", "commits"
	if repo.tags[sha] != nil {
		typ, kind = "tag", "tags"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ref": full, "node_id": "REF_" + short(sha), "url": s.apiURL(r, repo, "git/"+full),
		"object": map[string]any{"type": typ, "sha": sha, "url": s.apiURL(r, repo, "git/"+kind+"/"+sha)},
	})
}

func (s *Server) serveTag(w http.ResponseWriter, r *http.Request, repo *Repo, sha string) {
	t := repo.tags[sha]
	if t == nil {
		notFound(w, docsBase+"/git/tags#get-a-tag")
		return
	}
	typ, kind := "commit", "commits"
	if repo.tags[t.target] != nil {
		typ, kind = "tag", "tags"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"node_id": "TAG_" + short(sha), "tag": t.name, "sha": sha, "url": s.apiURL(r, repo, "git/tags/"+sha),
		"message":      t.message + "\n",
		"tagger":       map[string]any{"name": "Release Bot", "email": "bot@example.com", "date": t.when.Format(time.RFC3339)},
		"object":       map[string]any{"type": typ, "sha": t.target, "url": s.apiURL(r, repo, "git/"+kind+"/"+t.target)},
		"verification": map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil},
	})
}

// pageParams reads per_page (default def, at most 100) and page (from 1).
func pageParams(r *http.Request, def int) (perPage, page int) {
	perPage, page = def, 1
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	return perPage, page
}

// setLink writes GitHub's Link header for a list of total items.
func setLink(w http.ResponseWriter, r *http.Request, perPage, page, total int) {
	last := (total + perPage - 1) / perPage
	if last <= 1 {
		return
	}
	link := func(p int, rel string) string {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		if r.TLS != nil {
			u.Scheme = "https"
		}
		q := u.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = q.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var parts []string
	if page > 1 {
		parts = append(parts, link(page-1, "prev"))
	}
	if page < last {
		parts = append(parts, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		parts = append(parts, link(1, "first"))
	}
	w.Header().Set("Link", strings.Join(parts, ", "))
}

func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, repo *Repo) {
	var names []string
	for ref := range repo.refs {
		if n, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
			names = append(names, n)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	perPage, page := pageParams(r, 30)
	setLink(w, r, perPage, page, len(names))
	out := []map[string]any{}
	for i := (page - 1) * perPage; i < len(names) && i < page*perPage; i++ {
		commit, _, _ := repo.peel("refs/tags/" + names[i])
		out = append(out, map[string]any{
			"name":        names[i],
			"commit":      map[string]any{"sha": commit, "url": s.apiURL(r, repo, "commits/"+commit)},
			"zipball_url": s.apiURL(r, repo, "zipball/refs/tags/"+names[i]),
			"tarball_url": s.apiURL(r, repo, "tarball/refs/tags/"+names[i]),
			"node_id":     "TAGREF_" + names[i],
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// ancestors returns every commit reachable from sha, including it.
func (repo *Repo) ancestors(sha string) map[string]bool {
	seen := map[string]bool{}
	stack := []string{sha}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] || repo.commits[c] == nil {
			continue
		}
		seen[c] = true
		stack = append(stack, repo.commits[c].parents...)
	}
	return seen
}

func (s *Server) serveCompare(w http.ResponseWriter, r *http.Request, repo *Repo, basehead string) {
	const doc = docsBase + "/commits/commits#compare-two-commits"
	baseName, headName, ok := strings.Cut(basehead, "...")
	if !ok {
		notFound(w, doc)
		return
	}
	base, _, ok1 := repo.peel(baseName)
	head, _, ok2 := repo.peel(headName)
	if !ok1 || !ok2 || base == "" || head == "" {
		notFound(w, doc)
		return
	}
	fromBase, fromHead := repo.ancestors(base), repo.ancestors(head)
	var ahead, behind []*commitObj
	for c := range fromHead {
		if !fromBase[c] {
			ahead = append(ahead, repo.commits[c])
		}
	}
	for c := range fromBase {
		if !fromHead[c] {
			behind = append(behind, repo.commits[c])
		}
	}
	// Chronological, oldest first.
	sort.Slice(ahead, func(i, j int) bool { return ahead[i].when.Before(ahead[j].when) })
	status := "identical"
	switch {
	case len(ahead) > 0 && len(behind) > 0:
		status = "diverged"
	case len(ahead) > 0:
		status = "ahead"
	case len(behind) > 0:
		status = "behind"
	}

	paginated := r.URL.Query().Has("per_page") || r.URL.Query().Has("page")
	perPage, page := 250, 1
	if paginated {
		perPage, page = pageParams(r, 30)
		setLink(w, r, perPage, page, len(ahead))
	}
	commits := []map[string]any{}
	for i := (page - 1) * perPage; i < len(ahead) && i < page*perPage; i++ {
		commits = append(commits, s.commitJSON(r, repo, ahead[i]))
	}

	files := []map[string]any{}
	if page == 1 {
		files = s.diffFiles(repo.commits[base].files, repo.commits[head].files)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":               s.apiURL(r, repo, "compare/"+basehead),
		"html_url":          "https://github.com/" + repo.fullName + "/compare/" + basehead,
		"base_commit":       s.commitJSON(r, repo, repo.commits[base]),
		"merge_base_commit": s.commitJSON(r, repo, repo.commits[base]),
		"status":            status, "ahead_by": len(ahead), "behind_by": len(behind),
		"total_commits": len(ahead), "commits": commits, "files": files,
	})
}

func (s *Server) commitJSON(r *http.Request, repo *Repo, c *commitObj) map[string]any {
	parents := []map[string]any{}
	for _, p := range c.parents {
		parents = append(parents, map[string]any{"sha": p, "url": s.apiURL(r, repo, "commits/"+p)})
	}
	who := map[string]any{"name": "Release Bot", "email": "bot@example.com", "date": c.when.Format(time.RFC3339)}
	return map[string]any{
		"sha": c.sha, "node_id": "C_" + short(c.sha), "url": s.apiURL(r, repo, "commits/"+c.sha),
		"html_url": "https://github.com/" + repo.fullName + "/commit/" + c.sha,
		"commit": map[string]any{
			"author": who, "committer": who, "message": c.message,
			"tree": map[string]any{"sha": c.tree, "url": s.apiURL(r, repo, "git/trees/"+c.tree)},
		},
		"parents": parents,
	}
}

// diffFiles lists changed files, sorted by path, capped at CompareFileLimit
// for the whole comparison as GitHub does.
func (s *Server) diffFiles(a, b Files) []map[string]any {
	limit := s.CompareFileLimit
	if limit <= 0 {
		limit = DefaultCompareFileLimit
	}
	paths := map[string]bool{}
	for p := range a {
		paths[p] = true
	}
	for p := range b {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	out := []map[string]any{}
	for _, p := range sorted {
		oldC, inA := a[p]
		newC, inB := b[p]
		var status, sha string
		switch {
		case inA && !inB:
			status, sha = "removed", BlobSHA([]byte(oldC))
		case !inA && inB:
			status, sha = "added", BlobSHA([]byte(newC))
		case oldC != newC:
			status, sha = "modified", BlobSHA([]byte(newC))
		default:
			continue
		}
		if len(out) == limit {
			break
		}
		adds, dels := strings.Count(newC, "\n"), strings.Count(oldC, "\n")
		if status == "added" {
			dels = 0
		}
		if status == "removed" {
			adds = 0
		}
		out = append(out, map[string]any{
			"sha": sha, "filename": p, "status": status,
			"additions": adds, "deletions": dels, "changes": adds + dels,
		})
	}
	return out
}
