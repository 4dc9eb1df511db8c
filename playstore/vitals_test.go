package playstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

func day(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }

func scriptVitals(fake *playstoretest.Server) {
	fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, playstoretest.VitalsSeries{
		FreshUntil: day(18), // rows up to 17 Nov are processed
		Points: []playstoretest.VitalsPoint{
			{Day: day(15), VersionCode: 42, Rate: 0.004, DistinctUsers: 1000},
			{Day: day(16), VersionCode: 42, Rate: 0.001, DistinctUsers: 3000},
			{Day: day(16), VersionCode: 41, Rate: 0.5, DistinctUsers: 90000},
			{Day: day(17), VersionCode: 42, Rate: 0.0, DistinctUsers: 0},
			{Day: day(18), VersionCode: 42, Rate: 0.9, DistinctUsers: 5000}, // not fresh yet
		},
	})
	fake.SetVitals(pkg, playstoretest.AnrRateMetricSet, playstoretest.VitalsSeries{
		FreshUntil: day(17),
		Points:     []playstoretest.VitalsPoint{{Day: day(16), VersionCode: 42, Rate: 0.002, DistinctUsers: 2000}},
	})
}

func TestVitals(t *testing.T) {
	t.Parallel()
	t.Run("scripted series", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		scriptVitals(tb.fake)
		v, err := tb.client.Vitals(context.Background(), pkg, 42, day(15).Add(12*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 4, v.Calls, "freshness and query per metric set")
		require.True(t, v.Crash.HasData)
		require.Equal(t, 3, v.Crash.Days, "the unprocessed day and other versionCodes are left out")
		require.Zero(t, v.Crash.MinDailyUsers, "17 Nov had no users to speak of")
		require.InDelta(t, (0.004*1000+0.001*3000)/4000, v.Crash.Rate, 1e-12)
		require.Equal(t, "2026-11-18", v.Crash.FreshUntil.Format(time.DateOnly))
		require.Equal(t, "America/Los_Angeles", v.Crash.FreshUntil.Location().String())
		require.True(t, v.ANR.HasData)
		require.InDelta(t, 0.002, v.ANR.Rate, 1e-12)
		require.Equal(t, "2026-11-17", v.ANR.FreshUntil.Format(time.DateOnly))
	})
	t.Run("no data yet", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		// Nothing processed at all.
		v, err := tb.client.Vitals(context.Background(), pkg, 42, day(15))
		require.NoError(t, err)
		require.False(t, v.Crash.HasData)
		require.False(t, v.ANR.HasData)
		require.True(t, v.Crash.FreshUntil.IsZero())
		require.Equal(t, 2, v.Calls, "no query without fresh data")

		// Processed, but not yet up to the rollout's first day.
		scriptVitals(tb.fake)
		v, err = tb.client.Vitals(context.Background(), pkg, 42, day(18).Add(12*time.Hour))
		require.NoError(t, err)
		require.False(t, v.Crash.HasData, "data for 18 Nov exists but is not fresh")
		require.False(t, v.ANR.HasData)

		// Processed rows, but none with users: still no data.
		tb.fake.SetVitals(pkg, playstoretest.AnrRateMetricSet, playstoretest.VitalsSeries{FreshUntil: day(18),
			Points: []playstoretest.VitalsPoint{{Day: day(17), VersionCode: 42, Rate: 0, DistinctUsers: 0}}})
		v, err = tb.client.Vitals(context.Background(), pkg, 42, day(17).Add(12*time.Hour))
		require.NoError(t, err)
		require.False(t, v.ANR.HasData)
		require.Equal(t, 1, v.ANR.Days)
		require.False(t, v.Crash.HasData, "17 Nov's crash row has no users either")

		// Fresh, but the versionCode has no users yet.
		v, err = tb.client.Vitals(context.Background(), pkg, 44, day(15))
		require.NoError(t, err)
		require.False(t, v.Crash.HasData)
		require.Equal(t, 4, v.Calls)
	})
	t.Run("a temporary failure is retried", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		scriptVitals(tb.fake)
		tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodCrashRateQuery, Kind: playstoretest.FaultInternal})
		v, err := tb.client.Vitals(context.Background(), pkg, 42, day(15))
		require.NoError(t, err)
		require.Equal(t, 5, v.Calls)
		require.True(t, v.Crash.HasData)
	})
}

func TestVitalsQueryRequestIsExact(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	scriptVitals(tb.fake)
	_, err := tb.client.Vitals(context.Background(), pkg, 42, day(15).Add(12*time.Hour))
	require.NoError(t, err)
	var out []byte
	for _, x := range tb.fake.Exchanges() {
		if x.Method == playstoretest.MethodCrashRateQuery || x.Method == playstoretest.MethodAnrRateQuery {
			out = append(out, x.HTTPMethod+" "+x.Path+"?"+x.Query+"\n"...)
			out = append(out, x.RequestBody...)
			out = append(out, '\n')
		}
	}
	golden(t, "vitals/queries.txt", out)
}
