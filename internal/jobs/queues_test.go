package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
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
