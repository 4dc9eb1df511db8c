package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

type stepArgs struct {
	Name string `json:"name"`
}

func (stepArgs) Kind() string { return "test_step" }

// stepWorker runs test_step jobs for one replica: it reports each start,
// then does what hold says for that attempt.
type stepWorker struct {
	river.WorkerDefaults[stepArgs]
	node    string
	started chan<- string
	// hold blocks an attempt: "ctx" until the job's context ends, "forever"
	// until release is closed (a process that froze), else not at all.
	hold    func(attempt int) string
	release <-chan struct{}
	sleep   time.Duration
}

func (w *stepWorker) Work(ctx context.Context, job *river.Job[stepArgs]) error {
	w.started <- w.node
	switch w.hold(job.Attempt) {
	case "ctx":
		<-ctx.Done()
		return ctx.Err()
	case "forever":
		<-w.release
		return nil
	}
	select {
	case <-time.After(w.sleep):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func startRunner(t *testing.T, url, node string, w *stepWorker, rescueAfter time.Duration) *jobs.Runner {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url, "")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, nil))
	r, err := jobs.New(jobs.WithFastPoll(jobs.Config{DB: db, Node: node, ReconcileInterval: time.Hour, RescueAfter: rescueAfter,
		Register: []func(*river.Workers){func(ws *river.Workers) { river.AddWorker(ws, w) }}}))
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(c)
	})
	return r
}

// TestDeadReplicaJobsResumeInSeconds: replica A dies (stops beating, fetches
// nothing more) in the middle of a job; replica B hands the job back to the
// queue once A counts as dead and runs it, seconds later rather than after
// River's stuck-job rescue. It holds on every queue.
func TestDeadReplicaJobsResumeInSeconds(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		for _, q := range []string{queue.Control, queue.Plan, river.QueueDefault} {
			t.Run(string(e)+"/"+q, func(t *testing.T) {
				t.Parallel()
				deadReplicaJobResumes(t, e, q)
			})
		}
	}
}

func deadReplicaJobResumes(t *testing.T, e store.Engine, q string) {
	t.Helper()
	url := storetest.URL(t, e)
	ctx := context.Background()
	started := make(chan string, 10)
	frozen := make(chan struct{})
	hold := func(attempt int) string {
		if attempt == 1 {
			return "forever"
		}
		return ""
	}
	a := startRunner(t, url, "replica-a", &stepWorker{node: "replica-a", started: started, hold: hold, release: frozen}, time.Second)
	t.Cleanup(func() { close(frozen) }) // before a's cleanup stops it
	res, err := a.Client.Insert(ctx, stepArgs{Name: "upload"}, &river.InsertOpts{Queue: q})
	require.NoError(t, err)
	require.Equal(t, "replica-a", <-started)

	b := startRunner(t, url, "replica-b", &stepWorker{node: "replica-b", started: started, hold: hold}, time.Second)
	died := time.Now()
	a.StopBeating()
	go func() { _ = a.Client.Stop(context.Background()) }() // fetches nothing more; its job hangs

	select {
	case node := <-started:
		require.Equal(t, "replica-b", node)
	case <-time.After(15 * time.Second):
		t.Fatal("the dead replica's job was not handed over")
	}
	took := time.Since(died)
	// RescueAfter (1s) and a beat or two, with room for a loaded
	// machine; River's own rescue would take minutes.
	require.Less(t, took, 15*time.Second, "resumed %s after the replica died", took)
	require.Eventually(t, func() bool {
		j, err := b.Client.JobGet(ctx, res.Job.ID)
		return err == nil && j.State == rivertype.JobStateCompleted
	}, 10*time.Second, 50*time.Millisecond)
	j, err := b.Client.JobGet(ctx, res.Job.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"replica-a", "replica-b"}, j.AttemptedBy)
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0].Error, "replica replica-a stopped beating")
	require.Equal(t, q, j.Queue)
}

// TestStopDrains: Stop lets a running job finish; a job that outlives the
// drain is cancelled and put back in the queue (not failed), and the
// replica marks itself stopped so nothing it leaves is waited for.
func TestStopDrains(t *testing.T) {
	t.Parallel()
	url := storetest.URL(t, store.SQLite)
	ctx := context.Background()
	started := make(chan string, 10)
	var mu sync.Mutex
	slow := map[int]bool{}
	r := startRunner(t, url, "replica-a", &stepWorker{node: "a", started: started, sleep: 300 * time.Millisecond, hold: func(int) string {
		mu.Lock()
		defer mu.Unlock()
		if slow[0] {
			return "ctx"
		}
		return ""
	}}, time.Second)

	short, err := r.Client.Insert(ctx, stepArgs{Name: "short"}, nil)
	require.NoError(t, err)
	<-started
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	require.NoError(t, r.Stop(sctx), "a clean drain")
	cancel()
	j, err := r.Client.JobGet(ctx, short.Job.ID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCompleted, j.State, "the running job finished during the drain")

	r2 := startRunner(t, url, "replica-b", &stepWorker{node: "b", started: started, hold: func(int) string { return "ctx" }}, time.Second)
	long, err := r2.Client.Insert(ctx, stepArgs{Name: "long"}, nil)
	require.NoError(t, err)
	<-started
	sctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	require.NoError(t, r2.Stop(sctx), "cancelled and handed back is still a clean drain")
	j, err = r2.Client.JobGet(ctx, long.Job.ID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateAvailable, j.State, "back in the queue for another replica")
	require.Equal(t, 0, j.Attempt, "the interrupted attempt does not count")

	db, err := store.Open(ctx, url, "")
	require.NoError(t, err)
	defer db.Close()
	dead, err := store.New(db).DeadReplicas(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, []string{"replica-a", "replica-b"}, dead, "stopped replicas count as dead at once")
}

// TestStartContextOnlyStarts: cancelling the context Start was given (a
// signal) neither stops nor cancels the runner's jobs; Stop does.
func TestStartContextOnlyStarts(t *testing.T) {
	t.Parallel()
	url := storetest.URL(t, store.SQLite)
	ctx := context.Background()
	db, err := store.Open(ctx, url, "")
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, nil))
	started := make(chan string, 10)
	r, err := jobs.New(jobs.WithFastPoll(jobs.Config{DB: db, Node: "a", ReconcileInterval: time.Hour,
		Register: []func(*river.Workers){func(ws *river.Workers) {
			river.AddWorker(ws, &stepWorker{node: "a", started: started, sleep: 500 * time.Millisecond, hold: func(int) string { return "" }})
		}}}))
	require.NoError(t, err)
	sig, cancel := context.WithCancel(ctx)
	require.NoError(t, r.Start(sig))
	res, err := r.Client.Insert(ctx, stepArgs{Name: "x"}, nil)
	require.NoError(t, err)
	<-started
	cancel()
	require.Eventually(t, func() bool {
		j, err := r.Client.JobGet(ctx, res.Job.ID)
		return err == nil && j.State == rivertype.JobStateCompleted
	}, 5*time.Second, 20*time.Millisecond, "the job ran to its end")
	require.True(t, r.Running())
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	require.NoError(t, r.Stop(sctx))
	require.False(t, r.Running())
}
