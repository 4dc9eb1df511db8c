package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Sentry metrics a sentry gate rule may bound. The crash-free rates are
// Sentry's own fields; a crash rate is one minus its crash-free rate.
const (
	CrashFreeSessions = "crash_free_rate(session)"
	CrashFreeUsers    = "crash_free_rate(user)"
	CrashRateSessions = "crash_rate(session)"
	CrashRateUsers    = "crash_rate(user)"
	sumSessions       = "sum(session)"
	uniqueUsers       = "count_unique(user)"
)

// SentryMetrics lists the metrics a sentry rule may name.
var SentryMetrics = []string{CrashFreeSessions, CrashFreeUsers, CrashRateSessions, CrashRateUsers}

// sentryFields are the fields every sessions request asks for: both
// crash-free rates and the sessions and users behind them, so that every
// sentry rule of a release shares one request.
var sentryFields = []string{CrashFreeSessions, CrashFreeUsers, sumSessions, uniqueUsers}

// Release-name templates after Sentry's React Native documentation: a
// store binary is <bundle id or package>@<version>+<build>; an OTA update
// is <binary version>-codepush:<label>, as its CodePush guide sets it with
// Sentry.setRelease(update.appVersion + '-codepush:' + update.label).
const (
	DefaultSentryRelease    = "{{.BundleID}}@{{.Version}}+{{.Build}}"
	DefaultSentryOTARelease = "{{.Version}}-codepush:{{.Label}}"
)

// DefaultSentryURL is sentry.io's API host.
const DefaultSentryURL = "https://sentry.io/"

// SentryApp is where an app's sessions live in Sentry and how its releases
// are named there.
type SentryApp struct {
	Project     string // slug or numeric id
	Environment string // empty: every environment
	// Release names a store lane's release; OTARelease an OTA lane's, once
	// per store binary the OTA release targets. Nil: the defaults.
	Release    *template.Template
	OTARelease *template.Template
}

// Sentry is the gate provider of sentry rules: the crash-free rates of a
// lane's release in Sentry's release health, over the current stage, from
// GET /api/0/organizations/{org}/sessions/.
type Sentry struct {
	// BaseURL is Sentry's API host (DefaultSentryURL, a region such as
	// https://de.sentry.io/, or a self-hosted Sentry).
	BaseURL string
	Org     string
	// Token is an auth token with org:read; it is sent as a bearer token
	// and never appears in errors or logs.
	Token string
	HTTP  *http.Client
	Apps  map[string]SentryApp
}

// maxSentryWindow bounds a query: Sentry keeps 90 days of release health.
const maxSentryWindow = 90 * 24 * time.Hour

// SentryAnswer is the part of Sentry's sessions answer a gate reads.
type SentryAnswer struct {
	Start     time.Time
	End       time.Time
	Intervals int
	// Groups are the totals of each group; a query for one release without
	// groupBy has one group, or none when Sentry has no sessions of it.
	Groups []map[string]*float64
}

