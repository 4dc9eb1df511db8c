package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Executor carries out rollout decisions for one kind of lane on one
// platform (Play staged rollout, iOS phased release, OTA release).
//
// Execute makes the remote state match the decision — active at d.Percent
// (ActionAdvance), halted (ActionHalt), at 100 % (ActionComplete) or rolled
// back (ActionRollback) — and must read remote state first, so running it
// twice (a crash after the remote change, before the status was recorded)
// changes nothing the second time.
type Executor interface {
	Execute(ctx context.Context, lane release.Lane, d release.Decision) error
	// Observe returns the health metrics the lane's gates read.
	Observe(ctx context.Context, lane release.Lane) (release.Observations, error)
}

// ExecutorKey selects an executor.
type ExecutorKey struct {
	Kind     release.LaneKind
	Platform release.Platform
}

// Executors maps lanes to executors.
type Executors map[ExecutorKey]Executor

func (e Executors) For(l release.Lane) (Executor, error) {
	ex, ok := e[ExecutorKey{l.Kind, l.Platform}]
	if !ok {
		return nil, fmt.Errorf("no executor for %s lanes on %s", l.Kind, l.Platform)
	}
	return ex, nil
}

// Rollouts moves lanes through their plans: the periodic reconcile pass and
// people's commands both end here.
//
// One remote action at a time per lane: the reconciler and commands take
// the lane's lease (store.AcquireLaneLease) before they read the lane and
// act on the store, and give it back after recording the outcome. So a
// halt never runs beside an advance; it runs before it (the advance then
// finds the lane halted) or after it (and halts the new percentage). A
// lease held by a replica that died is free once the replica counts as
// dead (DeadAfter).
type Rollouts struct {
	Store     *store.Store
	Executors Executors
	Now       func() time.Time
	Log       *slog.Logger
	// OnChange is told about every recorded status change (notifications).
	OnChange func(ctx context.Context, lane release.Lane, d release.Decision)
	// Freezes hold scheduled advances (release.FreezesFor picks a lane's).
	Freezes []release.Freeze
	// Gates measures the lanes' gate rules and reads back the current
	// stage's measurements (*Gates); nil: gates are judged from
	// Executor.Observe alone.
	Gates interface {
		Observe(ctx context.Context, l release.Lane) (map[string]release.GateReading, error)
	}
	// Node names this process as the holder of lane leases; default a
	// random name. The runner sets its River client id.
	Node string
	// ActionTimeout bounds one remote action on a lane (a reconcile step
	// or a command); the lane's lease lasts a little longer. Default 30s.
	ActionTimeout time.Duration
	// DeadAfter is how long a replica may miss heartbeats before its
	// leases are free. Default 15s.
	DeadAfter time.Duration
	// CancelJobs cancels the unfinished jobs of a lane when a halt or a
	// cancel is applied (halt takes priority over lane work).
	CancelJobs func(ctx context.Context, laneID string) error
	// PassBudget bounds how long one Pass walks due lanes (jobs.pass_budget);
	// default DefaultPassBudget. What is left is taken first next pass.
	PassBudget time.Duration

	nodeOnce sync.Once
	node     string

	cursorMu sync.Mutex
	cursor   store.DueCursor // where the last pass's budget ran out
}

// MaxCommandTries is how many failed tries a command that exposes more
// users (resume, advance, complete, approve) gets before it is rejected
// with the last error. Commands that stop a rollout (halt, pause, cancel,
// rollback) are not given up while the store fails: they stay pending, the
// lane does not move, and every reconcile pass tries them again. Any
// command the store refuses for good (lane.Refusal) is rejected at once.
const MaxCommandTries = 5

// leaseMargin is how much longer a lease lasts than the action it covers,
// for recording the outcome after the action's deadline.
const leaseMargin = 5 * time.Second

func (r *Rollouts) now() time.Time {
	if r.Now == nil {
		return time.Now().UTC()
	}
	return r.Now().UTC()
}

func (r *Rollouts) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Rollouts) actionTimeout() time.Duration {
	if r.ActionTimeout <= 0 {
		return 30 * time.Second
	}
	return r.ActionTimeout
}

func (r *Rollouts) deadAfter() time.Duration {
	if r.DeadAfter <= 0 {
		return 15 * time.Second
	}
	return r.DeadAfter
}

