package gate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Target is what a lane's gates measure: one release of an app on one
// platform, shipped one way, at one stage of its rollout.
type Target struct {
	App       string
	Platform  release.Platform
	Kind      release.LaneKind
	LaneID    string
	ReleaseID string
	Tag       string
	// Version is the release's marketing version (1.4.0); Build its build
	// number (CFBundleVersion or versionCode) for store lanes.
	Version string
	Build   string
	// BundleID is the iOS bundle id or the Android package name.
	BundleID string
	Percent  int
	// RolloutStarted is when the lane first reached users; StageStarted
	// when it reached the current percentage or was resumed. Data from
	// before StageStarted describes another stage.
	RolloutStarted time.Time
	StageStarted   time.Time
	// FirstStage: no earlier stage of the lane was measured (the rollout's
	// first percentage, not resumed), so no other stage's data can mix in
	// with the stage's: the release's sessions before it are its testers'.
	FirstStage bool
	// Now is the pass's clock reading.
	Now time.Time

	// VersionCode is the Android store lane's versionCode (Play vitals).
	VersionCode int64
	// CodePushApp and Label name an OTA lane's Production release.
	CodePushApp string
	Label       string
	// Binaries are the store binaries an OTA release targets: devices
	// running them report the OTA release's health.
	Binaries []release.Binary
	// Baseline holds the raw figures of the stage's first measurement of
	// the rule being measured, for providers whose counters only grow
	// (OTA reports): the stage's share is the difference.
	Baseline map[string]float64
}

// Vars are the variables a release-name template or a PromQL query
// template may use, e.g. {{.BundleID}}@{{.Version}}+{{.Build}}.
type Vars struct {
	App      string
	Platform string
	Lane     string // store or ota
	Release  string // the git tag the release was started by
	Tag      string
	Version  string
	Build    string
	BundleID string
	Label    string // OTA lanes: the CodePush label (v7)
	Percent  int
}

// vars are the template variables of t; binary, when set, stands for the
// store binary an OTA release runs on (its version and build).
func (t Target) vars(binary *release.Binary) Vars {
	v := Vars{App: t.App, Platform: string(t.Platform), Lane: string(t.Kind), Release: t.Tag, Tag: t.Tag,
		Version: t.Version, Build: t.Build, BundleID: t.BundleID, Label: t.Label, Percent: t.Percent}
	if binary != nil {
		v.Version, v.Build = binary.Version, binary.BuildNumber
	}
	return v
}

// exampleVars fill templates when configuration is checked.
var exampleVars = Vars{App: "acme", Platform: "ios", Lane: "store", Release: "v1.4.0", Tag: "v1.4.0", Version: "1.4.0",
	Build: "42", BundleID: "com.acme.mobile", Label: "v7", Percent: 10}

// ParseTemplate parses a release-name or query template and runs it once
// on example values, so that a template naming a variable that does not
// exist fails when the configuration is read, not during a rollout.
func ParseTemplate(name, text string) (*template.Template, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, exampleVars); err != nil {
		return nil, fmt.Errorf("template %q: %w", text, err)
	}
	return tmpl, nil
}

func render(tmpl *template.Template, v Vars) (string, error) {
	var b strings.Builder
	if err := tmpl.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// passKey carries a pass's shared provider answers in a context.
type passKey struct{}

type pass struct {
	mu      sync.Mutex
	answers map[string]*answer
}

type answer struct {
	once sync.Once
	v    any
	err  error
}

// WithPass returns a context in which provider calls that ask the same
// thing (same provider, same request) share one answer, errors included,
// until the context ends: a reconcile pass over many lanes asks Sentry or
// Prometheus once per release and query. Without it every call asks.
func WithPass(ctx context.Context) context.Context {
	return context.WithValue(ctx, passKey{}, &pass{answers: map[string]*answer{}})
}

// shared runs fn once per key within the pass in ctx.
func shared[T any](ctx context.Context, key string, fn func() (T, error)) (T, error) {
	p, ok := ctx.Value(passKey{}).(*pass)
	if !ok {
		return fn()
	}
	p.mu.Lock()
	a, ok := p.answers[key]
	if !ok {
		a = &answer{}
		p.answers[key] = a
	}
	p.mu.Unlock()
	a.once.Do(func() { a.v, a.err = fn() })
	v, _ := a.v.(T)
	return v, a.err
}
