package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// remote is an in-memory rollout target that, like the real adapters, reads
// its state before changing it and counts real changes.
type remote struct {
	mu      sync.Mutex
	percent int
	halted  bool
	changes int
	fail    error
	metrics map[string]release.Observation
}

func (r *remote) Execute(_ context.Context, _ release.Lane, d release.Decision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	want, halt := d.Percent, false
	switch d.Action {
	case release.ActionHalt, release.ActionRollback:
		halt = true
		want = r.percent
	case release.ActionComplete:
		want = 100
	}
	if r.percent == want && r.halted == halt {
		return nil // already there: nothing to do
	}
	r.percent, r.halted = want, halt
	r.changes++
	return nil
}

func (r *remote) Observe(context.Context, release.Lane) (release.Observations, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return release.Observations{Metrics: r.metrics}, nil
}

type rolloutBundle struct {
	st     *store.Store
	remote *remote
	ro     *jobs.Rollouts
	now    time.Time
	lane   release.Lane
}

func setupRollout(t *testing.T, plan release.Plan) *rolloutBundle {
	t.Helper()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	ctx := context.Background()
	b := &rolloutBundle{st: st, remote: &remote{metrics: map[string]release.Observation{"crash_rate": {Value: 0.001, Samples: 1000, Fresh: true}}},
		now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	b.ro = &jobs.Rollouts{Store: st, Executors: jobs.Executors{{Kind: release.KindStore, Platform: release.Android}: b.remote}, Now: func() time.Time { return b.now }}
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, b.now))
	r, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc", CreatedAt: b.now})
	require.NoError(t, err)
	b.lane, err = st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore, Plan: plan,
		Status: release.Status{State: release.StateRolling}}, b.now)
	require.NoError(t, err)
	return b
}

func (b *rolloutBundle) status(t *testing.T) release.Status {
	l, err := b.st.GetLane(context.Background(), b.lane.ID)
	require.NoError(t, err)
	return l.Status
}

func TestRolloutsAdvanceOnScheduleWhileHealthy(t *testing.T) {
	t.Parallel()
	gates := []release.GateRule{{Metric: "crash_rate", Max: 0.01, MinSamples: 100}}
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, gates))
	ctx := context.Background()
	var seen []int
	for i := 0; i < 12; i++ {
		require.NoError(t, b.ro.Pass(ctx))
		if p := b.remote.percent; len(seen) == 0 || seen[len(seen)-1] != p {
			seen = append(seen, p)
		}
		b.now = b.now.Add(30 * time.Minute)
	}
	require.Equal(t, []int{10, 25, 50, 100}, seen)
	require.Equal(t, release.StateCompleted, b.status(t).State)
	require.Equal(t, 4, b.remote.changes)
	evs, err := b.st.Events(ctx, b.lane.ReleaseID, 0, 100)
	require.NoError(t, err)
	var kinds []string
	for _, e := range evs {
		if e.Kind != "rollout.hold" {
			kinds = append(kinds, e.Kind)
		}
	}
	require.Equal(t, []string{"rollout.advance", "rollout.advance", "rollout.advance", "rollout.complete"}, kinds)
}

// TestRolloutsHoldDuringAFreeze: a freeze for the app holds the schedule
// until it ends; one for another app does not.
func TestRolloutsHoldDuringAFreeze(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil))
	ctx := context.Background()
	end := b.now.Add(3 * time.Hour)
	b.ro.Freezes = []release.Freeze{
		{From: b.now.Add(30 * time.Minute), To: end, Reason: "launch event", Apps: []string{"acme"}},
		{From: b.now, To: b.now.Add(100 * time.Hour), Reason: "other app", Apps: []string{"other"}},
	}
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 10, b.remote.percent, "before the freeze the first stage goes out")
	b.now = b.now.Add(2 * time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 10, b.remote.percent, "soaked, but frozen")
	st := b.status(t)
	require.Equal(t, "frozen until "+end.Format(time.RFC3339)+": launch event", st.Reason)
	require.True(t, st.NextEligibleAt.Equal(end))
	b.now = end
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 25, b.remote.percent, "the freeze is over")
}

