// Package sentrytest is a wire-compatible fake of Sentry's release-health
// sessions endpoint, GET /api/0/organizations/{org}/sessions/, for tests and
// the sandbox.
//
// Every request and every answer it gives is checked against the
// release-health paths of Sentry's published OpenAPI schema
// (testdata/sentry-release-health-openapi.json, embedded), and it enforces
// the rules that schema's descriptions and Sentry's server state: bearer
// auth tokens, known fields and groupBy values, an interval of at least one
// hour and at most a day that divides a day, the date range rounded to the
// interval, at most 10,000 data points, and 400 answers with Sentry's error
// body {"detail": "..."} for bad parameters. count_unique(user) and the user
// crash rates count each user once over a window, as Sentry's do (see
// Hour), never the sum of the hours. Tests set crash-free rates per release
// over time and inject failures.
package sentrytest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// spec is Sentry's OpenAPI schema, release-health paths only (source and
// version: testdata/README.md at the module root).
//
//go:embed testdata/sentry-release-health-openapi.json
var spec []byte

var (
	loadOnce sync.Once
	router   routers.Router
	loadErr  error
)

func specRouter() (routers.Router, error) {
	loadOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(spec)
		if err != nil {
			loadErr = fmt.Errorf("sentrytest: loading the OpenAPI schema: %w", err)
			return
		}
		doc.Servers = nil // any host: httptest servers
		router, loadErr = gorillamux.NewRouter(doc)
	})
	return router, loadErr
}

// Hour is one hour of a release's sessions in one project and environment.
//
// Users are people, and count_unique(user) over several hours counts each
// once, as Sentry does: the fake numbers a release's users (per project and
// environment) and an hour's Users are its first Users of them — the same
// people come back — so the distinct users of a window are those of its
// busiest hour, never the sum of the hours; CrashedUsers likewise.
type Hour struct {
	Sessions     int64
	Crashed      int64 // sessions that ended in a crash
	Users        int64 // distinct users with a session that hour
	CrashedUsers int64
}

// people are the distinct users of one release, project and environment
// within a total or one series interval.
type people struct{ users, crashed int64 }

// distinct adds up the distinct users of a group: each series' busiest
// hour, summed over the series (releases, projects, environments) that
// make up the group.
func distinct(h Hour, ps map[seriesKey]people) Hour {
	h.Users, h.CrashedUsers = 0, 0
	for _, p := range ps {
		h.Users += p.users
		h.CrashedUsers += p.crashed
	}
	return h
}

type seriesKey struct {
	project int
	env     string
	release string
}

type fault struct {
	status int
	detail string
}

// Server is the fake. Its zero value is not usable; call New.
type Server struct {
	mu         sync.Mutex
	org        string
	now        func() time.Time
	tokens     map[string]bool
	projects   map[string]int // slug → id
	hours      map[seriesKey]map[int64]Hour
	faults     []fault
	requests   []url.URL
	violations []string
}

// New returns a fake for the organization org; now is its clock (nil:
// time.Now), used for statsPeriod and the rounding of a window's end.
func New(org string, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{org: org, now: now, tokens: map[string]bool{}, projects: map[string]int{}, hours: map[seriesKey]map[int64]Hour{}}
}

// AddToken makes tok a valid auth token.
func (s *Server) AddToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = true
}

// AddProject adds a project and returns its numeric id.
func (s *Server) AddProject(slug string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.projects[slug]; ok {
		return id
	}
	id := 4500000000000000 + len(s.projects) + 1
	s.projects[slug] = id
	return id
}

// Record sets the sessions of release in project and environment during
// the hour that contains at.
func (s *Server) Record(project, environment, release string, at time.Time, h Hour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.projects[project]
	if !ok {
		panic("sentrytest: unknown project " + project)
	}
	k := seriesKey{id, environment, release}
	if s.hours[k] == nil {
		s.hours[k] = map[int64]Hour{}
	}
	s.hours[k][at.UTC().Truncate(time.Hour).Unix()] = h
}

