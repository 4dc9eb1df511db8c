package sentrytest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/gate/sentrytest"
)

const token = "sntrys_test_0123456789"

// The clock of Sentry's own tests of this endpoint
// (tests/snuba/api/endpoints/test_organization_sessions.py).
var sentryNow = time.Date(2021, 1, 14, 12, 27, 28, 303000000, time.UTC)

type bundle struct {
	fake *sentrytest.Server
	url  string
}

func setup(t *testing.T, now time.Time) *bundle {
	t.Helper()
	fake := sentrytest.New("acme", func() time.Time { return now })
	fake.AddToken(token)
	fake.AddProject("mobile")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &bundle{fake: fake, url: srv.URL + "/api/0/organizations/acme/sessions/"}
}

func (b *bundle) get(t *testing.T, q url.Values, tok string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url+"?"+q.Encode(), nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	if res.StatusCode != http.StatusServiceUnavailable {
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	}
	return res.StatusCode, body
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// TestRules: each rule the schema's descriptions and Sentry's server state,
// answered with Sentry's status and error body.
func TestRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		q      url.Values
		tok    string
		status int
		detail string
		// outside the contract as well: the fake records it
		violates bool
	}{
		{"no token", vals("field", "sum(session)"), "", 401, "Authentication credentials were not provided.", false},
		{"unknown token", vals("field", "sum(session)"), "sntrys_other", 401, "Invalid token", false},
		{"no field", vals("statsPeriod", "1d"), token, 400, `Request is missing a "field"`, true},
		{"unknown field", vals("field", "summ(sessin)"), token, 400, `Invalid field: "summ(sessin)"`, false},
		{"unknown groupBy", vals("field", "sum(session)", "groupBy", "envriomnent"), token, 400, `Invalid groupBy: "envriomnent"`, false},
		{"rate by session.status", vals("field", "crash_free_rate(session)", "groupBy", "session.status"), token, 400, "Cannot group field crash_free_rate(session) by session.status", false},
		{"orderBy not a field", vals("field", "sum(session)", "orderBy", "count_unique(user)"), token, 400, "'orderBy' must be one of the provided 'fields'", false},
		{"interval under an hour", vals("field", "sum(session)", "statsPeriod", "1d", "interval", "30m"), token, 400, "The interval has to be a multiple of the minimum interval of one hour.", false},
		{"interval over a day", vals("field", "sum(session)", "statsPeriod", "7d", "interval", "2d"), token, 400, "The interval has to be less than one day.", false},
		{"interval not dividing a day", vals("field", "sum(session)", "statsPeriod", "1d", "interval", "5h"), token, 400, "The interval should divide one day without a remainder.", false},
		{"too many points", vals("field", "sum(session)", "statsPeriod", "500d", "interval", "1h"), token, 400, "Your interval and date range would create too many results. Use a larger interval, or a smaller date range.", false},
		{"bad statsPeriod", vals("field", "sum(session)", "statsPeriod", "shrug"), token, 400, "Invalid statsPeriod: 'shrug'", false},
		{"start without end", vals("field", "sum(session)", "start", "2021-01-14T00:00:00Z"), token, 400, "start and end are both required", false},
		{"bad date", vals("field", "sum(session)", "start", "shrug", "end", "2021-01-14T00:00:00Z"), token, 400, "shrug is not a valid ISO8601 date query", true},
		{"unknown query field", vals("field", "sum(session)", "statsPeriod", "1d", "query", "foo:bar"), token, 400, `Invalid query field: "foo"`, false},
		{"wildcard", vals("field", "sum(session)", "statsPeriod", "1d", "query", "release:foo@*"), token, 400, "Invalid condition: wildcard search is not supported", false},
		{"inaccessible project", vals("field", "sum(session)", "project", "4711"), token, 403, "You do not have permission to perform this action.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, sentryNow)
			status, body := b.get(t, tt.q, tt.tok)
			require.Equal(t, tt.status, status)
			require.Equal(t, map[string]any{"detail": tt.detail}, body)
			require.Equal(t, tt.violates, len(b.fake.Violations()) > 0, b.fake.Violations())
		})
	}
}

