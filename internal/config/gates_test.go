package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const gateApp = "apps:\n  - name: acme\n    repository: acme/mobile\n    webhook_secret: x\n"

func gates(list string) string {
	return "sentry:\n  organization: acme\n  token: sntrys_x\nprometheus:\n  url: http://prom:9090/\n" +
		gateApp + "    sentry:\n      project: acme-mobile\n    rollout:\n      gates:\n" + list
}

func TestGateConfig(t *testing.T) {
	c, err := Parse([]byte(gates(`        - {provider: sentry, metric: crash_free_rate(session), min: 0.99, min_samples: 500, failure_limit: 2, interval: 5m}
        - {provider: prometheus, metric: errors, query: 'sum(rate(e{v="{{.Version}}"}[5m]))', max: 0.02, lanes: [android, ota]}
        - {metric: crash_rate, max: 0.0109}
`)), "")
	require.NoError(t, err)
	g := c.Apps[0].Rollout.Gates
	require.Equal(t, ProviderSentry, g[0].ProviderName())
	require.Equal(t, 0.99, *g[0].Min)
	require.Nil(t, g[0].Max)
	require.Equal(t, 2, g[0].FailureLimit)
	require.Equal(t, 5*time.Minute, g[0].Interval.D())
	require.True(t, g[0].AppliesTo(LaneIOS) && g[0].AppliesTo(LaneAndroid) && g[0].AppliesTo(LaneOTA))
	require.False(t, g[1].AppliesTo(LaneIOS), "lanes limits a gate")
	require.True(t, g[1].AppliesTo(LaneOTA))
	require.Equal(t, ProviderPlayVitals, g[2].ProviderName(), "a gate from before providers")
	require.True(t, g[2].AppliesTo(LaneAndroid))
	require.False(t, g[2].AppliesTo(LaneIOS))
	require.Equal(t, DefaultSentryURL, c.Sentry.URL)
	require.Equal(t, "sntrys_x", c.Sentry.Token.Value())
}

