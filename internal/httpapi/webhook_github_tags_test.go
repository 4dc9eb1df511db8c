package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// The repository and commit of @octokit/webhooks-examples' deliveries.
const (
	exampleRepo   = "Codertocat/Hello-World"
	exampleCommit = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
)

// setupExampleHook is a webhook for the examples' repository whose app
// releases tags like v1.0.0 and plain semver tags like 0.0.1.
func setupExampleHook(t *testing.T, e store.Engine) *hookBundle {
	t.Helper()
	return setupExampleHookWith(t, e, github.ReadOptions{})
}

func setupExampleHookWith(t *testing.T, e store.Engine, read github.ReadOptions) *hookBundle {
	t.Helper()
	db := storetest.Open(t, e)
	st := store.New(db)
	require.NoError(t, st.UpsertApp(context.Background(), release.App{Name: "hello", Repository: exampleRepo}, t0))
	runner, err := jobs.New(jobs.Config{DB: db, Register: []func(*river.Workers){func(w *river.Workers) {
		river.AddWorker(w, &jobs.PlanReleaseWorker{})
		river.AddWorker(w, &jobs.TagChangeWorker{})
	}}})
	require.NoError(t, err)
	m := httpapi.NewMetrics()
	h := &httpapi.GitHubWebhook{Store: st, Jobs: runner, Now: func() time.Time { return t0 }, Read: read, Metrics: m, Apps: []httpapi.GitHubApp{
		{Name: "other", Secret: []byte("another app's secret"), Rule: github.TagRule{Repository: "acme/other", Pattern: "v*"}},
		{Name: "hello", Secret: []byte(hookSecret), Rule: github.TagRule{Repository: exampleRepo, Pattern: `re:^v?(?P<version>\d+\.\d+\.\d+)$`}},
	}}
	s := httpapi.New(httpapi.Deps{Store: st, Metrics: m})
	s.Handle("POST /webhooks/github", httpapi.RoleNone, h)
	return &hookBundle{st: st, db: db, handler: s.Handler(), metrics: m}
}