func (r *Rollouts) nodeName() string {
	r.nodeOnce.Do(func() {
		r.node = r.Node
		if r.node == "" {
			r.node = DefaultNode()
		}
	})
	return r.node
}

// errLaneBusy is a lane whose lease another action holds past the wait.
var errLaneBusy = errors.New("another action on the lane is in progress")

// lease is a held lane lease.
type lease struct {
	r      *Rollouts
	laneID string
	token  string
}

// renew extends the lease for one more action. Leases live on the wall
// clock (they are about live processes), not on the injected one.
func (ls *lease) renew(ctx context.Context) (bool, error) {
	now := time.Now()
	return ls.r.Store.AcquireLaneLease(ctx, ls.laneID, ls.r.nodeName(), ls.token,
		now.Add(ls.r.actionTimeout()+leaseMargin), now, now.Add(-ls.r.deadAfter()))
}

// withLease runs fn holding the lane's lease. Without wait it gives up at
// once when someone else holds it (ok false); with wait it tries until the
// longest another action may hold it has passed, then answers errLaneBusy.
func (r *Rollouts) withLease(ctx context.Context, laneID string, wait bool, fn func(ctx context.Context, ls *lease) error) (ok bool, err error) {
	ls := &lease{r: r, laneID: laneID, token: randomToken()}
	deadline := time.Now().Add(r.actionTimeout() + 2*leaseMargin)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		got, err := ls.renew(ctx)
		if err != nil {
			return false, fmt.Errorf("take the lease of lane %s: %w", laneID, err)
		}
		if got {
			break
		}
		if !wait {
			return false, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("lane %s: %w", laneID, errLaneBusy)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(delay):
		}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := r.Store.ReleaseLaneLease(rctx, laneID, ls.token); rerr != nil {
			r.log().Warn("could not give the lane lease back; it expires on its own", "lane", laneID, "err", rerr)
		}
	}()
	return true, fn(ctx, ls)
}

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DefaultPassBudget is how long a reconcile pass walks due lanes before it
// leaves the rest to the next pass (jobs.pass_budget).
const DefaultPassBudget = 20 * time.Second

// passBatch is how many due lanes a pass reads, leases and re-reads at once.
const passBatch = 200

func (r *Rollouts) passBudget() time.Duration {
	if r.PassBudget <= 0 {
		return DefaultPassBudget
	}
	return r.PassBudget
}

// Pass runs one reconcile pass: first every lane with a pending command
// (commands go before the schedule; this also finishes commands whose job
// died with its replica), then every lane that is due at the pass's start,
// a batch at a time in (next_eligible_at, id) order, until the pass budget
// is spent. Each lane moves at most one step per pass: a lane the pass
// advanced is due again at once but waits for the next pass. When the
// budget runs out the pass remembers where it stopped, and the next pass
// starts there (the oldest due lanes the last one did not reach) before it
// takes the lanes behind it, so no lane starves however many are due. One
// lane's failure does not stop the others; the errors are joined.
func (r *Rollouts) Pass(ctx context.Context) error {
	deadline := time.Now().Add(r.passBudget())
	if !inGatePass(ctx) {
		// Gate providers answer each question once per pass, not per lane.
		ctx = WithGatePass(ctx)
	}
	var errs []error
	pending, err := r.Store.LanesWithPendingCommands(ctx, 1000)
	if err != nil {
		errs = append(errs, fmt.Errorf("lanes with pending commands: %w", err))
	}
	for _, id := range pending {
		if _, err := r.ApplyCommands(ctx, id, false); err != nil {
			errs = append(errs, fmt.Errorf("lane %s: %w", id, err))
		}
	}
	now := r.now()
	r.cursorMu.Lock()
	resume := r.cursor
	r.cursorMu.Unlock()
	cur, wrapped := resume, resume == (store.DueCursor{})
	seen := map[string]bool{}
	for {
		lanes, err := r.Store.DueLanesAfter(ctx, now, cur, passBatch)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("due lanes: %w", err))...)
		}
		if len(lanes) == 0 {
			if !wrapped {
				// The lanes before where the last pass stopped.
				cur, wrapped = store.DueCursor{}, true
				continue
			}
			r.cursorMu.Lock()
			r.cursor = store.DueCursor{}
			r.cursorMu.Unlock()
			break
		}
		last := lanes[len(lanes)-1]
		cur = store.DueCursor{At: last.Status.NextEligibleAt, LaneID: last.ID}
		todo := lanes[:0:0]
		lapped := false
		for _, l := range lanes {
			if resume != (store.DueCursor{}) && wrapped && dueAfter(l, resume) {
				lapped = true // the first leg of the pass began here
				break
			}
			if !seen[l.ID] {
				seen[l.ID] = true
				todo = append(todo, l)
			}
		}
		errs = append(errs, r.reconcileBatch(ctx, todo)...)
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
		if lapped {
			r.cursorMu.Lock()
			r.cursor = store.DueCursor{}
			r.cursorMu.Unlock()
			break
		}
		if time.Now().After(deadline) {
			// At least one batch a pass, so even a tiny budget moves on.
			r.cursorMu.Lock()
			r.cursor = cur
			r.cursorMu.Unlock()
			r.log().Warn("reconcile pass budget spent; the next pass starts where this one stopped", "budget", r.passBudget().String(), "lanes", len(seen))
			break
		}
	}
	return errors.Join(errs...)
}

