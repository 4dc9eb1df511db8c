package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// TestEveryKindHasItsQueue: what stops a rollout runs on the control
// queue at the first priority; slow work on the plan queue, lane steps
// before planning before diff builds. The priorities keep that order even
// where kinds share a queue (River's default queue during an upgrade).
func TestEveryKindHasItsQueue(t *testing.T) {
	t.Parallel()
	type want struct {
		queue    string
		priority int
	}
	kinds := map[string]struct {
		args river.JobArgsWithInsertOpts
		want want
	}{
		"reconcile":          {jobs.ReconcileArgs{}, want{queue.Control, 1}},
		"lane_command":       {jobs.LaneCommandArgs{Command: "halt"}, want{queue.Control, 1}},
		"tag_change deleted": {jobs.TagChangeArgs{Change: jobs.TagChangeDeleted}, want{queue.Control, 1}},
		"tag_change moved":   {jobs.TagChangeArgs{Change: jobs.TagChangeMoved}, want{queue.Control, 1}},
		"tag_change check":   {jobs.TagChangeArgs{Change: jobs.TagChangeCheck}, want{queue.Plan, 2}},
		"ios_lane":           {lane.IOSArgs{}, want{queue.Plan, 2}},
		"android_lane":       {lane.AndroidArgs{}, want{queue.Plan, 2}},
		"ota_lane":           {lane.OTAArgs{}, want{queue.Plan, 2}},
		"plan_release":       {jobs.PlanReleaseArgs{}, want{queue.Plan, 3}},
		"codepush_diffs":     {jobs.CodePushDiffsArgs{}, want{queue.Plan, 4}},
	}
	for name, k := range kinds {
		o := k.args.InsertOpts()
		require.Equal(t, k.want, want{o.Queue, o.Priority}, name)
	}
	q := jobs.Queues(3, 7)
	require.Equal(t, 3, q[queue.Control].MaxWorkers)
	require.Equal(t, 7, q[queue.Plan].MaxWorkers)
	require.Contains(t, q, river.QueueDefault, "jobs queued by an older version still run")
}

// TestPlanRetriesBackOff: planning retries start at seconds and stop
// growing at ten minutes, jittered so a burst that failed together does not
// come back together.
func TestPlanRetriesBackOff(t *testing.T) {
	t.Parallel()
	w := &jobs.PlanReleaseWorker{}
	delay := func(attempt int) time.Duration {
		return time.Until(w.NextRetry(&river.Job[jobs.PlanReleaseArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}}))
	}
	for attempt, bounds := range map[int][2]time.Duration{
		1:  {2500 * time.Millisecond, 5 * time.Second},
		2:  {5 * time.Second, 10 * time.Second},
		5:  {40 * time.Second, 80 * time.Second},
		8:  {5 * time.Minute, 10 * time.Minute},
		13: {5 * time.Minute, 10 * time.Minute},
		40: {5 * time.Minute, 10 * time.Minute},
	} {
		seen := map[time.Duration]bool{}
		for range 20 {
			d := delay(attempt)
			require.GreaterOrEqual(t, d, bounds[0]-time.Second, "attempt %d", attempt)
			require.LessOrEqual(t, d, bounds[1], "attempt %d", attempt)
			seen[d.Round(time.Millisecond)] = true
		}
		require.Greater(t, len(seen), 1, "attempt %d: retries are jittered", attempt)
	}
	require.Equal(t, 14, jobs.PlanReleaseArgs{}.InsertOpts().MaxAttempts)
}

// blockingRepo is a repository whose tag resolution waits until the test
// lets it go (GitHub answering slowly), and counts who is waiting.
type blockingRepo struct {
	jobs.RepoReader
	name string
	c    *concurrency
}

type concurrency struct {
	mu      sync.Mutex
	now     map[string]int
	max     map[string]int
	started chan string
	release chan struct{}
}

func (r blockingRepo) ResolveTag(ctx context.Context, tag string) (string, error) {
	c := r.c
	c.mu.Lock()
	c.now[r.name]++
	c.max[r.name] = max(c.max[r.name], c.now[r.name])
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.now[r.name]--
		c.mu.Unlock()
	}()
	c.started <- r.name
	select {
	case <-c.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "", errors.New("github: 502 Bad Gateway")
}

