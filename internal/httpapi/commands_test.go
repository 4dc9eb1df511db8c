package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

type recordingExecutor struct {
	mu      sync.Mutex
	actions []string
}

func (e *recordingExecutor) Execute(_ context.Context, _ release.Lane, d release.Decision) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.actions = append(e.actions, string(d.Action))
	return nil
}

func (e *recordingExecutor) Observe(context.Context, release.Lane) (release.Observations, error) {
	return release.Observations{}, nil
}

func (e *recordingExecutor) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.actions...)
}

const opToken = "operator-token-0123456789"

// startAndroidRunner starts River with a recording executor for Android
// store lanes, stopped at cleanup.
func startAndroidRunner(t testing.TB, db *store.DB, st *store.Store) (*recordingExecutor, *jobs.Runner) {
	t.Helper()
	exec := &recordingExecutor{}
	ro := &jobs.Rollouts{Store: st, Executors: jobs.Executors{{Kind: release.KindStore, Platform: release.Android}: exec}}
	runner, err := jobs.New(jobs.Config{DB: db, Rollouts: ro, ReconcileInterval: time.Hour, FastPoll: true})
	require.NoError(t, err)
	require.NoError(t, runner.Start(context.Background()))
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = runner.Stop(c)
	})
	return exec, runner
}

