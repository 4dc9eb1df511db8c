package dashboard_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/dashboard"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func engines(t *testing.T, fn func(t *testing.T, e store.Engine)) {
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, e)
		})
	}
}

func sessionCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == dashboard.SessionCookie {
			return c
		}
	}
	return nil
}

func TestSignInExchangesTokenForSessionCookie(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		br := newBrowser(t, b.srv.URL)

		res, _ := br.get("/releases/" + b.rel.ID)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "signed out: to the sign-in page")
		require.Equal(t, "/signin?next=%2Freleases%2F"+b.rel.ID, res.Header.Get("Location"))

		res, page := br.get("/signin?next=/releases/" + b.rel.ID)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, page, `<label for="token">API token</label>`)
		csrf := csrfOf(t, page)

		res, _ = br.post("/signin", url.Values{"token": {opSecret}})
		require.Equal(t, http.StatusForbidden, res.StatusCode, "no CSRF token: refused")

		res, page = br.post("/signin", url.Values{"csrf": {csrf}, "token": {"operator-secret-WRONG"}})
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.Contains(t, page, "That token is not valid.")
		require.NotContains(t, page, "operator-secret", "the typed token is not echoed")

		res, _ = br.post("/signin", url.Values{"csrf": {csrf}, "token": {opSecret}, "next": {"/releases/" + b.rel.ID}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/releases/"+b.rel.ID, res.Header.Get("Location"))
		c := sessionCookie(res)
		require.NotNil(t, c)
		require.True(t, c.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, c.SameSite)
		require.False(t, c.Secure, "plain HTTP: not Secure")
		require.Equal(t, int((12 * time.Hour).Seconds()), c.MaxAge)
		require.NotContains(t, c.Value, opSecret)

		// The database holds only the hash of the cookie's secret.
		var idHash, subject, actor, role string
		require.NoError(t, b.db.SQL.QueryRow(`SELECT id_hash, subject, actor, role FROM dashboard_sessions`).Scan(&idHash, &subject, &actor, &role))
		require.NotEqual(t, c.Value, idHash)
		require.Len(t, idHash, 64)
		require.Equal(t, []string{"token:ops", "token:ops", "operator"}, []string{subject, actor, role})

		res, page = br.get("/releases/" + b.rel.ID)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, page, "Signed in as <strong>token:ops</strong> (operator)")
		for _, secret := range []string{opSecret, c.Value, idHash} {
			require.NotContains(t, page, secret, "nothing about a token or the session reaches the page")
		}
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		require.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")

		// Open redirects are not followed.
		res, page = br.get("/signin")
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "signed in already")
		br2 := newBrowser(t, b.srv.URL)
		_, page = br2.get("/signin?next=//evil.example/x")
		require.Contains(t, page, `name="next" value="/"`)
	})
}

func TestSessionCookieIsSecureOverTLSOrWhenConfigured(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite)
	api := httpapi.New(httpapi.Deps{Store: b.st})
	d, err := dashboard.New(dashboard.Deps{Store: b.st, Commands: api, Credentials: b.creds, Now: b.clock.Now})
	require.NoError(t, err)
	d.Register(api)
	tls := newTLSServer(t, api.Handler())
	br := newBrowser(t, tls.URL)
	br.c.Transport = tls.Client().Transport
	_, page := br.get("/signin")
	res, _ := br.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {viewerSecret}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.True(t, sessionCookie(res).Secure, "served over TLS: Secure")

	srv, _ := b.replica(t, nil, func(d *dashboard.Deps) { d.SecureCookies = true })
	br = newBrowser(t, srv.URL)
	res, page = br.get("/signin")
	for _, c := range res.Cookies() {
		require.True(t, c.Secure, "secure_cookies: every cookie is Secure behind a TLS proxy")
	}
}