// SetCrashFree records every hour in [from, to) with sessions sessions and
// users users per hour, crashFree of them crash-free (rounded to whole
// sessions and users).
func (s *Server) SetCrashFree(project, environment, release string, from, to time.Time, sessions, users int64, crashFree float64) {
	for h := from.UTC().Truncate(time.Hour); h.Before(to); h = h.Add(time.Hour) {
		s.Record(project, environment, release, h, Hour{
			Sessions: sessions, Crashed: int64(math.Round(float64(sessions) * (1 - crashFree))),
			Users: users, CrashedUsers: int64(math.Round(float64(users) * (1 - crashFree))),
		})
	}
}

// Fail makes the next n sessions requests answer status, with Sentry's
// error body when detail is set.
func (s *Server) Fail(n, status int, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status, detail})
	}
}

// Requests returns the URLs of the sessions requests received, in order.
func (s *Server) Requests() []url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Violations lists the requests and answers that did not match the OpenAPI
// schema. A correct client and a correct fake leave it empty.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, err := specRouter()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	route, params, err := rt.FindRoute(r)
	if err != nil || route.Operation.OperationID != "getOrganizationSessions" {
		// The fake serves the sessions endpoint only.
		detail(w, http.StatusNotFound, "The requested resource does not exist")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, *r.URL)
	s.mu.Unlock()

	auth := r.Header.Get("Authorization")
	tok, bearer := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	known := s.tokens[tok]
	s.mu.Unlock()
	if !bearer || tok == "" {
		s.answer(w, r, route, params, http.StatusUnauthorized, map[string]any{"detail": "Authentication credentials were not provided."})
		return
	}
	if !known {
		s.answer(w, r, route, params, http.StatusUnauthorized, map[string]any{"detail": "Invalid token"})
		return
	}
	// A request outside the contract is recorded as a violation; it is
	// answered as Sentry answers it when Sentry's own checks refuse it too
	// (a missing field, a date that is not a date), else with a 400 that
	// quotes the contract.
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	schemaErr := openapi3filter.ValidateRequest(context.Background(), in)
	if schemaErr != nil {
		s.violation("request %s does not match getOrganizationSessions: %v", r.URL.RequestURI(), schemaErr)
	}
	if params["organization_id_or_slug"] != s.org {
		detail(w, http.StatusNotFound, "The requested resource does not exist")
		return
	}
	s.mu.Lock()
	var f *fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()
	if f != nil {
		if f.status == http.StatusTooManyRequests {
			w.Header().Set("X-Sentry-Rate-Limit-Limit", "40")
			w.Header().Set("X-Sentry-Rate-Limit-Remaining", "0")
			w.Header().Set("X-Sentry-Rate-Limit-Reset", strconv.FormatInt(s.now().Add(time.Second).Unix(), 10))
			w.Header().Set("X-Sentry-Rate-Limit-ConcurrentLimit", "25")
		}
		if f.detail == "" {
			w.WriteHeader(f.status)
			return
		}
		detail(w, f.status, f.detail)
		return
	}
	body, status := s.sessions(r.URL.Query())
	if schemaErr != nil && status == http.StatusOK {
		body, status = map[string]any{"detail": "Invalid request: " + schemaErr.Error()}, http.StatusBadRequest
	}
	s.answer(w, r, route, params, status, body)
}

// answer checks an answer of a status the schema declares (200, 400, 401)
// against it and sends it; one that does not match is a fake bug, answered
// 500. Sentry also answers statuses the schema leaves out (403, 404, 429,
// 5xx); those are sent unchecked.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, route *routers.Route, params map[string]string, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if route.Operation.Responses.Value(strconv.Itoa(status)) == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
		return
	}
	h := http.Header{"Content-Type": {"application/json"}}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: h,
		Body: readCloser(b), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		s.violation("answer %d to %s does not match getOrganizationSessions: %v", status, r.URL.RequestURI(), err)
		http.Error(w, "sentrytest: answer does not match the schema: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func detail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"detail": msg})
}

