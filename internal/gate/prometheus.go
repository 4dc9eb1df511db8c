package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Prometheus is the gate provider of prometheus rules: an instant PromQL
// query through Prometheus's HTTP API (POST /api/v1/query), evaluated at
// the pass's time. The query is a text/template over Vars (the lane's
// release, version, build, percentage…), each string inserted escaped for a
// PromQL string literal, e.g.
//
//	sum(rate(app_crashes_total{release="{{.Release}}"}[30m]))
//	  / sum(rate(app_sessions_total{release="{{.Release}}"}[30m]))
//
// The answer must be exactly one value (a one-series vector or a scalar):
// no series or several are inconclusive. A query whose range or offset
// reaches back before the stage began is stale until the stage is old
// enough, since it would judge the stage before. A single value is one
// sample, so min_samples does not apply.
type Prometheus struct {
	// URL is Prometheus's base URL, e.g. http://prometheus:9090/.
	URL string
	// Token, when set, is sent as a bearer token; it never appears in
	// errors or logs.
	Token string
	HTTP  *http.Client

	mu        sync.Mutex
	templates map[string]*template.Template
}

// Measure implements the gate provider.
func (p *Prometheus) Measure(ctx context.Context, r release.GateRule, t Target) (release.Reading, error) {
	query, err := p.Render(r.Query, t)
	if err != nil {
		return release.Reading{}, err
	}
	rd := release.Reading{Source: "promql " + query}
	if back := Lookback(query); back > 0 && !t.StageStarted.IsZero() && t.Now.Sub(t.StageStarted) < back {
		rd.Stale = fmt.Sprintf("the query looks back %s but the stage began %s ago, so it would judge the stage before",
			back, t.Now.Sub(t.StageStarted).Round(time.Second))
		return rd, nil
	}
	at := t.Now
	if at.IsZero() {
		at = time.Now()
	}
	key := strings.Join([]string{"prometheus", p.URL, query, strconv.FormatInt(at.UnixMilli(), 10)}, "|")
	res, err := shared(ctx, key, func() (PromResult, error) { return p.Query(ctx, query, at) })
	if err != nil {
		return release.Reading{}, err
	}
	switch {
	case res.Type == "scalar":
		rd.Value, rd.Samples = res.Values[0], 1
	case res.Type != "vector":
		rd.Inconclusive = fmt.Sprintf("the query returned a %s, not one value", res.Type)
		return rd, nil
	case len(res.Values) == 0:
		rd.Inconclusive = "the query returned no series"
		return rd, nil
	case len(res.Values) > 1:
		shown := res.Series
		if len(shown) > 3 {
			shown = append(shown[:3:3], "…")
		}
		rd.Inconclusive = fmt.Sprintf("the query returned %d series (%s); a gate needs exactly one", len(res.Values), strings.Join(shown, ", "))
		return rd, nil
	default:
		rd.Value, rd.Samples = res.Values[0], 1
	}
	rd.Values = map[string]float64{"value": rd.Value}
	return rd, nil
}

// Render fills the query template for t, each string escaped for a PromQL
// string literal.
func (p *Prometheus) Render(text string, t Target) (string, error) {
	p.mu.Lock()
	tmpl, ok := p.templates[text]
	p.mu.Unlock()
	if !ok {
		var err error
		if tmpl, err = ParseTemplate("query", text); err != nil {
			return "", fmt.Errorf("prometheus query: %w", err)
		}
		p.mu.Lock()
		if p.templates == nil {
			p.templates = map[string]*template.Template{}
		}
		p.templates[text] = tmpl
		p.mu.Unlock()
	}
	v := t.vars(nil)
	for _, s := range []*string{&v.App, &v.Platform, &v.Lane, &v.Release, &v.Tag, &v.Version, &v.Build, &v.BundleID, &v.Label} {
		q := strconv.Quote(*s)
		*s = q[1 : len(q)-1]
	}
	return render(tmpl, v)
}