func TestSessionsExpireAndSignOutEndsThem(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		br := b.signIn(t, b.srv.URL, viewerSecret)
		res, _ := br.get("/")
		require.Equal(t, http.StatusOK, res.StatusCode)

		b.clock.Add(12*time.Hour + time.Second)
		res, _ = br.get("/")
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "expired: sign in again")
		require.Contains(t, res.Header.Get("Location"), "/signin")

		br = b.signIn(t, b.srv.URL, viewerSecret)
		var n int
		require.NoError(t, b.db.SQL.QueryRow(`SELECT count(*) FROM dashboard_sessions`).Scan(&n))
		require.Equal(t, 1, n, "signing in cleared the expired session")
		u, _ := url.Parse(b.srv.URL)
		old := br.c.Jar.Cookies(u)

		_, page := br.get("/")
		res, _ = br.post("/signout", url.Values{})
		require.Equal(t, http.StatusForbidden, res.StatusCode, "sign-out needs the CSRF token too")
		res, _ = br.post("/signout", url.Values{"csrf": {csrfOf(t, page)}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/signin?signed_out=1", res.Header.Get("Location"))
		require.Equal(t, -1, sessionCookie(res).MaxAge)
		require.NoError(t, b.db.SQL.QueryRow(`SELECT count(*) FROM dashboard_sessions`).Scan(&n))
		require.Equal(t, 0, n)

		// Replaying the old cookie gets nothing.
		replay := newBrowser(t, b.srv.URL)
		replay.c.Jar.SetCookies(u, old)
		res, _ = replay.get("/")
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
	})
}

func TestSessionsWorkOnEveryReplica(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		other, _ := b.replica(t, nil)
		br := b.signIn(t, b.srv.URL, viewerSecret)
		u, _ := url.Parse(b.srv.URL)
		onOther := newBrowser(t, other.URL)
		ou, _ := url.Parse(other.URL)
		onOther.c.Jar.SetCookies(ou, br.c.Jar.Cookies(u))
		res, page := onOther.get("/releases/" + b.rel.ID)
		require.Equal(t, http.StatusOK, res.StatusCode, "the session is in the shared database")
		require.Contains(t, page, "token:watcher")

		// Signing out on one replica ends it on the other.
		res, _ = onOther.post("/signout", url.Values{"csrf": {csrfOf(t, page)}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		res, _ = br.get("/")
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
	})
}

func TestRemovedOrDemotedTokenTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite)
	br := b.signIn(t, b.srv.URL, opSecret)
	_, page := br.get("/releases/" + b.rel.ID)
	require.Contains(t, page, "data-confirm")

	b.creds.set(httpapi.NewToken("ops", httpapi.RoleViewer, opSecret))
	res, page := br.get("/releases/" + b.rel.ID)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, page, "data-confirm", "demoted to viewer: no command buttons")
	res, _ = br.get("/lanes/" + b.lane.ID + "/halt")
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	b.creds.set()
	res, _ = br.get("/")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "token removed: signed out")
}

func TestViewersSeeNoCommandsAndTheServerRefusesThem(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		br := b.signIn(t, b.srv.URL, viewerSecret)
		res, page := br.get("/releases/" + b.rel.ID)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NotContains(t, page, "data-confirm")
		require.NotContains(t, page, "/lanes/"+b.lane.ID+"/halt")
		csrf := csrfOf(t, page) // the sign-out form's

		// Whatever page sent it, the role is checked on the request.
		res, page = br.get("/lanes/" + b.lane.ID + "/halt")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, page, "role viewer; this needs operator")
		res, _ = br.post("/lanes/"+b.lane.ID+"/halt", url.Values{"csrf": {csrf}, "reason": {"sneaky"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)

		l, err := b.st.GetLane(context.Background(), b.lane.ID)
		require.NoError(t, err)
		require.Equal(t, release.StateWaiting, l.Status.State)
		evs, err := b.st.Events(context.Background(), b.rel.ID, 0, 100)
		require.NoError(t, err)
		for _, e := range evs {
			require.NotEqual(t, "command.requested", e.Kind)
		}
	})
}

