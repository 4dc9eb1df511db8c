package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
)

// BenchmarkSentryPass measures one reconcile pass's Sentry gates of one
// lane, two rules (crash-free sessions and users), against the fake with
// its OpenAPI checks: sentry-requests/op shows that the rules share one
// request within a pass.
func BenchmarkSentryPass(b *testing.B) {
	sb := sentrySetup(b)
	sb.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt, sentryNow, 1000, 400, 0.995)
	rules := []release.GateRule{sessionRule, userRule}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx := gate.WithPass(context.Background())
		for _, r := range rules {
			if _, err := sb.provider.Measure(ctx, r, iosTarget()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(sb.fake.Requests()))/float64(b.N), "sentry-requests/op")
}

// BenchmarkReadings folds a long stage (2,000 measurements of two gates,
// the most GateReadings reads) into readings.
func BenchmarkReadings(b *testing.B) {
	ms := make([]release.Measurement, 2000)
	for i := range ms {
		ms[i] = release.Measurement{Gate: []string{"sentry:a", "sentry:b"}[i%2], At: sentryNow.Add(time.Duration(i) * time.Minute), Phase: release.PhaseFailed, ID: int64(i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = release.Readings(ms)
	}
}