func TestRolloutsHaltOnBadHealthAndHoldOnNoData(t *testing.T) {
	t.Parallel()
	gates := []release.GateRule{{Metric: "crash_rate", Max: 0.01, MinSamples: 100}}
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, gates))
	ctx := context.Background()
	require.NoError(t, b.ro.Pass(ctx)) // 10 %
	b.remote.metrics = nil
	b.now = b.now.Add(time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	st := b.status(t)
	require.Equal(t, release.StateWaiting, st.State)
	require.Contains(t, st.Reason, "no fresh data")
	require.Equal(t, 10, b.remote.percent, "never advance on missing data")

	b.remote.metrics = map[string]release.Observation{"crash_rate": {Value: 0.04, Samples: 1000, Fresh: true}}
	b.now = b.now.Add(time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	st = b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.True(t, b.remote.halted)
	require.Contains(t, st.Reason, "gate crash_rate failed: 0.04 is above 0.01")

	// A halted lane is not due: further passes change nothing.
	changes := b.remote.changes
	b.now = b.now.Add(time.Hour)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, changes, b.remote.changes)
}

func TestRolloutCommands(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, nil))
	ctx := context.Background()
	require.NoError(t, b.ro.Pass(ctx)) // 10 %

	d, err := b.ro.Command(ctx, b.lane.ID, release.CmdAdvance, "token:alice", "looks good")
	require.NoError(t, err)
	require.Equal(t, 25, d.Percent)
	require.Equal(t, 25, b.remote.percent)

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdHalt, "token:alice", "crash spike in Sentry")
	require.NoError(t, err)
	require.True(t, b.remote.halted)
	require.Equal(t, 25, b.remote.percent, "halt keeps the fraction")

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdAdvance, "token:alice", "")
	var ce *jobs.CommandError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "resume it first")

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdResume, "token:bob", "fixed server-side")
	require.NoError(t, err)
	require.False(t, b.remote.halted)
	require.Equal(t, 25, b.remote.percent)

	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdComplete, "token:bob", "")
	require.NoError(t, err)
	require.Equal(t, 100, b.remote.percent)
	require.Equal(t, release.StateCompleted, b.status(t).State)

	evs, err := b.st.Events(ctx, b.lane.ReleaseID, 0, 100)
	require.NoError(t, err)
	moved, last := evs[len(evs)-2], evs[len(evs)-1]
	require.Equal(t, "command.complete", moved.Kind)
	require.Equal(t, "token:bob", moved.Actor)
	require.Equal(t, "command.applied", last.Kind, "every command ends in command.applied or command.rejected")
	require.Equal(t, "complete", last.Details["command"])
	var rejected []release.Event
	for _, e := range evs {
		if e.Kind == "command.rejected" {
			rejected = append(rejected, e)
		}
	}
	require.Len(t, rejected, 1)
	require.Equal(t, "advance", rejected[0].Details["command"])
	require.Contains(t, rejected[0].Details["error"], "resume it first")
}

func TestRolloutExecuteFailureHoldsAndRetries(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
	ctx := context.Background()
	b.remote.fail = errors.New("play: 503 backendError")
	require.Error(t, b.ro.Pass(ctx))
	st := b.status(t)
	require.Equal(t, release.StateRolling, st.State)
	require.Equal(t, 0, st.StepIndex, "nothing recorded as done")
	require.Contains(t, st.Reason, "advance to 10% failed: play: 503 backendError")
	require.Equal(t, b.now.Add(time.Minute), st.NextEligibleAt)

	b.remote.fail = nil
	b.now = b.now.Add(time.Minute)
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 10, b.remote.percent)
	require.Equal(t, 1, b.remote.changes)
}

func TestRolloutCrashAfterExecuteDoesNotRepeat(t *testing.T) {
	t.Parallel()
	b := setupRollout(t, release.StagedPlan(release.DefaultStages, release.Wait{}, nil))
	ctx := context.Background()
	lane, err := b.st.GetLane(ctx, b.lane.ID)
	require.NoError(t, err)
	d, err := release.Reconcile(lane.Plan, lane.Status, release.Observations{}, b.now)
	require.NoError(t, err)
	// The remote change happened, then the process died before recording it.
	require.NoError(t, b.remote.Execute(ctx, lane, d))
	require.NoError(t, b.ro.Pass(ctx))
	require.Equal(t, 1, b.remote.changes, "the retried step found the remote already at 10%")
	require.Equal(t, 10, b.status(t).Percent)
}