// retag rewrites an example's tag, so the same real delivery names a tag
// the app releases.
func retag(t *testing.T, payload []byte, tag string) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	switch {
	case strings.HasPrefix(m["ref"].(string), "refs/tags/"):
		m["ref"] = "refs/tags/" + tag
	case m["ref_type"] == "tag":
		m["ref"] = tag
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func (b *hookBundle) jobArgs(t *testing.T, kind string) []map[string]any {
	t.Helper()
	q := `SELECT args FROM river_job WHERE kind = $1 ORDER BY id`
	if b.db.Engine == store.SQLite {
		q = `SELECT json(args) FROM river_job WHERE kind = $1 ORDER BY id` // River keeps SQLite's binary JSONB
	}
	rows, err := b.db.SQL.QueryContext(context.Background(), q, kind)
	require.NoError(t, err)
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		out = append(out, m)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestOctokitExampleDeliveries sends every committed example delivery of
// @octokit/webhooks-examples through the handler, as JSON and as a form
// (GitHub's default for a hook made in the settings page), signed and
// unsigned.
func TestOctokitExampleDeliveries(t *testing.T) {
	t.Parallel()
	want := map[string]int{
		"push.0": 204, "push.1": 204, "push.3": 204, "push.4": 204, // simple-tag is not a version; a branch is not a tag
		"create.0": 204, "create.3": 204, "delete.0": 204, "delete.2": 204,
		"ping.0": 200, "ping.3": 200,
		"release.0": 202, // 0.0.1 published
		"release.6": 204, "release.8": 204,
	}
	require.ElementsMatch(t, githubtest.Examples(), keysOf(want))
	for _, name := range githubtest.Examples() {
		event, _, _ := strings.Cut(name, ".")
		for _, form := range []bool{false, true} {
			kind, mk := "json", githubtest.NewDelivery
			if form {
				kind, mk = "form", githubtest.NewFormDelivery
			}
			t.Run(name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				b := setupExampleHook(t, store.SQLite)
				d := mk(event, githubtest.Example(name), []byte(hookSecret))
				code, body := b.send(t, d.Unsigned())
				require.Equal(t, 401, code, body)
				require.Contains(t, body, "X-Hub-Signature-256 header missing")
				code, body = b.send(t, d)
				require.Equal(t, want[name], code, body)
				n, plans := b.counts(t)
				if code == 202 {
					require.Equal(t, 1, n)
					require.Equal(t, 1, plans)
					rel, err := b.st.ReleaseByTag(context.Background(), "hello", "0.0.1")
					require.NoError(t, err)
					require.Equal(t, "0.0.1", rel.Version)
				} else {
					require.Zero(t, n)
					require.Zero(t, plans)
				}
				if code == 204 {
					// No app takes these: counted, not recorded.
					_, err := b.st.GetDelivery(context.Background(), "github", d.ID)
					require.ErrorIs(t, err, store.ErrNotFound)
					counted := b.deliveriesCounted(t)
					require.Len(t, counted, 2, "the unsigned try and this one")
					require.Equal(t, 1.0, counted["rejected"])
				}
			})
		}
	}
}

func keysOf(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestUnsupportedContentType(t *testing.T) {
	t.Parallel()
	b := setupExampleHook(t, store.SQLite)
	for _, ct := range []string{"text/plain", "multipart/form-data; boundary=x", ""} {
		d := githubtest.NewDelivery("push", githubtest.Example("push.0"), []byte(hookSecret))
		if ct == "" {
			d.Header.Del("Content-Type")
		} else {
			d.Header.Set("Content-Type", ct)
		}
		code, body := b.send(t, d)
		require.Equal(t, http.StatusUnsupportedMediaType, code, ct)
		require.Contains(t, body, "application/json")
		require.Contains(t, body, "application/x-www-form-urlencoded")
		_, err := b.st.GetDelivery(context.Background(), "github", d.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	// A form body without its payload field is a bad request, not a crash.
	d := githubtest.NewDelivery("push", []byte("zen=x"), []byte(hookSecret))
	d.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, body := b.send(t, d)
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "payload")
}

// A tag's life through real example deliveries renamed to v1.0.0: created
// (push and create), moved, deleted (push and delete event). Each change of
// a released tag is recorded once and handed to one tag_change job.
func TestTagMovedAndDeletedDeliveries(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setupExampleHook(t, e)
			secret := []byte(hookSecret)
			send := func(event, example string, form bool, edit func(map[string]any)) (int, map[string]any) {
				t.Helper()
				payload := retag(t, githubtest.Example(example), "v1.0.0")
				if edit != nil {
					var m map[string]any
					require.NoError(t, json.Unmarshal(payload, &m))
					edit(m)
					payload, _ = json.Marshal(m)
				}
				mk := githubtest.NewDelivery
				if form {
					mk = githubtest.NewFormDelivery
				}
				code, body := b.send(t, mk(event, payload, secret))
				var out map[string]any
				if code == 202 {
					require.NoError(t, json.Unmarshal([]byte(body), &out))
				}
				return code, out
			}
			code, out := send("push", "push.0", true, nil)
			require.Equal(t, 202, code)
			relID := out["release_id"].(string)
			// The create event of the same tag names no commit: a check.
			code, out = send("create", "create.0", false, nil)
			require.Equal(t, 202, code)
			require.Equal(t, "check", out["releases"].([]any)[0].(map[string]any)["tag_change"])

			moved := "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
			force := func(m map[string]any) {
				m["before"], m["after"], m["created"], m["forced"] = exampleCommit, moved, false, true
				m["head_commit"].(map[string]any)["id"] = moved
			}
			code, out = send("push", "push.0", false, force)
			require.Equal(t, 202, code)
			require.Equal(t, "moved", out["releases"].([]any)[0].(map[string]any)["tag_change"])
			rel, err := b.st.GetRelease(context.Background(), relID)
			require.NoError(t, err)
			require.Equal(t, release.TagMoved, rel.TagState)
			require.Equal(t, moved, rel.TagCommit)
			require.Equal(t, exampleCommit, rel.Commit, "the release keeps its commit until the policy says otherwise")
			// The same move delivered again (a redelivery under a new id,
			// or the form hook beside the JSON one) changes nothing more.
			code, _ = send("push", "push.0", true, force)
			require.Equal(t, 202, code)

			code, _ = send("push", "push.1", false, nil)
			require.Equal(t, 202, code)
			code, _ = send("delete", "delete.0", true, nil)
			require.Equal(t, 204, code, "the delete event of the same deletion")

			changes := b.jobArgs(t, "tag_change")
			require.Len(t, changes, 3)
			require.Equal(t, "check", changes[0]["change"])
			require.Equal(t, "moved", changes[1]["change"])
			require.Equal(t, moved, changes[1]["commit"])
			require.Equal(t, "deleted", changes[2]["change"])
			for _, c := range changes {
				require.Equal(t, relID, c["release_id"])
			}
			n, plans := b.counts(t)
			require.Equal(t, 1, n)
			require.Equal(t, 1, plans, "no delivery planned the tag twice")
			rel, err = b.st.GetRelease(context.Background(), relID)
			require.NoError(t, err)
			require.Equal(t, release.TagDeleted, rel.TagState)
		})
	}
}

