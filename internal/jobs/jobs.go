// Package jobs runs releasepilot's background work on River: one
// *river.Client[*sql.Tx] on SQLite and on Postgres, the periodic reconciler,
// and the workers that drive the store and OTA adapters. It is the only
// package that calls adapters.
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/jobs/queue"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Config configures the runner.
type Config struct {
	DB     *store.DB
	Logger *slog.Logger
	// Node names this process in River (client ID); defaults to host-pid.
	Node string
	// ControlWorkers is the number of concurrent jobs on the control
	// queue (reconcile passes, commands, tag changes). Default 5.
	ControlWorkers int
	// PlanWorkers is the number of concurrent jobs on the plan queue
	// (planning, lane steps, diff builds). Default 10.
	PlanWorkers int
	// ReconcileInterval is how often the leader enqueues a reconcile pass.
	ReconcileInterval time.Duration
	// Reconcile is the work of one reconcile pass; nil runs Rollouts.Pass
	// when Rollouts is set, else nothing.
	Reconcile func(ctx context.Context) error
	// Rollouts executes commands and reconcile passes.
	Rollouts *Rollouts
	// Register adds more workers before the client is built.
	Register []func(w *river.Workers)
	// FastPoll makes River look for new jobs every 100 ms instead of every
	// second: for tests and the sandbox, where latency matters more than load.
	FastPoll bool
	// Observe is told the outcome of every finished job (metrics).
	Observe func(kind, outcome string)
	// RescueAfter is how long a replica may miss heartbeats before it
	// counts as dead: the jobs it was running are handed to the others and
	// its lane leases are free. Replicas beat every third of it. Default
	// 15s.
	RescueAfter time.Duration
	// ActionTimeout bounds one remote action on a lane (a reconcile step,
	// a command). Default 30s.
	ActionTimeout time.Duration

	// uniqueTicks dedupes reconcile jobs per period; on by default. A test
	// turns it off to show that only the leader enqueues.
	noUniqueTicks bool
}

// Runner owns the River client, and this replica's heartbeat: every
// replica beats in the replicas table and hands the running jobs of
// replicas that stopped beating back to the queue (see reap), so work on a
// dead process resumes within seconds instead of River's stuck-job rescue
// (which stays as the backstop for replicas that beat but hang).
type Runner struct {
	Client  *river.Client[*sql.Tx]
	log     *slog.Logger
	running atomic.Bool
	stopSub func()
	done    chan struct{}

	db          *store.DB
	st          *store.Store
	driver      riverdriver.Driver[*sql.Tx]
	node        string
	rescueAfter time.Duration
	beatStop    context.CancelFunc
	beatDone    chan struct{}
}

// ReconcileArgs is the periodic reconcile pass.
type ReconcileArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return "reconcile" }

// InsertOpts keeps reconcile passes short-lived and off the retry treadmill
// (the next tick is the retry), on the control queue.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, Queue: queue.Control, Priority: queue.PriorityControl}
}

type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	fn func(ctx context.Context) error
}

func (w *reconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	if w.fn == nil {
		return nil
	}
	return w.fn(ctx)
}

// Timeout bounds a pass; each lane's action in it is bounded by the
// action timeout.
func (w *reconcileWorker) Timeout(*river.Job[ReconcileArgs]) time.Duration { return 5 * time.Minute }

// DefaultNode is host-pid-random: unique per River client even when one
// process runs several (tests, or two services in one binary).
func DefaultNode() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "releasepilot"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%x", h, os.Getpid(), b)
}