// TestOneRepositoryDoesNotCrowdOutOthers: six tags of one repository whose
// planning hangs at GitHub, then one of another. With four plan workers
// and two plans per repository, the slow repository never holds more than
// two workers, and the other repository's plan starts while they hang.
func TestOneRepositoryDoesNotCrowdOutOthers(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, e)
			st := store.New(db)
			ctx := context.Background()
			now := time.Now().UTC()
			c := &concurrency{now: map[string]int{}, max: map[string]int{}, started: make(chan string, 100), release: make(chan struct{})}
			cfgApps := appsFor("slow", "acme/slow", "other", "acme/other")
			planner := &jobs.Planner{Store: st, Apps: cfgApps, Repo: func(name string) (jobs.RepoReader, error) {
				return blockingRepo{name: name, c: c}, nil
			}}
			r, err := jobs.New(jobs.WithFastPoll(jobs.Config{DB: db, ReconcileInterval: time.Hour, PlanWorkers: 4,
				Register: []func(*river.Workers){func(ws *river.Workers) {
					river.AddWorker(ws, &jobs.PlanReleaseWorker{Planner: planner, PerRepository: 2})
				}}}))
			require.NoError(t, err)
			var ids []int64
			for i, app := range []string{"slow", "slow", "slow", "slow", "slow", "slow", "other"} {
				require.NoError(t, st.UpsertApp(ctx, release.App{Name: app, Repository: cfgApps[app].Repository}, now))
				rel, _, err := st.CreateRelease(ctx, release.Release{App: app, Tag: fmt.Sprintf("v1.%d.0", i), Version: fmt.Sprintf("1.%d.0", i), CreatedAt: now})
				require.NoError(t, err)
				res, err := r.Client.Insert(ctx, jobs.PlanReleaseArgs{App: app, Tag: rel.Tag, ReleaseID: rel.ID}, nil)
				require.NoError(t, err)
				ids = append(ids, res.Job.ID)
			}
			require.NoError(t, r.Start(ctx))
			t.Cleanup(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = r.Stop(sctx)
			})
			var order []string
			deadline := time.After(30 * time.Second)
			for len(order) < 3 {
				select {
				case name := <-c.started:
					order = append(order, name)
				case <-deadline:
					t.Fatalf("only %v started planning: the slow repository holds every plan worker", order)
				}
			}
			require.ElementsMatch(t, []string{"acme/slow", "acme/slow", "acme/other"}, order)
			c.mu.Lock()
			require.Equal(t, 2, c.max["acme/slow"], "two plans of the slow repository at once, not more")
			c.mu.Unlock()
			// The waiting plans of the slow repository snoozed; none failed.
			for _, id := range ids[2:6] {
				j, err := r.Client.JobGet(ctx, id)
				require.NoError(t, err)
				require.NotContains(t, []rivertype.JobState{rivertype.JobStateRetryable, rivertype.JobStateDiscarded}, j.State, "job %d", id)
				require.Empty(t, j.Errors, "job %d waited without an error", id)
			}
			close(c.release)
		})
	}
}

// TestCancelLaneJobsUnderABacklog: a halt cancels the lane's jobs even
// when thousands of other jobs were queued before them.
func TestCancelLaneJobsUnderABacklog(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, e)
			ctx := context.Background()
			r, err := jobs.New(jobs.Config{DB: db, ReconcileInterval: time.Hour, Register: []func(*river.Workers){func(ws *river.Workers) {
				river.AddWorker(ws, &noopWorker[jobs.PlanReleaseArgs]{})
				river.AddWorker(ws, &noopWorker[lane.OTAArgs]{})
				river.AddWorker(ws, &noopWorker[jobs.LaneCommandArgs]{})
			}}})
			require.NoError(t, err)
			insertPlanBacklog(t, r, 1500)
			mine, err := r.Client.Insert(ctx, lane.OTAArgs{LaneID: "lane-1"}, nil)
			require.NoError(t, err)
			other, err := r.Client.Insert(ctx, lane.OTAArgs{LaneID: "lane-2"}, nil)
			require.NoError(t, err)
			cmd, err := r.Client.Insert(ctx, jobs.LaneCommandArgs{LaneID: "lane-1", Command: "halt"}, nil)
			require.NoError(t, err)

			require.NoError(t, r.CancelLaneJobs(ctx, "lane-1"))
			for id, want := range map[int64]rivertype.JobState{mine.Job.ID: rivertype.JobStateCancelled,
				other.Job.ID: rivertype.JobStateAvailable, cmd.Job.ID: rivertype.JobStateAvailable} {
				j, err := r.Client.JobGet(ctx, id)
				require.NoError(t, err)
				require.Equal(t, want, j.State, "job %d (%s)", id, j.Kind)
			}
			require.Equal(t, 1500, countPlanJobs(t, db, "state = 'available'"), "the backlog is untouched")
		})
	}
}

// noopWorker stands in for a kind's worker in a runner that is not started.
type noopWorker[T river.JobArgs] struct{ river.WorkerDefaults[T] }

func (*noopWorker[T]) Work(context.Context, *river.Job[T]) error { return nil }

func appsFor(pairs ...string) map[string]config.App {
	out := map[string]config.App{}
	for i := 0; i+1 < len(pairs); i += 2 {
		out[pairs[i]] = config.App{Name: pairs[i], Repository: pairs[i+1]}
	}
	return out
}

// insertPlanBacklog queues n plan_release jobs (a burst of tags).
func insertPlanBacklog(t testing.TB, r *jobs.Runner, n int) {
	t.Helper()
	ctx := context.Background()
	for start := 0; start < n; start += 1000 {
		var batch []river.InsertManyParams
		for i := start; i < min(n, start+1000); i++ {
			batch = append(batch, river.InsertManyParams{Args: jobs.PlanReleaseArgs{App: "burst", Tag: fmt.Sprintf("v0.0.%d", i), ReleaseID: fmt.Sprintf("rel-%d", i)}})
		}
		_, err := r.Client.InsertMany(ctx, batch)
		require.NoError(t, err)
	}
}

func countPlanJobs(t testing.TB, db *store.DB, where string) int {
	t.Helper()
	var n int
	require.NoError(t, db.SQL.QueryRowContext(context.Background(),
		"SELECT count(*) FROM river_job WHERE kind = 'plan_release' AND "+where).Scan(&n))
	return n
}
