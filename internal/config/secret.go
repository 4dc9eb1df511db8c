package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Secret is a credential. It never prints: String, GoString, JSON, YAML and
// slog all show "[redacted]". Use Value to read it.
type Secret string

const redacted = "[redacted]"

// Value returns the secret itself.
func (s Secret) Value() string                { return string(s) }
func (s Secret) IsSet() bool                  { return s != "" }
func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalYAML() (any, error)    { return redacted, nil }

var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// resolve expands ${ENV} in value or reads file (relative to baseDir).
// Exactly one of value and file may be set.
func resolve(path string, value Secret, file, baseDir string) (Secret, error) {
	v := strings.TrimSpace(string(value))
	if v != "" && file != "" {
		return "", fmt.Errorf("%s: set either the value or %s_file, not both", path, path[strings.LastIndex(path, ".")+1:])
	}
	if file != "" {
		if !filepath.IsAbs(file) && baseDir != "" {
			file = filepath.Join(baseDir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: cannot read %q: %v", path, file, unwrapPathErr(err))
		}
		out := strings.TrimRight(string(b), "\r\n")
		if out == "" {
			return "", fmt.Errorf("%s_file: %q is empty", path, file)
		}
		return Secret(out), nil
	}
	if m := envRef.FindStringSubmatch(v); m != nil {
		ev, ok := os.LookupEnv(m[1])
		if !ok || ev == "" {
			return "", fmt.Errorf("%s: environment variable %s is not set", path, m[1])
		}
		return Secret(ev), nil
	}
	if strings.Contains(v, "${") {
		return "", fmt.Errorf("%s: only a whole-value ${VAR} reference is supported", path)
	}
	return Secret(v), nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (c *Config) resolveSecrets(baseDir string) error {
	var err error
	set := func(path string, s *Secret, file *string) {
		if err != nil {
			return
		}
		var v Secret
		v, err = resolve(path, *s, *file, baseDir)
		if err == nil {
			*s, *file = v, ""
		}
	}
	set("database.url", &c.Database.URL, &c.Database.URLFile)
	set("github.token", &c.GitHub.Token, &c.GitHub.TokenFile)
	set("github.app.private_key", &c.GitHub.App.PrivateKey, &c.GitHub.App.PrivateKeyFile)
	set("appstore.private_key", &c.AppStore.PrivateKey, &c.AppStore.PrivateKeyFile)
	set("appstore_webhook.secret", &c.AppStoreHook.Secret, &c.AppStoreHook.SecretFile)
	set("slack.signing_secret", &c.Slack.SigningSecret, &c.Slack.SigningSecretFile)
	set("playstore.service_account", &c.PlayStore.ServiceAccount, &c.PlayStore.ServiceAccountFile)
	set("codepush.s3.access_key_id", &c.CodePush.S3.AccessKeyID, &c.CodePush.S3.AccessKeyIDFile)
	set("codepush.s3.secret_access_key", &c.CodePush.S3.SecretAccessKey, &c.CodePush.S3.SecretAccessKeyFile)
	for i := range c.Apps {
		set(fmt.Sprintf("apps[%d].ota.expo.certificate", i), &c.Apps[i].OTA.Expo.Certificate, &c.Apps[i].OTA.Expo.CertificateFile)
		set(fmt.Sprintf("apps[%d].ota.expo.private_key", i), &c.Apps[i].OTA.Expo.PrivateKey, &c.Apps[i].OTA.Expo.PrivateKeyFile)
	}
	set("sentry.token", &c.Sentry.Token, &c.Sentry.TokenFile)
	set("prometheus.token", &c.Prometheus.Token, &c.Prometheus.TokenFile)
	for i := range c.Tokens {
		set(fmt.Sprintf("tokens[%d].token", i), &c.Tokens[i].Token, &c.Tokens[i].TokenFile)
	}
	for i := range c.Notify {
		set(fmt.Sprintf("notify[%d].url", i), &c.Notify[i].URL, &c.Notify[i].URLFile)
	}
	for i := range c.Apps {
		set(fmt.Sprintf("apps[%d].webhook_secret", i), &c.Apps[i].WebhookSecret, &c.Apps[i].WebhookSecretFile)
		// Not a secret, but read the same way.
		k := Secret(c.Apps[i].OTA.SigningPublicKey)
		set(fmt.Sprintf("apps[%d].ota.signing_public_key", i), &k, &c.Apps[i].OTA.SigningPublicKeyFile)
		c.Apps[i].OTA.SigningPublicKey = k.Value()
	}
	return err
}