// PromResult is an instant query's answer: its type and, for a vector,
// one value and one label set per series.
type PromResult struct {
	Type   string
	Values []float64
	Series []string
}

// PromError is an answer of Prometheus other than success.
type PromError struct {
	Status    int
	ErrorType string
	Message   string
}

func (e *PromError) Error() string {
	s := fmt.Sprintf("prometheus answered %d", e.Status)
	if e.ErrorType != "" {
		s += " (" + e.ErrorType + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Query runs an instant query at time at.
func (p *Prometheus) Query(ctx context.Context, query string, at time.Time) (PromResult, error) {
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return PromResult{}, fmt.Errorf("prometheus url %q is not an http(s) URL", p.URL)
	}
	u = u.JoinPath("api/v1/query")
	form := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return PromResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	hc := p.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return PromResult{}, fmt.Errorf("prometheus query: %w", redact(err, p.Token))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return PromResult{}, fmt.Errorf("prometheus query: %w", err)
	}
	var raw struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Status != "success" {
		pe := &PromError{Status: res.StatusCode, ErrorType: raw.ErrorType, Message: raw.Error}
		if err != nil && pe.Message == "" {
			pe.Message = "the answer is not Prometheus's JSON"
		}
		return PromResult{}, pe
	}
	out := PromResult{Type: raw.Data.ResultType}
	switch out.Type {
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(raw.Data.Result, &s); err != nil {
			return PromResult{}, fmt.Errorf("prometheus scalar: %w", err)
		}
		v, err := sampleValue(s[1])
		if err != nil {
			return PromResult{}, err
		}
		out.Values = []float64{v}
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(raw.Data.Result, &vec); err != nil {
			return PromResult{}, fmt.Errorf("prometheus vector: %w", err)
		}
		for _, s := range vec {
			v, err := sampleValue(s.Value[1])
			if err != nil {
				return PromResult{}, err
			}
			out.Values = append(out.Values, v)
			out.Series = append(out.Series, labels(s.Metric))
		}
	}
	return out, nil
}

func sampleValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("prometheus sample value %v is not a string", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("prometheus sample value %q: %w", s, err)
	}
	return f, nil
}

func labels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		if k == "__name__" {
			continue
		}
		parts = append(parts, k+"="+strconv.Quote(m[k]))
	}
	return m["__name__"] + "{" + strings.Join(parts, ",") + "}"
}

var (
	promStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promRanges   = regexp.MustCompile(`\[\s*([0-9]+[a-z0-9]*)\s*(?::\s*([0-9a-z]*)\s*)?\]`)
	promOffsets  = regexp.MustCompile(`\boffset\s+(-?[0-9]+[a-z0-9]*)`)
	promDuration = regexp.MustCompile(`^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$`)
)

// Lookback is how far before its evaluation time a query reads: its
// longest range selector or subquery range plus its longest offset. String
// literals are ignored. A query without either reads only the newest
// samples and looks back 0.
func Lookback(query string) time.Duration {
	q := promStrings.ReplaceAllString(query, `""`)
	var longest, offset time.Duration
	for _, m := range promRanges.FindAllStringSubmatch(q, -1) {
		if d, ok := promDur(m[1]); ok && d > longest {
			longest = d
		}
	}
	for _, m := range promOffsets.FindAllStringSubmatch(q, -1) {
		if d, ok := promDur(strings.TrimPrefix(m[1], "-")); ok && !strings.HasPrefix(m[1], "-") && d > offset {
			offset = d
		}
	}
	return longest + offset
}

// promDur reads a PromQL duration: 1h30m, 5m, 2d, 1w, 500ms, or bare
// seconds.
func promDur(s string) (time.Duration, bool) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), true
	}
	m := promDuration.FindStringSubmatch(s)
	if m == nil || s == "" {
		return 0, false
	}
	units := []time.Duration{365 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond}
	var d time.Duration
	for i, u := range units {
		if m[i+1] != "" {
			n, _ := strconv.ParseInt(m[i+1], 10, 64)
			d += time.Duration(n) * u
		}
	}
	return d, true
}