// TestGateConfigErrors: bad gate configuration names the key and the value
// (cmd/releasepilot exits 2 on any config error).
func TestGateConfigErrors(t *testing.T) {
	t.Setenv("RP_SENTRY_TOKEN", "sntrys_0123456789abcdefXYZ")
	g := "apps[0].rollout.gates[0]"
	tests := []struct {
		name, yaml, err string
	}{
		{"unknown provider", gates("        - {provider: datadog, metric: x, max: 1}\n"), g + `.provider: "datadog" is not one of play_vitals, ota, sentry, prometheus`},
		{"no provider", gates("        - {max: 1}\n"), g + ".provider: empty; set one of play_vitals, ota, sentry, prometheus"},
		{"metric implying none", gates("        - {metric: vibes, max: 0.1}\n"), g + `.metric: "vibes" is not one of crash_rate, anr_rate, ota_failure_rate`},
		{"missing query", gates("        - {provider: prometheus, max: 1}\n"), g + ".query: empty; a prometheus gate needs a PromQL query"},
		{"min and max both absent", gates("        - {provider: sentry, metric: crash_free_rate(session)}\n"), g + ".max: neither max nor min is set; a gate needs a bound"},
		{"unknown sentry metric", gates("        - {provider: sentry, metric: crash_free_rate(sessions), min: 0.99}\n"), g + `.metric: "crash_free_rate(sessions)" is not one of crash_free_rate(session), crash_free_rate(user), crash_rate(session), crash_rate(user)`},
		{"play metric under ota", gates("        - {provider: ota, metric: crash_rate, max: 0.1}\n"), g + `.metric: "crash_rate" is not one of ota_failure_rate`},
		{"rate out of range", gates("        - {provider: sentry, metric: crash_free_rate(user), min: 99}\n"), g + ".min: 99 is not a rate between 0 and 1"},
		{"min above max", gates("        - {provider: prometheus, query: up, min: 2, max: 1}\n"), g + ".min: 2 is above max 1"},
		{"negative failure limit", gates("        - {provider: sentry, metric: crash_free_rate(user), min: 0.9, failure_limit: -1}\n"), g + ".failure_limit: -1 is negative"},
		{"negative min_samples", gates("        - {metric: crash_rate, max: 0.1, min_samples: -5}\n"), g + ".min_samples: -5 is negative"},
		{"short interval", gates("        - {metric: crash_rate, max: 0.1, interval: 10ms}\n"), g + ".interval: 10ms is shorter than 1s"},
		{"bad interval", gates("        - {metric: crash_rate, max: 0.1, interval: often}\n"), g + `.interval: "often" is not a duration`},
		{"unknown lane", gates("        - {provider: sentry, metric: crash_free_rate(user), min: 0.9, lanes: [web]}\n"), g + `.lanes[0]: "web" is not one of ios, android, ota`},
		{"lane the provider cannot measure", gates("        - {metric: crash_rate, max: 0.1, lanes: [ios]}\n"), g + ".lanes[0]: play_vitals cannot measure ios lanes (only android)"},
		{"query on another provider", gates("        - {provider: sentry, metric: crash_free_rate(user), query: up, min: 0.9}\n"), g + ".query: set, but only prometheus gates have a query"},
		{"unknown template variable", gates("        - {provider: prometheus, query: 'up{v=\"{{.Verison}}\"}', max: 1}\n"), g + `.query: "up{v=\"{{.Verison}}\"}" is not a valid template: template: t:1:8: executing "t" at <.Verison>: map has no entry for key "Verison"`},
		{"broken template", gates("        - {provider: prometheus, query: 'up{v=\"{{.Version\"}', max: 1}\n"), g + ".query:"},
		{"prometheus min_samples", gates("        - {provider: prometheus, query: up, max: 1, min_samples: 100}\n"), g + ".min_samples: 100, but a prometheus query answers one sample"},
		{"duplicate", gates("        - {metric: crash_rate, max: 0.1}\n        - {provider: play_vitals, metric: crash_rate, max: 0.2}\n"), "apps[0].rollout.gates[1]: measures the same as apps[0].rollout.gates[0]"},
		{"unknown gate key", gates("        - {metric: crash_rate, max: 0.1, maximum: 2}\n"), g + ".maximum: unknown key"},
		{"bad release template", gateApp + "    sentry:\n      release: \"{{.Bundle}}@{{.Version}}\"\n", `apps[0].sentry.release: "{{.Bundle}}@{{.Version}}" is not a valid template`},
		{"sentry gate without organization", gateApp + "    sentry: {project: p}\n    rollout:\n      gates: [{provider: sentry, metric: crash_free_rate(user), min: 0.9}]\n", "sentry.organization: empty while apps[0].rollout.gates[0] uses the sentry provider"},
		{"sentry gate without project", "sentry: {organization: acme, token: x}\n" + gateApp + "    rollout:\n      gates: [{provider: sentry, metric: crash_free_rate(user), min: 0.9}]\n", "apps[0].sentry.project: empty while apps[0].rollout.gates[0] uses the sentry provider"},
		{"prometheus gate without url", gateApp + "    rollout:\n      gates: [{provider: prometheus, query: up, max: 1}]\n", "prometheus.url: empty while apps[0].rollout.gates[0] uses the prometheus provider"},
		{"sentry without token", "sentry: {organization: acme}\n", "sentry.token: empty while sentry.organization is set"},
		{"sentry token without organization", "sentry: {token: \"${RP_SENTRY_TOKEN}\"}\n", "sentry.organization: empty while sentry.token is set"},
		{"bad sentry url", "sentry: {url: \"sentry.io\", organization: acme, token: x}\n", `sentry.url: "sentry.io" is not an http(s) URL`},
		{"bad organization", "sentry: {organization: \"acme org\", token: x}\n", `sentry.organization: "acme org" is not an organization slug or id`},
		{"bad prometheus url", "prometheus: {url: \"prom:9090\"}\n", `prometheus.url: "prom:9090" is not an http(s) URL`},
		{"bad ota release template", gateApp + "    sentry:\n      ota_release: \"{{.Lable}}\"\n", `apps[0].sentry.ota_release: "{{.Lable}}" is not a valid template`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), t.TempDir())
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.err)
			require.NotContains(t, err.Error(), "0123456789abcdefXYZ", "secrets never show")
		})
	}
}

// TestSandboxGates: the sandbox runs a Sentry fake, so a sentry gate needs
// no organization or project there.
func TestSandboxGates(t *testing.T) {
	_, err := Parse([]byte("sandbox: true\n"+gateApp+"    rollout:\n      gates: [{provider: sentry, metric: crash_free_rate(session), min: 0.99}]\n"), "")
	require.NoError(t, err)
}

// TestExampleDocumentsEveryGateKey: the example configuration names every
// key of a gate, of the sentry and prometheus sections and of an app's
// sentry section.
func TestExampleDocumentsEveryGateKey(t *testing.T) {
	b, err := os.ReadFile("../../configs/releasepilot.example.yaml")
	require.NoError(t, err)
	example := string(b)
	for _, typ := range []reflect.Type{reflect.TypeOf(GateRule{}), reflect.TypeOf(Sentry{}), reflect.TypeOf(Prometheus{}), reflect.TypeOf(AppSentry{})} {
		for i := range typ.NumField() {
			key := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]
			require.Regexp(t, `(?m)^\s*#?\s*-?\s*`+key+`:`, example, "%s.%s is not documented in the example", typ.Name(), key)
		}
	}
	for _, p := range GateProviders {
		require.Contains(t, example, p)
	}
	for _, v := range TemplateVars {
		require.Contains(t, example, "."+v)
	}
}
