package github

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

// Errors a repository read can match with errors.Is, besides fs.ErrNotExist
// for anything GitHub answers 404 to.
var (
	ErrRateLimited  = errors.New("github: rate limit exceeded")
	ErrUnauthorized = errors.New("github: bad or missing credentials")
)

// APIError is a failed GitHub API call. It never includes the token.
type APIError struct {
	Op         string
	StatusCode int // 0 when no response arrived
	// Reset is when a rate limit lifts, for ErrRateLimited.
	Reset time.Time
	Err   error
}

func (e *APIError) Error() string { return fmt.Sprintf("github: %s: %v", e.Op, e.Err) }
func (e *APIError) Unwrap() error { return e.Err }

// Is matches fs.ErrNotExist for 404, ErrRateLimited and ErrUnauthorized.
func (e *APIError) Is(target error) bool {
	switch target {
	case fs.ErrNotExist:
		return e.StatusCode == http.StatusNotFound
	case ErrRateLimited:
		return !e.Reset.IsZero() || e.StatusCode == http.StatusTooManyRequests
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

func apiErr(op string, resp *gh.Response, err error) error {
	if err == nil {
		return nil
	}
	e := &APIError{Op: op, Err: err}
	if resp != nil && resp.Response != nil {
		e.StatusCode = resp.StatusCode
	}
	var rl *gh.RateLimitError
	if errors.As(err, &rl) {
		e.Reset = rl.Rate.Reset.Time
		if e.StatusCode == 0 && rl.Response != nil {
			e.StatusCode = rl.Response.StatusCode
		}
	}
	var ab *gh.AbuseRateLimitError
	if errors.As(err, &ab) {
		e.Reset = time.Now().Add(ab.GetRetryAfter())
	}
	var rl2 *RateLimitedError
	if errors.As(err, &rl2) {
		e.Reset, e.Err = rl2.Until, rl2 // without go-github's *url.Error wrapping, which names the URL
	}
	return e
}

// ClientOptions configure a Client. The zero value talks to api.github.com
// without a token.
type ClientOptions struct {
	// BaseURL of the REST API, e.g. "https://ghe.example.com/api/v3/" or an
	// httptest server's URL. A missing trailing slash is added (go-github
	// requires it).
	BaseURL string
	Token   string
	// App authenticates as a GitHub App's installations instead of Token.
	App        *AppCredentials
	HTTPClient *http.Client
	// Now is the clock of token expiry, rate-limit budgets and asset poll
	// back-off (time.Now when nil).
	Now func() time.Time
	// PollReserve is the share of each credential's hourly budget that
	// asset polls leave alone (DefaultPollReserve when 0).
	PollReserve float64
	// PollBackoff is the first wait before a missing release asset is
	// looked for again (DefaultPollBackoff when 0); it doubles with every
	// miss up to MaxPollBackoff.
	PollBackoff time.Duration
}

// Client reads repositories through the GitHub REST API, authenticated by a
// token or as a GitHub App, within each credential's hourly budget. It is
// safe for concurrent use.
type Client struct {
	base  *url.URL
	hc    *http.Client
	polls *assetPolls
	now   func() time.Time

	mu    sync.Mutex
	repos map[string]*Repo
}

// NewClient builds a Client. It fails only on an unparsable BaseURL or an
// App without a key.
func NewClient(opts ClientOptions) (*Client, error) {
	base := opts.BaseURL
	if base == "" {
		base = "https://api.github.com/"
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("github: base URL %q is not an absolute URL", opts.BaseURL)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	rt := http.DefaultTransport
	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
		if hc.Transport != nil {
			rt = hc.Transport
		}
	}
	var auth authorizer = anonymous{}
	switch {
	case opts.App != nil:
		if opts.App.PrivateKey == nil || opts.App.ID <= 0 {
			return nil, errors.New("github: a GitHub App needs its id and private key")
		}
		auth = &appAuth{creds: *opts.App, base: u, rt: rt, now: now}
	case opts.Token != "":
		auth = newTokenAuth(opts.Token)
	}
	reserve := opts.PollReserve
	if reserve <= 0 {
		reserve = DefaultPollReserve
	}
	hc.Transport = &transport{base: rt, apiPath: u.Path, auth: auth, budgets: &budgets{reserve: reserve, now: now}}
	return &Client{base: u, hc: &hc, now: now, polls: newAssetPolls(opts.PollBackoff), repos: map[string]*Repo{}}, nil
}

// newGH builds a go-github client on its own copy of the HTTP client, so a
// DownloadReleaseAsset's CheckRedirect swap touches no other client.
func (c *Client) newGH() *gh.Client {
	hc := *c.hc
	g := gh.NewClient(&hc)
	g.BaseURL = c.base
	return g
}

// Repo returns a reader of the repository fullName ("owner/name").
func (c *Client) Repo(fullName string) (*Repo, error) {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("github: repository %q is not owner/name", fullName)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := strings.ToLower(fullName)
	if r := c.repos[key]; r != nil {
		return r, nil
	}
	// Each repository has its own go-github clients: go-github remembers
	// rate limits per client, and repositories may sit in different app
	// installations with budgets of their own.
	r := &Repo{gh: c.newGH(), dl: c.newGH(), owner: owner, name: name, c: c}
	c.repos[key] = r
	return r, nil
}

// Repo reads one repository. It implements nativecheck.Source.
type Repo struct {
	gh          *gh.Client
	dl          *gh.Client // release asset downloads only (see newGH)
	owner, name string
	c           *Client
}

var _ nativecheck.Source = (*Repo)(nil)

func (r *Repo) String() string { return r.owner + "/" + r.name }

// Tree lists every entry of commit's tree (a commit SHA, tree SHA or ref).
// A recursive listing is tried first; when GitHub truncates it (over
// 100,000 entries or 7 MB), the tree is walked instead: each subtree is
// listed recursively, and a subtree that is itself truncated is split
// again, so every entry is returned. truncated is true only if a single
// directory is too large to list.
func (r *Repo) Tree(ctx context.Context, commit string) ([]nativecheck.Entry, bool, error) {
	t, resp, err := r.gh.Git.GetTree(ctx, r.owner, r.name, commit, true)
	if err != nil {
		return nil, false, apiErr("get tree "+commit, resp, err)
	}
	if !t.GetTruncated() {
		return appendEntries(nil, "", t.Entries), false, nil
	}
	root, resp, err := r.gh.Git.GetTree(ctx, r.owner, r.name, commit, false)
	if err != nil {
		return nil, false, apiErr("get tree "+commit, resp, err)
	}
	var out []nativecheck.Entry
	truncated, err := r.walk(ctx, root, "", &out)
	return out, truncated, err
}

func (r *Repo) walk(ctx context.Context, t *gh.Tree, prefix string, out *[]nativecheck.Entry) (bool, error) {
	if t.GetTruncated() {
		return true, nil // one directory over the limit: cannot list it
	}
	*out = appendEntries(*out, prefix, t.Entries)
	for _, e := range t.Entries {
		if e.GetType() != "tree" {
			continue
		}
		sub, resp, err := r.gh.Git.GetTree(ctx, r.owner, r.name, e.GetSHA(), true)
		if err != nil {
			return false, apiErr("get tree "+e.GetSHA(), resp, err)
		}
		p := prefix + e.GetPath() + "/"
		if !sub.GetTruncated() {
			*out = appendEntries(*out, p, sub.Entries)
			continue
		}
		flat, resp, err := r.gh.Git.GetTree(ctx, r.owner, r.name, e.GetSHA(), false)
		if err != nil {
			return false, apiErr("get tree "+e.GetSHA(), resp, err)
		}
		if truncated, err := r.walk(ctx, flat, p, out); truncated || err != nil {
			return truncated, err
		}
	}
	return false, nil
}

func appendEntries(out []nativecheck.Entry, prefix string, entries []*gh.TreeEntry) []nativecheck.Entry {
	if out == nil {
		out = make([]nativecheck.Entry, 0, len(entries))
	}
	for _, e := range entries {
		out = append(out, nativecheck.Entry{
			Path: prefix + e.GetPath(), Type: e.GetType(), Mode: e.GetMode(), SHA: e.GetSHA(), Size: int64(e.GetSize()),
		})
	}
	return out
}

// ReadFile returns the contents of path at commit (any ref). Files over
// the contents API's 1 MB inline limit (large lockfiles) are fetched as
// blobs. A missing path matches fs.ErrNotExist.
func (r *Repo) ReadFile(ctx context.Context, commit, path string) ([]byte, error) {
	fc, dir, resp, err := r.gh.Repositories.GetContents(ctx, r.owner, r.name, path, &gh.RepositoryContentGetOptions{Ref: commit})
	if err != nil {
		return nil, apiErr("get contents "+path+" at "+commit, resp, err)
	}
	if fc == nil || dir != nil {
		return nil, &APIError{Op: "get contents " + path, Err: errors.New("is a directory")}
	}
	if fc.GetType() != "" && fc.GetType() != "file" {
		return nil, &APIError{Op: "get contents " + path, Err: fmt.Errorf("is a %s, not a file", fc.GetType())}
	}
	if fc.GetEncoding() == "none" || (fc.Content == nil && fc.GetSize() > 0) {
		return r.Blob(ctx, fc.GetSHA())
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, &APIError{Op: "decode contents " + path, Err: err}
	}
	return []byte(s), nil
}

// Blob returns a blob's contents by SHA.
func (r *Repo) Blob(ctx context.Context, sha string) ([]byte, error) {
	b, resp, err := r.gh.Git.GetBlobRaw(ctx, r.owner, r.name, sha)
	if err != nil {
		return nil, apiErr("get blob "+sha, resp, err)
	}
	return b, nil
}

// ResolveTag returns the commit SHA a tag points to, dereferencing
// annotated tags (including tags of tags).
func (r *Repo) ResolveTag(ctx context.Context, tag string) (string, error) {
	ref, resp, err := r.gh.Git.GetRef(ctx, r.owner, r.name, "tags/"+tag)
	if err != nil {
		return "", apiErr("get ref tags/"+tag, resp, err)
	}
	obj := ref.GetObject()
	for range 8 {
		switch obj.GetType() {
		case "commit":
			return obj.GetSHA(), nil
		case "tag":
			t, resp, err := r.gh.Git.GetTag(ctx, r.owner, r.name, obj.GetSHA())
			if err != nil {
				return "", apiErr("get tag "+obj.GetSHA(), resp, err)
			}
			obj = t.GetObject()
		default:
			return "", &APIError{Op: "resolve tag " + tag, Err: fmt.Errorf("tag points to a %s, not a commit", obj.GetType())}
		}
	}
	return "", &APIError{Op: "resolve tag " + tag, Err: errors.New("tag chain too deep")}
}

// Tag is a repository tag and the commit it points to.
type Tag struct {
	Name   string
	Commit string
}

// ListTags returns every tag, following pagination.
func (r *Repo) ListTags(ctx context.Context) ([]Tag, error) {
	var out []Tag
	opts := &gh.ListOptions{PerPage: 100}
	for {
		tags, resp, err := r.gh.Repositories.ListTags(ctx, r.owner, r.name, opts)
		if err != nil {
			return nil, apiErr("list tags", resp, err)
		}
		for _, t := range tags {
			out = append(out, Tag{Name: t.GetName(), Commit: t.GetCommit().GetSHA()})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// CompareFileCap is the most files GitHub lists for a comparison.
const CompareFileCap = 300

// maxComparePages bounds a compare walk (100 commits a page).
const maxComparePages = 100

// Comparison is what changed between two commits, for release notes. Its
// file list is capped by GitHub and must never decide nativeness; use the
// trees (nativecheck) for that.
type Comparison struct {
	Status       string // "ahead", "behind", "diverged", "identical"
	AheadBy      int
	BehindBy     int
	TotalCommits int
	Commits      []CommitInfo // oldest first
	// CommitsIncomplete is set when more commits exist than were read.
	CommitsIncomplete bool
	Files             []ChangedFile
	// FilesIncomplete is set when the file list may be cut at
	// CompareFileCap.
	FilesIncomplete bool
}

// CommitInfo is one commit of a comparison.
type CommitInfo struct {
	SHA     string
	Message string
	Author  string
	Date    time.Time
}

// ChangedFile is one file of a comparison.
type ChangedFile struct {
	Path   string
	Status string // added, removed, modified, renamed, …
	SHA    string
}

// Compare lists the commits in base...head (every page) and the changed
// files GitHub reports (first page only, at most CompareFileCap).
func (r *Repo) Compare(ctx context.Context, base, head string) (Comparison, error) {
	var cmp Comparison
	opts := &gh.ListOptions{PerPage: 100, Page: 1}
	for page := 0; ; page++ {
		c, resp, err := r.gh.Repositories.CompareCommits(ctx, r.owner, r.name, base, head, opts)
		if err != nil {
			return Comparison{}, apiErr("compare "+base+"..."+head, resp, err)
		}
		if page == 0 {
			cmp.Status, cmp.AheadBy, cmp.BehindBy, cmp.TotalCommits = c.GetStatus(), c.GetAheadBy(), c.GetBehindBy(), c.GetTotalCommits()
			for _, f := range c.Files {
				cmp.Files = append(cmp.Files, ChangedFile{Path: f.GetFilename(), Status: f.GetStatus(), SHA: f.GetSHA()})
			}
			cmp.FilesIncomplete = len(c.Files) >= CompareFileCap
		}
		for _, rc := range c.Commits {
			cmp.Commits = append(cmp.Commits, CommitInfo{
				SHA: rc.GetSHA(), Message: rc.GetCommit().GetMessage(),
				Author: rc.GetCommit().GetAuthor().GetName(), Date: rc.GetCommit().GetAuthor().GetDate().Time,
			})
		}
		if resp.NextPage == 0 || len(c.Commits) == 0 {
			break
		}
		if page+1 >= maxComparePages {
			cmp.CommitsIncomplete = true
			break
		}
		opts.Page = resp.NextPage
	}
	if len(cmp.Commits) < cmp.TotalCommits {
		cmp.CommitsIncomplete = true
	}
	return cmp, nil
}

// CommitOf returns the commit a tag delivery releases: the payload's commit
// when it carries one, otherwise the tag resolved through the API (create
// and release events, pushes without head_commit).
func (r *Repo) CommitOf(ctx context.Context, d Delivery) (string, error) {
	if d.Kind != KindTagCreated {
		return "", fmt.Errorf("github: delivery is %s, not a tag", d.Kind)
	}
	if d.Commit != "" && !d.NeedsResolution {
		return d.Commit, nil
	}
	return r.ResolveTag(ctx, d.Tag)
}
