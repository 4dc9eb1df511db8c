package jobs

import (
	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/jobs/queue"
)

// Queues is River's queue configuration (package queue says which kind
// runs where): the control queue with its own workers, so no backlog of
// plan jobs delays a halt; the plan queue; and River's default queue, which
// drains jobs an older version queued there (and kinds that name no queue)
// with as many workers as the control queue — their priorities still put
// commands first.
func Queues(controlWorkers, planWorkers int) map[string]river.QueueConfig {
	return map[string]river.QueueConfig{
		queue.Control:      {MaxWorkers: controlWorkers},
		queue.Plan:         {MaxWorkers: planWorkers},
		river.QueueDefault: {MaxWorkers: controlWorkers},
	}
}

// InsertOpts puts commands on the control queue, first. Attempts are many
// and close together (see NextRetry): a halt must not wait for a backoff.
func (LaneCommandArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue.Control, Priority: queue.PriorityControl, MaxAttempts: 50}
}
