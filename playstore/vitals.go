package playstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
	_ "time/tzdata" // DAILY vitals are dated in America/Los_Angeles.

	reporting "google.golang.org/api/playdeveloperreporting/v1beta1"
)

// Vitals are the user-perceived crash and ANR rates of one versionCode.
type Vitals struct {
	VersionCode int64
	Crash       Reading
	ANR         Reading
	Calls       int
}

// Reading is one metric over the days Play has processed.
//
// HasData false means "no data yet", never "healthy": a gate must hold. It
// needs at least one processed day with distinct users for the versionCode.
// Rates are fractions (0.0031 = 0.31 %), converted from the unit Play sends
// (Config.VitalsUnit: the discovery document says a percentage).
type Reading struct {
	HasData bool
	// Rate is the user-perceived rate of the days read, each day weighted
	// by its distinct users, as Play's own 7-day and 28-day user-weighted
	// rates are.
	Rate float64
	// MinDailyUsers is the fewest distinct users of any day read. Play's
	// daily distinct users must not be added up (a user active on two days
	// would count twice), so the smallest day is what a sample floor can
	// rely on: every day had at least that many users.
	MinDailyUsers int64
	Days          int
	// From is the first day asked for; FreshUntil is Play's latestEndTime,
	// the exclusive end of processed DAILY data (zero when there is none).
	From, FreshUntil time.Time
	// Daily holds the days behind Rate, oldest first, so a caller can weigh
	// a narrower window (a gate reads only its stage's days).
	Daily []DayReading
}

// DayReading is one processed DAILY row of a versionCode.
type DayReading struct {
	// Day is the civil day's midnight in America/Los_Angeles.
	Day           time.Time
	Rate          float64
	DistinctUsers int64
}

// MaxVitalsPages bounds the pages one metric-set query may take. A DAILY
// query for one versionCode fits in one page (1000 rows by default);
// hundreds of pages mean Play, or something in between, is looping.
const MaxVitalsPages = 100

var losAngeles = func() *time.Location {
	l, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return time.UTC
	}
	return l
}()

// VitalsUnit is the unit Play's Reporting API sends rates in.
type VitalsUnit string

const (
	// VitalsPercent: 1.09 means 1.09 %. The discovery document describes
	// every rate as a "percentage of distinct users"; the default.
	VitalsPercent VitalsUnit = "percent"
	// VitalsFraction: 0.0109 means 1.09 %, as some third-party fixtures
	// read the values.
	VitalsFraction VitalsUnit = "fraction"
)

// Vitals reads the DAILY user-perceived crash and ANR rates of versionCode
// from the day of since up to the data's freshness. It costs two calls per
// metric set (freshness, query), one when a set has no fresh data.
func (c *Client) Vitals(ctx context.Context, pkg string, versionCode int64, since time.Time) (Vitals, error) {
	if versionCode <= 0 {
		return Vitals{}, invalid("versionCode %d must be positive", versionCode)
	}
	o := &op{name: "Vitals"}
	defer c.finish(o)
	v := Vitals{VersionCode: versionCode}
	var err error
	if v.Crash, err = c.reading(ctx, o, pkg, "crashRateMetricSet", "userPerceivedCrashRate", versionCode, since); err != nil {
		v.Calls = o.calls
		return v, err
	}
	v.ANR, err = c.reading(ctx, o, pkg, "anrRateMetricSet", "userPerceivedAnrRate", versionCode, since)
	v.Calls = o.calls
	return v, err
}

