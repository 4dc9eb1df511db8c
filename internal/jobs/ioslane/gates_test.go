package ioslane_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/gate/sentrytest"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// TestIOSPhasedReleasePausedBySentryGate: Apple moves a phased release
// one day at a time on its own, so a gate cannot hold it back; but when the
// release's crash-free sessions in Sentry fall below the gate's minimum
// more times in a row than its failure_limit, the reconciler pauses the
// phased release (PAUSED) without anyone acting, and a person resumes it.
func TestIOSPhasedReleasePausedBySentryGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rule := release.GateRule{Provider: release.ProviderSentry, Metric: gate.CrashFreeSessions, Min: fp(0.99), NoMax: true, MinSamples: 500,
		FailureLimit: 1, Interval: release.Duration(time.Hour)}
	b := setupIOS(t, store.SQLite, iosOpts{appStore: true, phased: true, gates: []release.GateRule{rule},
		options: func(o *appstoretest.Options) { o.AppReviewTime = time.Hour }})

	sentry := sentrytest.New("acme-org", b.clock.Now)
	sentry.AddToken("sntrys_ios_test")
	sentry.AddProject("acme-mobile")
	srv := httptest.NewServer(sentry)
	t.Cleanup(srv.Close)
	app := b.app
	gates := &jobs.Gates{Store: b.st, Executors: b.ro.Executors, Apps: map[string]config.App{"acme": app}, Now: b.clock.Now,
		Providers: map[string]jobs.GateProvider{release.ProviderSentry: &gate.Sentry{BaseURL: srv.URL + "/", Org: "acme-org", Token: "sntrys_ios_test",
			Apps: map[string]gate.SentryApp{"acme": {Project: "acme-mobile", Environment: "production"}}}}}
	b.ro.Gates = gates
	tick := func() {
		t.Helper()
		require.NoError(t, gates.Pass(ctx, b.ro))
		require.NoError(t, b.ro.Pass(ctx))
	}

	_, err := b.runLane(t, nil)
	require.NoError(t, err)
	tick() // day 1 of the phased release
	st := b.status(t)
	require.Equal(t, 1, st.Percent)
	vid, _ := b.laneData(t)["version_id"].(string)
	pr, _ := b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedActive, pr.State)
	stage := st.StageStartedAt
	firstHour := stage.Truncate(time.Hour).Add(time.Hour)
	rel := "com.acme.mobile@1.4.0+45"

	// The first whole hour of the stage is healthy…
	sentry.SetCrashFree("acme-mobile", "production", rel, firstHour, firstHour.Add(time.Hour), 1000, 400, 0.999)
	b.clock.Advance(firstHour.Add(30 * time.Minute).Sub(b.clock.Now()))
	tick()
	// …then it crashes.
	sentry.SetCrashFree("acme-mobile", "production", rel, firstHour.Add(time.Hour), firstHour.Add(24*time.Hour), 9000, 3000, 0.9)
	b.clock.Advance(time.Hour)
	tick()
	require.Equal(t, release.StateWaiting, b.status(t).State, "one failure is within the limit")
	pr, _ = b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedActive, pr.State)

	b.clock.Advance(time.Hour)
	tick()
	st = b.status(t)
	require.Equal(t, release.StateHalted, st.State)
	require.Equal(t, 1, st.Percent, "never advanced")
	require.Contains(t, st.Reason, "gate sentry crash_free_rate(session) failed 2 times in a row (failure_limit 1): 0.9")
	require.Contains(t, st.Reason, `release:"com.acme.mobile@1.4.0+45"`)
	pr, _ = b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedPaused, pr.State, "the phased release is paused on App Store Connect")
	require.Empty(t, sentry.Violations())

	var phases []release.Phase
	ms, err := b.st.Measurements(ctx, b.lane.ID, time.Time{}, 0)
	require.NoError(t, err)
	for _, m := range ms {
		phases = append(phases, m.Phase)
	}
	require.Equal(t, []release.Phase{release.PhaseSuccessful, release.PhaseFailed, release.PhaseFailed}, phases, "one measurement an hour")

	// A person resumes: a new stage, in which the failures that paused it
	// do not count, so the next pass does not pause it again.
	_, err = b.ro.Command(ctx, b.lane.ID, release.CmdResume, "alice", "crash fixed server side")
	require.NoError(t, err)
	pr, _ = b.fake.PhasedRelease(vid)
	require.Equal(t, appstore.PhasedActive, pr.State)
	b.clock.Advance(time.Minute)
	tick()
	require.NotEqual(t, release.StateHalted, b.status(t).State)
	rd, err := gates.Observe(ctx, mustLane(t, b))
	require.NoError(t, err)
	require.Equal(t, release.PhaseStale, rd[rule.Key()].Latest.Phase, "the new stage has no whole hour yet")
	require.Zero(t, rd[rule.Key()].ConsecutiveFailures)
}

func mustLane(t *testing.T, b *iosBundle) release.Lane {
	t.Helper()
	l, err := b.st.GetLane(context.Background(), b.lane.ID)
	require.NoError(t, err)
	return l
}

func fp(v float64) *float64 { return &v }