func readCloser(b []byte) *nopCloser { return &nopCloser{bytes.NewReader(b)} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// invalid is a 400 with Sentry's error body.
type invalid string

func (e invalid) Error() string { return string(e) }

// denied is Sentry's 403 for a project the token cannot see.
type denied string

func (e denied) Error() string { return string(e) }

// fields the sessions endpoint knows, and those that cannot be grouped or
// filtered by session.status.
var (
	knownFields = []string{"sum(session)", "count_unique(user)", "avg(session.duration)", "p50(session.duration)", "p75(session.duration)",
		"p90(session.duration)", "p95(session.duration)", "p99(session.duration)", "max(session.duration)",
		"crash_rate(session)", "crash_rate(user)", "crash_free_rate(session)", "crash_free_rate(user)"}
	rateFields   = []string{"crash_rate(session)", "crash_rate(user)", "crash_free_rate(session)", "crash_free_rate(user)"}
	knownGroupBy = []string{"project", "release", "environment", "session.status"}
)

const (
	oneHour   = int64(3600)
	oneDay    = int64(86400)
	maxPoints = 10000
)

// sessions answers a sessions request: the body and status.
func (s *Server) sessions(q url.Values) (any, int) {
	body, err := s.query(q)
	if _, ok := err.(denied); ok {
		return map[string]any{"detail": err.Error()}, http.StatusForbidden
	}
	if err != nil {
		return map[string]any{"detail": err.Error()}, http.StatusBadRequest
	}
	return body, http.StatusOK
}

func (s *Server) query(q url.Values) (map[string]any, error) {
	fields := q["field"]
	if len(fields) == 0 {
		return nil, invalid(`Request is missing a "field"`)
	}
	for _, f := range fields {
		if !slices.Contains(knownFields, f) {
			return nil, invalid(fmt.Sprintf("Invalid field: %q", f))
		}
	}
	groupBy := q["groupBy"]
	for _, g := range groupBy {
		if !slices.Contains(knownGroupBy, g) {
			return nil, invalid(fmt.Sprintf("Invalid groupBy: %q", g))
		}
		if g == "session.status" {
			for _, f := range fields {
				if slices.Contains(rateFields, f) {
					return nil, invalid(fmt.Sprintf("Cannot group field %s by session.status", f))
				}
			}
		}
	}
	if ob := q["orderBy"]; len(ob) > 0 {
		if len(ob) > 1 {
			return nil, invalid("Cannot order by multiple fields")
		}
		if !slices.Contains(fields, strings.TrimPrefix(ob[0], "-")) {
			return nil, invalid("'orderBy' must be one of the provided 'fields'")
		}
	}
	projects, err := s.projectFilter(q["project"])
	if err != nil {
		return nil, err
	}
	filter, err := parseQuery(q.Get("query"))
	if err != nil {
		return nil, err
	}
	start, end, interval, err := s.window(q)
	if err != nil {
		return nil, err
	}
	var intervals []string
	for t := start.Unix(); t < end.Unix(); t += interval {
		intervals = append(intervals, time.Unix(t, 0).UTC().Format(time.RFC3339))
	}

	type group struct {
		by     map[string]any
		totals Hour
		series []Hour
		status string
		// the users of each series in the totals and in each interval
		totalUsers  map[seriesKey]people
		seriesUsers []map[seriesKey]people
	}
	groups := map[string]*group{}
	var order []string
	s.mu.Lock()
	for k, hours := range s.hours {
		if !projects[k.project] || !filter.match(k) {
			continue
		}
		if envs := q["environment"]; len(envs) > 0 && !slices.Contains(envs, k.env) {
			continue
		}
		for ts, h := range hours {
			if ts < start.Unix() || ts >= end.Unix() || (h.Sessions == 0 && h.Users == 0) {
				continue
			}
			statuses := []string{""}
			if slices.Contains(groupBy, "session.status") {
				statuses = []string{"healthy", "errored", "crashed", "abnormal"}
			}
			for _, st := range statuses {
				by := map[string]any{}
				for _, g := range groupBy {
					switch g {
					case "project":
						by["project"] = k.project
					case "release":
						by["release"] = k.release
					case "environment":
						by["environment"] = k.env
					case "session.status":
						by["session.status"] = st
					}
				}
				key, _ := json.Marshal(by)
				g, ok := groups[string(key)]
				if !ok {
					g = &group{by: by, series: make([]Hour, len(intervals)), status: st,
						totalUsers: map[seriesKey]people{}, seriesUsers: make([]map[seriesKey]people, len(intervals))}
					groups[string(key)] = g
					order = append(order, string(key))
				}
				part := byStatus(h, st)
				g.totals = add(g.totals, part)
				i := (ts - start.Unix()) / interval
				g.series[i] = add(g.series[i], part)
				if g.seriesUsers[i] == nil {
					g.seriesUsers[i] = map[seriesKey]people{}
				}
				for _, ps := range []map[seriesKey]people{g.totalUsers, g.seriesUsers[i]} {
					p := ps[k]
					ps[k] = people{max(p.users, part.Users), max(p.crashed, part.CrashedUsers)}
				}
			}
		}
	}
	s.mu.Unlock()
	sort.Strings(order)
	if len(intervals) > 0 && len(order) > maxPoints/len(intervals) {
		// At most 10,000 data points: the groups beyond are left out.
		order = order[:maxPoints/len(intervals)]
	}
	outGroups := []any{}
	includeTotals, includeSeries := q.Get("includeTotals") != "0", q.Get("includeSeries") != "0"
	for _, key := range order {
		g := groups[key]
		g.totals = distinct(g.totals, g.totalUsers)
		for i := range g.series {
			g.series[i] = distinct(g.series[i], g.seriesUsers[i])
		}
		totals, series := map[string]any{}, map[string]any{}
		for _, f := range fields {
			if includeTotals {
				totals[f] = value(f, g.totals)
			}
			if includeSeries {
				vals := make([]any, len(g.series))
				for i, h := range g.series {
					vals[i] = value(f, h)
				}
				series[f] = vals
			}
		}
		outGroups = append(outGroups, map[string]any{"by": g.by, "totals": totals, "series": series})
	}
	if intervals == nil {
		intervals = []string{}
	}
	return map[string]any{
		"start":     start.UTC().Format(time.RFC3339),
		"end":       end.UTC().Format(time.RFC3339),
		"intervals": intervals,
		"groups":    outGroups,
		"query":     q.Get("query"),
	}, nil
}

func add(a, b Hour) Hour {
	return Hour{a.Sessions + b.Sessions, a.Crashed + b.Crashed, a.Users + b.Users, a.CrashedUsers + b.CrashedUsers}
}

// byStatus is the part of an hour in one session.status group ("" for
// all). The fake records crashes only, so nothing is errored or abnormal.
func byStatus(h Hour, status string) Hour {
	switch status {
	case "healthy":
		return Hour{Sessions: h.Sessions - h.Crashed, Users: h.Users - h.CrashedUsers}
	case "crashed":
		return Hour{Sessions: h.Crashed, Crashed: h.Crashed, Users: h.CrashedUsers, CrashedUsers: h.CrashedUsers}
	case "errored", "abnormal":
		return Hour{}
	}
	return h
}

// value is one field of an hour or a total: counts are 0 without data,
// rates null, durations null (Sentry stopped recording session duration in
// January 2023).
func value(field string, h Hour) any {
	ratio := func(bad, all int64) any {
		if all <= 0 {
			return nil
		}
		return float64(bad) / float64(all)
	}
	free := func(bad, all int64) any {
		if all <= 0 {
			return nil
		}
		return 1 - float64(bad)/float64(all)
	}
	switch field {
	case "sum(session)":
		return h.Sessions
	case "count_unique(user)":
		return h.Users
	case "crash_rate(session)":
		return ratio(h.Crashed, h.Sessions)
	case "crash_rate(user)":
		return ratio(h.CrashedUsers, h.Users)
	case "crash_free_rate(session)":
		return free(h.Crashed, h.Sessions)
	case "crash_free_rate(user)":
		return free(h.CrashedUsers, h.Users)
	}
	return nil
}

// projectFilter resolves the project parameter: ids or slugs, -1 or none
// for every project. A project the token cannot see is 403 in Sentry; the
// schema declares no 403, so that answer is not checked against it.
func (s *Server) projectFilter(ps []string) (map[int]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := map[int]bool{}
	for _, id := range s.projects {
		all[id] = true
	}
	if len(ps) == 0 || slices.Contains(ps, "-1") {
		return all, nil
	}
	out := map[int]bool{}
	for _, p := range ps {
		if id, ok := s.projects[p]; ok {
			out[id] = true
			continue
		}
		id, err := strconv.Atoi(p)
		if err != nil || !all[id] {
			return nil, denied("You do not have permission to perform this action.")
		}
		out[id] = true
	}
	return out, nil
}

var periodRe = regexp.MustCompile(`^(\d+)([hdmsw]?)$`)

// parsePeriod reads Sentry's stats periods: 24h, 14d, 30m, 90s, 2w.
func parsePeriod(v string) (time.Duration, bool) {
	m := periodRe.FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > 1<<40 {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Second, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, true
}

// parseDate reads ISO 8601 dates as Sentry does, a time without a zone
// being UTC.
func parseDate(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// window applies Sentry's date-range rules (get_constrained_date_range):
// the interval is whole hours, at most a day, dividing a day; statsPeriod
// overrides start and end; the range is rounded up to whole intervals and
// aligned to them; at most 10,000 points; an end in the future becomes the
// next minute.
func (s *Server) window(q url.Values) (start, end time.Time, interval int64, err error) {
	interval = oneHour
	if v := q.Get("interval"); v != "" {
		if d, ok := parsePeriod(v); ok {
			interval = int64(d / time.Second)
		}
	}
	switch {
	case interval%oneHour != 0 || interval < oneHour:
		return start, end, 0, invalid("The interval has to be a multiple of the minimum interval of one hour.")
	case interval > oneDay:
		return start, end, 0, invalid("The interval has to be less than one day.")
	case oneDay%interval != 0:
		return start, end, 0, invalid("The interval should divide one day without a remainder.")
	}
	now := s.now().UTC()
	start, end = now.Add(-90*24*time.Hour), now
	switch {
	case q.Get("statsPeriod") != "":
		p, ok := parsePeriod(q.Get("statsPeriod"))
		if !ok {
			return start, end, 0, invalid(fmt.Sprintf("Invalid statsPeriod: '%s'", q.Get("statsPeriod")))
		}
		start = now.Add(-p)
	case q.Get("start") != "" || q.Get("end") != "":
		if q.Get("start") == "" || q.Get("end") == "" {
			return start, end, 0, invalid("start and end are both required")
		}
		var ok bool
		if start, ok = parseDate(q.Get("start")); !ok {
			return start, end, 0, invalid(q.Get("start") + " is not a valid ISO8601 date query")
		}
		if end, ok = parseDate(q.Get("end")); !ok {
			return start, end, 0, invalid(q.Get("end") + " is not a valid ISO8601 date query")
		}
		if start.After(end) {
			return start, end, 0, invalid("start must be before end")
		}
		// An explicit end is inclusive.
		end = end.Add(time.Second)
	}
	rounding := int64(math.Ceil(float64(interval)/float64(oneHour))) * oneHour
	span := end.Sub(start).Seconds()
	rangeSecs := rounding * int64(math.Ceil(span/float64(rounding)))
	if rangeSecs/interval > maxPoints {
		return start, end, 0, invalid("Your interval and date range would create too many results. Use a larger interval, or a smaller date range.")
	}
	endTS := rounding * int64(math.Ceil(float64(end.Unix())/float64(rounding))) // end seconds, rounded up
	if float64(end.UnixNano())/1e9 > float64(endTS) {
		endTS += rounding
	}
	roundedEnd := time.Unix(endTS, 0).UTC()
	if rounding > interval && roundedEnd.Add(-time.Duration(rangeSecs)*time.Second).After(start) {
		rangeSecs += rounding
	}
	start = roundedEnd.Add(-time.Duration(rangeSecs) * time.Second)
	end = roundedEnd
	if end.After(now) {
		end = now.Truncate(time.Minute).Add(time.Minute)
	}
	return start, end, interval, nil
}

// filter is a parsed sessions query: release and environment conditions
// joined by AND.
type filter struct {
	conds []cond
}

type cond struct {
	key    string
	values []string
	negate bool
}

func (f filter) match(k seriesKey) bool {
	for _, c := range f.conds {
		var v string
		switch c.key {
		case "release":
			v = k.release
		case "environment":
			v = k.env
		case "project":
			v = strconv.Itoa(k.project)
		}
		if slices.Contains(c.values, v) == c.negate {
			return false
		}
	}
	return true
}

// parseQuery reads Sentry's search syntax as far as sessions support it:
// key:value, key:"quoted value", key:[a,"b"], !key:value, joined by spaces
// or AND. Keys are release, environment and project. The fake does not
// implement OR and answers it with a 400 saying so.
func parseQuery(q string) (filter, error) {
	var f filter
	toks, err := tokens(q)
	if err != nil {
		return f, err
	}
	for _, t := range toks {
		if t == "AND" {
			continue
		}
		if t == "OR" {
			return f, invalid("sentrytest implements AND of conditions only, not OR")
		}
		c := cond{}
		if strings.HasPrefix(t, "!") {
			c.negate, t = true, t[1:]
		}
		key, raw, ok := strings.Cut(t, ":")
		if !ok {
			// Free text searches the message, which sessions do not have.
			return f, invalid(`Invalid query field: "message"`)
		}
		switch key {
		case "release", "environment", "project":
		default:
			return f, invalid(fmt.Sprintf("Invalid query field: %q", key))
		}
		c.key = key
		if strings.HasPrefix(raw, "[") && strings.HasSuffix(raw, "]") {
			for _, part := range splitList(raw[1 : len(raw)-1]) {
				v, err := unquote(strings.TrimSpace(part))
				if err != nil {
					return f, err
				}
				c.values = append(c.values, v)
			}
		} else {
			v, err := unquote(raw)
			if err != nil {
				return f, err
			}
			c.values = []string{v}
		}
		for _, v := range c.values {
			if strings.Contains(v, "*") {
				return f, invalid("Invalid condition: wildcard search is not supported")
			}
		}
		f.conds = append(f.conds, c)
	}
	return f, nil
}

// tokens splits a query at spaces outside quotes and brackets.
func tokens(q string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQuote, depth := false, 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(q):
			cur.WriteByte(c)
			cur.WriteByte(q[i+1])
			i++
			continue
		case c == '"':
			inQuote = !inQuote
		case c == '[' && !inQuote:
			depth++
		case c == ']' && !inQuote:
			depth--
		case c == ' ' && !inQuote && depth == 0:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteByte(c)
	}
	if inQuote || depth != 0 {
		return nil, invalid("Parse error at '" + q + "' (column 1). This is commonly caused by unmatched parentheses. Enclose any text in double quotes.")
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
			continue
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(out, cur.String())
}

func unquote(v string) (string, error) {
	if !strings.HasPrefix(v, `"`) {
		return v, nil
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", invalid("Parse error: unterminated quoted value " + v)
	}
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1]), nil
}
