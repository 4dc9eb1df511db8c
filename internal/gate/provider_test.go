package gate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// TestPlayVitalsProvider: pass, fail, inconclusive and stale of a
// play_vitals rule, against the Play fake.
func TestPlayVitalsProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	crash := release.GateRule{Metric: gate.CrashRate, Max: 0.0109, MinSamples: 1000}
	target := func(stage time.Time) gate.Target {
		return gate.Target{App: "acme", Platform: release.Android, Kind: release.KindStore, BundleID: pkg, VersionCode: 42,
			RolloutStarted: day(16).Add(18 * time.Hour), StageStarted: stage, Now: day(20)}
	}
	stage := day(16).Add(18 * time.Hour)
	tests := []struct {
		name   string
		script func(*playstoretest.Server)
		stage  time.Time
		phase  release.Phase
		reason string
	}{
		{"pass", func(f *playstoretest.Server) { script(f, day(18), 0.002, 0.001) }, stage, release.PhaseSuccessful, "0.002 is ≤ 0.0109 over 3000 samples"},
		{"fail", func(f *playstoretest.Server) { script(f, day(18), 0.05, 0.001) }, stage, release.PhaseFailed, "0.05 is above max 0.0109 over 3000 samples"},
		{"inconclusive without vitals", func(*playstoretest.Server) {}, stage, release.PhaseInconclusive, "Play has no crash_rate of versionCode 42 yet"},
		{"stale before a whole day of the stage", func(f *playstoretest.Server) { script(f, day(18), 0.05, 0.001) }, day(18).Add(9 * time.Hour), release.PhaseStale,
			"Play has not processed a whole Los Angeles day of this stage yet (the stage began 2026-11-18T09:00:00Z; processed until 2026-11-18T08:00:00Z)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			tt.script(tb.fake)
			rd, err := tb.gate.Measure(ctx, crash, target(tt.stage))
			require.NoError(t, err)
			m := release.Judge(crash, rd, day(20))
			require.Equal(t, tt.phase, m.Phase, m.Reason)
			require.Contains(t, m.Reason, tt.reason)
			require.Equal(t, "Play vitals of com.acme.app versionCode 42", m.Source)
		})
	}

	t.Run("android store lanes only", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		tg := target(stage)
		tg.Kind = release.KindOTA
		_, err := tb.gate.Measure(ctx, crash, tg)
		require.EqualError(t, err, "play_vitals measures Android store lanes, not ota lanes on android")
	})
}

type counters struct {
	counts map[string]codepush.Counts
	err    error
	calls  int
}

func (c *counters) Metrics(_ context.Context, app, dep string) (map[string]codepush.Counts, error) {
	c.calls++
	if app != "acme-ios" || dep != codepush.Production {
		return nil, errors.New("unexpected deployment " + app + "/" + dep)
	}
	return c.counts, c.err
}

// TestOTAReportsProvider: an OTA rule judges the reports sent during the
// stage: the difference from the stage's first measurement.
func TestOTAReportsProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rule := release.GateRule{Metric: gate.OTAFailureRate, Max: 0.05, MinSamples: 10}
	target := func(baseline map[string]float64) gate.Target {
		return gate.Target{App: "acme", Platform: release.IOS, Kind: release.KindOTA, CodePushApp: "acme-ios", Label: "v7", Baseline: baseline}
	}
	base := map[string]float64{"installed": 100, "failed": 2, "clients": 102}
	tests := []struct {
		name     string
		counts   codepush.Counts
		baseline map[string]float64
		phase    release.Phase
		reason   string
	}{
		{"pass", codepush.Counts{Installed: 196, Failed: 6, Clients: 202}, base, release.PhaseSuccessful, "0.04 is ≤ 0.05 over 100 samples"},
		{"fail on the stage's reports, not the release's", codepush.Counts{Installed: 150, Failed: 52, Clients: 202}, base, release.PhaseFailed, "0.5 is above max 0.05 over 100 samples"},
		{"no reports at all are inconclusive", codepush.Counts{Downloaded: 40}, base, release.PhaseInconclusive, "no device has reported on v7 yet"},
		{"the first measurement of a stage is its baseline", codepush.Counts{Installed: 100, Failed: 2, Clients: 102}, nil, release.PhaseStale,
			"first measurement of this stage: 102 devices (100 installs, 2 rollbacks) so far are its baseline"},
		{"a baseline without devices (taken before they were counted) is taken again", codepush.Counts{Installed: 196, Failed: 6, Clients: 202},
			map[string]float64{"installed": 100, "failed": 2}, release.PhaseStale, "first measurement of this stage"},
		{"no report since the stage began is stale", codepush.Counts{Installed: 100, Failed: 2, Clients: 102}, base, release.PhaseStale,
			"no new device has reported on v7 since the stage began (102 devices before it)"},
		{"too few devices in the stage", codepush.Counts{Installed: 103, Failed: 3, Clients: 106}, base, release.PhaseInconclusive, "over 4 samples, need 10"},
		// Reports count devices: 10,000 reports of one device are one sample.
		{"reports without devices are no samples", codepush.Counts{Installed: 100, Failed: 10002, Clients: 103}, base, release.PhaseInconclusive, "over 1 samples, need 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &counters{counts: map[string]codepush.Counts{"v7": tt.counts, "v6": {Installed: 1000, Failed: 900}}}
			rd, err := (&gate.OTAReports{Counters: c}).Measure(ctx, rule, target(tt.baseline))
			require.NoError(t, err)
			m := release.Judge(rule, rd, day(20))
			require.Equal(t, tt.phase, m.Phase, m.Reason)
			require.Contains(t, m.Reason, tt.reason)
			require.Equal(t, float64(tt.counts.Installed), m.Values["installed"], "the raw counters are kept: the next measurement's baseline")
		})
	}

	t.Run("no Production release yet", func(t *testing.T) {
		t.Parallel()
		tg := target(nil)
		tg.Label = ""
		rd, err := (&gate.OTAReports{Counters: &counters{}}).Measure(ctx, rule, tg)
		require.NoError(t, err)
		require.Equal(t, "the lane has no Production release yet", rd.Inconclusive)
	})
	t.Run("counter errors", func(t *testing.T) {
		t.Parallel()
		_, err := (&gate.OTAReports{Counters: &counters{err: errors.New("database is locked")}}).Measure(ctx, rule, target(nil))
		require.EqualError(t, err, "report counters of acme-ios Production: database is locked")
	})
	t.Run("one read per pass", func(t *testing.T) {
		t.Parallel()
		c := &counters{counts: map[string]codepush.Counts{"v7": {Installed: 5}}}
		pass := gate.WithPass(ctx)
		for range 3 {
			_, err := (&gate.OTAReports{Counters: c}).Measure(pass, rule, target(base))
			require.NoError(t, err)
		}
		require.Equal(t, 1, c.calls)
	})
}
