package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// GateProvider measures gate rules of one provider for a lane's target:
// gate.PlayVitals, gate.OTAReports, gate.Sentry and gate.Prometheus.
type GateProvider interface {
	Measure(ctx context.Context, r release.GateRule, t gate.Target) (release.Reading, error)
}

// GateTargeter is an executor that fills in what only its lane knows of
// the target its gates measure: the versionCode and rollout start of a Play
// rollout, an iOS build, the CodePush release of an OTA lane.
type GateTargeter interface {
	GateTarget(ctx context.Context, l release.Lane, t *gate.Target) error
}

// Gates measures the gate rules of moving lanes on the rules' own
// intervals, as an Argo analysis run measures its metrics, stores every
// measurement, and gives the reconciler the current stage's readings.
// A stage begins when the lane reaches a percentage or is resumed
// (Status.StageStartedAt); measurements of earlier stages never count.
type Gates struct {
	Store *store.Store
	// Providers by name (release.ProviderSentry…); a rule whose provider
	// is missing is measured as an error, so its gate holds.
	Providers map[string]GateProvider
	// Executors fill in lane-specific targets (GateTargeter).
	Executors Executors
	Apps      map[string]config.App
	Now       func() time.Time
	Log       *slog.Logger
}

func (g *Gates) now() time.Time {
	if g.Now == nil {
		return time.Now().UTC()
	}
	return g.Now().UTC()
}

func (g *Gates) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

// Observe measures the lane's rules that are due, stores the measurements
// and returns the stage's reading of every rule of the plan (a rule not yet
// measured in the stage has an empty reading, which holds its gate). Lanes
// that are not moving, or not yet at a percentage, are not measured.
func (g *Gates) Observe(ctx context.Context, l release.Lane) (map[string]release.GateReading, error) {
	pc, inPass := ctx.Value(passMarker{}).(*passClock)
	if inPass {
		// The gates pass observed the lane already (and stored what it
		// measured): nothing is due again at the same time.
		if rd, ok := pc.recall(l); ok {
			return rd, nil
		}
	}
	o, err := g.observe(ctx, l)
	if err != nil || len(o.taken) == 0 {
		return o.readings, err
	}
	err = g.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.RecordMeasurements(ctx, o.taken); err != nil {
			return err
		}
		return tx.SetGatesDue(ctx, []store.GatesDue{o.due})
	})
	return o.readings, err
}

// gateObservation is what observing a lane's gates found: the stage's
// readings (with the new measurements), the new measurements still to be
// stored, and when the lane's gates are next due.
type gateObservation struct {
	readings map[string]release.GateReading
	taken    []release.Measurement
	due      store.GatesDue
}

