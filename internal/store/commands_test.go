package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

func seedWaitingLane(t *testing.T, s *store.Store) release.Lane {
	t.Helper()
	r := seed(t, s)
	l, err := s.CreateLane(context.Background(), release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore,
		Plan:   release.StagedPlan(release.DefaultStages, release.Wait{}, nil),
		Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 10}}, now)
	require.NoError(t, err)
	return l
}

func init() {
	conformance["commands: pending shows on the lane until finished, oldest first"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := seedWaitingLane(t, s)
		halt, err := s.CreateCommand(ctx, store.LaneCommand{LaneID: l.ID, Command: release.CmdHalt, Actor: "token:alice", Reason: "crash spike", RequestedAt: now})
		require.NoError(t, err)
		resume, err := s.CreateCommand(ctx, store.LaneCommand{LaneID: l.ID, Command: release.CmdResume, Actor: "token:bob", RequestedAt: now.Add(time.Second)})
		require.NoError(t, err)
		require.Greater(t, resume, halt)

		got, err := s.GetLane(ctx, l.ID)
		require.NoError(t, err)
		require.Equal(t, release.CmdHalt, got.Status.PendingCommand, "the lane says halt pending at once")
		require.Equal(t, l.Status.Version, got.Status.Version, "a pending command does not move the lane")

		pending, err := s.PendingCommands(ctx, l.ID)
		require.NoError(t, err)
		require.Len(t, pending, 2)
		require.Equal(t, release.CmdHalt, pending[0].Command)
		require.Equal(t, "token:alice", pending[0].Actor)
		require.Equal(t, "crash spike", pending[0].Reason)
		require.Equal(t, store.CommandPending, pending[0].State)
		require.True(t, pending[0].RequestedAt.Equal(now))

		lanes, err := s.LanesWithPendingCommands(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []string{l.ID}, lanes)

		n, err := s.NoteCommandFailure(ctx, halt, "play: 503")
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = s.NoteCommandFailure(ctx, halt, "play: 500")
		require.NoError(t, err)
		require.Equal(t, 2, n)

		require.NoError(t, s.FinishCommand(ctx, halt, store.CommandApplied, "halted at 10%", now.Add(time.Minute)))
		err = s.FinishCommand(ctx, halt, store.CommandRejected, "again", now)
		require.ErrorIs(t, err, store.ErrConflict, "finished once only")
		c, err := s.GetCommand(ctx, halt)
		require.NoError(t, err)
		require.Equal(t, store.CommandApplied, c.State)
		require.Equal(t, "halted at 10%", c.Outcome)
		require.Equal(t, 2, c.Attempts)
		require.Equal(t, "play: 500", c.LastError)
		require.True(t, c.FinishedAt.Equal(now.Add(time.Minute)))

		got, err = s.GetLane(ctx, l.ID)
		require.NoError(t, err)
		require.Equal(t, release.CmdResume, got.Status.PendingCommand, "the next one is pending now")
		_, err = s.NoteCommandFailure(ctx, halt, "late")
		require.ErrorIs(t, err, store.ErrNotFound, "a finished command takes no failures")

		require.NoError(t, s.FinishCommand(ctx, resume, store.CommandRejected, "resume: lane is waiting", now))
		got, err = s.GetLane(ctx, l.ID)
		require.NoError(t, err)
		require.Empty(t, got.Status.PendingCommand)
		all, err := s.LaneCommands(ctx, l.ID, 10)
		require.NoError(t, err)
		require.Len(t, all, 2)
		require.Equal(t, resume, all[0].ID, "newest first")

		// UpdateStatus leaves the pending command alone.
		_, err = s.CreateCommand(ctx, store.LaneCommand{LaneID: l.ID, Command: release.CmdPause, Actor: "x", RequestedAt: now})
		require.NoError(t, err)
		st := got.Status
		st.Reason = "soaking"
		_, err = s.UpdateStatus(ctx, l.ID, st)
		require.NoError(t, err)
		got, err = s.GetLane(ctx, l.ID)
		require.NoError(t, err)
		require.Equal(t, release.CmdPause, got.Status.PendingCommand)

		_, err = s.CreateCommand(ctx, store.LaneCommand{LaneID: "lane_missing", Command: release.CmdHalt, Actor: "x", RequestedAt: now})
		require.Error(t, err)
		require.Error(t, s.FinishCommand(ctx, 999999, store.CommandApplied, "", now))
	}

	conformance["commands: a failed transaction leaves no command and no pending mark"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := seedWaitingLane(t, s)
		boom := errors.New("the job insert failed")
		err := s.Tx(ctx, func(tx *store.Store) error {
			if _, err := tx.CreateCommand(ctx, store.LaneCommand{LaneID: l.ID, Command: release.CmdHalt, Actor: "a", RequestedAt: now}); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		got, err := s.GetLane(ctx, l.ID)
		require.NoError(t, err)
		require.Empty(t, got.Status.PendingCommand)
		pending, err := s.PendingCommands(ctx, l.ID)
		require.NoError(t, err)
		require.Empty(t, pending)
	}

	conformance["replicas: heartbeats, the dead and forgetting them"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		require.NoError(t, s.Heartbeat(ctx, "a", now))
		require.NoError(t, s.Heartbeat(ctx, "b", now))
		require.NoError(t, s.Heartbeat(ctx, "a", now.Add(10*time.Second)))
		dead, err := s.DeadReplicas(ctx, now.Add(5*time.Second))
		require.NoError(t, err)
		require.Equal(t, []string{"b"}, dead)
		require.NoError(t, s.StopHeartbeat(ctx, "a"))
		dead, err = s.DeadReplicas(ctx, now)
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, dead, "a stopped replica is dead at once")
		require.NoError(t, s.ForgetReplicas(ctx, now.Add(time.Second)))
		dead, err = s.DeadReplicas(ctx, now.Add(time.Hour))
		require.NoError(t, err)
		require.Empty(t, dead)
	}

	conformance["lane leases: one holder; free when expired or its replica is dead"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := seedWaitingLane(t, s)
		require.NoError(t, s.Heartbeat(ctx, "a", now))
		require.NoError(t, s.Heartbeat(ctx, "b", now))
		until := now.Add(30 * time.Second)
		deadBefore := now.Add(-15 * time.Second)
		ok, err := s.AcquireLaneLease(ctx, l.ID, "a", "t1", until, now, deadBefore)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.AcquireLaneLease(ctx, l.ID, "b", "t2", until, now, deadBefore)
		require.NoError(t, err)
		require.False(t, ok, "held by a")
		ok, err = s.AcquireLaneLease(ctx, l.ID, "a", "t1", until.Add(time.Second), now, deadBefore)
		require.NoError(t, err)
		require.True(t, ok, "the holder renews")
		ok, err = s.AcquireLaneLease(ctx, l.ID, "b", "t2", until, now.Add(10*time.Second), now)
		require.NoError(t, err)
		require.False(t, ok, "a still beats")
		// a stops beating: its lease is free long before it expires.
		ok, err = s.AcquireLaneLease(ctx, l.ID, "b", "t2", until, now.Add(20*time.Second), now.Add(5*time.Second))
		require.NoError(t, err)
		require.True(t, ok, "a is dead")
		require.NoError(t, s.ReleaseLaneLease(ctx, l.ID, "t1"), "a stale token releases nothing")
		ok, err = s.AcquireLaneLease(ctx, l.ID, "a", "t3", until, now.Add(20*time.Second), deadBefore)
		require.NoError(t, err)
		require.False(t, ok, "b holds it")
		ok, err = s.AcquireLaneLease(ctx, l.ID, "a", "t3", until, until.Add(time.Second), deadBefore)
		require.NoError(t, err)
		require.True(t, ok, "expired")
		require.NoError(t, s.ReleaseLaneLease(ctx, l.ID, "t3"))
		ok, err = s.AcquireLaneLease(ctx, l.ID, "b", "t4", until, now, deadBefore)
		require.NoError(t, err)
		require.True(t, ok, "released")
	}

	conformance["lane leases: racing acquirers, one winner"] = func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := seedWaitingLane(t, s)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := string(rune('a' + i))
				ok, err := s.AcquireLaneLease(ctx, l.ID, "n"+tok, tok, now.Add(time.Minute), now, now.Add(-time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		require.Equal(t, 1, wins)
	}
}
