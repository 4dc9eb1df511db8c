package gate

import (
	"context"
	"fmt"
	"sync"
	"time"
	_ "time/tzdata" // DAILY vitals are dated in America/Los_Angeles.

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
)

// Metric names the Android gates use (config rollout.gates[].metric).
const (
	CrashRate = "crash_rate"
	ANRRate   = "anr_rate"
)

// VitalsReader reads Play's crash and ANR rates of one versionCode;
// *playstore.Client is one.
type VitalsReader interface {
	Vitals(ctx context.Context, pkg string, versionCode int64, since time.Time) (playstore.Vitals, error)
}

// DefaultVitalsMaxAge is how long PlayVitals reuses a reading. Play
// processes DAILY data a few times a day at most, while the reconciler may
// ask every minute while a gate holds.
const DefaultVitalsMaxAge = 10 * time.Minute

// PlayVitals observes an Android release through Play's user-perceived
// crash and ANR rates of its versionCode. It is safe for concurrent use.
type PlayVitals struct {
	Reader VitalsReader
	// MaxAge bounds how long a reading is reused: 0 means
	// DefaultVitalsMaxAge, a negative value reads Play every time.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[vitalsKey]cached
}

type vitalsKey struct {
	pkg   string
	vc    int64
	since int64
}

type cached struct {
	v  playstore.Vitals
	at time.Time
}

// Observe returns crash_rate and anr_rate for versionCode over the current
// stage only: the DAILY rows of the Los Angeles days that lie wholly inside
// it, [first LA midnight after stageStarted, FreshUntil), weighted by
// distinct users, with the fewest distinct users of any of those days as
// samples (a gate's min_samples is a per-day floor: Play says its daily
// distinct users must not be summed). Play dates DAILY data
// in America/Los_Angeles, so the day stageStarted falls in is partly the
// previous stage and is left out, as is everything since the rollout began
// (since) before it.
//
// A metric is Fresh only when Play has processed at least one such whole
// day with users of the versionCode (FreshUntil at or past that first
// midnight plus one day), so a gate never passes a stage on data from
// before it. Until then Value and Samples show the rollout so far, marked
// not fresh. An error means nothing was observed.
func (p *PlayVitals) Observe(ctx context.Context, pkg string, versionCode int64, since, stageStarted time.Time) (release.Observations, error) {
	v, err := p.vitals(ctx, pkg, versionCode, since)
	if err != nil {
		return release.Observations{}, err
	}
	return release.Observations{Metrics: map[string]release.Observation{
		CrashRate: observation(v.Crash, stageStarted),
		ANRRate:   observation(v.ANR, stageStarted),
	}}, nil
}

// Measure implements the gate provider of play_vitals rules: crash_rate or
// anr_rate of the target's versionCode over the current stage's whole Los
// Angeles days (see Observe). No vitals for the versionCode yet is
// inconclusive; vitals that do not yet reach a whole day of the stage are
// stale. Android store lanes only.
func (p *PlayVitals) Measure(ctx context.Context, r release.GateRule, t Target) (release.Reading, error) {
	if t.Kind != release.KindStore || t.Platform != release.Android {
		return release.Reading{}, fmt.Errorf("play_vitals measures Android store lanes, not %s lanes on %s", t.Kind, t.Platform)
	}
	if r.Metric != CrashRate && r.Metric != ANRRate {
		return release.Reading{}, fmt.Errorf("play_vitals has no metric %q (crash_rate, anr_rate)", r.Metric)
	}
	if t.VersionCode == 0 {
		return release.Reading{Inconclusive: "the lane has no versionCode in production yet"}, nil
	}
	since := t.RolloutStarted
	if since.IsZero() {
		since = t.StageStarted
	}
	v, err := shared(ctx, fmt.Sprintf("play_vitals|%s|%d|%d", t.BundleID, t.VersionCode, since.UnixMilli()), func() (playstore.Vitals, error) {
		return p.vitals(ctx, t.BundleID, t.VersionCode, since)
	})
	if err != nil {
		return release.Reading{}, err
	}
	rd := v.Crash
	if r.Metric == ANRRate {
		rd = v.ANR
	}
	return playReading(r.Metric, rd, t), nil
}

