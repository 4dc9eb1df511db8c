package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

const hookSecret = "It's a Secret to Everybody"
const repoName = "acme/acme-mobile"
const commitSHA = "9f5a0c3d2b1e4f6a8b7c9d0e1f2a3b4c5d6e7f80"

type hookBundle struct {
	st      *store.Store
	db      *store.DB
	handler http.Handler
	metrics *httpapi.Metrics
}

func setupHook(t testing.TB) *hookBundle {
	t.Helper()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	require.NoError(t, st.UpsertApp(context.Background(), release.App{Name: "acme", Repository: repoName}, t0))
	runner, err := jobs.New(jobs.Config{DB: db, Register: []func(*river.Workers){func(w *river.Workers) {
		river.AddWorker(w, &jobs.PlanReleaseWorker{})
		river.AddWorker(w, &jobs.TagChangeWorker{})
	}}})
	require.NoError(t, err)
	m := httpapi.NewMetrics()
	h := &httpapi.GitHubWebhook{Store: st, Jobs: runner, Now: func() time.Time { return t0 }, Metrics: m, Apps: []httpapi.GitHubApp{{
		Name: "acme", Secret: []byte(hookSecret), Rule: github.TagRule{Repository: repoName, Pattern: "v*"},
		OTARule: github.TagRule{Repository: repoName, Pattern: "ota/v*"},
	}}}
	s := httpapi.New(httpapi.Deps{Store: st, Metrics: m})
	s.Handle("POST /webhooks/github", httpapi.RoleNone, h)
	return &hookBundle{st: st, db: db, handler: s.Handler(), metrics: m}
}