func TestLaneCommandsThroughJobs(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	r, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc", CreatedAt: t0})
	require.NoError(t, err)
	lane, err := st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore,
		Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, nil),
		Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: time.Now()}}, t0)
	require.NoError(t, err)

	exec, runner := startAndroidRunner(t, db, st)

	s := httpapi.New(httpapi.Deps{Store: st, Commands: runner, Tokens: []httpapi.Token{
		httpapi.NewToken("ops", httpapi.RoleOperator, opToken),
		httpapi.NewToken("viewer", httpapi.RoleViewer, "viewer-token-0123456789"),
	}})
	h := s.Handler()
	post := func(path, tok, body string) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}

	code, _ := post("/v1/lanes/"+lane.ID+"/halt", "viewer-token-0123456789", "")
	require.Equal(t, 403, code, "viewers cannot halt")

	code, body := post("/v1/lanes/"+lane.ID+"/explode", opToken, "")
	require.Equal(t, 400, code)
	require.Contains(t, body["error"].(map[string]any)["message"], `command "explode" is not one of`)

	code, body = post("/v1/lanes/"+lane.ID+"/halt", opToken, `{"reason": 7}`)
	require.Equal(t, 400, code)
	require.Contains(t, body["error"].(map[string]any)["message"], "reason: expected string, found number")

	code, body = post("/v1/lanes/"+lane.ID+"/resume", opToken, "")
	require.Equal(t, 409, code)
	require.Contains(t, body["error"].(map[string]any)["message"], "resume: lane is waiting, not halted or paused")

	// A dry run says what the command would do and changes nothing.
	code, body = post("/v1/releases/"+r.ID+"/advance?dry_run=true", opToken, `{"reason":"looks fine","platform":"android"}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, true, body["dry_run"])
	require.Equal(t, "advance", body["action"])
	require.Equal(t, map[string]any{"state": "waiting", "percent": float64(10)}, body["from"])
	require.Equal(t, "rolling", body["to"].(map[string]any)["state"])
	require.Equal(t, float64(25), body["to"].(map[string]any)["percent"])
	code, body = post("/v1/lanes/"+lane.ID+"/resume?dry_run=true", opToken, "")
	require.Equal(t, 409, code, "a dry run is refused as the command would be")
	require.Contains(t, body["error"].(map[string]any)["message"], "resume: lane is waiting, not halted or paused")
	code, body = post("/v1/lanes/"+lane.ID+"/advance?dry_run=yes", opToken, "")
	require.Equal(t, 400, code)
	require.Contains(t, body["error"].(map[string]any)["message"], `dry_run: "yes" is not true or false`)
	l, err := st.GetLane(ctx, lane.ID)
	require.NoError(t, err)
	require.Equal(t, 10, l.Status.Percent, "the dry run changed nothing")
	require.Empty(t, exec.seen())

	code, body = post("/v1/releases/"+r.ID+"/halt", opToken, `{"reason":"crash spike","platform":"android"}`)
	require.Equal(t, 202, code, body)
	require.Equal(t, lane.ID, body["lane_id"])
	require.Eventually(t, func() bool {
		l, err := st.GetLane(ctx, lane.ID)
		return err == nil && l.Status.State == release.StateHalted
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"halt"}, exec.seen())

	code, _ = post("/v1/lanes/"+lane.ID+"/resume", opToken, `{"reason":"fixed"}`)
	require.Equal(t, 202, code)
	require.Eventually(t, func() bool {
		l, err := st.GetLane(ctx, lane.ID)
		return err == nil && l.Status.State == release.StateRolling
	}, 15*time.Second, 20*time.Millisecond)

	code, body = post("/v1/releases/"+r.ID+"/halt", opToken, `{"platform":"windows"}`)
	require.Equal(t, 400, code)
	require.Contains(t, body["error"].(map[string]any)["message"], `platform: platform "windows" is not one of ios, android`)

	big := `{"reason":"` + strings.Repeat("x", 70<<10) + `"}`
	code, body = post("/v1/lanes/"+lane.ID+"/halt", opToken, big)
	require.Equal(t, 413, code)
	require.Contains(t, body["error"].(map[string]any)["message"], "body is larger than 65536 bytes")

	planning, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.5.0", Version: "1.5.0", Commit: "def", CreatedAt: t0})
	require.NoError(t, err)
	code, body = post("/v1/releases/"+planning.ID+"/halt", opToken, `{"reason":"x"}`)
	require.Equal(t, 409, code)
	require.Contains(t, body["error"].(map[string]any)["message"], "has no lanes yet (it is still being planned)")
	code, _ = post("/v1/releases/rel_missing/halt", opToken, `{"reason":"x"}`)
	require.Equal(t, 404, code)

	evs, err := st.Events(ctx, r.ID, 0, 100)
	require.NoError(t, err)
	var kinds []string
	for _, e := range evs {
		// The reconciler's own pass (it runs once at start) may add
		// rollout.* events; the commands must be recorded in order.
		if strings.HasPrefix(e.Kind, "command.") {
			kinds = append(kinds, e.Kind+"/"+e.Actor)
		}
	}
	require.Equal(t, []string{"command.requested/token:ops", "command.halt/token:ops", "command.applied/token:ops",
		"command.requested/token:ops", "command.resume/token:ops", "command.applied/token:ops"}, kinds)
}

// TestCommandPendingAtOnce: an accepted command is on the lane from the 202
// on, before any job ran it: the lane says so, its outlook too, and later
// commands are judged against the lane as it will be once it is applied.
func TestCommandPendingAtOnce(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, e)
			st := store.New(db)
			ctx := context.Background()
			require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
			r, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc", CreatedAt: t0})
			require.NoError(t, err)
			lane, err := st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore,
				Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil),
				Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: t0}}, t0)
			require.NoError(t, err)
			// River is built but not started: nothing runs the jobs.
			runner, err := jobs.New(jobs.Config{DB: db, Rollouts: &jobs.Rollouts{Store: st, Executors: jobs.Executors{}}})
			require.NoError(t, err)
			h := httpapi.New(httpapi.Deps{Store: st, Commands: runner, Now: func() time.Time { return t0.Add(2 * time.Hour) },
				Tokens: []httpapi.Token{httpapi.NewToken("ops", httpapi.RoleOperator, opToken)}}).Handler()
			do := func(method, path, body string) (int, map[string]any) {
				req := httptest.NewRequest(method, path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+opToken)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				var out map[string]any
				_ = json.Unmarshal(rec.Body.Bytes(), &out)
				return rec.Code, out
			}
			code, body := do(http.MethodPost, "/v1/lanes/"+lane.ID+"/halt", `{"reason":"crash spike"}`)
			require.Equal(t, 202, code, body)
			require.NotZero(t, body["command_id"])

			code, body = do(http.MethodGet, "/v1/lanes/"+lane.ID, "")
			require.Equal(t, 200, code, body)
			status := body["status"].(map[string]any)
			require.Equal(t, "halt", status["pending_command"])
			require.Equal(t, "waiting", status["state"], "not halted before the store is")
			require.Equal(t, "halt pending: a person's halt was accepted and goes before anything scheduled", body["next"].(map[string]any)["summary"])
			cmds := body["commands"].([]any)
			require.Len(t, cmds, 1)
			c := cmds[0].(map[string]any)
			require.Equal(t, "halt", c["command"])
			require.Equal(t, "pending", c["state"])
			require.Equal(t, "token:ops", c["actor"])
			require.Equal(t, "crash spike", c["reason"])

			// A resume is judged against the lane once halted: allowed.
			code, body = do(http.MethodPost, "/v1/lanes/"+lane.ID+"/resume", "")
			require.Equal(t, 202, code, body)
			code, body = do(http.MethodPost, "/v1/lanes/"+lane.ID+"/resume", "")
			require.Equal(t, 409, code, body)
			require.Equal(t, "resume: lane is rolling, not halted or paused (once the pending halt is applied)", body["error"].(map[string]any)["message"])

			pending, err := st.PendingCommands(ctx, lane.ID)
			require.NoError(t, err)
			require.Len(t, pending, 2)
			var queued int
			require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE kind = 'lane_command'`).Scan(&queued))
			require.Equal(t, 2, queued, "each command has its job")
			evs, err := st.Events(ctx, r.ID, 0, 100)
			require.NoError(t, err)
			require.Len(t, evs, 2)
			require.Equal(t, "command.requested", evs[0].Kind)
			require.Equal(t, float64(pending[0].ID), evs[0].Details["command_id"])
		})
	}
}