// dueAfter reports whether l comes after c in the walk's order.
func dueAfter(l release.Lane, c store.DueCursor) bool {
	at := l.Status.NextEligibleAt.UnixMilli()
	if l.Status.NextEligibleAt.IsZero() {
		at = 0
	}
	cat := c.At.UnixMilli()
	if c.At.IsZero() {
		cat = 0
	}
	return at > cat || (at == cat && l.ID > c.LaneID)
}

// reconcileBatch runs one reconcile step for each lane of a batch: one
// statement takes the leases of every lane nobody else holds, one query
// reads them again under their leases, and one transaction records what
// changed; only remote actions go one lane at a time. A lane that someone
// else is acting on, or that moved meanwhile, is left for the next pass.
func (r *Rollouts) reconcileBatch(ctx context.Context, lanes []release.Lane) []error {
	if len(lanes) == 0 {
		return nil
	}
	ids := make([]string, len(lanes))
	for i, l := range lanes {
		ids[i] = l.ID
	}
	token := randomToken()
	taken := time.Now()
	got, err := r.Store.AcquireLaneLeases(ctx, ids, r.nodeName(), token, taken.Add(r.actionTimeout()+leaseMargin), taken, taken.Add(-r.deadAfter()))
	if err != nil {
		return []error{err}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.Store.ReleaseLeases(rctx, token); err != nil {
			r.log().Warn("could not give the lane leases back; they expire on their own", "lanes", len(got), "err", err)
		}
	}()
	fresh, err := r.Store.LanesByID(ctx, got)
	if err != nil {
		return []error{err}
	}
	var errs []error
	var writes []laneWrite
	for _, l := range lanes {
		cur, ok := fresh[l.ID]
		if !ok {
			continue // someone else holds it
		}
		if cur.Status.Version != l.Status.Version && cur.Status.NextEligibleAt.After(r.now()) {
			continue // another pass moved it already
		}
		ls := &lease{r: r, laneID: l.ID, token: token}
		if time.Since(taken) > leaseMargin {
			// The batch's leases were taken a while ago: this lane's
			// lease must cover a whole action from now.
			if ok, err := ls.renew(ctx); err != nil || !ok {
				if err != nil {
					errs = append(errs, fmt.Errorf("lane %s: renew its lease: %w", l.ID, err))
				}
				continue
			}
		}
		w, err := r.reconcileLeased(ctx, cur)
		if err != nil {
			errs = append(errs, fmt.Errorf("lane %s: %w", l.ID, err))
		}
		if w != nil {
			writes = append(writes, *w)
		}
	}
	return append(errs, r.write(ctx, writes)...)
}

// ReconcileLane runs one reconcile step for a lane and records its outcome.
// It takes the lane's lease and reads the lane again under it; a lane that
// someone else is acting on, or that moved meanwhile, is left for the next
// pass.
func (r *Rollouts) ReconcileLane(ctx context.Context, l release.Lane) error {
	_, err := r.withLease(ctx, l.ID, false, func(ctx context.Context, _ *lease) error {
		cur, err := r.Store.GetLane(ctx, l.ID)
		if err != nil {
			return err
		}
		if cur.Status.Version != l.Status.Version && cur.Status.NextEligibleAt.After(r.now()) {
			return nil // another pass moved it already
		}
		w, err := r.reconcileLeased(ctx, cur)
		if w != nil {
			var werr error
			if ws := r.write(ctx, []laneWrite{*w}); len(ws) > 0 {
				werr = ws[0]
			}
			return errors.Join(err, werr)
		}
		return err
	})
	return err
}