// New builds the River client with every worker and the periodic reconciler.
func New(cfg Config) (*Runner, error) {
	if cfg.DB == nil {
		return nil, errors.New("jobs: no database")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ControlWorkers <= 0 {
		cfg.ControlWorkers = DefaultControlWorkers
	}
	if cfg.PlanWorkers <= 0 {
		cfg.PlanWorkers = DefaultPlanWorkers
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = time.Minute
	}
	if cfg.Node == "" {
		cfg.Node = DefaultNode()
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = DefaultRescueAfter
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = DefaultActionTimeout
	}
	if cfg.Reconcile == nil && cfg.Rollouts != nil {
		cfg.Reconcile = cfg.Rollouts.Pass
	}
	r := &Runner{log: log, done: make(chan struct{}), db: cfg.DB, st: store.New(cfg.DB), driver: cfg.DB.RiverDriver(),
		node: cfg.Node, rescueAfter: cfg.RescueAfter}
	workers := river.NewWorkers()
	river.AddWorker(workers, &reconcileWorker{fn: cfg.Reconcile})
	if ro := cfg.Rollouts; ro != nil {
		if ro.Node == "" {
			ro.Node = cfg.Node
		}
		if ro.ActionTimeout <= 0 {
			ro.ActionTimeout = cfg.ActionTimeout
		}
		if ro.DeadAfter <= 0 {
			ro.DeadAfter = cfg.RescueAfter
		}
		if ro.CancelJobs == nil {
			ro.CancelJobs = r.CancelLaneJobs
		}
		river.AddWorker(workers, &LaneCommandWorker{Rollouts: ro})
	}
	for _, reg := range cfg.Register {
		reg(workers)
	}
	interval := cfg.ReconcileInterval
	unique := !cfg.noUniqueTicks
	periodic := river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		opts := &river.InsertOpts{MaxAttempts: 1, Queue: queue.Control, Priority: queue.PriorityControl}
		if unique {
			opts.UniqueOpts = river.UniqueOpts{ByPeriod: interval}
		}
		return ReconcileArgs{}, opts
	}, &river.PeriodicJobOpts{RunOnStart: true, ID: "reconcile"})

	rc := &river.Config{
		ID:           cfg.Node,
		Logger:       log.With("component", "river"),
		Queues:       Queues(cfg.ControlWorkers, cfg.PlanWorkers),
		Workers:      workers,
		PeriodicJobs: []*river.PeriodicJob{periodic},
		Schema:       cfg.DB.Schema,
		// Kinds without their own Timeout get a minute. River's own
		// stuck-job rescue is the backstop for a replica that still beats
		// but hangs: a job running past max(RescueStuckJobsAfter, its
		// kind's timeout) is retried. A dead replica's jobs are handed
		// over by the heartbeat long before (reap).
		JobTimeout:           time.Minute,
		RescueStuckJobsAfter: 2 * time.Minute,
	}
	if cfg.FastPoll {
		rc.FetchCooldown = 20 * time.Millisecond
		rc.FetchPollInterval = 100 * time.Millisecond
	}
	client, err := river.NewClient(cfg.DB.RiverDriver(), rc)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	r.Client = client
	if cfg.Observe != nil {
		events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled, river.EventKindJobSnoozed)
		r.stopSub = cancel
		go func() {
			defer close(r.done)
			for ev := range events {
				if ev == nil || ev.Job == nil {
					continue
				}
				cfg.Observe(ev.Job.Kind, outcome(ev.Kind))
			}
		}()
	} else {
		close(r.done)
	}
	return r, nil
}

// Defaults of Config.
const (
	DefaultRescueAfter    = 15 * time.Second
	DefaultActionTimeout  = 30 * time.Second
	DefaultControlWorkers = 5
	DefaultPlanWorkers    = 10
)

func outcome(k river.EventKind) string {
	switch k {
	case river.EventKindJobCompleted:
		return "completed"
	case river.EventKindJobFailed:
		return "failed"
	case river.EventKindJobCancelled:
		return "cancelled"
	case river.EventKindJobSnoozed:
		return "snoozed"
	}
	return string(k)
}