func TestCommandShowsDryRunThenActsOnConfirm(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		ctx := context.Background()
		br := b.signIn(t, b.srv.URL, opSecret)
		_, page := br.get("/releases/" + b.rel.ID)
		for _, c := range []string{"advance", "pause", "halt", "rollback", "complete", "cancel"} {
			require.Contains(t, page, `href="/lanes/`+b.lane.ID+`/`+c+`" data-confirm`, c)
		}
		require.NotContains(t, page, "/resume\" data-confirm", "resume is not offered to a lane that is not halted or paused")

		res, page := br.get("/lanes/" + b.lane.ID + "/halt")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, page, `Dry run: <span class="from">waiting at 10 %</span> → <span class="to">halted at 10 %</span>`)
		require.Contains(t, page, `<label for="reason">Reason`)
		csrf := csrfOf(t, page)

		res, partial := br.get("/lanes/" + b.lane.ID + "/advance?partial=1")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NotContains(t, partial, "<html", "the dialog gets the form alone")
		require.Contains(t, partial, `waiting at 10 %</span> → <span class="to">rolling at 25 %`)

		res, page = br.get("/lanes/" + b.lane.ID + "/resume")
		require.Equal(t, http.StatusConflict, res.StatusCode)
		require.Contains(t, page, "Refused: resume: lane is waiting, not halted or paused")
		require.NotContains(t, page, "confirm-submit")

		res, _ = br.post("/lanes/"+b.lane.ID+"/halt", url.Values{"reason": {"crash spike"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode, "no CSRF token")
		res, _ = br.post("/lanes/"+b.lane.ID+"/halt", url.Values{"csrf": {"forged"}, "reason": {"crash spike"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode, "a wrong CSRF token")

		// A cross-site form is refused before anything else.
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/lanes/"+b.lane.ID+"/halt", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		res, err := br.c.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusForbidden, res.StatusCode)

		l, err := b.st.GetLane(ctx, b.lane.ID)
		require.NoError(t, err)
		require.Equal(t, release.StateWaiting, l.Status.State, "nothing was queued yet")

		res, _ = br.post("/lanes/"+b.lane.ID+"/halt", url.Values{"csrf": {csrf}, "reason": {"crash spike"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/releases/"+b.rel.ID+"?platform=android&queued=halt#lane-"+b.lane.ID, res.Header.Get("Location"))
		waitFor(t, "the halt to run", func() bool {
			l, err := b.st.GetLane(ctx, b.lane.ID)
			return err == nil && l.Status.State == release.StateHalted
		})
		evs, err := b.st.Events(ctx, b.rel.ID, 0, 100)
		require.NoError(t, err)
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
			if e.Kind == "command.requested" || e.Kind == "command.halt" {
				require.Equal(t, "token:ops", e.Actor)
				require.Equal(t, "crash spike", e.Details["reason"])
			}
		}
		require.Contains(t, kinds, "command.requested")
		require.Contains(t, kinds, "command.halt")

		_, page = br.get("/releases/" + b.rel.ID + "?queued=halt&platform=android")
		require.Contains(t, page, "halt queued for the android lane")
		require.Contains(t, page, `data-state="halted"`)
		require.Contains(t, page, `href="/lanes/`+b.lane.ID+`/resume" data-confirm`, "a halted lane offers resume")

		// The core's refusal is shown when the lane moved meanwhile.
		res, page = br.post("/lanes/"+b.lane.ID+"/halt", url.Values{"csrf": {csrf}, "reason": {"again"}})
		require.Equal(t, http.StatusConflict, res.StatusCode)
		require.Contains(t, page, "Refused: halt: cannot go from halted to halted")

		res, page = br.get("/lanes/lane_missing/halt")
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Contains(t, page, "lane lane_missing: not found")
		res, page = br.get("/lanes/" + b.lane.ID + "/explode")
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
		require.Contains(t, page, `command &#34;explode&#34; is not one of`)
	})
}

func TestReleasePageShowsTimelineGatesFreezesAndOutlook(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		freeze := release.Freeze{From: t0.Add(-time.Hour), To: t0.Add(48 * time.Hour), Reason: "holiday"}
		b := setup(t, e, func(d *dashboard.Deps) { d.Freezes = []release.Freeze{freeze} })
		ctx := context.Background()
		b.clock.Add(2 * time.Hour)
		_, err := b.st.AppendEvent(ctx, release.Event{At: t0.Add(time.Hour), Actor: "system", ReleaseID: b.rel.ID, LaneID: b.lane.ID, Kind: "rollout.hold",
			Details: map[string]any{"platform": "android", "state": "waiting", "percent": 10, "reason": "gate crash_rate: 120 samples, need 1000"}})
		require.NoError(t, err)
		br := b.signIn(t, b.srv.URL, viewerSecret)
		res, page := br.get("/releases/" + b.rel.ID)
		require.Equal(t, http.StatusOK, res.StatusCode)
		for _, want := range []string{
			`<h3 id="lane-` + b.lane.ID + `-h">android <span class="kind kind-store">Store</span></h3>`,
			`<progress max="100" value="10"`,
			`<li class="step step-done"><span class="step-label">10 %</span> <span class="phase">done</span>`,
			`<li class="step step-current" aria-current="step"><span class="step-label">Soak 1d 00h</span> <span class="phase">current</span>`,
			`<li class="step step-next"><span class="step-label">Gate</span> <span class="phase">next</span>`,
			`<li class="step step-later"><span class="step-label">25 %</span>`,
			`>22h 00m</span> left, until 2026-12-02 09:00:00 UTC`,
			`frozen now from 2026-12-01 08:00:00 UTC to 2026-12-03 09:00:00 UTC: holiday`,
			`<dd class="outlook">next: 25% not before 2026-12-03T09:00:00Z`,
			`<th scope="row"><span class="provider">play_vitals</span> <code>crash_rate</code> <span class="every">every 1h 00m</span></th>
      <td>≤ 0.01 over ≥ 1,000 samples</td>
      <td>not measured in this stage yet</td>`,
			`Last gate verdict: gate crash_rate: 120 samples, need 1000`,
			`<td>rollout.hold</td>`,
		} {
			require.Contains(t, strings.ReplaceAll(page, "<code>rollout.hold</code>", "rollout.hold"), want)
		}
	})
}

// TestReleasePageShowsGateMeasurements: every gate rule of a lane (here a
// Sentry and a Prometheus gate) is shown with its provider, what it
// measures, its bounds and minimum samples, and its newest stored
// measurement of the current stage — value, samples, time, the outcome the
// gate judged and its failures in a row against failure_limit. Older
// stages' measurements do not count.
func TestReleasePageShowsGateMeasurements(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		ctx := context.Background()
		minRate := 0.99
		sentry := release.GateRule{Provider: release.ProviderSentry, Metric: "crash_free_rate(session)", Min: &minRate, NoMax: true,
			MinSamples: 1000, FailureLimit: 2, Interval: release.Duration(time.Hour)}
		prom := release.GateRule{Provider: release.ProviderPrometheus, Query: `sum(rate(api_errors_total{release="{{.Release}}"}[5m]))`, Max: 0.05,
			Interval: release.Duration(5 * time.Minute)}
		stage := t0.Add(time.Hour)
		l, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: b.rel.ID, Platform: release.IOS, Kind: release.KindStore, Reason: "phased release",
			Plan:   release.StagedPlan([]int{1, 2, 5}, release.Wait{Soak: release.Duration(24 * time.Hour)}, []release.GateRule{sentry, prom}),
			Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 1, StepStartedAt: stage, StageStartedAt: stage}}, t0)
		require.NoError(t, err)
		measure := func(r release.GateRule, rd release.Reading, at time.Time) {
			t.Helper()
			m := release.Judge(r, rd, at)
			m.LaneID, m.Percent = l.ID, 1
			_, err := b.st.RecordMeasurement(ctx, m)
			require.NoError(t, err)
		}
		// Before the stage: a success that must not reset the failures.
		measure(sentry, release.Reading{Value: 0.999, Samples: 4000}, stage.Add(-time.Minute))
		measure(sentry, release.Reading{Value: 0.97, Samples: 3900}, stage.Add(30*time.Minute))
		measure(sentry, release.Reading{Value: 0.962, Samples: 5120, Source: `release:"com.acme@1.4.0+42"`,
			Values: map[string]float64{"crash_free_rate(session)": 0.962, "sum(session)": 5120}}, stage.Add(90*time.Minute))
		measure(prom, release.Reading{Value: 0.012, Samples: 1, Source: `sum(rate(api_errors_total{release="1.4.0"}[5m]))`}, stage.Add(95*time.Minute))
		b.clock.Add(3 * time.Hour)

		br := b.signIn(t, b.srv.URL, viewerSecret)
		res, page := br.get("/releases/" + b.rel.ID)
		require.Equal(t, http.StatusOK, res.StatusCode)
		panel := page[strings.Index(page, `id="lane-`+l.ID+`"`):]
		panel = panel[:strings.Index(panel, "</section>")]
		for _, want := range []string{
			`<li class="step step-later"><span class="step-label">Gate</span> <span class="phase">later</span> <span class="detail">sentry crash_free_rate(session) ≥ 0.99, prometheus &#34;sum(rate(api_errors_total{release=\&#34;{{.Release}}\&#34;}[5m]))&#34; ≤ 0.05</span>`,
			// Sentry: below its minimum twice in a row, the limit allows two.
			`<th scope="row"><span class="provider">sentry</span> <code>crash_free_rate(session)</code> <span class="every">every 1h 00m</span></th>
      <td>≥ 0.99 over ≥ 1,000 samples</td>
      <td>0.962 (5,120 samples), <time datetime="2026-12-01T11:30:00Z">2026-12-01 11:30:00 UTC</time> <span class="source">release:&#34;com.acme@1.4.0&#43;42&#34;</span></td>
      <td><span class="verdict verdict-failed">failed</span> <span class="detail">0.962 is below min 0.99 over 5120 samples</span></td>
      <td>2 of 2 allowed</td>`,
			// Prometheus: one value, within its maximum.
			`<th scope="row"><span class="provider">prometheus</span> <code class="query">sum(rate(api_errors_total{release=&#34;{{.Release}}&#34;}[5m]))</code> <span class="every">every 5m 00s</span></th>
      <td>≤ 0.05</td>
      <td>0.012, <time datetime="2026-12-01T11:35:00Z">2026-12-01 11:35:00 UTC</time> <span class="source">sum(rate(api_errors_total{release=&#34;1.4.0&#34;}[5m]))</span></td>
      <td><span class="verdict verdict-successful">successful</span> <span class="detail">0.012 is ≤ 0.05</span></td>
      <td>0 of 0 allowed</td>`,
		} {
			require.Contains(t, panel, want)
		}
		require.NotContains(t, panel, "Last gate verdict", "measured values replace the audit log's last verdict")
	})
}

