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
	srv := httptest.NewServer(fake)
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
		require.Equal(t, map[string]release.Observation{
			gate.CrashRate: {Value: 0.002, Samples: 4000, Fresh: true},
			gate.ANRRate:   {Value: 0.001, Samples: 4000, Fresh: true},
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
