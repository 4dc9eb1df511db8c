package github_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
)

func TestDeploymentsAgainstTheFake(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	ctx := t.Context()
	r, err := b.c.Repo("acme/mobile")
	require.NoError(t, err)
	// The tag is behind main by now: auto_merge must be off to deploy it.
	b.repo.Commit("later work", githubtest.Files{"a": "2"}, b.head)

	none, err := r.FindDeployment(ctx, b.head, "android-production", "lane_a")
	require.NoError(t, err)
	require.Nil(t, none)
	d, err := r.CreateDeployment(ctx, github.NewDeployment{SHA: b.head, Environment: "android-production", Production: true,
		Description: "acme v1.0.0 — android", LaneID: "lane_a", ReleaseID: "rel_1"})
	require.NoError(t, err)
	// Another lane's deployment of the same commit to the same
	// environment is told apart by its payload.
	other, err := r.CreateDeployment(ctx, github.NewDeployment{SHA: b.head, Environment: "android-production", LaneID: "lane_b", ReleaseID: "rel_2"})
	require.NoError(t, err)
	found, err := r.FindDeployment(ctx, b.head, "android-production", "lane_a")
	require.NoError(t, err)
	require.Equal(t, d.ID, found.ID)
	found, err = r.FindDeployment(ctx, b.head, "android-production", "lane_b")
	require.NoError(t, err)
	require.Equal(t, other.ID, found.ID)

	long := strings.Repeat("é", 200)
	require.NoError(t, r.CreateDeploymentStatus(ctx, d.ID, github.DeploymentStatus{State: "queued", Description: "planned", LogURL: "https://rp.example.com/v1/releases/rel_1?event=1"}))
	require.NoError(t, r.CreateDeploymentStatus(ctx, d.ID, github.DeploymentStatus{State: "in_progress", Description: long}))
	require.NoError(t, r.CreateDeploymentStatus(ctx, d.ID, github.DeploymentStatus{State: "success", Description: "at 100%"}))
	ss, err := r.DeploymentStatuses(ctx, d.ID)
	require.NoError(t, err)
	require.Len(t, ss, 3)
	require.Equal(t, "success", ss[0].State, "newest first")
	require.Equal(t, 140, len([]rune(ss[1].Description)), "cut to GitHub's 140 characters")
	require.Equal(t, "https://rp.example.com/v1/releases/rel_1?event=1", ss[2].LogURL)

	deps := b.repo.Deployments()
	require.Len(t, deps, 2)
	require.Equal(t, "deploy", deps[0].Task)
	require.True(t, deps[0].Production)
	require.Equal(t, map[string]any{"lane_id": "lane_a", "release_id": "rel_1"}, deps[0].Payload)
	// auto_inactive was off: the other deployment got no status.
	require.Empty(t, deps[1].Statuses)

	err = r.CreateDeploymentStatus(ctx, 999999, github.DeploymentStatus{State: "queued"})
	require.Error(t, err)
	var ae *github.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 404, ae.StatusCode)
}

// The fake refuses what GitHub refuses, with GitHub's bodies.
func TestFakeDeploymentRules(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	r, err := b.c.Repo("acme/mobile")
	require.NoError(t, err)
	require.NoError(t, b.resolve(t, "acme/mobile")) // mints a token
	d, err := r.CreateDeployment(t.Context(), github.NewDeployment{SHA: b.head, Environment: "ios-testflight", LaneID: "l"})
	require.NoError(t, err)
	post := func(path string, body any, auth bool) (int, map[string]any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			raw = []byte(s)
		}
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+path, bytes.NewReader(raw))
		req.Header.Set("X-Spec-Skip", "request") // these requests break the rules on purpose
		if auth {
			req.Header.Set("Authorization", "Bearer ghp_fixture")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	statuses := "/repos/acme/mobile/deployments/" + jsonNum(d.ID) + "/statuses"
	code, out := post(statuses, map[string]any{"state": "halted"}, true)
	require.Equal(t, 422, code)
	require.Equal(t, "Validation Failed", out["message"])
	require.Equal(t, []any{map[string]any{"resource": "DeploymentStatus", "code": "invalid", "field": "state"}}, out["errors"])
	code, out = post(statuses, map[string]any{"description": "x"}, true)
	require.Equal(t, 422, code)
	require.Equal(t, "Invalid request.\n\n\"state\" wasn't supplied.", out["message"])
	code, out = post(statuses, map[string]any{"state": "success", "description": strings.Repeat("x", 141)}, true)
	require.Equal(t, 422, code)
	require.Equal(t, "description is too long (maximum is 140 characters)", out["errors"].([]any)[0].(map[string]any)["message"])
	code, out = post("/repos/acme/mobile/deployments", map[string]any{"environment": "x"}, true)
	require.Equal(t, 422, code)
	require.Equal(t, "Invalid request.\n\n\"ref\" wasn't supplied.", out["message"])
	code, out = post("/repos/acme/mobile/deployments", map[string]any{"ref": "nope"}, true)
	require.Equal(t, 422, code)
	require.Equal(t, "No ref found for: nope", out["message"])
	code, out = post("/repos/acme/mobile/deployments", "{not json", true)
	require.Equal(t, 400, code)
	require.Equal(t, "Problems parsing JSON", out["message"])
	code, _ = post("/repos/acme/mobile/deployments", map[string]any{"ref": b.head}, false)
	require.Equal(t, 401, code)
	// auto_merge defaults to on: a ref behind the default branch is
	// merged, not deployed.
	b.repo.Commit("later", githubtest.Files{"a": "3"}, b.head)
	code, out = post("/repos/acme/mobile/deployments", map[string]any{"ref": b.head}, true)
	require.Equal(t, 202, code)
	require.Contains(t, out["message"], "Auto-merged main into")
	require.Len(t, b.repo.Deployments(), 1)
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// A create whose answer is lost (the connection drops after GitHub made
// the deployment) is found by the read before the next create.
func TestDeploymentCreateAnswerLost(t *testing.T) {
	t.Parallel()
	b := setupApp(t, "", nil)
	r, err := b.c.Repo("acme/mobile")
	require.NoError(t, err)
	var drop atomic.Bool
	drop.Store(true)
	b.fake.DropAfter = func(req *http.Request) bool {
		return drop.Load() && req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/deployments")
	}
	_, err = r.CreateDeployment(t.Context(), github.NewDeployment{SHA: b.head, Environment: "ota-production", LaneID: "lane_x"})
	require.Error(t, err)
	drop.Store(false)
	found, err := r.FindDeployment(t.Context(), b.head, "ota-production", "lane_x")
	require.NoError(t, err)
	require.NotNil(t, found, "GitHub has it although the client never heard")
	require.Len(t, b.repo.Deployments(), 1)
}
