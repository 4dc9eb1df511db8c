package gate_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
	"github.com/swapjoy/releasepilot/playstore/playstoretest/wirecheck"
)

const pkg = "com.acme.app"

func day(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }

type testBundle struct {
	fake  *playstoretest.Server
	gate  *gate.PlayVitals
	now   time.Time
	calls func() int
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	fake := playstoretest.New(day(20))
	srv := httptest.NewServer(wirecheck.Handler(t, fake))
	t.Cleanup(srv.Close)
	fake.AddApp(pkg)
	key, err := fake.ServiceAccountJSON(srv.URL, "rp@example.iam.gserviceaccount.com")
	require.NoError(t, err)
	c, err := playstore.New(context.Background(), playstore.Config{CredentialsJSON: key, Endpoint: srv.URL + "/", ReportingEndpoint: srv.URL + "/"})
	require.NoError(t, err)
	tb := &testBundle{fake: fake, now: day(20)}
	tb.gate = &gate.PlayVitals{Reader: c, Now: func() time.Time { return tb.now }}
	tb.calls = func() int {
		return fake.Calls(playstoretest.MethodCrashRateGet) + fake.Calls(playstoretest.MethodCrashRateQuery) +
			fake.Calls(playstoretest.MethodAnrRateGet) + fake.Calls(playstoretest.MethodAnrRateQuery)
	}
	return tb
}

func script(fake *playstoretest.Server, freshUntil time.Time, crash, anr float64) {
	fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, playstoretest.VitalsSeries{FreshUntil: freshUntil, Points: []playstoretest.VitalsPoint{
		{Day: day(16), VersionCode: 42, Rate: crash, DistinctUsers: 1000},
		{Day: day(17), VersionCode: 42, Rate: crash, DistinctUsers: 3000},
		{Day: day(17), VersionCode: 41, Rate: 0.9, DistinctUsers: 90000},
	}})
	fake.SetVitals(pkg, playstoretest.AnrRateMetricSet, playstoretest.VitalsSeries{FreshUntil: freshUntil, Points: []playstoretest.VitalsPoint{
		{Day: day(16), VersionCode: 42, Rate: anr, DistinctUsers: 1000},
		{Day: day(17), VersionCode: 42, Rate: anr, DistinctUsers: 3000},
	}})
}

func TestPlayVitalsObserve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	since := day(16).Add(18 * time.Hour) // 16 Nov, 10:00 in Los Angeles

	t.Run("fresh data after the stage began", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		script(tb.fake, day(18), 0.002, 0.001)
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, since)
		require.NoError(t, err)
		// 16 Nov is only partly this stage; 17 Nov (3000 users) is the one
		// whole day of it Play has processed.
		require.Equal(t, map[string]release.Observation{
			gate.CrashRate: {Value: 0.002, Samples: 3000, Fresh: true},
			gate.ANRRate:   {Value: 0.001, Samples: 3000, Fresh: true},
		}, roundValues(obs.Metrics))
	})

	t.Run("no data is not fresh", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, since)
		require.NoError(t, err)
		require.False(t, obs.Metrics[gate.CrashRate].Fresh)
		require.False(t, obs.Metrics[gate.ANRRate].Fresh)
		require.Zero(t, obs.Metrics[gate.CrashRate].Samples)
	})

	t.Run("data older than the stage is not fresh", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		script(tb.fake, day(18), 0.002, 0.001)
		// The stage began on 18 Nov in Los Angeles; Play has processed up to
		// the end of 17 Nov only.
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, day(18).Add(9*time.Hour))
		require.NoError(t, err)
		require.False(t, obs.Metrics[gate.CrashRate].Fresh)
		require.InDelta(t, 0.002, obs.Metrics[gate.CrashRate].Value, 1e-12, "the value is still reported")
	})

	t.Run("readings are reused for MaxAge", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		script(tb.fake, day(18), 0.002, 0.001)
		_, err := tb.gate.Observe(ctx, pkg, 42, since, since)
		require.NoError(t, err)
		require.Equal(t, 4, tb.calls())
		tb.now = tb.now.Add(gate.DefaultVitalsMaxAge - time.Second)
		_, err = tb.gate.Observe(ctx, pkg, 42, since, since)
		require.NoError(t, err)
		require.Equal(t, 4, tb.calls(), "cached")
		_, err = tb.gate.Observe(ctx, pkg, 43, since, since)
		require.NoError(t, err)
		require.Equal(t, 8, tb.calls(), "another versionCode is read")
		tb.now = tb.now.Add(time.Second)
		script(tb.fake, day(18), 0.05, 0.001)
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, since)
		require.NoError(t, err)
		require.Equal(t, 12, tb.calls(), "expired")
		require.InDelta(t, 0.05, obs.Metrics[gate.CrashRate].Value, 1e-12)
	})
}

// la is a wall-clock time in Los Angeles.
func la(d, hour int) time.Time {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 11, d, hour, 0, 0, 0, loc)
}