func (c *Client) reading(ctx context.Context, o *op, pkg, set, metric string, vc int64, since time.Time) (Reading, error) {
	name := "apps/" + pkg + "/" + set
	from := civilDay(since.In(losAngeles))
	r := Reading{From: from}
	var fresh *reporting.GooglePlayDeveloperReportingV1beta1FreshnessInfo
	err := c.call(ctx, o, set+".get", true, func() error {
		var err error
		if set == "crashRateMetricSet" {
			var ms *reporting.GooglePlayDeveloperReportingV1beta1CrashRateMetricSet
			ms, err = c.rep.Vitals.Crashrate.Get(name).Context(ctx).Do()
			if ms != nil {
				fresh = ms.FreshnessInfo
			}
		} else {
			var ms *reporting.GooglePlayDeveloperReportingV1beta1AnrRateMetricSet
			ms, err = c.rep.Vitals.Anrrate.Get(name).Context(ctx).Do()
			if ms != nil {
				fresh = ms.FreshnessInfo
			}
		}
		return err
	})
	if err != nil {
		return r, fmt.Errorf("playstore: %s freshness of %s: %w", set, pkg, err)
	}
	if fresh != nil {
		for _, f := range fresh.Freshnesses {
			if f.AggregationPeriod == "DAILY" && f.LatestEndTime != nil {
				r.FreshUntil = fromDateTime(f.LatestEndTime)
			}
		}
	}
	if r.FreshUntil.IsZero() || !r.FreshUntil.After(from) {
		return r, nil // nothing processed since the rollout began
	}
	spec := &reporting.GooglePlayDeveloperReportingV1beta1TimelineSpec{
		AggregationPeriod: "DAILY", StartTime: toDateTime(from), EndTime: toDateTime(r.FreshUntil)}
	metrics := []string{metric, "distinctUsers"}
	filter := fmt.Sprintf("versionCode = %d", vc)
	var rows []*reporting.GooglePlayDeveloperReportingV1beta1MetricsRow
	pageToken := ""
	tokens := map[string]bool{}
	for page := 1; ; page++ {
		if page > MaxVitalsPages {
			return r, fmt.Errorf("playstore: query %s of %s versionCode %d: still paging after %d pages; giving up", set, pkg, vc, MaxVitalsPages)
		}
		var next string
		err := c.call(ctx, o, set+".query", true, func() error {
			if set == "crashRateMetricSet" {
				resp, err := c.rep.Vitals.Crashrate.Query(name, &reporting.GooglePlayDeveloperReportingV1beta1QueryCrashRateMetricSetRequest{
					Metrics: metrics, Dimensions: []string{"versionCode"}, Filter: filter, TimelineSpec: spec, PageToken: pageToken}).Context(ctx).Do()
				if err == nil {
					rows, next = append(rows, resp.Rows...), resp.NextPageToken
				}
				return err
			}
			resp, err := c.rep.Vitals.Anrrate.Query(name, &reporting.GooglePlayDeveloperReportingV1beta1QueryAnrRateMetricSetRequest{
				Metrics: metrics, Dimensions: []string{"versionCode"}, Filter: filter, TimelineSpec: spec, PageToken: pageToken}).Context(ctx).Do()
			if err == nil {
				rows, next = append(rows, resp.Rows...), resp.NextPageToken
			}
			return err
		})
		if err != nil {
			return r, fmt.Errorf("playstore: query %s of %s versionCode %d: %w", set, pkg, vc, err)
		}
		if next == "" {
			break
		}
		if tokens[next] || next == pageToken {
			return r, fmt.Errorf("playstore: query %s of %s versionCode %d: Play repeated nextPageToken %q; giving up rather than loop", set, pkg, vc, next)
		}
		tokens[next] = true
		pageToken = next
	}
	scale := 0.01 // percent, as the discovery document describes the rates
	if c.vitalsUnit == VitalsFraction {
		scale = 1
	}
	var weighted float64
	var users int64
	for _, row := range rows {
		var rate float64
		var n int64
		var haveRate bool
		for _, m := range row.Metrics {
			if m.DecimalValue == nil {
				continue
			}
			val := m.DecimalValue.Value
			switch m.Metric {
			case metric:
				f, err := parseDecimal(val)
				if err != nil {
					return r, fmt.Errorf("playstore: %s %s value %q: %w", set, metric, val, err)
				}
				rate, haveRate = f*scale, true
			case "distinctUsers":
				f, err := parseDecimal(val)
				if err != nil {
					return r, fmt.Errorf("playstore: %s distinctUsers value %q: %w", set, val, err)
				}
				n = int64(f)
			}
		}
		if !haveRate {
			continue
		}
		if rate < 0 || rate > 1 {
			return r, fmt.Errorf("playstore: %s %s %g of versionCode %d is not a rate; check playstore.vitals_unit (%s)", set, metric, rate, vc, c.vitalsUnit)
		}
		if row.StartTime != nil {
			r.Daily = append(r.Daily, DayReading{Day: civilDay(fromDateTime(row.StartTime).In(losAngeles)), Rate: rate, DistinctUsers: n})
		}
		if r.Days == 0 || n < r.MinDailyUsers {
			r.MinDailyUsers = n
		}
		r.Days++
		users += n
		weighted += rate * float64(n)
	}
	slices.SortStableFunc(r.Daily, func(a, b DayReading) int { return a.Day.Compare(b.Day) })
	// Rows without users (Play rounds small counts) say nothing about health.
	if users > 0 {
		r.HasData = true
		r.Rate = weighted / float64(users)
	}
	return r, nil
}

// parseDecimal reads google.type.Decimal; "" means 0.
func parseDecimal(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseFloat(s, 64)
}

func civilDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, losAngeles)
}

func toDateTime(t time.Time) *reporting.GoogleTypeDateTime {
	return &reporting.GoogleTypeDateTime{Year: int64(t.Year()), Month: int64(t.Month()), Day: int64(t.Day()),
		TimeZone: &reporting.GoogleTypeTimeZone{Id: "America/Los_Angeles"}}
}

func fromDateTime(d *reporting.GoogleTypeDateTime) time.Time {
	loc := time.UTC
	if d.TimeZone != nil && d.TimeZone.Id != "" {
		if l, err := time.LoadLocation(d.TimeZone.Id); err == nil {
			loc = l
		}
	}
	return time.Date(int(d.Year), time.Month(d.Month), int(d.Day), int(d.Hours), int(d.Minutes), int(d.Seconds), int(d.Nanos), loc)
}
