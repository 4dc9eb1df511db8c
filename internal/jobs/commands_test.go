package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// gated is a remote whose next action of a kind stops in the middle (the
// store call is in flight) until the test lets it go.
type gated struct {
	*remote
	mu      sync.Mutex
	holds   map[release.Action]chan struct{}
	entered chan release.Action
	stopped *lane.RemoteStoppedError
	order   []string
}

func newGated(r *remote) *gated {
	return &gated{remote: r, holds: map[release.Action]chan struct{}{}, entered: make(chan release.Action, 10)}
}

// hold makes the next Execute of action block until the returned func runs.
func (g *gated) hold(a release.Action) func() {
	ch := make(chan struct{})
	g.mu.Lock()
	g.holds[a] = ch
	g.mu.Unlock()
	return func() { close(ch) }
}

func (g *gated) Execute(ctx context.Context, l release.Lane, d release.Decision) error {
	g.mu.Lock()
	ch := g.holds[d.Action]
	delete(g.holds, d.Action)
	stopped := g.stopped
	g.mu.Unlock()
	if ch != nil {
		g.entered <- d.Action
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if stopped != nil && d.Action == release.ActionAdvance && !lane.Resuming(l) {
		return stopped
	}
	g.mu.Lock()
	g.order = append(g.order, string(d.Action))
	g.mu.Unlock()
	return g.remote.Execute(ctx, l, d)
}

func events(t *testing.T, st *store.Store, releaseID string, skip ...string) []string {
	t.Helper()
	evs, err := st.Events(context.Background(), releaseID, 0, 500)
	require.NoError(t, err)
	var out []string
outer:
	for _, e := range evs {
		for _, s := range skip {
			if e.Kind == s {
				continue outer
			}
		}
		out = append(out, e.Kind)
	}
	return out
}

func withGate(t *testing.T, b *rolloutBundle) *gated {
	g := newGated(b.remote)
	b.ro.Executors[jobs.ExecutorKey{Kind: release.KindStore, Platform: release.Android}] = g
	return g
}

// TestHaltWinsOverARacingAdvance: a scheduled advance is in flight at the
// store when a person's halt is accepted. The halt waits for the lane's
// lease, so it runs after the advance and halts the new percentage: the
// store ends halted, the lane says so, and nothing moves afterwards.
func TestHaltWinsOverARacingAdvance(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
	g := withGate(t, b)
	ctx := context.Background()
	require.NoError(t, b.ro.Pass(ctx)) // 10 %
	b.now = b.now.Add(time.Minute)

	release25 := g.hold(release.ActionAdvance)
	passDone := make(chan error, 1)
	go func() { passDone <- b.ro.Pass(ctx) }()
	require.Equal(t, release.ActionAdvance, <-g.entered, "the 25% advance is at the store")

	haltDone := make(chan error, 1)
	go func() {
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "token:alice", "crash spike")
		haltDone <- err
	}()
	require.Eventually(t, func() bool { return b.status(t).PendingCommand == release.CmdHalt }, 5*time.Second, 10*time.Millisecond,
		"the lane shows the halt pending at once")
	select {
	case err := <-haltDone:
		t.Fatalf("the halt ran beside the advance: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	release25()
	require.NoError(t, <-passDone)
	require.NoError(t, <-haltDone)

	st := b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, 25, st.Percent, "the halt stopped the percentage the advance reached")
	require.Empty(t, st.PendingCommand)
	require.True(t, b.remote.halted)
	require.Equal(t, 25, b.remote.percent)
	require.Equal(t, []string{"advance", "advance", "halt"}, g.order)

	// Nothing scheduled moves a halted lane.
	b.now = b.now.Add(time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	require.True(t, b.remote.halted)
	require.Equal(t, []string{"rollout.advance", "rollout.advance", "command.halt", "command.applied"}, events(t, b.st, b.lane.ReleaseID))
}

// TestPendingHaltStopsTheSchedule: a halt was accepted, and its job has not
// run (it died with its replica). A pass with the next percentage due
// applies the halt first and advances nothing.
func TestPendingHaltStopsTheSchedule(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
	g := withGate(t, b)
	ctx := context.Background()
	require.NoError(t, b.ro.Pass(ctx)) // 10 %
	_, err := b.st.CreateCommand(ctx, store.LaneCommand{LaneID: b.lane.ID, Command: release.CmdHalt, Actor: "token:alice", Reason: "stop", RequestedAt: b.now})
	require.NoError(t, err)
	b.now = b.now.Add(time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, []string{"advance", "halt"}, g.order, "no 25% before the halt")
	require.True(t, b.remote.halted)
	require.Equal(t, 10, b.remote.percent)
	st := b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.Empty(t, st.PendingCommand)
}

// TestPendingHaltHeldByADeadReplica: the replica applying a halt died
// holding the lane's lease mid-action. While its lease stands, nothing
// moves the lane (the halt is pending); once the replica counts as dead,
// the next pass finishes the halt.
func TestPendingHaltHeldByADeadReplica(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
	g := withGate(t, b)
	ctx := context.Background()
	b.ro.DeadAfter = 3 * time.Second
	require.NoError(t, b.ro.Pass(ctx)) // 10 %
	_, err := b.st.CreateCommand(ctx, store.LaneCommand{LaneID: b.lane.ID, Command: release.CmdHalt, Actor: "token:alice", RequestedAt: b.now})
	require.NoError(t, err)
	// The dead replica: beat, took the lease for a minute, then died.
	now := time.Now()
	require.NoError(t, b.st.Heartbeat(ctx, "replica-dead", now))
	ok, err := b.st.AcquireLaneLease(ctx, b.lane.ID, "replica-dead", "tok", now.Add(time.Minute), now, now.Add(-time.Second))
	require.NoError(t, err)
	require.True(t, ok)

	b.now = b.now.Add(time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	if time.Since(now) < b.ro.DeadAfter {
		require.Equal(t, []string{"advance"}, g.order, "the lane is left alone while its lease stands")
		require.Equal(t, release.CmdHalt, b.status(t).PendingCommand)
	}

	time.Sleep(time.Until(now.Add(b.ro.DeadAfter + 100*time.Millisecond))) // the dead replica's heartbeat grows old (real time: leases are about processes)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, []string{"advance", "halt"}, g.order)
	require.Equal(t, release.StateHalted, b.status(t).State)
}

// TestStoreStoppedOutsideTheLane: the store shows the rollout halted (a halt
// whose record was lost, or a person in the console). The scheduled advance
// does not fail every minute: the lane follows the store, once, and a
// resume starts it again.
func TestStoreStoppedOutsideTheLane(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
	g := withGate(t, b)
	ctx := context.Background()
	require.NoError(t, b.ro.Pass(ctx)) // 10 %
	b.remote.halted = true
	g.stopped = &lane.RemoteStoppedError{Reason: "Play shows versionCode 42 halted", Percent: 10}
	for range 3 {
		b.now = b.now.Add(time.Hour)
		require.NoError(t, b.ro.Pass(ctx))
	}
	st := b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, 10, st.Percent)
	require.Equal(t, "Play shows versionCode 42 halted", st.Reason)
	require.Equal(t, []string{"rollout.advance", "rollout.stopped_remotely"}, events(t, b.st, b.lane.ReleaseID))

	g.stopped = nil
	_, err := b.ro.Command(ctx, b.lane.ID, release.CmdResume, "token:alice", "checked")
	require.NoError(t, err, "the lane is halted, so resume is allowed")
	require.False(t, b.remote.halted)
	require.Equal(t, release.StateRolling, b.status(t).State)
}

// TestRepeatedFailureIsRecordedOnce: the same store failure pass after pass
// is one rollout.action_failed event; the lane is looked at every minute.
func TestRepeatedFailureIsRecordedOnce(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
	ctx := context.Background()
	b.remote.fail = errors.New("play: 409 conflict: another release is in the way")
	var waits []time.Duration
	for range 4 {
		require.Error(t, b.ro.Pass(ctx))
		st := b.status(t)
		waits = append(waits, st.NextEligibleAt.Sub(b.now))
		b.now = st.NextEligibleAt
	}
	require.Equal(t, []time.Duration{time.Minute, time.Minute, time.Minute, time.Minute}, waits)
	require.Equal(t, []string{"rollout.action_failed"}, events(t, b.st, b.lane.ReleaseID))
	b.remote.fail = nil
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 10, b.remote.percent)
}

// TestCommandRetries: a failed command stays pending and is tried again by
// the next pass; a move that exposes more users is rejected after
// MaxCommandTries, a halt never is.
func TestCommandRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("advance gives up", func(t *testing.T) {
		t.Parallel()
		b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil))
		require.NoError(t, b.ro.Pass(ctx))
		b.remote.fail = errors.New("play: 500")
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdAdvance, "token:alice", "")
		require.ErrorContains(t, err, "play: 500")
		require.Equal(t, release.CmdAdvance, b.status(t).PendingCommand)
		for i := 2; i < jobs.MaxCommandTries; i++ {
			require.Error(t, b.ro.Pass(ctx))
			require.Equal(t, release.CmdAdvance, b.status(t).PendingCommand)
		}
		require.NoError(t, b.ro.Pass(ctx), "the last try rejects it")
		st := b.status(t)
		require.Empty(t, st.PendingCommand)
		require.Equal(t, 10, st.Percent)
		evs, err := b.st.Events(ctx, b.lane.ReleaseID, 0, 100)
		require.NoError(t, err)
		var rejected []release.Event
		for _, e := range evs {
			if e.Kind == "command.rejected" {
				rejected = append(rejected, e)
			}
		}
		require.Len(t, rejected, 1)
		require.Equal(t, "gave up after 5 tries: play: 500", rejected[0].Details["error"])
		require.Equal(t, "advance", rejected[0].Details["command"])
	})
	t.Run("halt never gives up", func(t *testing.T) {
		t.Parallel()
		b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
		require.NoError(t, b.ro.Pass(ctx))
		b.remote.fail = errors.New("play: 503")
		_, err := b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "token:alice", "")
		require.Error(t, err)
		for range 2 * jobs.MaxCommandTries {
			b.now = b.now.Add(time.Hour)
			require.Error(t, b.ro.Pass(ctx))
		}
		st := b.status(t)
		require.Equal(t, release.CmdHalt, st.PendingCommand, "still pending")
		require.Equal(t, 10, b.remote.percent, "and nothing advanced meanwhile")
		b.remote.fail = nil
		require.NoError(t, b.ro.Pass(ctx))
		require.True(t, b.remote.halted)
		require.Equal(t, release.StateHalted, b.status(t).State)
	})
	t.Run("commands apply in the order they were accepted", func(t *testing.T) {
		t.Parallel()
		b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil))
		g := withGate(t, b)
		require.NoError(t, b.ro.Pass(ctx))
		for _, c := range []release.Command{release.CmdHalt, release.CmdResume, release.CmdAdvance} {
			_, err := b.st.CreateCommand(ctx, store.LaneCommand{LaneID: b.lane.ID, Command: c, Actor: "token:alice", RequestedAt: b.now})
			require.NoError(t, err)
		}
		res, err := b.ro.ApplyCommands(ctx, b.lane.ID, true)
		require.NoError(t, err)
		require.Len(t, res, 3)
		for _, r := range res {
			require.NoError(t, r.Rejected)
		}
		require.Equal(t, []string{"advance", "halt", "advance", "advance"}, g.order)
		require.Equal(t, 25, b.remote.percent)
		require.False(t, b.remote.halted)
	})
}
