package playstoretest

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // DAILY vitals live in America/Los_Angeles.
)

// Metric sets the Reporting fake serves.
const (
	CrashRateMetricSet = "crashRateMetricSet"
	AnrRateMetricSet   = "anrRateMetricSet"
)

// VitalsPoint is one DAILY row of one versionCode. Rate is the user-perceived
// rate as a fraction (0.0031 = 0.31 %); RawRate the plain crash/ANR rate.
// On the wire both are percentages ("0.31"), the unit the discovery
// document gives every rate.
type VitalsPoint struct {
	Day           time.Time // the civil day; only year, month and day are used
	VersionCode   int64
	Rate          float64
	RawRate       float64
	DistinctUsers int64
}

// VitalsSeries is a metric set's scripted data. FreshUntil is the exclusive
// end of the data Play has processed (latestEndTime): points on or after that
// day are not served yet. A zero FreshUntil means no data has been processed.
type VitalsSeries struct {
	FreshUntil time.Time
	Points     []VitalsPoint
}

// SetVitals scripts a metric set (CrashRateMetricSet or AnrRateMetricSet).
func (s *Server) SetVitals(pkg, metricSet string, series VitalsSeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	series.Points = slices.Clone(series.Points)
	s.vitals[pkg+"/"+metricSet] = &series
}

func sortedKeys[V any](m map[int64]V) []int64 { return slices.Sorted(maps.Keys(m)) }

var losAngeles = func() *time.Location {
	l, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return time.UTC
	}
	return l
}()

func civil(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, losAngeles)
}

func wireDate(t time.Time) map[string]any {
	return map[string]any{"year": t.Year(), "month": int(t.Month()), "day": t.Day(),
		"timeZone": map[string]string{"id": "America/Los_Angeles"}}
}

func (s *Server) routeReporting(method, rest string) (string, handler) {
	pkg, set, ok := strings.Cut(rest, "/")
	if !ok {
		return "", nil
	}
	set, verb, _ := strings.Cut(set, ":")
	names := map[string][2]string{
		CrashRateMetricSet: {MethodCrashRateGet, MethodCrashRateQuery},
		AnrRateMetricSet:   {MethodAnrRateGet, MethodAnrRateQuery},
	}
	n, known := names[set]
	switch {
	case !known:
		return "", nil
	case verb == "" && method == http.MethodGet:
		return n[0], func(w http.ResponseWriter, r *http.Request, _ string) { s.metricSet(w, pkg, set) }
	case verb == "query" && method == http.MethodPost:
		return n[1], func(w http.ResponseWriter, r *http.Request, _ string) { s.queryMetricSet(w, r, pkg, set) }
	}
	return "", nil
}

func (s *Server) series(pkg, set string) VitalsSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.vitals[pkg+"/"+set]; v != nil {
		return *v
	}
	return VitalsSeries{}
}

func (s *Server) metricSet(w http.ResponseWriter, pkg, set string) {
	v := s.series(pkg, set)
	fresh := []any{}
	if !v.FreshUntil.IsZero() {
		fresh = append(fresh, map[string]any{"aggregationPeriod": "DAILY", "latestEndTime": wireDate(civil(v.FreshUntil))})
	}
	writeJSON(w, map[string]any{"name": "apps/" + pkg + "/" + set, "freshnessInfo": map[string]any{"freshnesses": fresh}})
}

var snake = regexp.MustCompile(`_([a-z])`)

// camelKeys rewrites proto snake_case keys to lowerCamelCase; proto3 JSON
// accepts both.
func camelKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			out[snake.ReplaceAllStringFunc(k, func(m string) string { return strings.ToUpper(m[1:]) })] = camelKeys(x)
		}
		return out
	case []any:
		for i := range t {
			t[i] = camelKeys(t[i])
		}
	}
	return v
}

var versionFilter = regexp.MustCompile(`^\s*versionCode\s*=\s*"?(\d+)"?\s*$`)