// TestDateRounding replays Sentry's own expectations of the rounding of
// statsPeriod windows (test_timeseries_interval).
func TestDateRounding(t *testing.T) {
	t.Parallel()
	b := setup(t, sentryNow)
	status, body := b.get(t, vals("project", "-1", "statsPeriod", "1d", "interval", "1d", "field", "sum(session)"), token)
	require.Equal(t, 200, status)
	require.Equal(t, "2021-01-14T00:00:00Z", body["start"])
	require.Equal(t, "2021-01-14T12:28:00Z", body["end"])
	require.Equal(t, []any{"2021-01-14T00:00:00Z"}, body["intervals"])
	require.Equal(t, "", body["query"])

	_, body = b.get(t, vals("project", "-1", "statsPeriod", "1d", "interval", "6h", "field", "sum(session)"), token)
	require.Equal(t, "2021-01-13T18:00:00Z", body["start"])
	require.Equal(t, []any{"2021-01-13T18:00:00Z", "2021-01-14T00:00:00Z", "2021-01-14T06:00:00Z", "2021-01-14T12:00:00Z"}, body["intervals"])

	// An explicit window's end is inclusive, so it is rounded up to the
	// next hour, and its length up to whole hours counted back from there:
	// 09:20 to 11:00 is the two hours from 10:00 to 12:00.
	_, body = b.get(t, vals("field", "sum(session)", "start", "2021-01-13T09:20:00Z", "end", "2021-01-13T11:00:00Z", "interval", "1h"), token)
	require.Equal(t, "2021-01-13T10:00:00Z", body["start"])
	require.Equal(t, "2021-01-13T12:00:00Z", body["end"])
	require.Len(t, body["intervals"], 2)
	require.Empty(t, b.fake.Violations())
}

func TestCrashFreeRates(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	b := setup(t, now)
	rel := "com.acme@1.4.0+42"
	b.fake.SetCrashFree("mobile", "production", rel, now.Add(-3*time.Hour), now, 1000, 400, 0.99)
	b.fake.SetCrashFree("mobile", "staging", rel, now.Add(-3*time.Hour), now, 50, 5, 0.5)
	b.fake.Record("mobile", "production", "com.acme@1.3.0+41", now.Add(-time.Hour), sentrytest.Hour{Sessions: 10, Crashed: 10, Users: 1, CrashedUsers: 1})
	q := vals("field", "crash_free_rate(session)", "field", "crash_free_rate(user)", "field", "sum(session)", "field", "count_unique(user)",
		"project", "mobile", "environment", "production", "query", `release:"`+rel+`"`,
		"start", "2026-11-25T10:00:00Z", "end", "2026-11-25T12:30:00Z", "interval", "1h")
	status, body := b.get(t, q, token)
	require.Equal(t, 200, status)
	require.Equal(t, "2026-11-25T10:00:00Z", body["start"])
	require.Equal(t, "2026-11-25T12:31:00Z", body["end"], "a future end is the next minute")
	groups := body["groups"].([]any)
	require.Len(t, groups, 1)
	g := groups[0].(map[string]any)
	require.Equal(t, map[string]any{}, g["by"])
	totals := g["totals"].(map[string]any)
	require.InDelta(t, 0.99, totals["crash_free_rate(session)"], 1e-9)
	require.InDelta(t, 0.99, totals["crash_free_rate(user)"], 1e-9)
	require.Equal(t, 3000.0, totals["sum(session)"], "10:00, 11:00 and 12:00")
	require.Equal(t, 400.0, totals["count_unique(user)"], "the same 400 users each hour are 400 people, not 1,200")
	require.Len(t, g["series"].(map[string]any)["sum(session)"], 3)

	// Another release has no sessions: no group, not a group of zeros.
	q.Set("query", `release:"com.acme@9.9.9+1"`)
	_, body = b.get(t, q, token)
	require.Equal(t, []any{}, body["groups"])

	// Several releases, grouped.
	q.Set("query", `release:["com.acme@1.4.0+42","com.acme@1.3.0+41"]`)
	q.Set("groupBy", "release")
	_, body = b.get(t, q, token)
	require.Len(t, body["groups"], 2)
	require.Empty(t, b.fake.Violations())
	require.Len(t, b.fake.Requests(), 3)
}

