package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const good = `
listen: 127.0.0.1:9090
database:
  url: postgres://u@127.0.0.1:5432/db
tokens:
  - name: ci
    role: operator
    token: ${RP_TEST_TOKEN}
apps:
  - name: acme
    repository: acme/mobile
    webhook_secret_file: hook.secret
    android:
      enabled: true
      package_name: com.acme.app
      stages: [5, 20, 100]
    ios:
      enabled: true
      bundle_id: com.acme.app
      internal_groups: [QA]
    rollout:
      soak: 2h
      window: "CRON_TZ=Europe/Berlin * 10-16 * * MON-FRI"
      gates:
        - {metric: crash_rate, max: 0.01, min_samples: 200}
`

func TestParseGood(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("s3cret-hook\n"), 0o600))
	t.Setenv("RP_TEST_TOKEN", "tok-0123456789abcdef")
	c, err := Parse([]byte(good), dir)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9090", c.Listen)
	require.Equal(t, "postgres", c.DatabaseEngine())
	require.Equal(t, "tok-0123456789abcdef", c.Tokens[0].Token.Value())
	require.Equal(t, "s3cret-hook", c.Apps[0].WebhookSecret.Value())
	require.Equal(t, []int{5, 20, 100}, c.Apps[0].Android.Stages)
	require.Equal(t, []int{10, 25, 50, 100}, c.Apps[0].OTA.Stages, "default")
	require.Equal(t, "v*", c.Apps[0].TagPattern, "default")
	require.Equal(t, DefaultDataDir, c.DataDir)

	// Secrets never print, whichever way the config is shown.
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", c, c, c), c.Tokens[0].Token.String()} {
		require.NotContains(t, s, "tok-0123456789abcdef")
		require.NotContains(t, s, "s3cret-hook")
	}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.NotContains(t, string(b), "s3cret-hook")
	require.NotContains(t, string(b), "127.0.0.1:5432", "database URLs carry passwords")
}