// Measure implements the gate provider. The window is the stage's whole
// hours: Sentry counts sessions by the hour and widens a window to whole
// hours, so the hour in which the stage began (partly the stage before) is
// left out, and until the first whole hour has begun the reading is stale.
// The first stage of a rollout has no stage before it, so its window starts
// with the hour it began in. No sessions of the release in the window is
// inconclusive.
func (s *Sentry) Measure(ctx context.Context, r release.GateRule, t Target) (release.Reading, error) {
	app, ok := s.Apps[t.App]
	if !ok {
		return release.Reading{}, fmt.Errorf("sentry: app %s has no sentry.project configured", t.App)
	}
	names, err := SentryReleases(app, t)
	if err != nil {
		return release.Reading{}, err
	}
	query := ReleaseQuery(names)
	start := t.StageStarted.UTC().Truncate(time.Hour)
	if start.Before(t.StageStarted) && !t.FirstStage {
		start = start.Add(time.Hour)
	}
	end := t.Now.UTC().Truncate(time.Second)
	source := fmt.Sprintf("sentry %s project %s%s, %s", s.Org, app.Project, envNote(app.Environment), query)
	if !end.After(start) {
		return release.Reading{Source: source, Stale: fmt.Sprintf("the stage began %s and Sentry counts sessions by the hour: its first whole hour begins %s",
			t.StageStarted.UTC().Format(time.RFC3339), start.Format(time.RFC3339))}, nil
	}
	if end.Sub(start) > maxSentryWindow {
		start = end.Add(-maxSentryWindow).Truncate(time.Hour).Add(time.Hour)
	}
	source += " since " + start.Format(time.RFC3339)
	key := strings.Join([]string{"sentry", s.BaseURL, s.Org, app.Project, app.Environment, query, start.Format(time.RFC3339), end.Format(time.RFC3339)}, "|")
	ans, err := shared(ctx, key, func() (SentryAnswer, error) {
		return s.Sessions(ctx, app.Project, app.Environment, query, start, end)
	})
	if err != nil {
		return release.Reading{}, err
	}
	rd := release.Reading{Source: source}
	if ans.Start.Before(start) {
		rd.Stale = fmt.Sprintf("Sentry widened the window to begin %s, before this stage's first whole hour %s", ans.Start.Format(time.RFC3339), start.Format(time.RFC3339))
		return rd, nil
	}
	switch len(ans.Groups) {
	case 0:
		rd.Inconclusive = fmt.Sprintf("Sentry has no sessions of %s since %s", strings.Join(names, ", "), start.Format(time.RFC3339))
		return rd, nil
	case 1:
	default:
		rd.Inconclusive = fmt.Sprintf("Sentry answered %d groups for one release query", len(ans.Groups))
		return rd, nil
	}
	totals := ans.Groups[0]
	rd.Values = map[string]float64{}
	for k, v := range totals {
		if v != nil {
			rd.Values[k] = *v
		}
	}
	rate, samplesField := CrashFreeSessions, sumSessions
	if r.Metric == CrashFreeUsers || r.Metric == CrashRateUsers {
		rate, samplesField = CrashFreeUsers, uniqueUsers
	}
	v, samples := totals[rate], totals[samplesField]
	if v == nil || samples == nil || *samples <= 0 {
		rd.Inconclusive = fmt.Sprintf("Sentry has no %s of %s since %s", map[string]string{sumSessions: "sessions", uniqueUsers: "users"}[samplesField],
			strings.Join(names, ", "), start.Format(time.RFC3339))
		return rd, nil
	}
	rd.Value, rd.Samples = *v, int64(*samples)
	switch r.Metric {
	case CrashFreeSessions, CrashFreeUsers:
	case CrashRateSessions, CrashRateUsers:
		rd.Value = 1 - *v
		rd.Values[r.Metric] = rd.Value
	default:
		return release.Reading{}, fmt.Errorf("sentry has no metric %q (%s)", r.Metric, strings.Join(SentryMetrics, ", "))
	}
	return rd, nil
}

func envNote(env string) string {
	if env == "" {
		return ""
	}
	return " environment " + env
}

// SentryReleases names the target's release as the app reports it to
// Sentry: one name for a store lane; one per targeted binary for an OTA
// lane. Each follows Sentry's rules for release names.
func SentryReleases(app SentryApp, t Target) ([]string, error) {
	var names []string
	add := func(tmpl *template.Template, def string, b *release.Binary) error {
		if tmpl == nil {
			tmpl = template.Must(template.New("release").Option("missingkey=error").Parse(def))
		}
		name, err := render(tmpl, t.vars(b))
		if err != nil {
			return fmt.Errorf("sentry release name: %w", err)
		}
		if err := CheckSentryRelease(name); err != nil {
			return err
		}
		names = append(names, name)
		return nil
	}
	switch t.Kind {
	case release.KindStore:
		if err := add(app.Release, DefaultSentryRelease, nil); err != nil {
			return nil, err
		}
	case release.KindOTA:
		if t.Label == "" {
			return nil, errors.New("sentry: the OTA lane has no Production release yet")
		}
		if len(t.Binaries) == 0 {
			return nil, errors.New("sentry: the OTA release targets no recorded store binary, so its Sentry releases cannot be named")
		}
		for i := range t.Binaries {
			if err := add(app.OTARelease, DefaultSentryOTARelease, &t.Binaries[i]); err != nil {
				return nil, err
			}
		}
		// Builds of one version share a name under the default template.
		seen := map[string]bool{}
		names = slices.DeleteFunc(names, func(n string) bool {
			dup := seen[n]
			seen[n] = true
			return dup
		})
	default:
		return nil, fmt.Errorf("sentry: a %s lane has no release to measure", t.Kind)
	}
	return names, nil
}