// TestMaxPoints: at most 10,000 data points, so a wide window keeps only
// as many groups as fit.
func TestMaxPoints(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	b := setup(t, now)
	for _, rel := range []string{"a@1", "b@1", "c@1", "d@1", "e@1", "f@1"} {
		b.fake.Record("mobile", "production", rel, now.Add(-time.Hour), sentrytest.Hour{Sessions: 1, Users: 1})
	}
	_, body := b.get(t, vals("field", "sum(session)", "statsPeriod", "90d", "interval", "1h", "groupBy", "release"), token)
	// 90 days back from 12:30 is 2,160 whole hours from 13:00.
	require.Equal(t, 2160, len(body["intervals"].([]any)))
	require.Equal(t, 10000/2160, len(body["groups"].([]any)), "4 of the 6 releases fit in 10,000 points")
}

func TestFaultsAndViolations(t *testing.T) {
	t.Parallel()
	b := setup(t, sentryNow)
	b.fake.Fail(1, http.StatusTooManyRequests, "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds")
	b.fake.Fail(1, http.StatusServiceUnavailable, "")
	status, body := b.get(t, vals("field", "sum(session)"), token)
	require.Equal(t, 429, status)
	require.Contains(t, body["detail"], "too frequently")
	status, _ = b.get(t, vals("field", "sum(session)"), token)
	require.Equal(t, 503, status)
	status, _ = b.get(t, vals("field", "sum(session)"), token)
	require.Equal(t, 200, status, "faults are used up")
	require.Empty(t, b.fake.Violations())

	// A request the schema does not allow is refused and recorded.
	status, _ = b.get(t, vals("field", "sum(session)", "includeTotals", "no"), token)
	require.Equal(t, 400, status)
	require.Len(t, b.fake.Violations(), 1)
	require.Contains(t, b.fake.Violations()[0], "includeTotals")
}

// TestUniqueUsersAreCountedOnce: count_unique(user) and the user crash
// rates over several hours count each person once, as Sentry does, in the
// totals and in a series interval longer than an hour; only different
// releases (or projects, environments) add up.
func TestUniqueUsersAreCountedOnce(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	b := setup(t, now)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	b.fake.Record("mobile", "production", "a@1", day.Add(9*time.Hour), sentrytest.Hour{Sessions: 300, Crashed: 3, Users: 100, CrashedUsers: 2})
	b.fake.Record("mobile", "production", "a@1", day.Add(10*time.Hour), sentrytest.Hour{Sessions: 900, Crashed: 9, Users: 250, CrashedUsers: 5})
	b.fake.Record("mobile", "production", "a@1", day.Add(11*time.Hour), sentrytest.Hour{Sessions: 600, Crashed: 6, Users: 200, CrashedUsers: 4})
	b.fake.Record("mobile", "production", "b@2", day.Add(11*time.Hour), sentrytest.Hour{Sessions: 100, Crashed: 0, Users: 50})
	q := vals("field", "count_unique(user)", "field", "crash_free_rate(user)", "field", "sum(session)", "project", "mobile",
		"query", `release:"a@1"`, "start", "2026-11-25T00:00:00Z", "end", "2026-11-26T00:00:00Z", "interval", "1d")
	status, body := b.get(t, q, token)
	require.Equal(t, 200, status, body)
	g := body["groups"].([]any)[0].(map[string]any)
	totals := g["totals"].(map[string]any)
	require.Equal(t, 250.0, totals["count_unique(user)"], "the busiest hour's users; the others came back")
	require.InDelta(t, 1-5.0/250, totals["crash_free_rate(user)"], 1e-9)
	require.Equal(t, 1800.0, totals["sum(session)"], "sessions do add up")
	require.Equal(t, []any{250.0}, g["series"].(map[string]any)["count_unique(user)"], "a one-day interval counts people once too")

	q.Set("query", `release:["a@1","b@2"]`)
	_, body = b.get(t, q, token)
	totals = body["groups"].([]any)[0].(map[string]any)["totals"].(map[string]any)
	require.Equal(t, 300.0, totals["count_unique(user)"], "two releases' users add up")
}