// laneWrite is a reconcile step's outcome still to be recorded: the new
// status, and the event that says why (none when Kind is empty).
type laneWrite struct {
	lane release.Lane
	d    release.Decision
	kind string
}

// write records the outcomes of a batch in one transaction. A lane that
// moved since it was read (ErrConflict) is left out; when the transaction
// fails as a whole, each outcome is recorded on its own, so that one bad
// lane does not lose the others' records.
func (r *Rollouts) write(ctx context.Context, ws []laneWrite) []error {
	if len(ws) == 0 {
		return nil
	}
	var errs []error
	done := make([]bool, len(ws))
	err := r.Store.Tx(ctx, func(tx *store.Store) error {
		list := make([]store.LaneStatus, len(ws))
		for i, w := range ws {
			list[i] = store.LaneStatus{LaneID: w.lane.ID, Next: w.d.Status}
		}
		written, err := tx.UpdateStatuses(ctx, list)
		if err != nil {
			return err
		}
		var events []release.Event
		for i := range ws {
			st, ok := written[ws[i].lane.ID]
			if !ok {
				done[i] = false
				r.log().Info("the lane moved while it was reconciled; the next pass looks again", "lane", ws[i].lane.ID)
				continue
			}
			ws[i].d.Status = st
			if e, ok := r.stepEvent(ws[i]); ok {
				events = append(events, e)
			}
			done[i] = true
		}
		return tx.AppendEvents(ctx, events)
	})
	if err != nil && len(ws) > 1 {
		errs = errs[:0]
		for i := range ws {
			done[i] = false
			err := r.Store.Tx(ctx, func(tx *store.Store) error {
				ok, err := r.writeOne(ctx, tx, &ws[i])
				done[i] = ok
				return err
			})
			if err != nil {
				done[i] = false
				errs = append(errs, fmt.Errorf("lane %s: %w", ws[i].lane.ID, err))
			}
		}
	} else if err != nil {
		errs = append(errs, fmt.Errorf("lane %s: %w", ws[0].lane.ID, err))
	}
	for i, w := range ws {
		if done[i] && w.kind != "" && r.OnChange != nil {
			l := w.lane
			l.Status = w.d.Status
			r.OnChange(ctx, l, w.d)
		}
	}
	return errs
}