func TestApprovalWaitingIsShownAndApprovable(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite)
	ctx := context.Background()
	plan := release.StagedPlan(release.DefaultStages, release.Wait{}, nil)
	plan.Steps = append([]release.Step{{Approval: &release.Approval{Reason: "start the production rollout"}}}, plan.Steps...)
	l, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: b.rel.ID, Platform: release.IOS, Kind: release.KindStore, Plan: plan,
		Status: release.Status{State: release.StateWaiting, Reason: "waiting for approval: start the production rollout"}}, t0)
	require.NoError(t, err)
	br := b.signIn(t, b.srv.URL, opSecret)
	_, page := br.get("/releases/" + b.rel.ID)
	require.Contains(t, page, `<dd class="approval">waiting for approval: start the production rollout</dd>`)
	require.Contains(t, page, `href="/lanes/`+l.ID+`/approve" data-confirm`)
	_, page = br.get("/lanes/" + l.ID + "/approve")
	require.Contains(t, page, "This puts the release in front of more users.")
}

func TestReleasesListFiltersAndPages(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		ctx := context.Background()
		require.NoError(t, b.st.UpsertApp(ctx, release.App{Name: "zeta", Repository: "acme/zeta"}, t0))
		for i := range 60 {
			app, st := "acme", release.ReleaseCompleted
			if i%2 == 1 {
				app, st = "zeta", release.ReleaseActive
			}
			_, _, err := b.st.CreateRelease(ctx, release.Release{App: app, Tag: fmt.Sprintf("v2.%d.0", i), Version: "2.0", Commit: "c", State: st,
				CreatedAt: t0.Add(time.Duration(i+1) * time.Minute)})
			require.NoError(t, err)
		}
		br := b.signIn(t, b.srv.URL, viewerSecret)
		res, page := br.get("/")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, dashboard.PageSize, strings.Count(page, `<th scope="row"><a href="/releases/`))
		require.Contains(t, page, "zeta v2.59.0", "newest first")
		require.NotContains(t, page, "← Newer")
		older := between(page, `<a href="`, `" rel="next">Older →</a>`)
		res, page = br.get(strings.ReplaceAll(older, "&amp;", "&"))
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, page, "acme v2.34.0")
		require.Contains(t, page, "← Newer")
		newer := between(page, `<a href="`, `" rel="prev">← Newer</a>`)
		_, page = br.get(strings.ReplaceAll(newer, "&amp;", "&"))
		require.Contains(t, page, "zeta v2.59.0", "back to the first page")
		require.NotContains(t, page, "← Newer")

		_, page = br.get("/?app=zeta&state=active")
		require.Equal(t, 25, strings.Count(page, `<th scope="row"><a href="/releases/`))
		require.NotContains(t, page, "acme v2.")
		require.Contains(t, page, `<option value="zeta" selected>zeta</option>`)
		require.Contains(t, page, `Older →`)
		older = between(page, `<a href="`, `" rel="next">Older →</a>`)
		require.Contains(t, older, "app=zeta")
		_, page = br.get(strings.ReplaceAll(older, "&amp;", "&"))
		require.Equal(t, 5, strings.Count(page, `<th scope="row"><a href="/releases/`))
		require.NotContains(t, page, "Older →")

		_, page = br.get("/?state=completed&app=acme")
		require.Contains(t, page, "acme v2.58.0")
		require.NotContains(t, page, "acme v1.4.0", "v1.4.0 is active")

		res, page = br.get("/?state=exploded")
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
		require.Contains(t, page, `state: &#34;exploded&#34; is not one of planning, active, completed, failed, cancelled`)
		res, page = br.get("/?before=yesterday")
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
		require.Contains(t, page, `before: &#34;yesterday&#34; is not a position in the releases list`)
	})
}

