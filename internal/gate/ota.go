package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// OTAFailureRate is the metric OTA lane gates read (config
// rollout.gates[].metric).
const OTAFailureRate = "ota_failure_rate"

// OTAObservation is the ota_failure_rate of one release from its devices'
// reports: failed / clients, where failed counts the devices that rolled
// the update back and clients the devices that reported installing it or
// rolling it back (codepush counts each client id once per label and
// status). The samples are those devices; with none, the observation is not
// Fresh and a gate holds. A gate rule's min_samples is therefore a number of
// devices.
//
// What it can be trusted for: telling a release that crashes on start (the
// client rolls it back and says so) from one that does not, across an
// honest fleet. What it cannot: report_status requests are unauthenticated
// by protocol — the deployment key that authorises them ships inside every
// app binary, and client ids are whatever the client says. The server
// refuses labels that are not releases of the deployment and malformed or
// oversized fields, counts a client id once per label and status, and
// limits reports per client address (codepush.report_rate_per_minute and
// report_burst), so one address adds at most the burst at once and the rate
// after that. Someone with many addresses can still invent devices: inflate
// installs (diluting a real failure rate, so a bad release advances) or
// failures (halting a good one). Set min_samples well above the burst, keep
// an eye on lanes whose failure rate looks too good, and halt by hand when
// in doubt: the gate is a safety net for honest fleets, not a defence
// against a hostile one.
func OTAObservation(c codepush.Counts) release.Observation {
	if c.Clients <= 0 {
		return release.Observation{}
	}
	return release.Observation{Value: float64(min(c.Failed, c.Clients)) / float64(c.Clients), Samples: c.Clients, Fresh: true}
}

// OTACounters reads the report counters of a CodePush deployment by label;
// *codepush.Service is one.
type OTACounters interface {
	Metrics(ctx context.Context, app, deployment string) (map[string]codepush.Counts, error)
}

// otaLabelCounters reads a deployment's counters without its history;
// *codepush.Service is one.
type otaLabelCounters interface {
	LabelMetrics(ctx context.Context, app, deployment string, labels ...string) (map[string]codepush.Counts, error)
}

// OTAReports is the gate provider of ota rules: ota_failure_rate of an OTA
// lane's Production release, from the devices' reports (see OTAObservation
// for what they prove and what they do not).
//
// The counters only grow over the release's life, so a stage's share is
// the difference from the stage's first measurement (Target.Baseline): the
// first measurement of a stage takes the baseline and is stale, and so is
// any later one while no device has reported since the stage began.
type OTAReports struct {
	Counters OTACounters
}

// Raw figures an OTA measurement stores, the next one's baseline.
const (
	otaInstalled = "installed"
	otaFailed    = "failed"
	otaClients   = "clients" // devices that reported an install or a rollback
)

// Measure implements the gate provider.
func (o *OTAReports) Measure(ctx context.Context, r release.GateRule, t Target) (release.Reading, error) {
	if t.Kind != release.KindOTA {
		return release.Reading{}, fmt.Errorf("ota measures OTA lanes, not %s lanes", t.Kind)
	}
	if r.Metric != OTAFailureRate {
		return release.Reading{}, fmt.Errorf("ota has no metric %q (%s)", r.Metric, OTAFailureRate)
	}
	if t.Label == "" || t.CodePushApp == "" {
		return release.Reading{Inconclusive: "the lane has no Production release yet"}, nil
	}
	all, err := shared(ctx, "ota|"+t.CodePushApp, func() (map[string]codepush.Counts, error) {
		if lc, ok := o.Counters.(otaLabelCounters); ok {
			// The counters alone, once per app and pass, not the history.
			return lc.LabelMetrics(ctx, t.CodePushApp, codepush.Production)
		}
		return o.Counters.Metrics(ctx, t.CodePushApp, codepush.Production)
	})
	if err != nil {
		return release.Reading{}, fmt.Errorf("report counters of %s Production: %w", t.CodePushApp, err)
	}
	c := all[t.Label]
	rd := release.Reading{Source: fmt.Sprintf("install reports of %s Production %s", t.CodePushApp, t.Label),
		Values: map[string]float64{otaInstalled: float64(c.Installed), otaFailed: float64(c.Failed), otaClients: float64(c.Clients)}}
	if c.Clients <= 0 {
		rd.Inconclusive = fmt.Sprintf("no device has reported on %s yet", t.Label)
		return rd, nil
	}
	base, ok := t.Baseline[otaInstalled]
	baseClients, okClients := t.Baseline[otaClients]
	if !ok || !okClients {
		rd.Stale = fmt.Sprintf("first measurement of this stage: %d devices (%d installs, %d rollbacks) so far are its baseline; the stage is judged on reports after it",
			c.Clients, c.Installed, c.Failed)
		return rd, nil
	}
	// The stage's devices are those that first reported on the release
	// during it; its failures, the rollbacks reported during it.
	stage := OTAObservation(codepush.Counts{Installed: c.Installed - int64(base), Failed: c.Failed - int64(t.Baseline[otaFailed]),
		Clients: c.Clients - int64(baseClients)})
	if !stage.Fresh {
		rd.Stale = fmt.Sprintf("no new device has reported on %s since the stage began (%d devices before it)", t.Label, c.Clients)
		return rd, nil
	}
	rd.Value, rd.Samples = stage.Value, stage.Samples
	rd.Values[OTAFailureRate] = stage.Value
	return rd, nil
}