// CheckSentryRelease applies Sentry's rules for release names: no
// newlines, tabs, forward or back slashes; not ".", ".." or " "; at most
// 200 characters.
func CheckSentryRelease(name string) error {
	switch {
	case name == "":
		return errors.New("sentry release name is empty")
	case name == "." || name == ".." || name == " ":
		return fmt.Errorf("sentry release name %q is not allowed", name)
	case strings.ContainsAny(name, "\n\t/\\"):
		return fmt.Errorf("sentry release name %q contains a newline, tab or slash, which Sentry does not allow", name)
	case len(name) > 200:
		return fmt.Errorf("sentry release name %q is longer than 200 characters", name)
	}
	return nil
}

// ReleaseQuery is Sentry's search query for sessions of the named
// releases: release:"a" or release:["a","b"].
func ReleaseQuery(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(n) + `"`
	}
	if len(q) == 1 {
		return "release:" + q[0]
	}
	return "release:[" + strings.Join(q, ",") + "]"
}

// SentryError is an answer of Sentry other than 200, with Sentry's detail.
type SentryError struct {
	Status int
	Detail string
	// RetryAt is when a rate limit resets (429), if Sentry said.
	RetryAt time.Time
}

func (e *SentryError) Error() string {
	s := fmt.Sprintf("sentry answered %d", e.Status)
	if e.Status == http.StatusUnauthorized {
		s += " (the auth token was refused)"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if !e.RetryAt.IsZero() {
		s += "; rate limit resets " + e.RetryAt.UTC().Format(time.RFC3339)
	}
	return s
}

// Sessions asks Sentry for the crash-free rates, sessions and users of
// query in [start, end) by the hour.
func (s *Sentry) Sessions(ctx context.Context, project, environment, query string, start, end time.Time) (SentryAnswer, error) {
	base := s.BaseURL
	if base == "" {
		base = DefaultSentryURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return SentryAnswer{}, fmt.Errorf("sentry url: %w", err)
	}
	u = u.JoinPath("api/0/organizations", s.Org, "sessions") // the trailing slash is added below
	v := url.Values{}
	for _, f := range sentryFields {
		v.Add("field", f)
	}
	v.Set("project", project)
	if environment != "" {
		v.Set("environment", environment)
	}
	v.Set("query", query)
	v.Set("start", start.UTC().Format(time.RFC3339))
	v.Set("end", end.UTC().Format(time.RFC3339))
	v.Set("interval", "1h")
	u.Path += "/"
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return SentryAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Accept", "application/json")
	hc := s.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return SentryAnswer{}, fmt.Errorf("sentry sessions: %w", redact(err, s.Token))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return SentryAnswer{}, fmt.Errorf("sentry sessions: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		e := &SentryError{Status: res.StatusCode}
		var d struct {
			Detail any `json:"detail"`
		}
		if json.Unmarshal(body, &d) == nil && d.Detail != nil {
			e.Detail = strings.ReplaceAll(fmt.Sprint(d.Detail), s.Token, "[redacted]")
		}
		if reset, err := strconv.ParseInt(res.Header.Get("X-Sentry-Rate-Limit-Reset"), 10, 64); err == nil && reset > 0 {
			e.RetryAt = time.Unix(reset, 0)
		}
		return SentryAnswer{}, e
	}
	var raw struct {
		Start     string   `json:"start"`
		End       string   `json:"end"`
		Intervals []string `json:"intervals"`
		Groups    []struct {
			Totals map[string]*float64 `json:"totals"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return SentryAnswer{}, fmt.Errorf("sentry sessions: the answer is not the documented JSON: %w", err)
	}
	ans := SentryAnswer{Intervals: len(raw.Intervals)}
	if ans.Start, err = time.Parse(time.RFC3339, raw.Start); err != nil {
		return SentryAnswer{}, fmt.Errorf("sentry sessions: start %q: %w", raw.Start, err)
	}
	if ans.End, err = time.Parse(time.RFC3339, raw.End); err != nil {
		return SentryAnswer{}, fmt.Errorf("sentry sessions: end %q: %w", raw.End, err)
	}
	for _, g := range raw.Groups {
		ans.Groups = append(ans.Groups, g.Totals)
	}
	return ans, nil
}

// redact keeps a credential out of transport errors that quote a request.
func redact(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[redacted]"))
}