func TestParseErrors(t *testing.T) {
	t.Setenv("RP_SET", "0123456789abcdefXYZ")
	app := "apps:\n  - name: acme\n    repository: acme/mobile\n    webhook_secret: x\n"
	tests := []struct {
		name, yaml, err string
	}{
		{"unknown top key", "lisen: :80\n", "lisen: unknown key (line 1; known keys: listen,"},
		{"unknown nested key", app + "    android:\n      stagez: [1]\n", "apps[0].android.stagez: unknown key"},
		{"slack users without a secret", "slack:\n  users: {U012ABCDEF: operator}\n", "slack.signing_secret: empty while slack.users is set"},
		{"slack secret without users", "slack:\n  signing_secret: abc\n", "slack.users: empty while slack.signing_secret is set"},
		{"slack user id", "slack:\n  signing_secret: abc\n  users: {steve: operator}\n", "slack.users.steve: not a Slack user id"},
		{"slack role", "slack:\n  signing_secret: abc\n  users: {U012ABCDEF: boss}\n", `slack.users.U012ABCDEF: "boss" is not one of viewer, operator, admin`},
		{"dashboard session ttl", "dashboard:\n  session_ttl: 10s\n", "dashboard.session_ttl: 10s is not between 1m and 720h"},
		{"dashboard live interval", "dashboard:\n  live_interval: 2m\n", "dashboard.live_interval: 2m0s is not between 100ms and 1m"},
		{"dashboard key", "dashboard:\n  cookie_secure: true\n", "dashboard.cookie_secure"},
		{"freeze time", "freezes:\n  - {from: 2026-12-20, to: 2027-01-04T00:00:00Z}\n", `freezes[0].from: "2026-12-20" is not an RFC 3339 time`},
		{"freeze order", "freezes:\n  - {from: 2027-01-04T00:00:00Z, to: 2026-12-20T00:00:00Z}\n", "freezes[0].to: 2026-12-20T00:00:00Z is not after from (2027-01-04T00:00:00Z)"},
		{"freeze app", app + "freezes:\n  - {from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z, apps: [acme, nope]}\n", `freezes[0].apps[1]: "nope" is not a configured app`},
		{"not a percentage", "apps:\n  - {name: a, repository: a/b, webhook_secret: x}\n  - name: b\n    repository: a/c\n    webhook_secret: x\n    android:\n      stages: [10, 50, 120]\n", "apps[1].android.stages[2]: 120 is not a percentage"},
		{"not a number", app + "    android:\n      stages: [10, ten]\n", `apps[0].android.stages[1]: "ten" is not a whole number`},
		{"not increasing", app + "    ota:\n      stages: [50, 25, 100]\n", "apps[0].ota.stages[1]: 25 does not increase on 50"},
		{"bad duration", "shutdown_timeout: soon\n", `shutdown_timeout: "soon" is not a duration`},
		{"bad list", "apps:\n  - name: a\n    repository: a/b\n    webhook_secret: x\n    ios:\n      internal_groups: QA\n", `apps[0].ios.internal_groups: expected a list, found "QA"`},
		{"secret list not quoted", "tokens: \"0123456789abcdefXYZ\"\n", "tokens: expected a list, found a single value"},
		{"missing webhook secret", "apps:\n  - name: acme\n    repository: acme/mobile\n", "apps[0].webhook_secret: empty"},
		{"bad repository", "apps:\n  - name: acme\n    repository: acme\n    webhook_secret: x\n", `apps[0].repository: "acme" is not owner/name`},
		{"bad role", "tokens:\n  - {name: a, role: god, token: \"${RP_SET}\"}\n", `tokens[0].role: "god" is not one of viewer, operator, admin`},
		{"unset env", "tokens:\n  - {name: a, role: admin, token: \"${RP_UNSET_VAR}\"}\n", "tokens[0].token: environment variable RP_UNSET_VAR is not set"},
		{"value and file", app + "    webhook_secret_file: nope\n", "apps[0].webhook_secret: set either the value or webhook_secret_file, not both"},
		{"bad window", app + "    rollout:\n      window: \"* * * * *\"\n", "needs a CRON_TZ= prefix"},
		{"bad cron", app + "    rollout:\n      window: \"CRON_TZ=UTC 99 * * * *\"\n", "apps[0].rollout.window"},
		{"bad glob", app + "    native:\n      extra_globs: [\"ios/**/[\"]\n", `apps[0].native.extra_globs[0]: "ios/**/[" is not a valid glob`},
		{"bad gate metric", app + "    rollout:\n      gates: [{metric: vibes, max: 0.1}]\n", `apps[0].rollout.gates[0].metric: "vibes" is not one of`},
		{"bad db scheme", "database:\n  url: mysql://x\n", "database.url: scheme is not"},
		{"negative verdict cache size", "npm:\n  verdict_cache:\n    max_entries: -5\n", "npm.verdict_cache.max_entries: -5 is negative"},
		{"bad verdict cache age", "npm:\n  verdict_cache:\n    max_age: forever\n", `npm.verdict_cache.max_age: "forever" is not a duration`},
		{"negative verdict cache age", "npm:\n  verdict_cache:\n    max_age: -1h\n", "npm.verdict_cache.max_age: -1h0m0s is negative"},
		{"bad yaml", "listen: [\n", "not valid YAML"},
		{"duplicate app", app + "  - name: acme\n    repository: acme/other\n    webhook_secret: y\n", `apps[1].name: "acme" is used twice`},
		{"bad notify event", "notify:\n  - {kind: slack, url: \"https://hooks.slack.com/services/x\", events: [halted, exploded]}\n", `notify[0].events[1]: "exploded" is not one of started, planned`},
		{"bad notify url", "notify:\n  - {kind: webhook, url: \"ftp://x\"}\n", "notify[0].url: not an http(s) URL"},
		{"asc key without key id", "appstore:\n  issuer_id: abc\n  private_key: \"-----BEGIN PRIVATE KEY-----\"\n", "appstore.key_id: empty while appstore.private_key is set"},
		{"asc key not pem", "appstore:\n  key_id: K\n  issuer_id: abc\n  private_key: \"c2VjcmV0\"\n", "appstore.private_key: not a PKCS#8 PEM key"},
		{"bad package storage", "codepush:\n  storage: ftp\n", `codepush.storage: "ftp" is not one of auto, database, directory, s3`},
		{"bad trusted proxy", "codepush:\n  trusted_proxies: [10.0.0.0/8, lb.internal]\n", `codepush.trusted_proxies[1]: "lb.internal" is not an IP address or CIDR block`},
		{"negative report rate", "codepush:\n  report_rate_per_minute: -1\n", "codepush.report_rate_per_minute: -1 is negative"},
		{"bad signing key", app + "    ota:\n      enabled: true\n      signing_public_key: not a key\n", "apps[0].ota.signing_public_key: not an RSA public key in PEM"},
		{"missing signing key file", app + "    ota:\n      signing_public_key_file: /nonexistent/key.pem\n", `apps[0].ota.signing_public_key_file: cannot read "/nonexistent/key.pem"`},
		{"phased without app store", app + "    ios:\n      enabled: true\n      bundle_id: com.a\n      phased_release: true\n", "apps[0].ios.phased_release: true while ios.app_store is false"},
		{"ios without bundle", app + "    ios:\n      enabled: true\n", "apps[0].ios.bundle_id: empty while ios.enabled is true"},
		{"gate max nan", app + "    rollout:\n      gates: [{metric: crash_rate, max: .nan}]\n", "apps[0].rollout.gates[0].max: NaN is not a finite number"},
		{"gate max inf", app + "    rollout:\n      gates: [{metric: crash_rate, max: .inf}]\n", "apps[0].rollout.gates[0].max: +Inf is not a finite number"},
		{"negative soak", app + "    rollout:\n      soak: -1h\n", "apps[0].rollout.soak: -1h0m0s is negative"},
		{"negative reconcile interval", "jobs:\n  reconcile_interval: -30s\n", "jobs.reconcile_interval: -30s is negative"},
		{"pass budget over the interval", "jobs:\n  reconcile_interval: 30s\n  pass_budget: 45s\n", "jobs.pass_budget: 45s is not between 100ms and the reconcile interval (30s, at most 4m)"},
		{"pass budget tiny", "jobs:\n  pass_budget: 10ms\n", "jobs.pass_budget: 10ms is not between 100ms and the reconcile interval (1m0s, at most 4m)"},
		{"negative processing timeout", app + "    ios:\n      processing_timeout: -5m\n", "apps[0].ios.processing_timeout: -5m0s is negative"},
		{"window never opens", app + "    rollout:\n      window: \"CRON_TZ=Europe/Berlin 0 10 30 2 *\"\n", `apps[0].rollout.window: "CRON_TZ=Europe/Berlin 0 10 30 2 *" never opens`},
		{"one secret two roles", "tokens:\n  - {name: ci, role: viewer, token: \"${RP_SET}\"}\n  - {name: ops, role: admin, token: \"${RP_SET}\"}\n", `tokens[1].token: the same token as tokens[0] ("ci")`},
		{"listen port", "listen: 127.0.0.1:99999\n", `listen: "127.0.0.1:99999": port "99999" is not a number between 0 and 65535`},
		{"vitals unit", "playstore:\n  vitals_unit: permille\n", `playstore.vitals_unit: "permille" is not one of percent, fraction`},
		{"review timeout", app + "    ios:\n      review_timeout: 30s\n", "apps[0].ios.review_timeout: 30s is shorter than 1m"},
		{"bundle timeout", app + "    android:\n      bundle_timeout: 1s\n", "apps[0].android.bundle_timeout: 1s is shorter than 1m"},
		{"ota bundle timeout", app + "    ota:\n      bundle_timeout: 10s\n", "apps[0].ota.bundle_timeout: 10s is shorter than 1m"},
		{"encryption without declaration", app + "    ios:\n      enabled: true\n      bundle_id: com.a\n      app_store: true\n      uses_non_exempt_encryption: true\n", "apps[0].ios.encryption_declaration_id: empty while ios.uses_non_exempt_encryption is true"},
		{"declaration without encryption", app + "    ios:\n      encryption_declaration_id: d-1\n", `apps[0].ios.encryption_declaration_id: "d-1" is set while ios.uses_non_exempt_encryption is false`},
		{"whats new locale", app + "    ios:\n      whats_new: {english: Fixes}\n", "apps[0].ios.whats_new.english: not a locale"},
		{"whats new empty", app + "    ios:\n      whats_new: {de-DE: \"  \"}\n", "apps[0].ios.whats_new.de-DE: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), t.TempDir())
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.err)
			require.NotContains(t, err.Error(), "0123456789abcdefXYZ")
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestSecretFileMissing(t *testing.T) {
	_, err := Parse([]byte("apps:\n  - name: acme\n    repository: acme/mobile\n    webhook_secret_file: nope.txt\n"), t.TempDir())
	require.ErrorContains(t, err, `apps[0].webhook_secret_file: cannot read`)
	require.ErrorContains(t, err, "no such file or directory")
}

func TestLoadDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c, err := Load("")
	require.NoError(t, err)
	require.Equal(t, DefaultListen, c.Listen)
	require.Equal(t, "sqlite", c.DatabaseEngine())

	_, err = Load(filepath.Join(dir, "absent.yaml"))
	require.ErrorContains(t, err, "absent.yaml")

	require.NoError(t, os.MkdirAll("configs", 0o755))
	require.NoError(t, os.WriteFile(DefaultPath, []byte("listen: 127.0.0.1:7070\n"), 0o600))
	c, err = Load("")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7070", c.Listen)
}

func TestSandboxConfigIsValid(t *testing.T) {
	t.Setenv("RELEASEPILOT_GITHUB_WEBHOOK_SECRET", "example-secret")
	t.Setenv("GITHUB_TOKEN", "ghp_example")
	c, err := Load("../../configs/sandbox.yaml")
	require.NoError(t, err)
	require.True(t, c.Sandbox)
	require.True(t, c.Apps[0].Android.Enabled)
}

func TestExampleConfigIsValid(t *testing.T) {
	t.Setenv("RELEASEPILOT_GITHUB_WEBHOOK_SECRET", "example-secret")
	t.Setenv("RELEASEPILOT_ADMIN_TOKEN", "example-admin-token-0123")
	t.Setenv("GITHUB_TOKEN", "ghp_example")
	c, err := Load("../../configs/releasepilot.example.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, c.Apps)
}

func TestCodePushSecurityKeys(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "codepush.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	c, err := Parse([]byte("codepush:\n  trusted_proxies: [10.0.0.0/8, \"::ffff:127.0.0.1\", 2001:db8::/32]\n"+
		"apps:\n  - name: acme\n    repository: acme/mobile\n    webhook_secret: x\n    ota: {enabled: true, signing_public_key_file: codepush.pem, allow_unverified_staging: true}\n"), dir)
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("2001:db8::/32")}, c.CodePush.Proxies())
	require.True(t, c.Apps[0].OTA.SigningKey().Equal(&key.PublicKey), "read relative to the config file")
	require.True(t, c.Apps[0].OTA.AllowUnverifiedStaging)
	require.Equal(t, 0, c.CodePush.ReportRatePerMinute, "0: the codepush default")
}