// Unsigned or wrongly signed posts of 24 MB cannot take memory: the body is
// hashed as it streams, and only its first 64 KiB are ever held in memory. Before
// this, 20 such posts at once took a process from 47 MB to 892 MB.
func TestLargeUnsignedPostsUseLittleMemory(t *testing.T) {
	const posts, size = 20, 24 << 20
	// Room for every post in the spool, so each one is read to its end.
	b := setupExampleHookWith(t, store.SQLite, github.ReadOptions{Spool: make(chan struct{}, posts), TempDir: t.TempDir()})
	srv := httptest.NewServer(b.handler)
	t.Cleanup(srv.Close)
	var before, after runtimeMem
	before.read()
	codes := postConcurrently(t, srv.URL, posts, size, "sha256="+strings.Repeat("ab", 32))
	after.read()
	for _, c := range codes {
		require.Equal(t, 401, c)
	}
	allocated := after.totalAlloc - before.totalAlloc
	t.Logf("%d posts of %d MB: %.1f MB allocated in all (%.2f MB a post)", posts, size>>20, float64(allocated)/(1<<20), float64(allocated)/posts/(1<<20))
	// io.ReadAll of the same posts allocates more than twice their 480 MB.
	require.Less(t, allocated, uint64(32<<20), "bytes allocated while serving the posts")
}

// A signed delivery longer than the in-memory bound is still handled.
func TestLongSignedDeliverySpools(t *testing.T) {
	t.Parallel()
	b := setupExampleHook(t, store.SQLite)
	payload := retag(t, githubtest.Example("push.0"), "v2.0.0")
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	m["padding"] = strings.Repeat("x", 3<<20) // a long push is still a push
	payload, _ = json.Marshal(m)
	d := githubtest.NewDelivery("push", payload, []byte(hookSecret))
	code, body := b.send(t, d)
	require.Equal(t, 202, code, body)
	_, err := b.st.ReleaseByTag(context.Background(), "hello", "v2.0.0")
	require.NoError(t, err)
	require.Greater(t, len(d.Body), github.DefaultInMemory)
}

type runtimeMem struct{ totalAlloc uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.totalAlloc = ms.TotalAlloc
}

// filler streams n bytes of JSON-looking filler without holding them.
type filler struct{ left int64 }

func (f *filler) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.left)
	for i := range p[:n] {
		p[i] = ' '
	}
	p[0] = '{'
	f.left -= n
	return int(n), nil
}

// postConcurrently posts n deliveries of size bytes signed with sig at
// once and returns their status codes.
func postConcurrently(t *testing.T, url string, n int, size int64, sig string) []int {
	t.Helper()
	codes := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodPost, url+"/webhooks/github", &filler{left: size})
			if err != nil {
				errs[i] = err
				return
			}
			req.ContentLength = size
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("big-%d", i))
			req.Header.Set("X-Hub-Signature-256", sig)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes[i] = res.StatusCode
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	return codes
}

// BenchmarkUnsignedLargeDelivery serves one 24 MB delivery with a wrong
// signature, as an attacker would send it: B/op is what it costs the
// service in memory.
func BenchmarkUnsignedLargeDelivery(b *testing.B) {
	hb := setupHook(b)
	const size = 24 << 20
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/github", &filler{left: size})
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "bench")
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
		rec := httptest.NewRecorder()
		hb.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