func between(s, prefix, suffix string) string {
	end := strings.Index(s, suffix)
	if end < 0 {
		return ""
	}
	start := strings.LastIndex(s[:end], prefix)
	return s[start+len(prefix) : end]
}

// readSSE reads server-sent events from res until want is in one, and
// returns it.
func readSSE(t *testing.T, sc *bufio.Scanner, want string) string {
	t.Helper()
	var ev strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if strings.Contains(ev.String(), want) {
				return ev.String()
			}
			ev.Reset()
			continue
		}
		ev.WriteString(line + "\n")
	}
	t.Fatalf("stream ended before %q: %v", want, sc.Err())
	return ""
}

func TestLiveUpdatesComeFromTheAuditLogOnEveryReplica(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		ctx := context.Background()
		other, _ := b.replica(t, nil)
		br := b.signIn(t, other.URL, viewerSecret)
		last, err := b.st.LastEventID(ctx)
		require.NoError(t, err)

		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, other.URL+"/releases/"+b.rel.ID+"/live?after="+fmt.Sprint(last), nil)
		req.Header.Set("Accept", "text/event-stream")
		res, err := br.c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)

		// An operator halts through the first replica; the stream on the
		// other one sees it from the shared audit log.
		op := b.signIn(t, b.srv.URL, opSecret)
		_, page := op.get("/lanes/" + b.lane.ID + "/halt")
		res2, _ := op.post("/lanes/"+b.lane.ID+"/halt", url.Values{"csrf": {csrfOf(t, page)}, "reason": {"ANR spike"}})
		require.Equal(t, http.StatusSeeOther, res2.StatusCode)

		ev := readSSE(t, sc, `data-state=\"halted\"`)
		// The halt is accepted (command.requested) before it is applied
		// (command.halt); a pass may see the first alone and the lane
		// already halted when it renders it: read on to the halt itself.
		for !strings.Contains(ev, "command.halt") {
			ev += readSSE(t, sc, "event: update")
		}
		require.Contains(t, ev, "event: update")
		require.Contains(t, ev, `command.halt`)
		require.Contains(t, ev, "ANR spike")
		require.Contains(t, ev, `android lane: halted at 10 %`)
		require.NotContains(t, ev, "data-confirm", "a viewer's stream carries no command buttons")

		// A reconnect with Last-Event-ID resumes after it: nothing is
		// replayed, and the next change arrives.
		var lastID string
		for _, line := range strings.Split(ev, "\n") {
			if s, ok := strings.CutPrefix(line, "id: "); ok {
				lastID = s
			}
		}
		require.NotEmpty(t, lastID)
		cancel()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, other.URL+"/releases/"+b.rel.ID+"/live", nil)
		req.Header.Set("Last-Event-ID", lastID)
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		defer rcancel()
		res, err = br.c.Do(req.WithContext(rctx))
		require.NoError(t, err)
		defer res.Body.Close()
		sc = bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		_, err = b.st.AppendEvent(ctx, release.Event{At: t0, Actor: "token:ops", ReleaseID: b.rel.ID, LaneID: b.lane.ID, Kind: "note", Details: map[string]any{"reason": "second"}})
		require.NoError(t, err)
		ev = readSSE(t, sc, "event: update")
		require.Contains(t, ev, "second")
		require.NotContains(t, ev, "command.halt", "resumed after the last event")
	})
}

