package gate_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/gate/promtest"
	"github.com/swapjoy/releasepilot/internal/release"
)

// promNow is the test's clock; the samples loaded into Prometheus are
// dated around it.
var promNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func promSamples() string {
	from, to := promNow.Add(-3*time.Hour), promNow
	var b strings.Builder
	b.WriteString("# TYPE app_crash_free_ratio gauge\n")
	b.WriteString(promtest.Gauge("app_crash_free_ratio", `release="v1.4.0",platform="android"`, from, to, time.Minute, 0.999))
	b.WriteString(promtest.Gauge("app_crash_free_ratio", `release="v1.4.0",platform="ios"`, from, to, time.Minute, 0.997))
	b.WriteString(promtest.Gauge("app_crash_free_ratio", `release="v1.5.0",platform="android"`, from, to, time.Minute, 0.95))
	b.WriteString("# TYPE app_crashes counter\n")
	for i := 0; i <= 180; i++ {
		at := from.Add(time.Duration(i) * time.Minute)
		b.WriteString("app_crashes_total{release=\"v1.5.0\"} " + strconv.Itoa(i*6) + " " + strconv.FormatInt(at.Unix(), 10) + "\n")
	}
	b.WriteString("# EOF\n")
	return b.String()
}

func promTarget(tag, platform string) gate.Target {
	return gate.Target{App: "acme", Platform: release.Platform(platform), Kind: release.KindStore, Tag: tag, Version: strings.TrimPrefix(tag, "v"),
		Build: "42", Percent: 10, StageStarted: promNow.Add(-2 * time.Hour), Now: promNow}
}

// TestPrometheusMeasure runs every path of the provider against a real
// Prometheus server.
func TestPrometheusMeasure(t *testing.T) {
	t.Parallel()
	srv := promtest.Start(t, promSamples())
	p := &gate.Prometheus{URL: srv.URL}
	ctx := context.Background()
	min := func(query string, v float64) release.GateRule {
		return release.GateRule{Provider: release.ProviderPrometheus, Query: query, Min: fp(v), NoMax: true}
	}
	byRelease := `app_crash_free_ratio{release="{{.Release}}",platform="{{.Platform}}"}`
	tests := []struct {
		name   string
		rule   release.GateRule
		target gate.Target
		phase  release.Phase
		reason string
		value  float64
	}{
		{"pass", min(byRelease, 0.99), promTarget("v1.4.0", "android"), release.PhaseSuccessful, "0.999 is ≥ 0.99", 0.999},
		{"fail", min(byRelease, 0.99), promTarget("v1.5.0", "android"), release.PhaseFailed, "0.95 is below min 0.99", 0.95},
		{"max fails", release.GateRule{Provider: release.ProviderPrometheus, Query: `sum(rate(app_crashes_total{release="{{.Release}}"}[10m]))`, Max: 0.05},
			promTarget("v1.5.0", "android"), release.PhaseFailed, "0.1 is above max 0.05", 0.1},
		{"no series is inconclusive", min(byRelease, 0.99), promTarget("v9.9.9", "android"), release.PhaseInconclusive, "the query returned no series", 0},
		{"several series are inconclusive", min(`app_crash_free_ratio{release="{{.Release}}"}`, 0.99), promTarget("v1.4.0", "android"), release.PhaseInconclusive,
			`the query returned 2 series (app_crash_free_ratio{platform="android",release="v1.4.0"}, app_crash_free_ratio{platform="ios",release="v1.4.0"}); a gate needs exactly one`, 0},
		{"a scalar is one value", min(`scalar(app_crash_free_ratio{release="{{.Release}}",platform="{{.Platform}}"})`, 0.99), promTarget("v1.4.0", "ios"), release.PhaseSuccessful, "0.997", 0.997},
		{"the percentage is a variable", release.GateRule{Provider: release.ProviderPrometheus, Query: `vector({{.Percent}} / 100)`, Max: 0.2}, promTarget("v1.4.0", "ios"), release.PhaseSuccessful, "0.1 is ≤ 0.2", 0.1},
		{"NaN is inconclusive", min(`vector(0/0)`, 0.99), promTarget("v1.4.0", "ios"), release.PhaseInconclusive, "not a number", 0},
		{"a range reaching before the stage is stale", min(`avg_over_time(app_crash_free_ratio{release="{{.Release}}",platform="{{.Platform}}"}[3h])`, 0.99),
			promTarget("v1.4.0", "android"), release.PhaseStale, "the query looks back 3h0m0s but the stage began 2h0m0s ago", 0},
		{"old enough, the same range is judged", min(`avg_over_time(app_crash_free_ratio{release="{{.Release}}",platform="{{.Platform}}"}[1h])`, 0.99),
			promTarget("v1.4.0", "android"), release.PhaseSuccessful, "0.999", 0.999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rd, err := p.Measure(ctx, tt.rule, tt.target)
			require.NoError(t, err)
			m := release.Judge(tt.rule, rd, promNow)
			require.Equal(t, tt.phase, m.Phase, m.Reason)
			require.Contains(t, m.Reason, tt.reason)
			require.InDelta(t, tt.value, m.Value, 1e-9)
			require.True(t, strings.HasPrefix(rd.Source, "promql "), rd.Source)
		})
	}

	t.Run("a bad query is an error with Prometheus's message", func(t *testing.T) {
		t.Parallel()
		_, err := p.Measure(ctx, min(`sum(app_crash_free_ratio{release="{{.Release}}"`, 0.99), promTarget("v1.4.0", "ios"))
		require.ErrorContains(t, err, "prometheus answered 400 (bad_data)")
	})
	t.Run("a server that is down is an error", func(t *testing.T) {
		t.Parallel()
		down := &gate.Prometheus{URL: "http://127.0.0.1:1/"}
		_, err := down.Measure(ctx, min(byRelease, 0.99), promTarget("v1.4.0", "ios"))
		require.ErrorContains(t, err, "prometheus query")
	})
}

func TestPrometheusRender(t *testing.T) {
	t.Parallel()
	p := &gate.Prometheus{}
	tg := promTarget(`v1.4.0"}) or vector(1) #`, "ios")
	q, err := p.Render(`up{release="{{.Release}}",version="{{.Version}}",pct="{{.Percent}}"}`, tg)
	require.NoError(t, err)
	require.Equal(t, `up{release="v1.4.0\"}) or vector(1) #",version="1.4.0\"}) or vector(1) #",pct="10"}`, q, "values are escaped inside PromQL strings")
	_, err = p.Render(`up{release="{{.Relase}}"}`, tg)
	require.ErrorContains(t, err, "can't evaluate field Relase")
}

func TestLookback(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]time.Duration{
		`up`:                                       0,
		`rate(x[5m])`:                              5 * time.Minute,
		`rate(x[1h30m]) / rate(y[5m])`:             90 * time.Minute,
		`max_over_time(rate(x[5m])[2h:1m])`:        2 * time.Hour,
		`rate(x[5m] offset 1d)`:                    24*time.Hour + 5*time.Minute,
		`x{path="/a[1w]"}`:                         0,
		`rate(x{path='[2d]'}[10m])`:                10 * time.Minute,
		"sum(rate(x{le=`[3h]`}[1m])) offset -5m":   time.Minute,
		`increase(errors_total{release="v"}[90s])`: 90 * time.Second,
	} {
		require.Equal(t, want, gate.Lookback(q), q)
	}
}