func playReading(metric string, r playstore.Reading, t Target) release.Reading {
	o := observation(r, t.StageStarted)
	out := release.Reading{Value: o.Value, Samples: o.Samples, Source: fmt.Sprintf("Play vitals of %s versionCode %d", t.BundleID, t.VersionCode),
		Values: map[string]float64{metric: o.Value, "min_daily_users": float64(o.Samples)}}
	switch {
	case !r.HasData:
		out.Inconclusive = fmt.Sprintf("Play has no %s of versionCode %d yet", metric, t.VersionCode)
	case !o.Fresh:
		until := "none"
		if !r.FreshUntil.IsZero() {
			until = r.FreshUntil.UTC().Format(time.RFC3339)
		}
		out.Stale = fmt.Sprintf("Play has not processed a whole Los Angeles day of this stage yet (the stage began %s; processed until %s)",
			t.StageStarted.UTC().Format(time.RFC3339), until)
	}
	return out
}

// losAngeles is the time zone of Play's DAILY vitals.
var losAngeles = func() *time.Location {
	l, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		panic("gate: no America/Los_Angeles time zone: " + err.Error())
	}
	return l
}()

// FirstFullDay is the first Los Angeles midnight strictly after t: the start
// of the first DAILY vitals row that lies wholly after t.
func FirstFullDay(t time.Time) time.Time {
	l := t.In(losAngeles)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, losAngeles)
}

func observation(r playstore.Reading, stageStarted time.Time) release.Observation {
	from := FirstFullDay(stageStarted)
	oneDay := time.Date(from.Year(), from.Month(), from.Day()+1, 0, 0, 0, 0, losAngeles)
	// Days are weighted by their distinct users, as Play's own
	// user-weighted rates are; the samples are the fewest users of any
	// day, since Play's daily distinct users must not be added up.
	var users, minUsers int64
	var weighted float64
	days := 0
	for _, d := range r.Daily {
		if d.Day.Before(from) || (!r.FreshUntil.IsZero() && !d.Day.Before(r.FreshUntil)) {
			continue
		}
		if days == 0 || d.DistinctUsers < minUsers {
			minUsers = d.DistinctUsers
		}
		days++
		users += d.DistinctUsers
		weighted += d.Rate * float64(d.DistinctUsers)
	}
	if r.HasData && users > 0 && !r.FreshUntil.Before(oneDay) {
		return release.Observation{Value: weighted / float64(users), Samples: minUsers, Fresh: true}
	}
	// Nothing of this stage yet: show the rollout so far, never fresh.
	return release.Observation{Value: r.Rate, Samples: r.MinDailyUsers, Fresh: false}
}

func (p *PlayVitals) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *PlayVitals) vitals(ctx context.Context, pkg string, vc int64, since time.Time) (playstore.Vitals, error) {
	if p.Reader == nil {
		return playstore.Vitals{}, fmt.Errorf("gate: no Play vitals reader for %s", pkg)
	}
	maxAge := p.MaxAge
	if maxAge == 0 {
		maxAge = DefaultVitalsMaxAge
	}
	k := vitalsKey{pkg, vc, since.UnixMilli()}
	now := p.now()
	if maxAge > 0 {
		p.mu.Lock()
		c, ok := p.cache[k]
		p.mu.Unlock()
		if ok && now.Sub(c.at) < maxAge && !now.Before(c.at) {
			return c.v, nil
		}
	}
	v, err := p.Reader.Vitals(ctx, pkg, vc, since)
	if err != nil {
		return v, fmt.Errorf("gate: vitals of %s versionCode %d: %w", pkg, vc, err)
	}
	if maxAge > 0 {
		p.mu.Lock()
		if p.cache == nil {
			p.cache = map[vitalsKey]cached{}
		}
		for key, c := range p.cache {
			if now.Sub(c.at) >= maxAge {
				delete(p.cache, key)
			}
		}
		p.cache[k] = cached{v, now}
		p.mu.Unlock()
	}
	return v, nil
}