func TestLiveAndPanelsNeedASession(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite)
	br := newBrowser(t, b.srv.URL)
	for _, p := range []string{"/releases/" + b.rel.ID + "/live?after=0", "/releases/" + b.rel.ID + "/panels?partial=1"} {
		req, _ := http.NewRequest(http.MethodGet, b.srv.URL+p, nil)
		req.Header.Set("Accept", "text/event-stream")
		res, err := br.c.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, p)
	}
	br = b.signIn(t, b.srv.URL, viewerSecret)
	res, page := br.get("/releases/" + b.rel.ID + "/panels")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `id="lane-`+b.lane.ID+`"`)
	require.NotContains(t, page, "<html")
	res, _ = br.get("/releases/rel_missing")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = br.get("/releases/" + b.rel.ID + "/live")
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "a stream must say where it starts")
}

func TestOTAPageShowsDeploymentsReleasesAndAdoption(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, e store.Engine) {
		b := setup(t, e)
		cp := store.NewCodePush(b.db)
		srv, _ := b.replica(t, nil, func(d *dashboard.Deps) { d.OTA = cp })
		ctx := context.Background()
		const prodKey = "production-key-0123456789abcdef"
		require.NoError(t, cp.SaveApp(ctx, codepush.App{Name: "acme-ios", CreatedAt: t0,
			Deployments: []codepush.Deployment{{Name: "Staging", Key: "staging-key-0123456789abcdef"}, {Name: "Production", Key: prodKey}}}))
		for i, r := range []codepush.Release{
			{Label: "v1", AppVersion: "1.0.0", Rollout: 100, Method: codepush.MethodPromote, OriginalLabel: "v1", OriginalDeployment: "Staging", ReleasedBy: "token:ops", PackageHash: "h1", UploadTime: t0},
			{Label: "v2", AppVersion: "1.0.0", Rollout: 25, Method: codepush.MethodPromote, Description: "fix greeting", PackageHash: "h2", UploadTime: t0.Add(time.Hour)},
		} {
			require.NoError(t, cp.AppendRelease(ctx, prodKey, r), i)
		}
		require.NoError(t, cp.AddCounts(ctx, []codepush.CountDelta{
			{DeploymentKey: prodKey, Label: "v1", Counts: codepush.Counts{Active: 1200, Downloaded: 1500, Installed: 1490, Failed: 10}},
			{DeploymentKey: prodKey, Label: "v2", Counts: codepush.Counts{Active: 300, Downloaded: 320, Installed: 304, Failed: 16}},
		}))
		lane, err := b.st.CreateLane(ctx, release.Lane{ReleaseID: b.rel.ID, Platform: release.IOS, Kind: release.KindOTA, Reason: "JS-only change",
			Plan: release.StagedPlan(release.DefaultStages, release.Wait{}, nil), Status: release.Status{State: release.StateRolling, StepIndex: 1, Percent: 25}}, t0)
		require.NoError(t, err)
		require.NoError(t, b.st.SetLaneData(ctx, lane.ID, map[string]any{"codepush_app": "acme-ios", "production_label": "v2", "staging_label": "v2"}, t0))

		br := b.signIn(t, srv.URL, viewerSecret)
		res, page := br.get("/ota")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, page, `<h2 id="app-acme-ios-h">acme-ios</h2>`)
		require.Contains(t, page, `<caption>Production</caption>`)
		require.Contains(t, page, `<caption>Staging</caption>`)
		require.Contains(t, page, "No releases yet.")
		require.Regexp(t, `(?s)<code>v2</code>.*25 %.*fix greeting.*<td>300</td><td>320</td><td>304</td><td>16</td>\s*<td>95.0 %</td>.*<code>v1</code>.*Promote of v1 \(Staging\).*by token:ops.*<td>1,200</td><td>1,500</td><td>1,490</td><td>10</td>\s*<td>99.3 %</td>`, page)
		require.NotContains(t, page, prodKey, "deployment keys stay off the page")

		_, page = br.get("/releases/" + b.rel.ID)
		require.Contains(t, page, `CodePush <a href="/ota#app-acme-ios">acme-ios</a> Production <code>v2</code>: 300 active, 320 downloaded, 304 installed, 16 failed`)
		require.Contains(t, page, `<span class="kind kind-ota">OTA</span>`)

		res, _ = br.get("/ota")
		require.Equal(t, http.StatusOK, res.StatusCode)
		res, _ = newBrowser(t, b.srv.URL).get("/ota")
		require.Equal(t, http.StatusNotFound, res.StatusCode, "without an OTA reader the page does not exist")
	})
}