// writeOne records one outcome in tx; false when the lane moved meanwhile.
func (r *Rollouts) writeOne(ctx context.Context, tx *store.Store, w *laneWrite) (bool, error) {
	st, err := tx.UpdateStatus(ctx, w.lane.ID, w.d.Status)
	if errors.Is(err, store.ErrConflict) {
		r.log().Info("the lane moved while it was reconciled; the next pass looks again", "lane", w.lane.ID)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	w.d.Status = st
	if err := r.appendStepEvent(ctx, tx, *w); err != nil {
		return false, err
	}
	return true, nil
}

// appendStepEvent says in the audit log why a reconcile step changed the
// lane (nothing for a write without an event kind).
func (r *Rollouts) appendStepEvent(ctx context.Context, tx *store.Store, w laneWrite) error {
	e, ok := r.stepEvent(w)
	if !ok {
		return nil
	}
	_, err := tx.AppendEvent(ctx, e)
	return err
}

// stepEvent is the audit event of a reconcile step's write, if it has one.
func (r *Rollouts) stepEvent(w laneWrite) (release.Event, bool) {
	if w.kind == "" {
		return release.Event{}, false
	}
	l, d := w.lane, w.d
	details := map[string]any{"action": string(d.Action), "percent": d.Percent, "state": string(d.Status.State), "reason": d.Reason, "platform": string(l.Platform)}
	if len(d.Measurements) > 0 {
		details["measurements"] = measurementDetails(d.Measurements)
	}
	return release.Event{At: r.now(), Actor: "system", ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: w.kind, Details: details}, true
}

// reconcileLeased decides a lane's step and takes its remote action; the
// outcome to record is returned, nil when nothing changed.
func (r *Rollouts) reconcileLeased(ctx context.Context, l release.Lane) (*laneWrite, error) {
	ex, err := r.Executors.For(l)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, r.actionTimeout())
	defer cancel()
	obs, err := ex.Observe(actx, l)
	if err != nil {
		// No data is not bad data: gates hold on it.
		r.log().Warn("observe failed; gates will hold", "lane", l.ID, "err", err)
		obs = release.Observations{}
	}
	if r.Gates != nil {
		if obs.Gates, err = r.Gates.Observe(actx, l); err != nil {
			r.log().Warn("gate readings unavailable; gates will hold", "lane", l.ID, "err", err)
			obs.Gates = unread(l.Plan)
		}
	}
	if len(r.Freezes) > 0 {
		rel, err := r.Store.GetRelease(ctx, l.ReleaseID)
		if err != nil {
			return nil, err
		}
		obs.Freezes = release.FreezesFor(r.Freezes, rel.App, l)
	}
	now := r.now()
	d, err := release.Reconcile(l.Plan, l.Status, obs, now)
	if err != nil {
		return nil, err
	}
	switch d.Action {
	case release.ActionNone, release.ActionHold:
		if sameSchedule(l.Status, d.Status) {
			return nil, nil
		}
		return &laneWrite{lane: l, d: d, kind: "rollout." + string(d.Action)}, nil
	}
	err = ex.Execute(actx, l, d)
	var stopped *lane.RemoteStoppedError
	switch {
	case err == nil:
		return &laneWrite{lane: l, d: d, kind: "rollout." + string(d.Action)}, nil
	case errors.As(err, &stopped) && d.Action != release.ActionHalt && d.Action != release.ActionRollback:
		// The store shows the rollout stopped (a halt that was never
		// recorded, or a person in the store's console): the lane follows
		// the store instead of failing the same step every pass. Only a
		// person's resume starts it again.
		next, terr := l.Status.Transition(stopped.State(), stopped.Reason, now)
		if terr != nil {
			return nil, errors.Join(err, terr)
		}
		next.NextEligibleAt = time.Time{}
		if stopped.Percent > 0 {
			next.Percent = stopped.Percent
		}
		r.log().Warn("the store shows the rollout stopped; the lane follows it", "lane", l.ID, "state", string(next.State), "reason", stopped.Reason)
		return &laneWrite{lane: l, d: release.Decision{Action: release.ActionHalt, Percent: next.Percent, Reason: stopped.Reason, Status: next}, kind: "rollout.stopped_remotely"}, nil
	}
	// Look again in a minute; the reason says what failed. The same
	// failure again is not news: the status moves on without an event.
	retry := l.Status
	retry.Reason = fmt.Sprintf("%s to %d%% failed: %v", d.Action, d.Percent, err)
	retry.NextEligibleAt = now.Add(time.Minute)
	retry.UpdatedAt = now
	hold := release.Decision{Action: release.ActionHold, Reason: retry.Reason, Status: retry}
	if retry.Reason == l.Status.Reason {
		return &laneWrite{lane: l, d: hold}, err
	}
	return &laneWrite{lane: l, d: hold, kind: "rollout.action_failed"}, err
}

func sameSchedule(a, b release.Status) bool {
	return a.State == b.State && a.StepIndex == b.StepIndex && a.Reason == b.Reason && a.NextEligibleAt.Equal(b.NextEligibleAt)
}

// Command applies a person's command to a lane now: it is recorded as
// pending, then applied with every command before it, under the lane's
// lease. An illegal command is returned as *CommandError (and recorded as
// rejected); a failed remote action is returned as is, and the command
// stays pending for the next try (see MaxCommandTries).
func (r *Rollouts) Command(ctx context.Context, laneID string, cmd release.Command, actor, reason string) (release.Decision, error) {
	l, err := r.Store.GetLane(ctx, laneID)
	if err != nil {
		return release.Decision{}, err
	}
	id, err := r.Store.CreateCommand(ctx, store.LaneCommand{LaneID: l.ID, Command: cmd, Actor: actor, Reason: reason, RequestedAt: r.now()})
	if err != nil {
		return release.Decision{}, err
	}
	res, err := r.ApplyCommands(ctx, laneID, true)
	for _, c := range res {
		if c.ID == id {
			if c.Rejected != nil {
				return c.Decision, &CommandError{Err: c.Rejected}
			}
			return c.Decision, nil
		}
	}
	if err == nil {
		err = fmt.Errorf("command %d on lane %s is still pending", id, laneID)
	}
	return release.Decision{}, err
}