type wireDateTime struct {
	Year, Month, Day               int
	Hours, Minutes, Seconds, Nanos int
	UtcOffset                      *string `json:"utcOffset"`
	TimeZone                       *struct {
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"timeZone"`
}

// zone is the time zone id as sent; "" when timeZone is unset.
func (d *wireDateTime) zone() string {
	if d.TimeZone == nil {
		return ""
	}
	return d.TimeZone.ID
}

// checkDaily holds the Reporting API's rules for a DAILY timeline point
// (google-play.md §5.2): hours, minutes, seconds and nanos unset, no UTC
// offset, and the time zone unset (the metric set's default) or
// America/Los_Angeles, the only one these metric sets support. The texts
// are the fake's own.
func (d *wireDateTime) checkDaily(field string) *apiError {
	switch {
	case d.Hours != 0 || d.Minutes != 0 || d.Seconds != 0 || d.Nanos != 0:
		return badRequest("timeline_spec." + field + ": DAILY aggregation requires hours, minutes, seconds and nanos to be unset.")
	case d.UtcOffset != nil:
		return badRequest("timeline_spec." + field + ": DAILY aggregation supports the America/Los_Angeles time zone only, not a UTC offset.")
	case d.zone() != "" && d.zone() != "America/Los_Angeles":
		return badRequest("timeline_spec." + field + ": DAILY aggregation supports the America/Los_Angeles time zone only, not " + strconv.Quote(d.zone()) + ".")
	}
	return nil
}

func (d *wireDateTime) time() time.Time {
	return time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, losAngeles)
}

func (s *Server) queryMetricSet(w http.ResponseWriter, r *http.Request, pkg, set string) {
	var raw any
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		writeError(w, badRequest("Invalid JSON payload received."))
		return
	}
	b, _ := json.Marshal(camelKeys(raw))
	var req struct {
		Metrics      []string `json:"metrics"`
		Dimensions   []string `json:"dimensions"`
		Filter       string   `json:"filter"`
		TimelineSpec *struct {
			AggregationPeriod string        `json:"aggregationPeriod"`
			StartTime         *wireDateTime `json:"startTime"`
			EndTime           *wireDateTime `json:"endTime"`
		} `json:"timelineSpec"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&req); err != nil {
		writeError(w, badRequest("Invalid JSON payload received. "+err.Error()))
		return
	}
	ts := req.TimelineSpec
	if ts == nil || ts.AggregationPeriod != "DAILY" || ts.StartTime == nil || ts.EndTime == nil {
		writeError(w, badRequest("The fake serves DAILY timelines with a start and end time only."))
		return
	}
	for _, p := range []struct {
		field string
		d     *wireDateTime
	}{{"start_time", ts.StartTime}, {"end_time", ts.EndTime}} {
		if aerr := p.d.checkDaily(p.field); aerr != nil {
			writeError(w, aerr)
			return
		}
	}
	if ts.StartTime.zone() != ts.EndTime.zone() {
		writeError(w, badRequest("timeline_spec: the time zone of end_time must match the time zone of start_time."))
		return
	}
	rateName, rawName := "userPerceivedCrashRate", "crashRate"
	if set == AnrRateMetricSet {
		rateName, rawName = "userPerceivedAnrRate", "anrRate"
	}
	for _, m := range req.Metrics {
		if m != rateName && m != rawName && m != "distinctUsers" {
			writeError(w, badRequest("Metric "+strconv.Quote(m)+" is not supported by the fake for "+set+"."))
			return
		}
	}
	want := int64(-1)
	if req.Filter != "" {
		m := versionFilter.FindStringSubmatch(req.Filter)
		if m == nil {
			writeError(w, badRequest("Invalid filter: "+req.Filter))
			return
		}
		want, _ = strconv.ParseInt(m[1], 10, 64)
	}
	v := s.series(pkg, set)
	start, end := ts.StartTime.time(), ts.EndTime.time()
	if fresh := civil(v.FreshUntil); v.FreshUntil.IsZero() || end.After(fresh) {
		if v.FreshUntil.IsZero() {
			end = start
		} else {
			end = fresh
		}
	}
	rows := []any{}
	for _, p := range v.Points {
		day := civil(p.Day)
		if day.Before(start) || !day.Before(end) || (want >= 0 && p.VersionCode != want) {
			continue
		}
		var metrics []any
		for _, m := range req.Metrics {
			var val string
			switch m {
			case rateName:
				val = percent(p.Rate)
			case rawName:
				val = percent(p.RawRate)
			default:
				val = strconv.FormatInt(p.DistinctUsers, 10)
			}
			metrics = append(metrics, map[string]any{"metric": m, "decimalValue": map[string]string{"value": val}})
		}
		row := map[string]any{"aggregationPeriod": "DAILY", "startTime": wireDate(day), "metrics": metrics}
		if slices.Contains(req.Dimensions, "versionCode") {
			row["dimensions"] = []any{map[string]string{"dimension": "versionCode", "int64Value": strconv.FormatInt(p.VersionCode, 10)}}
		}
		rows = append(rows, row)
	}
	writeJSON(w, map[string]any{"rows": rows})
}

// percent writes a fraction as the decimal percentage Play sends.
func percent(f float64) string {
	return strconv.FormatFloat(f*100, 'g', 12, 64)
}
