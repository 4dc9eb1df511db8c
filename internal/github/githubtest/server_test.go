package githubtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github/githubtest"
)

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, map[string]any, []any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var obj map[string]any
	var list []any
	if json.Unmarshal(b, &obj) != nil {
		require.NoError(t, json.Unmarshal(b, &list), string(b))
	}
	return resp, obj, list
}

func setup(t *testing.T) (*githubtest.Server, *httptest.Server, *githubtest.Repo) {
	t.Helper()
	fake := githubtest.New()
	fake.Token = "tok"
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv, fake.Repo("acme/app")
}

func TestRecursiveTreeTruncation(t *testing.T) {
	t.Parallel()
	fake, srv, repo := setup(t)
	fake.TreeLimit = 10
	files := githubtest.Files{}
	for i := range 12 {
		files[fmt.Sprintf("d/f%02d", i)] = "x"
	}
	c := repo.Commit("c", files)
	_, body, _ := get(t, srv, "/repos/acme/app/git/trees/"+c+"?recursive=1")
	require.Equal(t, true, body["truncated"])
	require.Len(t, body["tree"], 10)
	require.Equal(t, repo.TreeSHA(c), body["sha"])
	_, body, _ = get(t, srv, "/repos/acme/app/git/trees/"+repo.TreeSHA(c))
	require.Equal(t, false, body["truncated"])
	require.Len(t, body["tree"], 1) // non-recursive: just "d"
	entry := body["tree"].([]any)[0].(map[string]any)
	require.Equal(t, "040000", entry["mode"])
	require.Equal(t, "tree", entry["type"])
}

func TestPaginationLinkHeader(t *testing.T) {
	t.Parallel()
	_, srv, repo := setup(t)
	c := repo.Commit("c", githubtest.Files{"a": "1"})
	for i := range 7 {
		repo.LightweightTag(fmt.Sprintf("v1.0.%d", i), c)
	}
	resp, _, list := get(t, srv, "/repos/acme/app/tags?per_page=3&page=2")
	require.Len(t, list, 3)
	require.Equal(t, fmt.Sprintf(`<%[1]s/repos/acme/app/tags?page=1&per_page=3>; rel="prev", <%[1]s/repos/acme/app/tags?page=3&per_page=3>; rel="next", <%[1]s/repos/acme/app/tags?page=3&per_page=3>; rel="last", <%[1]s/repos/acme/app/tags?page=1&per_page=3>; rel="first"`, srv.URL), resp.Header.Get("Link"))
	resp, _, list = get(t, srv, "/repos/acme/app/tags?per_page=3&page=3")
	require.Len(t, list, 1)
	require.NotContains(t, resp.Header.Get("Link"), `rel="next"`)
}

func TestCompareUnpaginatedCapsAt250Commits(t *testing.T) {
	t.Parallel()
	_, srv, repo := setup(t)
	base := repo.Commit("base", githubtest.Files{"a": "0"})
	head := base
	for i := range 260 {
		head = repo.Commit(fmt.Sprintf("c%d", i), githubtest.Files{"a": fmt.Sprint(i)}, head)
	}
	resp, body, _ := get(t, srv, "/repos/acme/app/compare/"+base+"..."+head)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, body["commits"], 250)
	require.EqualValues(t, 260, body["total_commits"])
	require.Empty(t, resp.Header.Get("Link"))
	resp, body, _ = get(t, srv, "/repos/acme/app/compare/"+base+"..."+head+"?per_page=100&page=3")
	require.Len(t, body["commits"], 60)
	require.Empty(t, body["files"]) // files only on the first page
	require.Contains(t, resp.Header.Get("Link"), `rel="prev"`)
}

func TestContentsOverOneMegabyte(t *testing.T) {
	t.Parallel()
	_, srv, repo := setup(t)
	big := strings.Repeat("a", 1<<20+1)
	c := repo.Commit("c", githubtest.Files{"yarn.lock": big, "small.txt": "hi"})
	_, body, _ := get(t, srv, "/repos/acme/app/contents/yarn.lock?ref="+c)
	require.Equal(t, "none", body["encoding"])
	require.Equal(t, "", body["content"])
	require.Equal(t, githubtest.BlobSHA([]byte(big)), body["sha"])
	_, body, _ = get(t, srv, "/repos/acme/app/contents/small.txt?ref="+c)
	require.Equal(t, "base64", body["encoding"])
	require.Equal(t, "aGk=\n", body["content"])
}

func TestRateLimitResets(t *testing.T) {
	t.Parallel()
	fake, srv, repo := setup(t)
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(start.Unix())
	fake.Now = func() time.Time { return time.Unix(now.Load(), 0) }
	fake.RateLimit = 1
	c := repo.Commit("c", githubtest.Files{"a": "1"})
	resp, _, _ := get(t, srv, "/repos/acme/app/git/trees/"+c)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
	require.Equal(t, fmt.Sprint(start.Add(time.Hour).Unix()), resp.Header.Get("X-RateLimit-Reset"))
	resp, body, _ := get(t, srv, "/repos/acme/app/git/trees/"+c)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "API rate limit exceeded for user ID 1.", body["message"])
	now.Add(3600)
	resp, _, _ = get(t, srv, "/repos/acme/app/git/trees/"+c)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
