package jobs_test

import (
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
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