// Start starts this replica's heartbeat, then working jobs and, when
// elected leader, the periodic schedule. ctx only bounds starting: the
// runner works until Stop (River treats a cancelled start context as
// stop-and-cancel, which must not be what a signal does).
func (r *Runner) Start(ctx context.Context) error {
	if err := r.st.Heartbeat(ctx, r.node, time.Now()); err != nil {
		return fmt.Errorf("replica heartbeat: %w", err)
	}
	if err := r.Client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	r.running.Store(true)
	go func() {
		<-r.Client.Stopped()
		r.running.Store(false)
	}()
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.beatStop, r.beatDone = cancel, make(chan struct{})
	go r.beat(bctx)
	return nil
}

// Node is this replica's name (its River client id).
func (r *Runner) Node() string { return r.node }

// beat records this replica's heartbeat every third of RescueAfter and
// hands the jobs of dead replicas back to the queue.
func (r *Runner) beat(ctx context.Context) {
	defer close(r.beatDone)
	every := max(r.rescueAfter/3, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	lastForget := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if err := r.st.Heartbeat(ctx, r.node, now); err != nil && ctx.Err() == nil {
			r.log.Warn("replica heartbeat failed", "node", r.node, "err", err)
		}
		if n, err := r.Reap(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("could not hand over the jobs of dead replicas", "err", err)
		} else if n > 0 {
			r.log.Warn("handed the jobs of dead replicas to the queue", "jobs", n)
		}
		if now.Sub(lastForget) > time.Hour {
			lastForget = now
			_ = r.st.ForgetReplicas(ctx, now.Add(-24*time.Hour))
		}
	}
}

// Reap makes the running jobs of dead replicas (no heartbeat for
// RescueAfter, or stopped) available again at once, and returns how many it
// handed over. Every job reads the store's state first, so the next run
// finishes the step the dead one was on. Jobs of replicas that never beat
// here are left to River's stuck-job rescue.
func (r *Runner) Reap(ctx context.Context) (int, error) {
	now := time.Now()
	dead, err := r.st.DeadReplicas(ctx, now.Add(-r.rescueAfter))
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	isDead := map[string]bool{}
	for _, n := range dead {
		isDead[n] = true
	}
	res, err := r.Client.JobList(ctx, river.NewJobListParams().States(rivertype.JobStateRunning).First(1000))
	if err != nil {
		return 0, fmt.Errorf("list running jobs: %w", err)
	}
	p := &riverdriver.JobRescueManyParams{Schema: r.db.Schema, StuckHorizon: now.Add(time.Second)}
	for _, j := range res.Jobs {
		if len(j.AttemptedBy) == 0 || !isDead[j.AttemptedBy[len(j.AttemptedBy)-1]] {
			continue
		}
		by := j.AttemptedBy[len(j.AttemptedBy)-1]
		e, err := json.Marshal(rivertype.AttemptError{At: now.UTC(), Attempt: j.Attempt,
			Error: fmt.Sprintf("replica %s stopped beating; the job was handed to another replica", by)})
		if err != nil {
			return 0, err
		}
		p.ID = append(p.ID, j.ID)
		p.Error = append(p.Error, e)
		p.FinalizedAt = append(p.FinalizedAt, nil)
		p.ScheduledAt = append(p.ScheduledAt, now.UTC())
		p.State = append(p.State, string(rivertype.JobStateAvailable))
		r.log.Warn("handing over the job of a dead replica", "job", j.ID, "kind", j.Kind, "replica", by, "attempt", j.Attempt)
	}
	if len(p.ID) == 0 {
		return 0, nil
	}
	if _, err := r.driver.GetExecutor().JobRescueMany(ctx, p); err != nil {
		return 0, fmt.Errorf("hand over %d jobs: %w", len(p.ID), err)
	}
	return len(p.ID), nil
}

