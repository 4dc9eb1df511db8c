package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Sentry is the Sentry that sentry gates read release health from:
// sentry.io, a region (https://de.sentry.io/) or a self-hosted Sentry.
type Sentry struct {
	URL          string `yaml:"url"`
	Organization string `yaml:"organization"`
	// Token is an auth token with org:read.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// Prometheus is the server prometheus gates query.
type Prometheus struct {
	URL string `yaml:"url"`
	// Token, when set, is sent as a bearer token.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// AppSentry is where an app's sessions live in Sentry and how its
// releases are named there (templates over TemplateVars; empty: Sentry's
// React Native naming).
type AppSentry struct {
	Project     string `yaml:"project"`
	Environment string `yaml:"environment"`
	Release     string `yaml:"release"`
	OTARelease  string `yaml:"ota_release"`
}

// Gate providers and the lanes a gate may apply to.
const (
	ProviderPlayVitals = "play_vitals"
	ProviderOTA        = "ota"
	ProviderSentry     = "sentry"
	ProviderPrometheus = "prometheus"

	LaneIOS     = "ios"     // the iOS store lane (TestFlight, App Store phased release)
	LaneAndroid = "android" // the Android store lane (Play staged rollout)
	LaneOTA     = "ota"     // OTA lanes on both platforms
)

// DefaultSentryURL is sentry.io's API host.
const DefaultSentryURL = "https://sentry.io/"

var (
	// GateProviders lists the gate providers.
	GateProviders = []string{ProviderPlayVitals, ProviderOTA, ProviderSentry, ProviderPrometheus}
	// GateLanes lists the lanes a gate may name.
	GateLanes = []string{LaneIOS, LaneAndroid, LaneOTA}
	// providerMetrics are the metrics each provider measures (prometheus:
	// any name for its query).
	providerMetrics = map[string][]string{
		ProviderPlayVitals: {"crash_rate", "anr_rate"},
		ProviderOTA:        {"ota_failure_rate"},
		ProviderSentry:     {"crash_free_rate(session)", "crash_free_rate(user)", "crash_rate(session)", "crash_rate(user)"},
	}
	// providerLanes are the lanes each provider can measure.
	providerLanes = map[string][]string{
		ProviderPlayVitals: {LaneAndroid},
		ProviderOTA:        {LaneOTA},
		ProviderSentry:     GateLanes,
		ProviderPrometheus: GateLanes,
	}
	// TemplateVars are the variables of Sentry release-name templates and
	// Prometheus query templates (gate.Vars).
	TemplateVars = []string{"App", "Platform", "Lane", "Release", "Tag", "Version", "Build", "BundleID", "Label", "Percent"}
	sentryOrg    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ProviderName is the gate's provider; a gate written before providers
// existed names only a Play vitals or OTA metric, which implies one.
func (g GateRule) ProviderName() string {
	if g.Provider != "" {
		return g.Provider
	}
	for _, p := range []string{ProviderPlayVitals, ProviderOTA} {
		if slices.Contains(providerMetrics[p], g.Metric) {
			return p
		}
	}
	return ""
}

// AppliesTo reports whether the gate judges lane (LaneIOS, LaneAndroid or
// LaneOTA): the lanes it names, or else every lane its provider measures.
func (g GateRule) AppliesTo(lane string) bool {
	if len(g.Lanes) > 0 {
		return slices.Contains(g.Lanes, lane)
	}
	return slices.Contains(providerLanes[g.ProviderName()], lane)
}

// CheckTemplate parses a release-name or query template and runs it on
// example values, so that an unknown variable is a configuration error.
func CheckTemplate(text string) error {
	tmpl, err := template.New("t").Option("missingkey=error").Parse(text)
	if err != nil {
		return err
	}
	vars := map[string]any{}
	for _, v := range TemplateVars {
		vars[v] = "x"
	}
	vars["Percent"] = 10
	var b strings.Builder
	if err := tmpl.Execute(&b, vars); err != nil {
		return fmt.Errorf("%v (variables: %s)", err, strings.Join(TemplateVars, ", "))
	}
	return nil
}

func (c *Config) validateProviders() error {
	s := c.Sentry
	if s.URL != "" {
		if err := checkURL("sentry.url", s.URL); err != nil {
			return err
		}
	}
	if s.Organization != "" && !sentryOrg.MatchString(s.Organization) {
		return fmt.Errorf("sentry.organization: %q is not an organization slug or id", s.Organization)
	}
	if s.Organization != "" && !s.Token.IsSet() {
		return fmt.Errorf("sentry.token: empty while sentry.organization is set; Sentry needs an auth token with org:read")
	}
	if s.Token.IsSet() && s.Organization == "" {
		return fmt.Errorf("sentry.organization: empty while sentry.token is set")
	}
	if c.Prometheus.URL != "" {
		if err := checkURL("prometheus.url", c.Prometheus.URL); err != nil {
			return err
		}
	}
	for i, a := range c.Apps {
		for j, g := range a.Rollout.Gates {
			gp := fmt.Sprintf("apps[%d].rollout.gates[%d]", i, j)
			switch g.ProviderName() {
			case ProviderSentry:
				if s.Organization == "" && !c.Sandbox {
					return fmt.Errorf("sentry.organization: empty while %s uses the sentry provider", gp)
				}
				if a.Sentry.Project == "" && !c.Sandbox {
					return fmt.Errorf("apps[%d].sentry.project: empty while %s uses the sentry provider", i, gp)
				}
			case ProviderPrometheus:
				if c.Prometheus.URL == "" {
					return fmt.Errorf("prometheus.url: empty while %s uses the prometheus provider", gp)
				}
			}
		}
	}
	return nil
}

func (a *App) validateGates(p string) error {
	for key, tmpl := range map[string]string{"sentry.release": a.Sentry.Release, "sentry.ota_release": a.Sentry.OTARelease} {
		if tmpl == "" {
			continue
		}
		if err := CheckTemplate(tmpl); err != nil {
			return fmt.Errorf("%s.%s: %q is not a valid template: %v", p, key, tmpl, err)
		}
	}
	seen := map[string]int{}
	for j, g := range a.Rollout.Gates {
		gp := fmt.Sprintf("%s.rollout.gates[%d]", p, j)
		prov := g.ProviderName()
		switch {
		case g.Provider != "" && !slices.Contains(GateProviders, g.Provider):
			return fmt.Errorf("%s.provider: %q is not one of %s", gp, g.Provider, strings.Join(GateProviders, ", "))
		case prov == "" && g.Metric == "":
			return fmt.Errorf("%s.provider: empty; set one of %s", gp, strings.Join(GateProviders, ", "))
		case prov == "":
			return fmt.Errorf("%s.metric: %q is not one of crash_rate, anr_rate, ota_failure_rate (or set provider: sentry or prometheus)", gp, g.Metric)
		}
		if prov == ProviderPrometheus {
			if strings.TrimSpace(g.Query) == "" {
				return fmt.Errorf("%s.query: empty; a prometheus gate needs a PromQL query", gp)
			}
			if err := CheckTemplate(g.Query); err != nil {
				return fmt.Errorf("%s.query: %q is not a valid template: %v", gp, g.Query, err)
			}
			if g.MinSamples > 1 {
				return fmt.Errorf("%s.min_samples: %d, but a prometheus query answers one sample", gp, g.MinSamples)
			}
		} else {
			if g.Query != "" {
				return fmt.Errorf("%s.query: set, but only prometheus gates have a query", gp)
			}
			if !slices.Contains(providerMetrics[prov], g.Metric) {
				return fmt.Errorf("%s.metric: %q is not one of %s (the %s metrics)", gp, g.Metric, strings.Join(providerMetrics[prov], ", "), prov)
			}
		}
		if g.Max == nil && g.Min == nil {
			return fmt.Errorf("%s.max: neither max nor min is set; a gate needs a bound", gp)
		}
		for name, v := range map[string]*float64{"max": g.Max, "min": g.Min} {
			if v == nil {
				continue
			}
			if math.IsNaN(*v) || math.IsInf(*v, 0) {
				return fmt.Errorf("%s.%s: %v is not a number", gp, name, *v)
			}
			if prov != ProviderPrometheus && (*v < 0 || *v > 1) {
				return fmt.Errorf("%s.%s: %v is not a rate between 0 and 1", gp, name, *v)
			}
		}
		if g.Max != nil && g.Min != nil && *g.Min > *g.Max {
			return fmt.Errorf("%s.min: %v is above max %v", gp, *g.Min, *g.Max)
		}
		if g.MinSamples < 0 {
			return fmt.Errorf("%s.min_samples: %d is negative", gp, g.MinSamples)
		}
		if g.FailureLimit < 0 {
			return fmt.Errorf("%s.failure_limit: %d is negative", gp, g.FailureLimit)
		}
		if g.Interval != 0 && g.Interval.D() < time.Second {
			return fmt.Errorf("%s.interval: %s is shorter than 1s", gp, g.Interval.D())
		}
		for k, l := range g.Lanes {
			if !slices.Contains(GateLanes, l) {
				return fmt.Errorf("%s.lanes[%d]: %q is not one of %s", gp, k, l, strings.Join(GateLanes, ", "))
			}
			if !slices.Contains(providerLanes[prov], l) {
				return fmt.Errorf("%s.lanes[%d]: %s cannot measure %s lanes (only %s)", gp, k, prov, l, strings.Join(providerLanes[prov], ", "))
			}
		}
		key := prov + ":" + g.Metric
		if prov == ProviderPrometheus {
			key = prov + ":" + g.Query
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s: measures the same as %s.rollout.gates[%d]", gp, p, prev)
		}
		seen[key] = j
	}
	return nil
}
