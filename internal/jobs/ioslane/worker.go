package ioslane

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

// Worker runs ios_lane jobs.
type Worker struct {
	river.WorkerDefaults[lane.IOSArgs]
	IOS *IOS
}

// Timeout leaves room for a large IPA upload.
func (w *Worker) Timeout(*river.Job[lane.IOSArgs]) time.Duration { return 30 * time.Minute }

// NextRetry backs off from 30 s, doubling up to 15 minutes: App Store
// Connect's outages are usually short.
func (w *Worker) NextRetry(job *river.Job[lane.IOSArgs]) time.Time {
	return lane.RetryAt(job.JobRow)
}

// Work runs the lane until it is handed to the reconciler. Refusals by App
// Store Connect, rejected reviews, broken builds and bad configuration fail
// the lane with the reason and cancel the job; outages return the error so
// River retries; waiting (processing, review, an exhausted hourly budget)
// snoozes.
func (w *Worker) Work(ctx context.Context, job *river.Job[lane.IOSArgs]) error {
	x := w.IOS
	laneID := job.Args.LaneID
	err := x.runLane(ctx, laneID)
	var budget *iosBudgetWait
	if errors.As(err, &budget) {
		// Say why the lane stands still; the snooze is the retry.
		if l, lerr := x.Store.GetLane(ctx, laneID); lerr == nil {
			_ = lane.Progress(ctx, x.Store, l, "ios.rate_limited", map[string]any{"reason": budget.reason}, x.now())
		}
		x.log().Warn("ios lane waits for App Store Connect's hourly budget", "lane", laneID, "after", budget.after.String())
		return river.JobSnooze(budget.after)
	}
	return lane.Attempt(ctx, x.Store, x.log(), "ios", laneID, job.JobRow, x.now(), err)
}
