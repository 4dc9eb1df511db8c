package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// A repository with more plans waiting than plan_per_repository queues its
// next ones behind other repositories' plans: a burst of one repository's
// tags does not make another repository's tag wait for the whole burst.
func TestBurstOfOneRepositoryQueuesBehindOthers(t *testing.T) {
	for _, engine := range []store.Engine{store.SQLite, store.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, engine)
			st := store.New(db)
			const other = "acme/other-app"
			require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: repoName}, t0))
			require.NoError(t, st.UpsertApp(ctx, release.App{Name: "other", Repository: other}, t0))
			// Not started: the jobs stay queued as the webhook queued them.
			runner, err := jobs.New(jobs.Config{DB: db, Register: []func(*river.Workers){func(w *river.Workers) {
				river.AddWorker(w, &jobs.PlanReleaseWorker{})
			}}})
			require.NoError(t, err)
			h := &httpapi.GitHubWebhook{Store: st, Jobs: runner, Now: func() time.Time { return t0 }, PlanPerRepository: 2, Log: slog.New(slog.NewTextHandler(t.Output(), nil)), Apps: []httpapi.GitHubApp{
				{Name: "acme", Secret: []byte(hookSecret), Rule: github.TagRule{Repository: repoName, Pattern: "v*"}},
				{Name: "other", Secret: []byte(hookSecret), Rule: github.TagRule{Repository: other, Pattern: "v*"}},
			}}
			send := func(repo, tag string) {
				t.Helper()
				req, err := githubtest.NewDelivery("push", githubtest.TagPushPayload(repo, tag, commitSHA), []byte(hookSecret)).Request(ctx, "http://releasepilot.test/webhooks/github")
				require.NoError(t, err)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
			}
			for _, tag := range []string{"v1.0.0", "v1.0.1", "v1.0.2", "v1.0.3"} {
				send(repoName, tag)
			}
			send(other, "v2.0.0")

			priority := map[string]int{}
			res, err := runner.Client.JobList(ctx, river.NewJobListParams().Kinds(jobs.PlanReleaseArgs{}.Kind()).First(100))
			require.NoError(t, err)
			for _, j := range res.Jobs {
				var a jobs.PlanReleaseArgs
				require.NoError(t, json.Unmarshal(j.EncodedArgs, &a))
				require.Equal(t, queue.Plan, j.Queue, "a plan job stays on the plan queue")
				priority[a.App+" "+a.Tag] = j.Priority
			}
			require.Equal(t, map[string]int{
				"acme v1.0.0": queue.PriorityPlan, "acme v1.0.1": queue.PriorityPlan,
				"acme v1.0.2": queue.PriorityBackground, "acme v1.0.3": queue.PriorityBackground,
				"other v2.0.0": queue.PriorityPlan,
			}, priority)
		})
	}
}
