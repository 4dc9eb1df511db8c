package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

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

// Observe returns crash_rate and anr_rate for versionCode: the rate over
// the days since the rollout began (since), weighted by distinct users,
// with the distinct users as samples. A metric is Fresh only when Play has
// data for the versionCode and that data reaches past stageStarted (the
// moment the current percentage took effect), so a gate never passes a
// stage on data from before it. An error means nothing was observed.
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

func observation(r playstore.Reading, stageStarted time.Time) release.Observation {
	return release.Observation{
		Value:   r.Rate,
		Samples: r.DistinctUsers,
		Fresh:   r.HasData && r.FreshUntil.After(stageStarted),
	}
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
