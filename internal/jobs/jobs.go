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
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/internal/store"
)

// Config configures the runner.
type Config struct {
	DB     *store.DB
	Logger *slog.Logger
	// Node names this process in River (client ID); defaults to host-pid.
	Node string
	// Workers is the number of concurrent jobs on the default queue.
	Workers int
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

	// uniqueTicks dedupes reconcile jobs per period; on by default. A test
	// turns it off to show that only the leader enqueues.
	noUniqueTicks bool
}

// Runner owns the River client.
type Runner struct {
	Client  *river.Client[*sql.Tx]
	log     *slog.Logger
	running atomic.Bool
	stopSub func()
	done    chan struct{}
}

// ReconcileArgs is the periodic reconcile pass.
type ReconcileArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return "reconcile" }

// InsertOpts keeps reconcile passes short-lived and off the retry treadmill:
// the next tick is the retry.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1}
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
	if cfg.Workers <= 0 {
		cfg.Workers = 10
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = time.Minute
	}
	if cfg.Node == "" {
		cfg.Node = DefaultNode()
	}
	if cfg.Reconcile == nil && cfg.Rollouts != nil {
		cfg.Reconcile = cfg.Rollouts.Pass
	}
	r := &Runner{log: log, done: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, &reconcileWorker{fn: cfg.Reconcile})
	if cfg.Rollouts != nil {
		river.AddWorker(workers, &LaneCommandWorker{Rollouts: cfg.Rollouts, Cancel: r.CancelLaneJobs})
	}
	for _, reg := range cfg.Register {
		reg(workers)
	}
	interval := cfg.ReconcileInterval
	unique := !cfg.noUniqueTicks
	periodic := river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		opts := &river.InsertOpts{MaxAttempts: 1}
		if unique {
			opts.UniqueOpts = river.UniqueOpts{ByPeriod: interval}
		}
		return ReconcileArgs{}, opts
	}, &river.PeriodicJobOpts{RunOnStart: true, ID: "reconcile"})

	rc := &river.Config{
		ID:           cfg.Node,
		Logger:       log.With("component", "river"),
		Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers:      workers,
		PeriodicJobs: []*river.PeriodicJob{periodic},
		Schema:       cfg.DB.Schema,
		JobTimeout:   10 * time.Minute,
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

// Start starts working jobs and, when elected leader, the periodic schedule.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.Client.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	r.running.Store(true)
	go func() {
		<-r.Client.Stopped()
		r.running.Store(false)
	}()
	return nil
}

// EnqueueLaneCommand queues a person's command in the transaction of tx, so
// the command and its audit event commit together.
func (r *Runner) EnqueueLaneCommand(ctx context.Context, tx *store.Store, a LaneCommandArgs) (int64, error) {
	if tx.SQLTx() == nil {
		return 0, errors.New("enqueue lane command: not in a transaction")
	}
	res, err := r.Client.InsertTx(ctx, tx.SQLTx(), a, nil)
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

// CancelLaneJobs cancels the unfinished jobs working on a lane (every job
// whose args carry its lane_id), except commands.
func (r *Runner) CancelLaneJobs(ctx context.Context, laneID string) error {
	params := river.NewJobListParams().States(rivertype.JobStateAvailable, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStatePending).First(1000)
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

// Stop stops fetching new jobs and waits for running ones until ctx ends;
// then it cancels what is still running.
func (r *Runner) Stop(ctx context.Context) error {
	defer func() {
		if r.stopSub != nil {
			r.stopSub()
		}
	}()
	if !r.running.Load() {
		return nil
	}
	err := r.Client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		r.log.Warn("jobs did not finish in time; cancelling them")
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = r.Client.StopAndCancel(cctx)
	}
	r.running.Store(false)
	return err
}