// TestReleasePageShowsTagStatus: a release whose tag moved or was deleted
// says so under its title, as the API's tag_status does, and links the
// release that took the tag over.
func TestReleasePageShowsTagStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite)
	ctx := context.Background()
	br := b.signIn(t, b.srv.URL, viewerSecret)
	_, page := br.get("/releases/" + b.rel.ID)
	require.NotContains(t, page, `class="tag-status"`, "the tag still names the release's commit")

	_, err := b.st.SetTagState(ctx, b.rel.ID, release.TagMoved, "def4567890abcdef", t0)
	require.NoError(t, err)
	_, page = br.get("/releases/" + b.rel.ID)
	require.Contains(t, page, `<p class="tag-status" role="note"><strong>Tag:</strong> tag v1.4.0 moved to def4567890ab; this release stays on abc123 (on_tag_move: refuse) — tag a new version to ship def4567890ab</p>`)

	next, err := b.st.SupersedeRelease(ctx, b.rel.ID, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "def4567890abcdef", CreatedAt: t0})
	require.NoError(t, err)
	_, page = br.get("/releases/" + b.rel.ID)
	require.Contains(t, page, `<strong>Tag:</strong> tag v1.4.0 moved to def4567890ab; release `+next.ID+` restarted it there`)
	require.Contains(t, page, `<a href="/releases/`+next.ID+`">Open release `+next.ID+`</a>, which took over the tag.`)

	_, err = b.st.SetTagState(ctx, next.ID, release.TagDeleted, "", t0)
	require.NoError(t, err)
	_, page = br.get("/releases/" + next.ID)
	require.Contains(t, page, `<strong>Tag:</strong> tag v1.4.0 was deleted; lanes that had not passed their point of no return were cancelled</p>`)
}
