// Package queue names River's queues and priorities, and says in one place
// which job kind runs where. Every job args type takes its queue and
// priority from here in its InsertOpts.
//
// Two queues, each with its own workers, so that no backlog of one can
// delay the other:
//
//	control (jobs.control_workers): what moves or stops a rollout now
//	  reconcile     priority 1  the periodic pass: gates, advances, halts
//	  lane_command  priority 1  people's commands: halt, resume, advance, …
//	  tag_change    priority 1  a moved or deleted tag withdraws lanes
//
//	plan (jobs.plan_workers): slow work that talks to GitHub, the stores
//	  and the disk, and may wait minutes
//	  ios_lane, android_lane, ota_lane  priority 2  lane steps: uploads,
//	                processing, review, the first stage
//	  tag_change    priority 2  a "check": resolve the tag at GitHub first
//	  plan_release  priority 3  fingerprint a commit, plan the lanes
//	                (4 when more than jobs.plan_per_repository plans of
//	                its repository are waiting: a burst goes behind others)
//	  codepush_diffs priority 4 diff packages (devices fall back to the
//	                full package until they exist)
//
// Priorities order the jobs within a queue (River works priority 1 first),
// so control jobs still go first wherever they share a queue with others:
// in River's default queue, which keeps running for jobs queued by an
// older version during an upgrade (and for kinds that name no queue).
package queue

// Queues.
const (
	Control = "control"
	Plan    = "plan"
)

// Priorities (River: 1 is worked first, 4 last).
const (
	PriorityControl    = 1
	PriorityLane       = 2
	PriorityPlan       = 3
	PriorityBackground = 4
)