func (b *hookBundle) send(t *testing.T, d githubtest.Delivery) (int, string) {
	t.Helper()
	req, err := d.Request(context.Background(), "http://releasepilot.test/webhooks/github")
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (b *hookBundle) counts(t *testing.T) (releases, plans int) {
	t.Helper()
	ctx := context.Background()
	rs, err := b.st.ListReleases(ctx, "", 100)
	require.NoError(t, err)
	require.NoError(t, b.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE kind = 'plan_release'`).Scan(&plans))
	return len(rs), plans
}

func TestGitHubDeliveries(t *testing.T) {
	t.Parallel()
	secret := []byte(hookSecret)
	tests := []struct {
		name     string
		delivery githubtest.Delivery
		code     int
		releases int
		tag      string
		commit   string
		outcome  string
	}{
		{"lightweight tag push", githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA), secret), 202, 1, "v1.4.0", commitSHA, "created"},
		{"annotated tag push uses head_commit", githubtest.NewDelivery("push", githubtest.AnnotatedTagPushPayload(repoName, "v1.4.1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", commitSHA), secret), 202, 1, "v1.4.1", commitSHA, "created"},
		{"create tag", githubtest.NewDelivery("create", githubtest.TagCreatePayload(repoName, "v1.5.0"), secret), 202, 1, "v1.5.0", "", "created"},
		{"release published", githubtest.NewDelivery("release", githubtest.ReleasePublishedPayload(repoName, "v1.6.0", "main"), secret), 202, 1, "v1.6.0", "", "created"},
		{"ota tag", githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "ota/v1.4.2", commitSHA), secret), 202, 1, "ota/v1.4.2", commitSHA, "created"},
		{"ping", githubtest.NewDelivery("ping", githubtest.PingPayload(repoName, 42), secret), 200, 0, "", "", "ping"},
		{"branch push", githubtest.NewDelivery("push", githubtest.BranchPushPayload(repoName, "main", commitSHA, commitSHA), secret), 204, 0, "", "", "ignored_event"},
		{"tag delete", githubtest.NewDelivery("push", githubtest.TagDeletePayload(repoName, "v1.4.0", commitSHA), secret), 204, 0, "", "", "ignored"},
		{"tag that is not a version", githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "nightly", commitSHA), secret), 204, 0, "", "", "ignored_tag"},
		{"other repository", githubtest.NewDelivery("push", githubtest.TagPushPayload("evil/fork", "v9.9.9", commitSHA), secret), 204, 0, "", "", "ignored_repo"},
		{"issues event", githubtest.NewDelivery("issues", []byte(`{"action":"opened","repository":{"full_name":"acme/acme-mobile"}}`), secret), 204, 0, "", "", "ignored_event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupHook(t)
			code, body := b.send(t, tt.delivery)
			require.Equal(t, tt.code, code, body)
			n, plans := b.counts(t)
			require.Equal(t, tt.releases, n)
			require.Equal(t, tt.releases, plans, "one plan_release per release")
			if tt.releases == 1 {
				var out map[string]any
				require.NoError(t, json.Unmarshal([]byte(body), &out))
				rel, err := b.st.GetRelease(context.Background(), out["release_id"].(string))
				require.NoError(t, err)
				require.Equal(t, tt.tag, rel.Tag)
				require.Equal(t, tt.commit, rel.Commit)
			}
			require.Equal(t, map[string]float64{tt.outcome: 1}, b.deliveriesCounted(t))
			// A delivery an app takes is recorded, with its outcome; pings
			// and deliveries no app takes are only counted.
			dl, err := b.st.GetDelivery(context.Background(), "github", tt.delivery.ID)
			if tt.code == 200 || strings.HasPrefix(tt.outcome, "ignored_") {
				require.ErrorIs(t, err, store.ErrNotFound)
				return
			}
			require.NoError(t, err)
			if tt.code == 204 {
				require.True(t, strings.HasPrefix(dl.Outcome, "ignored: "), dl.Outcome)
			}
		})
	}
}

func TestPushAndCreateStartOneRelease(t *testing.T) {
	t.Parallel()
	b := setupHook(t)
	secret := []byte(hookSecret)
	code, first := b.send(t, githubtest.NewDelivery("create", githubtest.TagCreatePayload(repoName, "v2.0.0"), secret))
	require.Equal(t, 202, code)
	code, second := b.send(t, githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v2.0.0", commitSHA), secret))
	require.Equal(t, 202, code)
	var a, c map[string]any
	require.NoError(t, json.Unmarshal([]byte(first), &a))
	require.NoError(t, json.Unmarshal([]byte(second), &c))
	require.Equal(t, a["release_id"], c["release_id"])
	n, plans := b.counts(t)
	require.Equal(t, 1, n)
	require.Equal(t, 1, plans)
	rel, err := b.st.GetRelease(context.Background(), a["release_id"].(string))
	require.NoError(t, err)
	require.Equal(t, commitSHA, rel.Commit, "the push filled in the commit the create event lacked")
}

func TestRedeliveryDoesNothing(t *testing.T) {
	t.Parallel()
	b := setupHook(t)
	d := githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA), []byte(hookSecret))
	code, _ := b.send(t, d)
	require.Equal(t, 202, code)
	code, body := b.send(t, d)
	require.Equal(t, 200, code)
	require.Contains(t, body, "already processed")
	n, plans := b.counts(t)
	require.Equal(t, 1, n)
	require.Equal(t, 1, plans)
}

func TestBadSignaturesCreateNothing(t *testing.T) {
	t.Parallel()
	good := githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA), []byte(hookSecret))
	tests := []struct {
		name string
		d    githubtest.Delivery
	}{
		{"unsigned", good.Unsigned()},
		{"sha1 only", good.SHA1Only()},
		{"wrong secret", githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA), []byte("guess"))},
		{"tampered body", func() githubtest.Delivery {
			d := good
			d.Body = bytes.Replace(append([]byte(nil), good.Body...), []byte("v1.4.0"), []byte("v6.6.6"), 1)
			return d
		}()},
		{"malformed header", func() githubtest.Delivery {
			d := good
			d.Header = good.Header.Clone()
			d.Header.Set("X-Hub-Signature-256", "sha256=zz")
			return d
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupHook(t)
			code, body := b.send(t, tt.d)
			require.Equal(t, 401, code, body)
			require.NotContains(t, body, hookSecret)
			n, plans := b.counts(t)
			require.Zero(t, n)
			require.Zero(t, plans)
			_, err := b.st.GetDelivery(context.Background(), "github", tt.d.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "an unauthenticated delivery is not even recorded")
		})
	}
}

func TestMalformedAndOversizedDeliveries(t *testing.T) {
	t.Parallel()
	b := setupHook(t)
	code, body := b.send(t, githubtest.NewDelivery("push", []byte(`{"ref": "refs/tags/v1`), []byte(hookSecret)))
	require.Equal(t, 400, code, body)

	d := githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA), []byte(hookSecret))
	d.Header = d.Header.Clone()
	d.Header.Del("X-GitHub-Delivery")
	code, body = b.send(t, d)
	require.Equal(t, 400, code)
	require.Contains(t, body, "X-GitHub-Delivery")

	big := bytes.Repeat([]byte(" "), httpapi.MaxGitHubPayload+1)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/github", bytes.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", github.Sign([]byte(hookSecret), big))
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	require.Equal(t, 413, rec.Code)
}

func FuzzGitHubWebhook(f *testing.F) {
	secret := []byte(hookSecret)
	for _, d := range []githubtest.Delivery{
		githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA), secret),
		githubtest.NewDelivery("create", githubtest.TagCreatePayload(repoName, "v1.5.0"), secret),
		githubtest.NewDelivery("release", githubtest.ReleasePublishedPayload(repoName, "v1.6.0", "main"), secret),
		githubtest.NewDelivery("ping", githubtest.PingPayload(repoName, 1), secret),
	} {
		f.Add(d.Event, d.Body, true, "")
	}
	f.Add("push", []byte(`{"ref":null}`), false, "sha256=00")
	f.Add("", []byte{0xff, 0x00}, true, "sha1=abc")
	hb := setupHook(f).handler
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, event string, body []byte, sign bool, sigHeader string) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/github", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("fuzz-%d", n.Add(1)))
		if sign {
			req.Header.Set("X-Hub-Signature-256", github.Sign(secret, body))
		} else if sigHeader != "" {
			req.Header.Set("X-Hub-Signature-256", sigHeader)
		}
		rec := httptest.NewRecorder()
		hb.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for event %q body %q: %s", rec.Code, event, body, rec.Body.String())
		}
		if !sign && rec.Code != 401 {
			t.Fatalf("unsigned delivery answered %d", rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	})
}