func (g *Gates) observe(ctx context.Context, l release.Lane) (gateObservation, error) {
	o := gateObservation{due: store.GatesDue{LaneID: l.ID, Stage: l.Status.StageStart(), At: store.GatesNever}}
	rules := l.Plan.Rules()
	if len(rules) == 0 {
		return o, nil
	}
	since := l.Status.StageStart()
	// One read of the stage's measurements serves the readings, the due
	// rules and the baselines (the gates pass reads a page's at once).
	pc, _ := ctx.Value(passMarker{}).(*passClock)
	ms, _, ok := pc.stageOf(l.ID, since)
	if !ok {
		var err error
		if ms, err = g.Store.Measurements(ctx, l.ID, since, 0); err != nil {
			return o, err
		}
	}
	readings := release.Readings(ms)
	moving := l.Status.State == release.StateRolling || l.Status.State == release.StateWaiting
	if moving && l.Status.Percent > 0 {
		now := g.passNow(ctx)
		var due []release.GateRule
		for _, r := range rules {
			if r.Due(readings[r.Key()], now) {
				due = append(due, r)
			}
		}
		if len(due) > 0 {
			t, terr := g.target(ctx, l, since, now)
			for _, r := range due {
				o.taken = append(o.taken, g.measure(ctx, r, t, terr, l, ms, now))
			}
			readings = release.Readings(append(slices.Clone(ms), o.taken...))
		}
		o.due.At = now.Add(100 * 365 * 24 * time.Hour)
		for _, r := range rules {
			next := now
			if rd := readings[r.Key()]; rd.Measurements > 0 {
				next = rd.Latest.At.Add(r.Every())
			}
			o.due.At = minTime(o.due.At, next)
		}
	}
	for _, r := range rules {
		if _, ok := readings[r.Key()]; !ok {
			readings[r.Key()] = release.GateReading{}
		}
	}
	o.readings = readings
	return o, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// measure takes one measurement of r, judged; a provider that cannot be
// asked gives an error measurement, so the gate holds and says why. stage
// is the stage's measurements so far, oldest first.
func (g *Gates) measure(ctx context.Context, r release.GateRule, t gate.Target, targetErr error, l release.Lane, stage []release.Measurement, now time.Time) release.Measurement {
	m := func() release.Measurement {
		if targetErr != nil {
			return release.ErrorMeasurement(r, targetErr, now)
		}
		p, ok := g.Providers[r.ProviderName()]
		if !ok {
			return release.ErrorMeasurement(r, fmt.Errorf("no %s provider is configured", r.ProviderName()), now)
		}
		t.Baseline = baseline(stage, r.Key())
		rd, err := p.Measure(ctx, r, t)
		if err != nil {
			g.log().Warn("gate measurement failed; the gate holds", "lane", l.ID, "gate", r.Key(), "err", err)
			return release.ErrorMeasurement(r, err, now)
		}
		return release.Judge(r, rd, now)
	}()
	m.LaneID, m.Percent = l.ID, l.Status.Percent
	return m
}

// baseline is the raw figures of the stage's first measurement of a gate
// that has them (stage is oldest first, as Store.Measurements returns it).
func baseline(stage []release.Measurement, key string) map[string]float64 {
	for _, m := range stage {
		if m.Gate == key && len(m.Values) > 0 {
			return m.Values
		}
	}
	return nil
}

// target describes what the lane's gates measure.
func (g *Gates) target(ctx context.Context, l release.Lane, since, now time.Time) (gate.Target, error) {
	t := gate.Target{Platform: l.Platform, Kind: l.Kind, LaneID: l.ID, ReleaseID: l.ReleaseID, Percent: l.Status.Percent,
		StageStarted: since, Now: now}
	pc, _ := ctx.Value(passMarker{}).(*passClock)
	_, earlier, ok := pc.stageOf(l.ID, since)
	if !ok {
		var err error
		if earlier, err = g.Store.MeasuredBefore(ctx, l.ID, since); err != nil {
			return t, err
		}
	}
	t.FirstStage = !earlier
	rel, ok := release.Release{}, false
	if pc != nil {
		pc.mu.Lock()
		rel, ok = pc.releases[l.ReleaseID]
		pc.mu.Unlock()
	}
	if !ok {
		var err error
		if rel, err = g.Store.GetRelease(ctx, l.ReleaseID); err != nil {
			return t, fmt.Errorf("release of lane %s: %w", l.ID, err)
		}
	}
	t.App, t.Tag, t.Version = rel.App, rel.Tag, rel.Version
	if app, ok := g.Apps[rel.App]; ok {
		t.BundleID = app.IOS.BundleID
		if l.Platform == release.Android {
			t.BundleID = app.Android.PackageName
		}
	}
	if l.Kind == release.KindStore {
		bins, err := g.binaries(ctx, pc, rel.App, l.Platform)
		if err != nil {
			return t, err
		}
		for _, b := range bins {
			if b.ReleaseID == l.ReleaseID {
				t.Version, t.Build = b.Version, b.BuildNumber
			}
		}
	}
	ex, err := g.Executors.For(l)
	if err == nil {
		if tg, ok := ex.(GateTargeter); ok {
			if err := tg.GateTarget(ctx, l, &t); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

// binaries are the store binaries of app on p, read once per page of the
// gates pass.
func (g *Gates) binaries(ctx context.Context, pc *passClock, app string, p release.Platform) ([]release.Binary, error) {
	key := app + "|" + string(p)
	if pc != nil {
		pc.mu.Lock()
		bins, ok := pc.binaries[key]
		pc.mu.Unlock()
		if ok {
			return bins, nil
		}
	}
	bins, err := g.Store.Binaries(ctx, app, p)
	if err != nil || pc == nil {
		return bins, err
	}
	pc.mu.Lock()
	if pc.binaries != nil {
		pc.binaries[key] = bins
	}
	pc.mu.Unlock()
	return bins, nil
}

// haltDue reports whether a rule of the plan has failed more times in a
// row than its limit allows.
func haltDue(plan release.Plan, readings map[string]release.GateReading) bool {
	for _, r := range plan.Rules() {
		rd := readings[r.Key()]
		if rd.Latest.Phase == release.PhaseFailed && rd.ConsecutiveFailures > r.FailureLimit {
			return true
		}
	}
	return false
}

// Pass measures the due gates of every moving lane whose gates are due
// (store.GatesDueLanes: a lane measured within its rules' intervals is not
// read at all), whenever the lane is next due itself (a lane soaking for a
// day is still watched), 500 lanes at a time, storing each page's
// measurements and next due times in one transaction, and reconciles at
// once each lane a gate must halt. Provider calls that ask the same
// question share one answer for the pass.
func (g *Gates) Pass(ctx context.Context, r *Rollouts) error {
	if !inGatePass(ctx) {
		ctx = WithGatePass(ctx)
	}
	now := g.passNow(ctx)
	var errs []error
	for c := (store.GatesDueCursor{}); ; {
		lanes, next, err := g.Store.GatesDueLanes(ctx, now, c, 500)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("lanes whose gates are due: %w", err))...)
		}
		if len(lanes) == 0 {
			return errors.Join(errs...)
		}
		c = next
		if pc, ok := ctx.Value(passMarker{}).(*passClock); ok {
			ids := make([]string, len(lanes))
			for i, l := range lanes {
				ids[i] = l.ReleaseID
			}
			rels, err := g.Store.ReleasesByID(ctx, ids)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			since := map[string]time.Time{}
			var stages []store.LaneStage
			for _, l := range lanes {
				if len(l.Plan.Rules()) > 0 {
					since[l.ID] = l.Status.StageStart()
					stages = append(stages, store.LaneStage{LaneID: l.ID, Since: l.Status.StageStart()})
				}
			}
			stage, before, err := g.Store.StageMeasurements(ctx, stages)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			pc.page(rels, since, stage, before)
		}
		var taken []release.Measurement
		var due []store.GatesDue
		var halts []release.Lane
		var observed []observedLane
		for _, l := range lanes {
			o, err := g.observe(ctx, l)
			if err != nil {
				errs = append(errs, fmt.Errorf("gates of lane %s: %w", l.ID, err))
				continue
			}
			taken = append(taken, o.taken...)
			due = append(due, o.due)
			observed = append(observed, observedLane{l, o.readings})
			if len(o.taken) > 0 && r != nil && haltDue(l.Plan, o.readings) {
				halts = append(halts, l)
			}
		}
		err = g.Store.Tx(ctx, func(tx *store.Store) error {
			if err := tx.RecordMeasurements(ctx, taken); err != nil {
				return err
			}
			return tx.SetGatesDue(ctx, due)
		})
		if err != nil {
			// Nothing of the page was recorded: its gates stay due.
			errs = append(errs, err)
			continue
		}
		if pc, ok := ctx.Value(passMarker{}).(*passClock); ok {
			for _, l := range observed {
				pc.remember(l.lane, l.readings)
			}
		}
		for _, l := range halts {
			if err := r.ReconcileLane(ctx, l); err != nil && !errors.Is(err, store.ErrConflict) {
				errs = append(errs, fmt.Errorf("lane %s: %w", l.ID, err))
			}
		}
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
	}
}

type passMarker struct{}

type observedLane struct {
	lane     release.Lane
	readings map[string]release.GateReading
}

// passClock is a pass's clock reading, taken when the pass first needs it,
// and the gate readings the pass has observed, by lane.
type passClock struct {
	once sync.Once
	at   time.Time

	mu       sync.Mutex
	readings map[string]passReadings
	// The gates pass's current page: its lanes' releases, and the store
	// binaries of each app and platform as read for the page.
	releases map[string]release.Release
	binaries map[string][]release.Binary
	// The page's lanes' stage measurements and whether each was measured
	// before its stage, read for the stage that began at since[lane].
	since  map[string]time.Time
	stage  map[string][]release.Measurement
	before map[string]bool
}

// page starts a new page of the gates pass with what was read for its lanes.
func (pc *passClock) page(releases map[string]release.Release, since map[string]time.Time, stage map[string][]release.Measurement, before map[string]bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.releases, pc.binaries = releases, map[string][]release.Binary{}
	pc.since, pc.stage, pc.before = since, stage, before
}

// stageOf returns the page's read of the lane's stage measurements, and
// whether it was measured before the stage.
func (pc *passClock) stageOf(laneID string, since time.Time) (ms []release.Measurement, before, ok bool) {
	if pc == nil {
		return nil, false, false
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	at, ok := pc.since[laneID]
	if !ok || !at.Equal(since) {
		return nil, false, false
	}
	return pc.stage[laneID], pc.before[laneID], true
}

// passReadings are a lane's readings as of the pass's time, in the stage
// that began at stage.
type passReadings struct {
	stage    time.Time
	readings map[string]release.GateReading
}

// remember keeps a lane's readings for the rest of the pass: measured at
// the pass's time, none of its rules is due again within it.
func (pc *passClock) remember(l release.Lane, rd map[string]release.GateReading) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.readings == nil {
		pc.readings = map[string]passReadings{}
	}
	pc.readings[l.ID] = passReadings{stage: l.Status.StageStart(), readings: rd}
}

func (pc *passClock) recall(l release.Lane) (map[string]release.GateReading, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	p, ok := pc.readings[l.ID]
	if !ok || !p.stage.Equal(l.Status.StageStart()) {
		return nil, false
	}
	return p.readings, true
}

// WithGatePass returns a context for one reconcile pass in which gate
// providers asking the same question (same release, same query) share one
// answer across rules and lanes, and every lane's gates are measured at
// the same time: a Prometheus query's evaluation time and a Sentry window's
// end are part of the question, so lanes measured a second apart would
// each ask their own. The shared answers go when the context does.
func WithGatePass(ctx context.Context) context.Context {
	return context.WithValue(gate.WithPass(ctx), passMarker{}, &passClock{})
}

func inGatePass(ctx context.Context) bool {
	_, ok := ctx.Value(passMarker{}).(*passClock)
	return ok
}

// passNow is the time of the pass in ctx (its first reading of the clock),
// or now outside a pass.
func (g *Gates) passNow(ctx context.Context) time.Time {
	pc, ok := ctx.Value(passMarker{}).(*passClock)
	if !ok {
		return g.now()
	}
	pc.once.Do(func() { pc.at = g.now() })
	return pc.at
}

// unread is a reading of nothing for every rule of the plan: each gate
// holds, none passes on the lane's own observations.
func unread(plan release.Plan) map[string]release.GateReading {
	out := map[string]release.GateReading{}
	for _, r := range plan.Rules() {
		out[r.Key()] = release.GateReading{}
	}
	return out
}

// measurementDetails are measurements as an event's details show them.
func measurementDetails(ms []release.Measurement) []map[string]any {
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		d := map[string]any{"gate": m.Gate, "phase": string(m.Phase), "value": m.Value, "samples": m.Samples,
			"at": m.At.UTC().Format(time.RFC3339), "reason": m.Reason}
		if len(m.Values) > 0 {
			d["values"] = m.Values
		}
		if m.Source != "" {
			d["source"] = m.Source
		}
		out = append(out, d)
	}
	return out
}