// OTAApp is the releasepilot app and platform a CodePush app ships.
type OTAApp struct {
	App      string
	Platform release.Platform
	// Expo: the app speaks the Expo Updates protocol, whose releases target
	// an exact runtime version instead of a semver range (see CheckExpo).
	Expo bool
	// AllowUnverifiedStaging lets releases that name no commit reach the
	// Staging deployment, unchecked (ota.allow_unverified_staging); they
	// still cannot be promoted.
	AllowUnverifiedStaging bool
}

// CodePushAppName is the CodePush app of an app's OTA lane on a platform:
// "<ota.app_name>-ios" or "<ota.app_name>-android".
func CodePushAppName(otaAppName string, p release.Platform) string {
	return otaAppName + "-" + string(p)
}

// Fingerprints is what the native gate reads; *store.Store is one.
type Fingerprints interface {
	GetFingerprint(ctx context.Context, app string, p release.Platform, commit, algorithm string) (store.Fingerprint, error)
	Binaries(ctx context.Context, app string, p release.Platform) ([]release.Binary, error)
}

// NativeGate is the codepush.Gate that keeps native changes out of OTA
// releases: a release may target a binary range only when the native
// fingerprint of its commit equals the fingerprint of every recorded binary
// whose version the range covers. It fails closed: a CodePush app it does
// not know, a release without a commit, a commit without a recorded
// fingerprint and a range that covers no recorded binary are all refused,
// each with a reason that says so.
type NativeGate struct {
	Store Fingerprints
	// Apps maps CodePush app names to the app and platform they ship.
	Apps map[string]OTAApp
}

var _ codepush.Gate = (*NativeGate)(nil)

func refuse(field, value, format string, args ...any) error {
	return &codepush.Error{Kind: codepush.KindConflict, Field: field, Value: value, Message: "native gate: " + fmt.Sprintf(format, args...)}
}

// CheckRelease implements codepush.Gate for every deployment of the app:
// whoever creates or promotes a release, through the API or a lane.
func (g *NativeGate) CheckRelease(ctx context.Context, app, deployment, targetRange, commit string) error {
	target, ok := g.Apps[app]
	if !ok {
		return refuse("app", app, "CodePush app %q is not the OTA app of any configured app, so its binaries are unknown", app)
	}
	if target.Expo {
		return g.checkExpo(ctx, target, targetRange, commit)
	}
	rng, ok := codepush.ParseRange(targetRange)
	if !ok {
		return &codepush.Error{Kind: codepush.KindInvalid, Field: "appVersion", Value: targetRange, Message: "not a valid semver range"}
	}
	if commit == "" {
		if deployment == codepush.Staging && target.AllowUnverifiedStaging {
			return nil
		}
		return &codepush.Error{Kind: codepush.KindInvalid, Field: "commit", Message: "native gate: the release names no commit, so its native fingerprint " +
			"cannot be compared with the binaries it targets. Say which commit the bundle was built from: releasepilot ota release --commit SHA, " +
			"the \"commit\" field of the API, or a line \"Commit: SHA\" in the CodePush CLI's --description"}
	}
	fp, err := g.fingerprint(ctx, target, commit)
	if err != nil {
		return err
	}
	bins, err := g.Store.Binaries(ctx, target.App, target.Platform)
	if err != nil {
		return fmt.Errorf("binaries of %s on %s: %w", target.App, target.Platform, err)
	}
	covered := Covered(bins, rng)
	if len(covered) == 0 {
		return refuse("appVersion", targetRange, "the range covers no recorded %s binary of %s (recorded: %s)", target.Platform, target.App, versionList(bins))
	}
	covered, diffs, err := g.nativeDiffs(ctx, target, covered, fp)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return refuse("appVersion", targetRange, "commit %s changes native code that %d of the %d %s binaries in the range do not have:\n%s",
			shortSHA(commit), len(diffs), len(covered), target.Platform, strings.Join(diffs, "\n"))
	}
	return nil
}

// fingerprint reads the commit's recorded fingerprint; a missing or
// unverifiable one refuses the release.
func (g *NativeGate) fingerprint(ctx context.Context, target OTAApp, commit string) (nativecheck.Fingerprint, error) {
	var fp nativecheck.Fingerprint
	stored, err := g.Store.GetFingerprint(ctx, target.App, target.Platform, commit, nativecheck.Algorithm)
	if errors.Is(err, store.ErrNotFound) {
		return fp, refuse("commit", commit, "no %s native fingerprint is recorded for commit %s of %s (releasepilot records one when it plans a tagged release)",
			target.Platform, shortSHA(commit), target.App)
	}
	if err != nil {
		return fp, fmt.Errorf("fingerprint of %s: %w", shortSHA(commit), err)
	}
	if json.Unmarshal(stored.Data, &fp) != nil || !fp.Verify() || fp.Hash != stored.Hash {
		return fp, refuse("commit", commit, "the recorded %s fingerprint of commit %s is damaged or incomplete", target.Platform, shortSHA(commit))
	}
	return fp, nil
}

