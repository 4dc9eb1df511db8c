package gate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/gate/sentrytest"
	"github.com/swapjoy/releasepilot/internal/release"
)

const sentryToken = "sntrys_eyJpYXQiOjE3MzI0NTY3ODl9_secretpart"

var (
	sentryNow   = time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	stageAt     = time.Date(2026, 11, 25, 9, 20, 0, 0, time.UTC)
	sessionRule = release.GateRule{Provider: release.ProviderSentry, Metric: gate.CrashFreeSessions, Min: fp(0.99), NoMax: true, MinSamples: 500, FailureLimit: 1}
	userRule    = release.GateRule{Provider: release.ProviderSentry, Metric: gate.CrashFreeUsers, Min: fp(0.98), NoMax: true}
)

func fp(v float64) *float64 { return &v }

type sentryBundle struct {
	fake     *sentrytest.Server
	provider *gate.Sentry
}

func sentrySetup(t testing.TB) *sentryBundle {
	t.Helper()
	fake := sentrytest.New("acme-org", func() time.Time { return sentryNow })
	fake.AddToken(sentryToken)
	fake.AddProject("acme-mobile")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		require.Empty(t, fake.Violations(), "every request and answer matches Sentry's OpenAPI schema")
	})
	return &sentryBundle{fake: fake, provider: &gate.Sentry{BaseURL: srv.URL + "/", Org: "acme-org", Token: sentryToken,
		Apps: map[string]gate.SentryApp{"acme": {Project: "acme-mobile", Environment: "production"}}}}
}

func iosTarget() gate.Target {
	return gate.Target{App: "acme", Platform: release.IOS, Kind: release.KindStore, Tag: "v1.4.0", Version: "1.4.0", Build: "42",
		BundleID: "com.acme.mobile", Percent: 5, StageStarted: stageAt, Now: sentryNow}
}

const iosRelease = "com.acme.mobile@1.4.0+42"

func TestSentryMeasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("pass over the stage's whole hours, with the exact request", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		// 09:00–10:00 is partly the previous stage, and terrible: left out.
		b.fake.Record("acme-mobile", "production", iosRelease, stageAt, sentrytest.Hour{Sessions: 1000, Crashed: 500, Users: 100, CrashedUsers: 50})
		b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt.Add(40*time.Minute), sentryNow, 1000, 400, 0.995)
		b.fake.SetCrashFree("acme-mobile", "staging", iosRelease, stageAt, sentryNow, 1000, 400, 0.5)
		rd, err := b.provider.Measure(ctx, sessionRule, iosTarget())
		require.NoError(t, err)
		require.InDelta(t, 0.995, rd.Value, 1e-9)
		require.Equal(t, int64(3000), rd.Samples, "sessions of 10:00, 11:00 and 12:00")
		require.Empty(t, rd.Stale)
		require.Empty(t, rd.Inconclusive)
		require.InDelta(t, 0.995, rd.Values[gate.CrashFreeUsers], 1e-9)
		require.Equal(t, 400.0, rd.Values["count_unique(user)"], "the same 400 users in each of the three hours")
		require.Equal(t, `sentry acme-org project acme-mobile environment production, release:"com.acme.mobile@1.4.0+42" since 2026-11-25T10:00:00Z`, rd.Source)
		require.Equal(t, release.PhaseSuccessful, release.Judge(sessionRule, rd, sentryNow).Phase)

		reqs := b.fake.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "/api/0/organizations/acme-org/sessions/", reqs[0].Path)
		require.Equal(t, url.Values{
			"field":       {"crash_free_rate(session)", "crash_free_rate(user)", "sum(session)", "count_unique(user)"},
			"project":     {"acme-mobile"},
			"environment": {"production"},
			"query":       {`release:"com.acme.mobile@1.4.0+42"`},
			"start":       {"2026-11-25T10:00:00Z"},
			"end":         {"2026-11-25T12:30:00Z"},
			"interval":    {"1h"},
		}, reqs[0].Query())
	})

	t.Run("users who come back each hour are counted once against min_samples", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		// The same 400 people each hour for three hours: 400 users, as
		// Sentry counts them, short of the rule's 1,000.
		b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt, sentryNow, 1000, 400, 0.999)
		rule := release.GateRule{Provider: release.ProviderSentry, Metric: gate.CrashFreeUsers, Min: fp(0.98), NoMax: true, MinSamples: 1000}
		rd, err := b.provider.Measure(ctx, rule, iosTarget())
		require.NoError(t, err)
		require.Equal(t, int64(400), rd.Samples)
		require.Equal(t, release.PhaseInconclusive, release.Judge(rule, rd, sentryNow).Phase)
	})

	t.Run("fail", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt, sentryNow, 2000, 800, 0.96)
		rd, err := b.provider.Measure(ctx, sessionRule, iosTarget())
		require.NoError(t, err)
		m := release.Judge(sessionRule, rd, sentryNow)
		require.Equal(t, release.PhaseFailed, m.Phase)
		require.Equal(t, "0.96 is below min 0.99 over 6000 samples", m.Reason)
		require.Equal(t, 6000.0, m.Values["sum(session)"])
	})

	t.Run("no sessions are inconclusive", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		b.fake.SetCrashFree("acme-mobile", "production", "com.acme.mobile@1.3.0+41", stageAt, sentryNow, 2000, 800, 0.2)
		rd, err := b.provider.Measure(ctx, sessionRule, iosTarget())
		require.NoError(t, err)
		require.Equal(t, "Sentry has no sessions of com.acme.mobile@1.4.0+42 since 2026-11-25T10:00:00Z", rd.Inconclusive)
		require.Equal(t, release.PhaseInconclusive, release.Judge(sessionRule, rd, sentryNow).Phase)
	})

	t.Run("too few sessions are inconclusive, however bad", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt.Add(time.Hour), sentryNow, 100, 40, 0.5)
		rd, err := b.provider.Measure(ctx, sessionRule, iosTarget())
		require.NoError(t, err)
		m := release.Judge(sessionRule, rd, sentryNow)
		require.Equal(t, release.PhaseInconclusive, m.Phase)
		require.Equal(t, "0.5 over 300 samples, need 500", m.Reason)
	})

	t.Run("stale before the stage's first whole hour, without asking", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt.Add(-24*time.Hour), sentryNow, 2000, 800, 0.5)
		tg := iosTarget()
		tg.StageStarted = time.Date(2026, 11, 25, 12, 10, 0, 0, time.UTC)
		rd, err := b.provider.Measure(ctx, sessionRule, tg)
		require.NoError(t, err)
		require.Equal(t, "the stage began 2026-11-25T12:10:00Z and Sentry counts sessions by the hour: its first whole hour begins 2026-11-25T13:00:00Z", rd.Stale)
		require.Equal(t, release.PhaseStale, release.Judge(sessionRule, rd, sentryNow).Phase)
		require.Empty(t, b.fake.Requests())
	})

	t.Run("crash rate is one minus the crash-free rate", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt, sentryNow, 1000, 400, 0.98)
		rule := release.GateRule{Provider: release.ProviderSentry, Metric: gate.CrashRateUsers, Max: 0.01}
		rd, err := b.provider.Measure(ctx, rule, iosTarget())
		require.NoError(t, err)
		require.InDelta(t, 0.02, rd.Value, 1e-9)
		require.Equal(t, int64(400), rd.Samples, "users: the same 400 people in each hour")
		require.Equal(t, release.PhaseFailed, release.Judge(rule, rd, sentryNow).Phase)
	})
}

func TestSentryFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		status int
		detail string
		err    string
	}{
		{"server error", http.StatusServiceUnavailable, "", "sentry answered 503"},
		{"rate limited", http.StatusTooManyRequests, "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds", "sentry answered 429: You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds; rate limit resets 2026-11-25T12:30:01Z"},
		{"bad request", http.StatusBadRequest, `Invalid field: "crash_free_rate(sessions)"`, `sentry answered 400: Invalid field: "crash_free_rate(sessions)"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := sentrySetup(t)
			b.fake.Fail(1, tt.status, tt.detail)
			_, err := b.provider.Measure(ctx, sessionRule, iosTarget())
			require.EqualError(t, err, tt.err)
			var se *gate.SentryError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.status, se.Status)
		})
	}

	t.Run("a refused token never shows", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		b.provider.Token = "sntrys_wrong_" + sentryToken
		_, err := b.provider.Measure(ctx, sessionRule, iosTarget())
		require.EqualError(t, err, "sentry answered 401 (the auth token was refused): Invalid token")
		require.NotContains(t, err.Error(), "secretpart")
	})

	t.Run("an app without a project", func(t *testing.T) {
		t.Parallel()
		b := sentrySetup(t)
		tg := iosTarget()
		tg.App = "other"
		_, err := b.provider.Measure(ctx, sessionRule, tg)
		require.EqualError(t, err, "sentry: app other has no sentry.project configured")
	})
}

// TestSentryOTARelease: an OTA release is named once per store binary it
// targets, as Sentry's React Native CodePush guide names it, and one
// request asks for all of them.
func TestSentryOTARelease(t *testing.T) {
	t.Parallel()
	b := sentrySetup(t)
	b.fake.SetCrashFree("acme-mobile", "production", "1.4.0-codepush:v7", stageAt, sentryNow, 1000, 400, 0.999)
	b.fake.SetCrashFree("acme-mobile", "production", "1.4.1-codepush:v7", stageAt, sentryNow, 1000, 400, 0.979)
	b.fake.SetCrashFree("acme-mobile", "production", "1.4.1-codepush:v6", stageAt, sentryNow, 1000, 400, 0.1)
	tg := gate.Target{App: "acme", Platform: release.Android, Kind: release.KindOTA, Version: "1.4.2", Label: "v7", StageStarted: stageAt, Now: sentryNow,
		Binaries: []release.Binary{{Version: "1.4.0", BuildNumber: "40"}, {Version: "1.4.1", BuildNumber: "41"}, {Version: "1.4.1", BuildNumber: "42"}}}
	rd, err := b.provider.Measure(context.Background(), sessionRule, tg)
	require.NoError(t, err)
	require.InDelta(t, 0.989, rd.Value, 1e-9)
	require.Equal(t, int64(6000), rd.Samples)
	require.Equal(t, `release:["1.4.0-codepush:v7","1.4.1-codepush:v7"]`, b.fake.Requests()[0].Query().Get("query"))
}

func TestSentryReleaseNames(t *testing.T) {
	t.Parallel()
	tg := iosTarget()
	names, err := gate.SentryReleases(gate.SentryApp{}, tg)
	require.NoError(t, err)
	require.Equal(t, []string{"com.acme.mobile@1.4.0+42"}, names)

	custom, err := gate.ParseTemplate("release", "{{.App}}-{{.Platform}}@{{.Version}}")
	require.NoError(t, err)
	names, err = gate.SentryReleases(gate.SentryApp{Release: custom}, tg)
	require.NoError(t, err)
	require.Equal(t, []string{"acme-ios@1.4.0"}, names)

	_, err = gate.ParseTemplate("release", "{{.Nope}}")
	require.ErrorContains(t, err, `can't evaluate field Nope`)

	slash := template.Must(template.New("r").Parse("{{.BundleID}}/{{.Version}}"))
	_, err = gate.SentryReleases(gate.SentryApp{Release: slash}, tg)
	require.EqualError(t, err, `sentry release name "com.acme.mobile/1.4.0" contains a newline, tab or slash, which Sentry does not allow`)

	ota := gate.Target{Kind: release.KindOTA, Label: "v3"}
	_, err = gate.SentryReleases(gate.SentryApp{}, ota)
	require.ErrorContains(t, err, "targets no recorded store binary")

	require.Equal(t, `release:"a\"b\\c"`, gate.ReleaseQuery([]string{`a"b\c`}))
}

// TestSentrySharedPerPass: within one pass, rules and lanes that ask
// Sentry the same question share one request.
func TestSentrySharedPerPass(t *testing.T) {
	t.Parallel()
	b := sentrySetup(t)
	b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt, sentryNow, 1000, 400, 0.995)
	ctx := gate.WithPass(context.Background())
	for range 3 {
		for _, r := range []release.GateRule{sessionRule, userRule} {
			_, err := b.provider.Measure(ctx, r, iosTarget())
			require.NoError(t, err)
		}
	}
	require.Len(t, b.fake.Requests(), 1)
	_, err := b.provider.Measure(context.Background(), sessionRule, iosTarget())
	require.NoError(t, err)
	require.Len(t, b.fake.Requests(), 2, "a new pass asks again")
}

// TestTemplateVarsMatchConfig: the configuration checks templates against
// the same variables the providers fill.
func TestTemplateVarsMatchConfig(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeOf(gate.Vars{})
	var names []string
	for i := range typ.NumField() {
		names = append(names, typ.Field(i).Name)
	}
	require.ElementsMatch(t, config.TemplateVars, names)
	require.ElementsMatch(t, config.GateProviders, release.Providers)
}

// TestSentryFirstStage: the first stage of a rollout has no stage before
// it, so the hour it began in counts.
func TestSentryFirstStage(t *testing.T) {
	t.Parallel()
	b := sentrySetup(t)
	b.fake.SetCrashFree("acme-mobile", "production", iosRelease, stageAt, sentryNow, 1000, 400, 0.995)
	tg := iosTarget()
	tg.StageStarted, tg.FirstStage = time.Date(2026, 11, 25, 12, 10, 0, 0, time.UTC), true
	rd, err := b.provider.Measure(context.Background(), sessionRule, tg)
	require.NoError(t, err)
	require.Empty(t, rd.Stale)
	require.Equal(t, int64(1000), rd.Samples, "the 12:00 hour")
	require.Equal(t, "2026-11-25T12:00:00Z", b.fake.Requests()[0].Query().Get("start"))
}