// A stage that began late in a Los Angeles day is not judged on that day,
// which was mostly the previous stage, nor on the days before it.
func TestPlayVitalsJudgeOnlyWholeDaysOfTheStage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	since := la(14, 10) // the rollout began on 14 Nov
	stage := la(16, 23) // the current stage began at 23:00 on 16 Nov
	series := func(fresh time.Time) playstoretest.VitalsSeries {
		return playstoretest.VitalsSeries{FreshUntil: fresh, Points: []playstoretest.VitalsPoint{
			{Day: day(14), VersionCode: 42, Rate: 0.03, DistinctUsers: 500},
			{Day: day(15), VersionCode: 42, Rate: 0.05, DistinctUsers: 1000},
			{Day: day(16), VersionCode: 42, Rate: 0.04, DistinctUsers: 1000}, // 23 h of the previous stage
			{Day: day(17), VersionCode: 42, Rate: 0.001, DistinctUsers: 2000},
			{Day: day(18), VersionCode: 42, Rate: 0.003, DistinctUsers: 2000},
		}}
	}

	t.Run("the day the stage began is not enough", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		// Processed up to the end of 16 Nov: FreshUntil (17 Nov 00:00) is
		// after stageStarted, but 23 hours of that day were the previous stage.
		tb.fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, series(day(17)))
		tb.fake.SetVitals(pkg, playstoretest.AnrRateMetricSet, series(day(17)))
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, stage)
		require.NoError(t, err)
		require.False(t, obs.Metrics[gate.CrashRate].Fresh)
		require.False(t, obs.Metrics[gate.ANRRate].Fresh)
	})

	t.Run("one whole day of the stage is fresh, and only it counts", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, series(day(18)))
		tb.fake.SetVitals(pkg, playstoretest.AnrRateMetricSet, series(day(18)))
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, stage)
		require.NoError(t, err)
		require.Equal(t, map[string]release.Observation{
			gate.CrashRate: {Value: 0.001, Samples: 2000, Fresh: true},
			gate.ANRRate:   {Value: 0.001, Samples: 2000, Fresh: true},
		}, roundValues(obs.Metrics), "14–16 Nov belong to earlier stages")
	})

	t.Run("the window runs up to FreshUntil", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, series(day(19)))
		tb.fake.SetVitals(pkg, playstoretest.AnrRateMetricSet, series(day(19)))
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, stage)
		require.NoError(t, err)
		// 17 and 18 Nov, 2,000 users each: at least 2,000 users, not
		// 4,000 (Play's daily distinct users must not be added up).
		require.Equal(t, release.Observation{Value: 0.002, Samples: 2000, Fresh: true}, roundValues(obs.Metrics)[gate.CrashRate])
	})

	t.Run("a stage that began at midnight waits for its first whole day", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tb.fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, series(day(18)))
		tb.fake.SetVitals(pkg, playstoretest.AnrRateMetricSet, series(day(18)))
		obs, err := tb.gate.Observe(ctx, pkg, 42, since, la(17, 0).Add(time.Minute))
		require.NoError(t, err)
		require.False(t, obs.Metrics[gate.CrashRate].Fresh, "17 Nov began a minute before the stage")
	})
}

func TestFirstFullDay(t *testing.T) {
	t.Parallel()
	require.Equal(t, la(17, 0), gate.FirstFullDay(la(16, 23)))
	require.Equal(t, la(17, 0), gate.FirstFullDay(la(16, 0)), "strictly after: a stage at midnight still starts the next day")
	require.Equal(t, la(17, 0), gate.FirstFullDay(time.Date(2026, 11, 17, 7, 59, 0, 0, time.UTC)), "16 Nov 23:59 in Los Angeles")
	// Across the end of daylight saving time (1 Nov 2026), a day is 25 hours.
	require.Equal(t, time.Date(2026, 11, 2, 0, 0, 0, 0, la(1, 0).Location()), gate.FirstFullDay(time.Date(2026, 11, 1, 0, 30, 0, 0, la(1, 0).Location())))
}

func roundValues(m map[string]release.Observation) map[string]release.Observation {
	out := map[string]release.Observation{}
	for k, o := range m {
		o.Value = float64(int64(o.Value*1e9+0.5)) / 1e9
		out[k] = o
	}
	return out
}

type failingReader struct{ n int }

func (f *failingReader) Vitals(context.Context, string, int64, time.Time) (playstore.Vitals, error) {
	f.n++
	return playstore.Vitals{}, errors.New("503 from Play")
}

func TestPlayVitalsErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	r := &failingReader{}
	g := &gate.PlayVitals{Reader: r}
	for range 2 {
		_, err := g.Observe(context.Background(), pkg, 42, day(16), day(16))
		require.ErrorContains(t, err, "vitals of com.acme.app versionCode 42: 503 from Play")
	}
	require.Equal(t, 2, r.n)

	_, err := (&gate.PlayVitals{}).Observe(context.Background(), pkg, 42, day(16), day(16))
	require.ErrorContains(t, err, "no Play vitals reader")
}
