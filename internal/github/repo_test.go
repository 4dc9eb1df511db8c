package github_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
)

const token = "ghp_testtoken0123456789"

type repoBundle struct {
	fake *githubtest.Server
	srv  *httptest.Server
	repo *githubtest.Repo
	gh   *github.Repo
}

func setupRepo(t *testing.T) repoBundle {
	t.Helper()
	fake := githubtest.New()
	fake.Token = token
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := github.NewClient(github.ClientOptions{BaseURL: srv.URL, Token: token}) // no trailing slash on purpose
	require.NoError(t, err)
	r, err := c.Repo(repoName)
	require.NoError(t, err)
	return repoBundle{fake: fake, srv: srv, repo: fake.Repo(repoName), gh: r}
}

func TestFakeUsesRealGitObjectIDs(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	// Expected values are from `git ls-tree -r -t` of the same files.
	c := tb.repo.Commit("init", githubtest.Files{"README.md": "hello\n", "src/a/b.js": "x", "src.txt": "y"})
	require.Equal(t, "e2bc490f5beda0174e28fc43eeb106da0f322dac", tb.repo.TreeSHA(c))
	entries, truncated, err := tb.gh.Tree(t.Context(), c)
	require.NoError(t, err)
	require.False(t, truncated)
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Mode, e.Type, e.SHA, e.Path))
	}
	require.Equal(t, []string{
		"100644 blob ce013625030ba8dba906f756967f9e9ca394464a README.md",
		"100644 blob e25f1814e51579d5f55c0f1fe0135ddb28a47f4a src.txt",
		"040000 tree 2e715e7f2e6d11d73eadb508bf5e075f185ca161 src",
		"040000 tree c6e4454e5089f061f15af94335a067839fa09860 src/a",
		"100644 blob c1b0730e0133447badcfd47fd144e254807b06e1 src/a/b.js",
	}, got)
}

