package store_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

func init() {
	conformance["gate measurements"] = testGateMeasurements
	conformance["stage start and moving lanes"] = testStageStart
}

func testGateMeasurements(t *testing.T, s *store.Store) {
	ctx := context.Background()
	r := seed(t, s)
	l, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindStore, Plan: release.StagedPlan(release.ApplePhasedStages, release.Wait{}, nil)}, now)
	require.NoError(t, err)

	gate := "sentry:crash_free_rate(session)"
	rec := func(min int, phase release.Phase, value float64) int64 {
		id, err := s.RecordMeasurement(ctx, release.Measurement{LaneID: l.ID, Gate: gate, At: now.Add(time.Duration(min) * time.Minute), Percent: 5,
			Phase: phase, Value: value, Samples: 5120, Reason: "0.962 is below min 0.99 over 5120 samples", Source: `release:"com.acme@1.4.0+42"`,
			Values: map[string]float64{"crash_free_rate(session)": value, "sum(session)": 5120, "bad": math.NaN()}})
		require.NoError(t, err)
		return id
	}
	rec(-10, release.PhaseFailed, 0.5) // before the stage
	rec(0, release.PhaseFailed, 0.5)   // as the stage began: the stage before
	rec(1, release.PhaseSuccessful, 0.995)
	rec(5, release.PhaseFailed, 0.962)
	last := rec(10, release.PhaseFailed, 0.961)
	_, err = s.RecordMeasurement(ctx, release.Measurement{LaneID: l.ID, Gate: "prometheus:up", At: now.Add(7 * time.Minute), Phase: release.PhaseInconclusive, Value: math.Inf(1), Reason: "no result"})
	require.NoError(t, err, "a value that is not a number is stored as 0")

	ms, err := s.Measurements(ctx, l.ID, now, 0)
	require.NoError(t, err)
	require.Len(t, ms, 4, "only the stage's measurements")
	require.Equal(t, now.Add(time.Minute), ms[0].At, "oldest first")
	require.Equal(t, "prometheus:up", ms[2].Gate)
	require.Equal(t, 0.0, ms[2].Value)
	require.Nil(t, ms[2].Values)
	got := ms[3]
	require.Equal(t, last, got.ID)
	require.Equal(t, release.Measurement{ID: last, LaneID: l.ID, Gate: gate, At: now.Add(10 * time.Minute), Percent: 5, Phase: release.PhaseFailed,
		Value: 0.961, Samples: 5120, Reason: "0.962 is below min 0.99 over 5120 samples", Source: `release:"com.acme@1.4.0+42"`,
		Values: map[string]float64{"crash_free_rate(session)": 0.961, "sum(session)": 5120}}, got)

	newest, err := s.Measurements(ctx, l.ID, time.Time{}, 2)
	require.NoError(t, err)
	require.Len(t, newest, 2, "limit keeps the newest")
	require.Equal(t, last, newest[1].ID)

	before, err := s.MeasuredBefore(ctx, l.ID, now)
	require.NoError(t, err)
	require.True(t, before, "measured at and before the stage began")
	before, err = s.MeasuredBefore(ctx, l.ID, now.Add(-11*time.Minute))
	require.NoError(t, err)
	require.False(t, before)

	rd, err := s.GateReadings(ctx, l.ID, now)
	require.NoError(t, err)
	require.Equal(t, 3, rd[gate].Measurements)
	require.Equal(t, 2, rd[gate].ConsecutiveFailures)
	require.Equal(t, last, rd[gate].Latest.ID)
	require.Equal(t, release.PhaseInconclusive, rd["prometheus:up"].Latest.Phase)

	_, err = s.RecordMeasurement(ctx, release.Measurement{LaneID: "lane_missing", Gate: gate, At: now, Phase: release.PhaseFailed})
	require.Error(t, err, "a measurement belongs to a lane")
	_, err = s.RecordMeasurement(ctx, release.Measurement{LaneID: l.ID, At: now, Phase: release.PhaseFailed})
	require.ErrorContains(t, err, "lane, gate, phase and time are required")
}

func testStageStart(t *testing.T, s *store.Store) {
	ctx := context.Background()
	r := seed(t, s)
	plan := release.StagedPlan(release.DefaultStages, release.Wait{}, nil)
	a, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore, Plan: plan}, now)
	require.NoError(t, err)
	b, err := s.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindStore, Plan: plan}, now)
	require.NoError(t, err)
	moving, err := s.MovingLanes(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, moving, "pending lanes do not move")

	next := a.Status
	next.State, next.Percent, next.StageStartedAt, next.NextEligibleAt = release.StateWaiting, 10, now.Add(time.Minute), now.Add(24*time.Hour)
	_, err = s.UpdateStatus(ctx, a.ID, next)
	require.NoError(t, err)
	got, err := s.GetLane(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Minute), got.Status.StageStartedAt)

	halted := b.Status
	halted.State = release.StateHalted
	_, err = s.UpdateStatus(ctx, b.ID, halted)
	require.NoError(t, err)
	moving, err = s.MovingLanes(ctx, 0)
	require.NoError(t, err)
	require.Len(t, moving, 1, "a waiting lane moves whenever it is due; a halted one does not")
	require.Equal(t, a.ID, moving[0].ID)
	due, err := s.DueLanes(ctx, now, 10)
	require.NoError(t, err)
	require.Empty(t, due, "not due until its soak ends")
}