// EnqueueLaneCommand records a person's command as pending on its lane and
// queues its job, both in the transaction of tx: a command exists with its
// job or not at all, and from the commit on the lane shows it pending. It
// returns the job's id and sets a.CommandID.
func (r *Runner) EnqueueLaneCommand(ctx context.Context, tx *store.Store, a *LaneCommandArgs) (int64, error) {
	if tx.SQLTx() == nil {
		return 0, errors.New("enqueue lane command: not in a transaction")
	}
	cmd, err := release.ParseCommand(a.Command)
	if err != nil {
		return 0, err
	}
	if a.CommandID == 0 {
		if a.CommandID, err = tx.CreateCommand(ctx, store.LaneCommand{LaneID: a.LaneID, Command: cmd, Actor: a.Actor, Reason: a.Reason, RequestedAt: time.Now()}); err != nil {
			return 0, err
		}
	}
	res, err := r.Client.InsertTx(ctx, tx.SQLTx(), *a, nil)
	if err != nil {
		return 0, err
	}
	return res.Job.ID, nil
}

// EnqueueTx inserts a job in the transaction of tx. duplicate reports that a
// unique job with the same key already existed (nothing new was inserted).
func (r *Runner) EnqueueTx(ctx context.Context, tx *store.Store, args river.JobArgs, opts *river.InsertOpts) (id int64, duplicate bool, err error) {
	if tx.SQLTx() == nil {
		return 0, false, errors.New("enqueue " + args.Kind() + ": not in a transaction")
	}
	res, err := r.Client.InsertTx(ctx, tx.SQLTx(), args, opts)
	if err != nil {
		return 0, false, fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return res.Job.ID, res.UniqueSkippedAsDuplicate, nil
}

// CancelLaneJobs cancels the unfinished lane step jobs (lane.Kinds) working
// on a lane, on any queue; commands stay. The database picks them by kind
// (indexed) and args lane_id: a backlog of thousands of other jobs neither
// hides them nor slows the halt that calls this.
func (r *Runner) CancelLaneJobs(ctx context.Context, laneID string) error {
	params := river.NewJobListParams().Kinds(lane.Kinds()...).States(rivertype.JobStateAvailable, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStatePending).
		Where("args ->> 'lane_id' = @lane_id", river.NamedArgs{"lane_id": laneID}).First(1000)
	res, err := r.Client.JobList(ctx, params)
	if err != nil {
		return fmt.Errorf("list lane jobs: %w", err)
	}
	for _, j := range res.Jobs {
		if j.Kind == (LaneCommandArgs{}).Kind() {
			continue
		}
		var a struct {
			LaneID string `json:"lane_id"`
		}
		if json.Unmarshal(j.EncodedArgs, &a) != nil || a.LaneID != laneID {
			continue
		}
		if _, err := r.Client.JobCancel(ctx, j.ID); err != nil {
			return fmt.Errorf("cancel job %d (%s): %w", j.ID, j.Kind, err)
		}
		r.log.Info("cancelled lane job", "lane", laneID, "job", j.ID, "kind", j.Kind)
	}
	return nil
}

// Running reports whether the River client is working jobs.
func (r *Runner) Running() bool { return r.running.Load() }

// Stop drains: it stops fetching new jobs and lets running ones finish
// until ctx ends; then it cancels what is still running, which River puts
// back in the queue for another replica (or the next start), and waits a
// few seconds for that. Last, the replica marks itself stopped, so that
// any job it still leaves running is handed over at once. It returns an
// error only when jobs could not be handed back.
func (r *Runner) Stop(ctx context.Context) error {
	defer func() {
		if r.stopSub != nil {
			r.stopSub()
		}
	}()
	var err error
	if r.running.Load() {
		err = r.Client.Stop(ctx)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			r.log.Warn("jobs did not finish in time; cancelling them, they go back to the queue")
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err = r.Client.StopAndCancel(cctx)
			cancel()
			if err != nil {
				err = fmt.Errorf("cancel running jobs: %w", err)
			}
		}
		r.running.Store(false)
	}
	if r.beatStop != nil {
		r.beatStop()
		<-r.beatDone
		r.beatStop = nil
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if herr := r.st.StopHeartbeat(hctx, r.node); herr != nil {
			r.log.Warn("could not mark this replica stopped; it counts as dead once its heartbeat is old", "err", herr)
		}
		cancel()
	}
	return err
}