// CommandResult is what became of one command in ApplyCommands.
type CommandResult struct {
	ID       int64
	Decision release.Decision
	// Rejected is why the command was refused; nil when it was applied.
	Rejected error
}

// ApplyCommands applies the lane's pending commands in the order they were
// accepted, under the lane's lease (waiting for it when wait is set). Each
// one ends applied — the store moved, then the lane's status, a
// command.<name> and a command.applied event in one transaction — or
// rejected with a command.rejected event saying why. A remote failure
// stops the walk (later commands must not overtake) and is returned; the
// command stays pending. Applying is idempotent: executors read the store
// first, so a command whose process died after the store moved finishes
// without moving it twice.
func (r *Rollouts) ApplyCommands(ctx context.Context, laneID string, wait bool) ([]CommandResult, error) {
	var out []CommandResult
	_, err := r.withLease(ctx, laneID, wait, func(ctx context.Context, ls *lease) error {
		cmds, err := r.Store.PendingCommands(ctx, laneID)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if ok, err := ls.renew(ctx); err != nil || !ok {
				return errors.Join(fmt.Errorf("lane %s: lost its lease", laneID), err)
			}
			res, err := r.applyCommand(ctx, c)
			if err != nil {
				return err
			}
			out = append(out, res)
		}
		return nil
	})
	return out, err
}

// stopping reports whether cmd stops a rollout: such a command is never
// given up.
func stopping(cmd release.Command) bool {
	switch cmd {
	case release.CmdHalt, release.CmdPause, release.CmdCancel, release.CmdRollback:
		return true
	}
	return false
}

func (r *Rollouts) applyCommand(ctx context.Context, c store.LaneCommand) (CommandResult, error) {
	res := CommandResult{ID: c.ID}
	l, err := r.Store.GetLane(ctx, c.LaneID)
	if err != nil {
		return res, err
	}
	now := r.now()
	d, err := release.ApplyCommand(l.Plan, l.Status, c.Command, c.Reason, now)
	if err != nil {
		res.Rejected = err
		return res, r.reject(ctx, l, c, err.Error())
	}
	if (c.Command == release.CmdHalt || c.Command == release.CmdCancel) && r.CancelJobs != nil {
		if err := r.CancelJobs(ctx, l.ID); err != nil {
			return res, err
		}
	}
	if d.Action != release.ActionNone {
		ex, err := r.Executors.For(l)
		if err != nil {
			res.Rejected = err
			return res, r.reject(ctx, l, c, err.Error())
		}
		actx, cancel := context.WithTimeout(ctx, r.actionTimeout())
		err = ex.Execute(actx, l, d)
		cancel()
		var stopped *lane.RemoteStoppedError
		var refused *lane.Refusal
		if errors.As(err, &stopped) || errors.As(err, &refused) {
			// The store shows the rollout stopped by someone else, or
			// refuses the action for good: trying again cannot help.
			res.Rejected = err
			return res, r.reject(ctx, l, c, err.Error())
		}
		if err != nil {
			n, nerr := r.Store.NoteCommandFailure(ctx, c.ID, err.Error())
			if nerr != nil {
				return res, errors.Join(err, nerr)
			}
			if !stopping(c.Command) && n >= MaxCommandTries && ctx.Err() == nil {
				res.Rejected = fmt.Errorf("gave up after %d tries: %w", n, err)
				return res, r.reject(ctx, l, c, res.Rejected.Error())
			}
			r.log().Warn("command failed; it stays pending and is tried again", "lane", l.ID, "command", string(c.Command), "tries", n, "err", err)
			return res, err
		}
	}
	if d.Reason == "" {
		d.Reason = c.Reason
	}
	err = r.Store.Tx(ctx, func(tx *store.Store) error {
		st, err := tx.UpdateStatus(ctx, l.ID, d.Status)
		if err != nil {
			return err
		}
		d.Status = st
		details := map[string]any{"action": string(d.Action), "percent": d.Percent, "state": string(st.State), "reason": d.Reason,
			"platform": string(l.Platform), "command_id": c.ID}
		if _, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: c.Actor, ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: "command." + string(c.Command), Details: details}); err != nil {
			return err
		}
		outcome := fmt.Sprintf("%s at %d%%", st.State, st.Percent)
		if err := tx.FinishCommand(ctx, c.ID, store.CommandApplied, outcome, now); err != nil {
			return err
		}
		_, err = tx.AppendEvent(ctx, release.Event{At: now, Actor: c.Actor, ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: "command.applied",
			Details: map[string]any{"command": string(c.Command), "command_id": c.ID, "state": string(st.State), "percent": st.Percent, "platform": string(l.Platform)}})
		return err
	})
	if err != nil {
		return res, err
	}
	res.Decision = d
	r.log().Info("command applied", "lane", l.ID, "command", string(c.Command), "command_id", c.ID, "actor", c.Actor, "state", string(d.Status.State), "percent", d.Status.Percent)
	if r.OnChange != nil {
		l.Status = d.Status
		r.OnChange(ctx, l, d)
	}
	return res, nil
}

