package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
)

// CodePushDiffsArgs asks for the diff packages of one release of a CodePush
// deployment (reference ota-round2 §B). They are built here, in the
// background, never while a device waits; until they exist devices download
// the full package, so a failed build only costs bandwidth.
type CodePushDiffsArgs struct {
	DeploymentKey string `json:"deployment_key"`
	Label         string `json:"label"`
}

// Kind implements river.JobArgs.
func (CodePushDiffsArgs) Kind() string { return "codepush_diffs" }

// InsertOpts makes one job per release at a time, last on the plan queue.
func (CodePushDiffsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue.Plan, Priority: queue.PriorityBackground, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// CodePushDiffsWorker builds a release's diff packages.
type CodePushDiffsWorker struct {
	river.WorkerDefaults[CodePushDiffsArgs]
	CodePush *codepush.Service
}

// Work implements river.Worker.
func (w *CodePushDiffsWorker) Work(ctx context.Context, job *river.Job[CodePushDiffsArgs]) error {
	return w.CodePush.BuildDiffs(ctx, job.Args.DeploymentKey, job.Args.Label)
}

// Timeout bounds one build: a handful of packages of at most 200 MiB.
func (w *CodePushDiffsWorker) Timeout(*river.Job[CodePushDiffsArgs]) time.Duration {
	return 15 * time.Minute
}

// DiffScheduler queues CodePushDiffsArgs jobs; it implements
// codepush.DiffScheduler.
type DiffScheduler struct {
	Runner func() *Runner // the runner exists once the service is built
}

// ScheduleDiffs implements codepush.DiffScheduler.
func (d DiffScheduler) ScheduleDiffs(ctx context.Context, deploymentKey, label string) error {
	r := d.Runner()
	if r == nil {
		return errors.New("the job runner is not built yet")
	}
	_, err := r.Client.Insert(ctx, CodePushDiffsArgs{DeploymentKey: deploymentKey, Label: label}, nil)
	return err
}