// explain says how a binary's native inputs differ from fp's, from the
// binary's recorded fingerprint when there is one.
// nativeDiffs brings the covered binaries' fingerprints to the current
// algorithm and says, for each whose native code differs from the
// release's commit, what differs.
func (g *NativeGate) nativeDiffs(ctx context.Context, target OTAApp, covered []release.Binary, fp nativecheck.Fingerprint) ([]release.Binary, []string, error) {
	covered, err := CurrentFingerprints(ctx, g.Store, target.App, target.Platform, covered)
	if err != nil {
		return nil, nil, err
	}
	var diffs []string
	for _, b := range covered {
		if b.Fingerprint == fp.Hash {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("binary %s (build %s, commit %s): %s", b.Version, b.BuildNumber, shortSHA(b.Commit), g.explain(ctx, target, b, fp)))
	}
	return covered, diffs, nil
}

func (g *NativeGate) explain(ctx context.Context, target OTAApp, b release.Binary, fp nativecheck.Fingerprint) string {
	stored, err := g.Store.GetFingerprint(ctx, target.App, target.Platform, b.Commit, fp.Algorithm)
	var live nativecheck.Fingerprint
	if err == nil && json.Unmarshal(stored.Data, &live) == nil && live.Verify() && live.Hash == b.Fingerprint {
		return nativecheck.Explain(live, fp).String()
	}
	return fmt.Sprintf("fingerprint %s differs from the binary's %s (the binary's inputs are not recorded under the current rules, %s — "+
		"it was fingerprinted under older rules, or its commit could not be read — so it cannot be shown to match, and the files cannot be listed)",
		shortSHA(fp.Hash), shortSHA(b.Fingerprint), fp.Algorithm)
}

// CurrentFingerprints returns bins with each binary's native fingerprint
// as the current rules (nativecheck.Algorithm) compute it. A binary
// recorded before the algorithm changed carries a hash that no current
// fingerprint can equal (the algorithm is part of the hash); when its
// commit has been fingerprinted again under the current rules (the
// planner does it for the live binary, a hand-made release for the
// binaries it targets), that fingerprint stands in for it, as the planner
// compares. Otherwise the recorded hash stays, and a comparison with a
// current fingerprint fails: never accepted blindly. A stored fingerprint
// that does not verify is not used.
func CurrentFingerprints(ctx context.Context, fps Fingerprints, app string, p release.Platform, bins []release.Binary) ([]release.Binary, error) {
	out := make([]release.Binary, len(bins))
	copy(out, bins)
	for i, b := range out {
		if b.Commit == "" {
			continue
		}
		stored, err := fps.GetFingerprint(ctx, app, p, b.Commit, nativecheck.Algorithm)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fingerprint of binary %s (commit %s): %w", b.Version, shortSHA(b.Commit), err)
		}
		var fp nativecheck.Fingerprint
		if json.Unmarshal(stored.Data, &fp) == nil && fp.Verify() && fp.Hash == stored.Hash {
			out[i].Fingerprint = stored.Hash
		}
	}
	return out, nil
}

// Covered returns the binaries whose version rng covers.
func Covered(bins []release.Binary, rng codepush.Range) []release.Binary {
	var out []release.Binary
	for _, b := range bins {
		if v, ok := codepush.NormalizeAppVersion(b.Version); ok && rng.Satisfies(v) {
			out = append(out, b)
		}
	}
	return out
}

// MatchingRange is the target range of an OTA release with native
// fingerprint fp: exactly the versions of the recorded binaries that share
// it, e.g. "1.4.0 || 1.4.1", in version order. A version of which some
// build has another fingerprint is left out — devices report only their
// version, so they cannot be told apart — and listed in excluded.
func MatchingRange(bins []release.Binary, fp string) (rng string, excluded []string) {
	match, other := map[string]codepush.Version{}, map[string]bool{}
	for _, b := range bins {
		v, ok := codepush.NormalizeAppVersion(b.Version)
		if !ok {
			continue
		}
		if b.Fingerprint == fp && fp != "" {
			match[v.String()] = v
		} else {
			other[v.String()] = true
		}
	}
	var vs []codepush.Version
	for s, v := range match {
		if other[s] {
			excluded = append(excluded, s)
			continue
		}
		vs = append(vs, v)
	}
	slices.SortFunc(vs, codepush.Version.Compare)
	slices.Sort(excluded)
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, " || "), excluded
}

func versionList(bins []release.Binary) string {
	if len(bins) == 0 {
		return "none"
	}
	seen := map[string]bool{}
	var out []string
	for _, b := range bins {
		if !seen[b.Version] {
			seen[b.Version] = true
			out = append(out, b.Version)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func shortSHA(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