func TestReadFileAndBlob(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	big := strings.Repeat(`"node_modules/x": {"version": "1.0.0"},`+"\n", 40000) // > 1 MB
	c1 := tb.repo.Commit("init", githubtest.Files{"package.json": `{"name":"demo"}`, "package-lock.json": big, "ios/Podfile": "pod 'A'\n"})
	c2 := tb.repo.Commit("edit", tb.repo.Files(c1).With(githubtest.Files{"package.json": `{"name":"demo2"}`}), c1)

	b, err := tb.gh.ReadFile(t.Context(), c1, "package.json")
	require.NoError(t, err)
	require.Equal(t, `{"name":"demo"}`, string(b))
	b, err = tb.gh.ReadFile(t.Context(), c2, "package.json")
	require.NoError(t, err)
	require.Equal(t, `{"name":"demo2"}`, string(b))

	b, err = tb.gh.ReadFile(t.Context(), c1, "package-lock.json")
	require.NoError(t, err)
	require.Equal(t, big, string(b)) // over the 1 MB inline limit: fetched as a blob

	_, err = tb.gh.ReadFile(t.Context(), c1, "yarn.lock")
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = tb.gh.ReadFile(t.Context(), c1, "ios")
	require.ErrorContains(t, err, "is a directory")
	_, err = tb.gh.ReadFile(t.Context(), strings.Repeat("f", 40), "package.json")
	require.ErrorIs(t, err, fs.ErrNotExist)

	b, err = tb.gh.Blob(t.Context(), githubtest.BlobSHA([]byte("pod 'A'\n")))
	require.NoError(t, err)
	require.Equal(t, "pod 'A'\n", string(b))
	_, err = tb.gh.Blob(t.Context(), strings.Repeat("0", 40))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestResolveAndListTags(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	c1 := tb.repo.Commit("one", githubtest.Files{"a": "1"})
	c2 := tb.repo.Commit("two", githubtest.Files{"a": "2"}, c1)
	tb.repo.LightweightTag("v1.0.0", c1)
	tagObj := tb.repo.AnnotatedTag("v1.1.0", c2, "Release 1.1.0")
	require.NotEqual(t, c2, tagObj)

	got, err := tb.gh.ResolveTag(t.Context(), "v1.0.0")
	require.NoError(t, err)
	require.Equal(t, c1, got)
	got, err = tb.gh.ResolveTag(t.Context(), "v1.1.0")
	require.NoError(t, err)
	require.Equal(t, c2, got, "annotated tag dereferenced to its commit")
	_, err = tb.gh.ResolveTag(t.Context(), "v9")
	require.ErrorIs(t, err, fs.ErrNotExist)
	tb.repo.AnnotatedTag("ios/v1.1.0", c2, "iOS only")
	got, err = tb.gh.ResolveTag(t.Context(), "ios/v1.1.0")
	require.NoError(t, err)
	require.Equal(t, c2, got, "per-platform tag with a slash")

	// The tree of an annotated tag's ref is the commit's tree.
	entries, _, err := tb.gh.Tree(t.Context(), "v1.1.0")
	require.NoError(t, err)
	require.Equal(t, githubtest.BlobSHA([]byte("2")), entries[0].SHA)

	for i := range 250 {
		tb.repo.LightweightTag(fmt.Sprintf("build-%03d", i), c1)
	}
	tags, err := tb.gh.ListTags(t.Context())
	require.NoError(t, err)
	require.Len(t, tags, 253) // three pages of 100
	byName := map[string]string{}
	for _, tg := range tags {
		byName[tg.Name] = tg.Commit
	}
	require.Equal(t, c2, byName["v1.1.0"])
	require.Equal(t, c1, byName["build-249"])
	var listCalls int
	for _, r := range tb.fake.Requests() {
		if strings.Contains(r, "/tags?") {
			listCalls++
		}
	}
	require.Equal(t, 3, listCalls)
}

func TestCompare(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	files := githubtest.Files{}
	for i := range 400 {
		files[fmt.Sprintf("src/file%03d.ts", i)] = "v1"
	}
	base := tb.repo.Commit("base", files)
	head := base
	for i := range 130 {
		next := tb.repo.Files(head).With(githubtest.Files{fmt.Sprintf("src/file%03d.ts", i): fmt.Sprintf("v2 %d", i)})
		if i == 129 {
			for j := 130; j < 400; j++ {
				next[fmt.Sprintf("src/file%03d.ts", j)] = "v3"
			}
		}
		head = tb.repo.Commit(fmt.Sprintf("change %d", i), next, head)
	}
	cmp, err := tb.gh.Compare(t.Context(), base, head)
	require.NoError(t, err)
	require.Equal(t, "ahead", cmp.Status)
	require.Equal(t, 130, cmp.AheadBy)
	require.Len(t, cmp.Commits, 130) // two pages
	require.False(t, cmp.CommitsIncomplete)
	require.Equal(t, "change 0", cmp.Commits[0].Message)
	require.Equal(t, "change 129", cmp.Commits[129].Message)
	require.Len(t, cmp.Files, 300) // 400 changed, GitHub lists 300
	require.True(t, cmp.FilesIncomplete)

	small, err := tb.gh.Compare(t.Context(), head, head)
	require.NoError(t, err)
	require.Equal(t, "identical", small.Status)
	require.Empty(t, small.Commits)
	require.False(t, small.FilesIncomplete)
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	t.Run("bad token", func(t *testing.T) {
		t.Parallel()
		tb := setupRepo(t)
		c, err := github.NewClient(github.ClientOptions{BaseURL: tb.srv.URL + "/", Token: "ghp_wrong"})
		require.NoError(t, err)
		r, err := c.Repo(repoName)
		require.NoError(t, err)
		_, err = r.ListTags(t.Context())
		require.ErrorIs(t, err, github.ErrUnauthorized)
		require.NotContains(t, err.Error(), "ghp_wrong")
	})
	t.Run("rate limited", func(t *testing.T) {
		t.Parallel()
		tb := setupRepo(t)
		tb.fake.RateLimit = 2
		c := tb.repo.Commit("x", githubtest.Files{"a": "1"})
		_, err := tb.gh.ReadFile(t.Context(), c, "a")
		require.NoError(t, err)
		_, err = tb.gh.ReadFile(t.Context(), c, "a")
		require.NoError(t, err)
		_, err = tb.gh.ReadFile(t.Context(), c, "a")
		require.ErrorIs(t, err, github.ErrRateLimited)
		var ae *github.APIError
		require.ErrorAs(t, err, &ae)
		require.WithinDuration(t, time.Now().Add(time.Hour), ae.Reset, 5*time.Second)
	})
	t.Run("server error", func(t *testing.T) {
		t.Parallel()
		tb := setupRepo(t)
		tb.fake.Fail = func(*http.Request) int { return http.StatusBadGateway }
		_, _, err := tb.gh.Tree(t.Context(), "main")
		var ae *github.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusBadGateway, ae.StatusCode)
		require.NotErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("unknown repository", func(t *testing.T) {
		t.Parallel()
		tb := setupRepo(t)
		c, err := github.NewClient(github.ClientOptions{BaseURL: tb.srv.URL, Token: token})
		require.NoError(t, err)
		r, err := c.Repo("swapjoy/nope")
		require.NoError(t, err)
		_, err = r.ResolveTag(t.Context(), "v1")
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("bad inputs", func(t *testing.T) {
		t.Parallel()
		_, err := github.NewClient(github.ClientOptions{BaseURL: "not a url"})
		require.ErrorContains(t, err, `base URL "not a url" is not an absolute URL`)
		c, err := github.NewClient(github.ClientOptions{})
		require.NoError(t, err)
		_, err = c.Repo("justname")
		require.ErrorContains(t, err, `repository "justname" is not owner/name`)
	})
}

func TestFakeErrorBodiesAndHeaders(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tb.srv.URL+"/repos/"+repoName+"/git/trees/"+strings.Repeat("a", 40), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	var body strings.Builder
	_, _ = fmt.Fprint(&body, mustRead(t, resp))
	require.JSONEq(t, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/git/trees#get-a-tree","status":"404"}`, body.String())
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource"} {
		require.NotEmpty(t, resp.Header.Get(h), h)
	}
	require.Equal(t, "5000", resp.Header.Get("X-RateLimit-Limit"))
	require.Equal(t, "core", resp.Header.Get("X-RateLimit-Resource"))

	req.Header.Del("Authorization")
	resp2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp2.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp2.StatusCode)
	require.JSONEq(t, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`, mustRead(t, resp2))
}

func mustRead(t *testing.T, resp *http.Response) string {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

func TestCommitOf(t *testing.T) {
	t.Parallel()
	tb := setupRepo(t)
	c1 := tb.repo.Commit("one", githubtest.Files{"a": "1"})
	tagObj := tb.repo.AnnotatedTag("v1.0.0", c1, "1.0.0")
	for _, tc := range []struct {
		name, event string
		body        []byte
	}{
		{"annotated push", "push", githubtest.AnnotatedTagPushPayload(repoName, "v1.0.0", tagObj, c1)},
		{"create", "create", githubtest.TagCreatePayload(repoName, "v1.0.0")},
		{"release", "release", githubtest.ReleasePublishedPayload(repoName, "v1.0.0", "main")},
	} {
		d, err := github.ParseDelivery(tc.event, tc.body)
		require.NoError(t, err, tc.name)
		got, err := tb.gh.CommitOf(t.Context(), d)
		require.NoError(t, err, tc.name)
		require.Equal(t, c1, got, tc.name)
	}
	d, err := github.ParseDelivery("push", githubtest.TagDeletePayload(repoName, "v1.0.0", c1))
	require.NoError(t, err)
	_, err = tb.gh.CommitOf(t.Context(), d)
	require.ErrorContains(t, err, "delivery is tag_deleted, not a tag")
}
