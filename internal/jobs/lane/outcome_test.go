package lane_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func pendingLane(t *testing.T) (*store.Store, release.Lane) {
	t.Helper()
	st := store.New(storetest.Open(t, store.SQLite))
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	r, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc", CreatedAt: t0})
	require.NoError(t, err)
	l, err := st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore,
		Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil)}, t0)
	require.NoError(t, err)
	return st, l
}

// TestAttemptCutShort: a run whose context ended (shutdown drain, timeout,
// a halt cancelling lane jobs) returns its error untouched, so River puts
// the job back (on shutdown, without counting the attempt), and the lane is
// not failed even on the last attempt.
func TestAttemptCutShort(t *testing.T) {
	t.Parallel()
	st, l := pendingLane(t)
	log := slog.New(slog.DiscardHandler)
	last := &rivertype.JobRow{Attempt: 5, MaxAttempts: 5}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runErr := fmt.Errorf("upload app.aab: %w", context.Canceled)
	err := lane.Attempt(ctx, st, log, "android", l.ID, last, t0, runErr)
	require.ErrorIs(t, err, context.Canceled)
	got, err := st.GetLane(context.Background(), l.ID)
	require.NoError(t, err)
	require.Equal(t, release.StatePending, got.Status.State, "not failed")

	// The same error on a live context, last attempt: the lane fails.
	err = lane.Attempt(context.Background(), st, log, "android", l.ID, last, t0, errors.New("play: 500"))
	require.Error(t, err)
	got, err = st.GetLane(context.Background(), l.ID)
	require.NoError(t, err)
	require.Equal(t, release.StateFailed, got.Status.State)
	require.Equal(t, "gave up after 5 attempts: play: 500", got.Status.Reason)

	var snooze *river.JobSnoozeError
	require.ErrorAs(t, lane.Attempt(context.Background(), st, log, "android", l.ID, nil, t0, &lane.Wait{After: time.Minute, Reason: "x"}), &snooze)
}