// reject ends a command as rejected with the reason, and says so in the
// audit log.
func (r *Rollouts) reject(ctx context.Context, l release.Lane, c store.LaneCommand, reason string) error {
	now := r.now()
	r.log().Info("command rejected", "lane", l.ID, "command", string(c.Command), "command_id", c.ID, "reason", reason)
	return r.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.FinishCommand(ctx, c.ID, store.CommandRejected, reason, now); err != nil {
			return err
		}
		_, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: c.Actor, ReleaseID: l.ReleaseID, LaneID: l.ID, Kind: "command.rejected",
			Details: map[string]any{"command": string(c.Command), "command_id": c.ID, "error": reason, "platform": string(l.Platform)}})
		return err
	})
}

// CommandError is a command the lane's state does not allow.
type CommandError struct{ Err error }

func (e *CommandError) Error() string { return e.Err.Error() }
func (e *CommandError) Unwrap() error { return e.Err }

// LaneCommandArgs carries a person's command to the worker that executes
// it. CommandID names the durable command (store.LaneCommand); jobs queued
// before commands were durable carry only the rest.
type LaneCommandArgs struct {
	LaneID    string `json:"lane_id"`
	Command   string `json:"command"`
	Actor     string `json:"actor"`
	Reason    string `json:"reason"`
	CommandID int64  `json:"command_id,omitempty"`
}

// Kind implements river.JobArgs.
func (LaneCommandArgs) Kind() string { return "lane_command" }

// LaneCommandWorker executes queued commands.
type LaneCommandWorker struct {
	river.WorkerDefaults[LaneCommandArgs]
	Rollouts *Rollouts
}

// Timeout covers waiting for the lane's lease and the action itself.
func (w *LaneCommandWorker) Timeout(*river.Job[LaneCommandArgs]) time.Duration {
	return 2*w.Rollouts.actionTimeout() + 4*leaseMargin
}

// NextRetry tries again within seconds: 1, 2, 4 … up to 30 s.
func (w *LaneCommandWorker) NextRetry(job *river.Job[LaneCommandArgs]) time.Time {
	return time.Now().Add(min(time.Second<<min(job.Attempt, 6), 30*time.Second))
}

func (w *LaneCommandWorker) Work(ctx context.Context, job *river.Job[LaneCommandArgs]) error {
	a := job.Args
	ro := w.Rollouts
	id := a.CommandID
	if id == 0 {
		cmd, err := release.ParseCommand(a.Command)
		if err != nil {
			return river.JobCancel(err)
		}
		if id, err = ro.Store.CreateCommand(ctx, store.LaneCommand{LaneID: a.LaneID, Command: cmd, Actor: a.Actor, Reason: a.Reason, RequestedAt: ro.now()}); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return river.JobCancel(err)
			}
			return err
		}
	}
	c, err := ro.Store.GetCommand(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if c.State != store.CommandPending {
		return nil // finished by someone else (the reconciler, or an earlier try)
	}
	if _, err := ro.ApplyCommands(ctx, c.LaneID, true); err != nil {
		return err
	}
	if c, err = ro.Store.GetCommand(ctx, id); err != nil {
		return err
	}
	if c.State == store.CommandPending {
		return fmt.Errorf("command %d on lane %s is still pending: %s", id, c.LaneID, c.LastError)
	}
	return nil
}
