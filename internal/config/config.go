// Package config loads releasepilot's YAML configuration: one file, strict
// keys, secrets from the environment or files, and errors that name the key
// path and the bad value.
package config

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swapjoy/releasepilot/codepush"
)

// DefaultPath is read when --config is not given and the file exists.
const DefaultPath = "configs/releasepilot.yaml"

// Config is the whole configuration. The zero value plus Defaults() is a
// working single-machine setup on SQLite with no apps.
type Config struct {
	Listen          string       `yaml:"listen"`
	DataDir         string       `yaml:"data_dir"`
	ShutdownTimeout Duration     `yaml:"shutdown_timeout"`
	Database        Database     `yaml:"database"`
	Log             Log          `yaml:"log"`
	Jobs            Jobs         `yaml:"jobs"`
	Tokens          []Token      `yaml:"tokens"`
	GitHub          GitHub       `yaml:"github"`
	NPM             NPM          `yaml:"npm"`
	AppStore        AppStore     `yaml:"appstore"`
	PlayStore       PlayStore    `yaml:"playstore"`
	CodePush        CodePush     `yaml:"codepush"`
	AppStoreHook    AppStoreHook `yaml:"appstore_webhook"`
	Slack           Slack        `yaml:"slack"`
	Dashboard       Dashboard    `yaml:"dashboard"`
	Sentry          Sentry       `yaml:"sentry"`
	Prometheus      Prometheus   `yaml:"prometheus"`
	Sandbox         bool         `yaml:"sandbox"`
	Apps            []App        `yaml:"apps"`
	Notify          []Notify     `yaml:"notify"`
	Freezes         []Freeze     `yaml:"freezes"`
}

// Freeze is a span in which no rollout moves to a higher percentage on its
// schedule (gates still halt, people's commands still act).
type Freeze struct {
	From   string   `yaml:"from"` // RFC 3339, e.g. 2026-12-20T00:00:00+01:00
	To     string   `yaml:"to"`
	Reason string   `yaml:"reason"`
	Apps   []string `yaml:"apps"` // empty: every app
}

// Span returns the freeze's times; Validate has checked them.
func (f Freeze) Span() (from, to time.Time) {
	from, _ = time.Parse(time.RFC3339, f.From)
	to, _ = time.Parse(time.RFC3339, f.To)
	return from, to
}

// Database selects the engine by URL scheme: empty or sqlite:/file: for
// SQLite, postgres:// or postgresql:// for Postgres.
type Database struct {
	URL     Secret `yaml:"url"`
	URLFile string `yaml:"url_file"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto, json, text
}

// Jobs configures River.
type Jobs struct {
	// ControlWorkers run the control queue: reconcile passes, commands,
	// moved and deleted tags.
	ControlWorkers int `yaml:"control_workers"`
	// PlanWorkers run the plan queue: planning, lane steps, diff builds.
	PlanWorkers int `yaml:"plan_workers"`
	// Workers is the old name of PlanWorkers (one queue did everything).
	Workers int `yaml:"workers"`
	// PlanPerRepository: a plan_release job waits while this many older
	// plan jobs of its repository run, on any replica.
	PlanPerRepository int      `yaml:"plan_per_repository"`
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// RescueAfter: a replica silent this long is dead; its running jobs go
	// to the others and its lanes are free.
	RescueAfter Duration `yaml:"rescue_after"`
	// ActionTimeout bounds one remote action on a lane.
	ActionTimeout Duration `yaml:"action_timeout"`
	// PassBudget bounds how long one reconcile pass walks due lanes; the
	// lanes it did not reach are taken first by the next pass.
	PassBudget Duration `yaml:"pass_budget"`
}

// Token is an API bearer token with a role.
type Token struct {
	Name      string `yaml:"name"`
	Role      string `yaml:"role"` // viewer, operator, admin
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// GitHub configures the repository reader.
type GitHub struct {
	APIURL    string `yaml:"api_url"`
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// App authenticates as a GitHub App's installation instead of Token.
	App GitHubApp `yaml:"app"`
	// ReleaseURL links GitHub deployment statuses to the release in
	// releasepilot; {release_id} is replaced by the release's id.
	ReleaseURL string `yaml:"release_url"`
}

// GitHubApp holds a GitHub App's credentials: installation tokens are
// minted from them and refreshed before they expire.
type GitHubApp struct {
	ID int64 `yaml:"id"`
	// InstallationID is the app's installation on the repositories'
	// account; 0 looks it up for each repository.
	InstallationID int64  `yaml:"installation_id"`
	PrivateKey     Secret `yaml:"private_key"`
	PrivateKeyFile string `yaml:"private_key_file"`
}

// Set reports whether any App credential is configured.
func (a GitHubApp) Set() bool { return a.ID != 0 || a.InstallationID != 0 || a.PrivateKey.IsSet() }

// NPM configures the registry used to tell native dependencies.
type NPM struct {
	Registry string `yaml:"registry"`
	// VerdictCache bounds the database cache of package verdicts that
	// replicas share.
	VerdictCache VerdictCache `yaml:"verdict_cache"`
}

// VerdictCache bounds the cache of npm package verdicts.
type VerdictCache struct {
	MaxEntries int      `yaml:"max_entries"`
	MaxAge     Duration `yaml:"max_age"`
}

// AppStore holds App Store Connect API credentials.
type AppStore struct {
	BaseURL        string `yaml:"base_url"`
	IssuerID       string `yaml:"issuer_id"`
	KeyID          string `yaml:"key_id"`
	Individual     bool   `yaml:"individual"`
	PrivateKey     Secret `yaml:"private_key"`
	PrivateKeyFile string `yaml:"private_key_file"`
}

// AppStoreHook holds the shared secret of App Store Connect webhooks.
type AppStoreHook struct {
	Secret     Secret `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// Slack configures inbound Slack slash commands (POST /webhooks/slack).
type Slack struct {
	// SigningSecret is the Slack app's signing secret; requests are
	// verified with it (X-Slack-Signature).
	SigningSecret     Secret `yaml:"signing_secret"`
	SigningSecretFile string `yaml:"signing_secret_file"`
	// Users maps Slack user ids (U…, W…) to roles: viewer, operator, admin.
	// Anyone else is refused.
	Users map[string]string `yaml:"users"`
}

// PlayStore holds Google Play credentials.
type PlayStore struct {
	Endpoint           string `yaml:"endpoint"`
	ReportingEndpoint  string `yaml:"reporting_endpoint"`
	ServiceAccount     Secret `yaml:"service_account"`
	ServiceAccountFile string `yaml:"service_account_file"`
	// VitalsUnit is the unit of the Reporting API's crash and ANR rates:
	// percent (the discovery document's word, the default) or fraction.
	VitalsUnit string `yaml:"vitals_unit"`
}

// CodePush configures the OTA server.
type CodePush struct {
	// Storage is where OTA packages live: "database" (every replica serves
	// every package), "directory" (storage_dir), or "auto" (the default:
	// database on Postgres, directory on SQLite).
	Storage    string `yaml:"storage"`
	StorageDir string `yaml:"storage_dir"`
	PublicURL  string `yaml:"public_url"`
	// S3 locates the bucket of storage "s3".
	S3 S3 `yaml:"s3"`
	// DiffCount is how many of a deployment's most recent earlier releases
	// each new release gets a diff package against (default 5; 0 uses the
	// default, -1 turns diffs off).
	DiffCount int `yaml:"diff_count"`
	// TrustedProxies are the addresses or CIDR blocks of reverse proxies
	// whose X-Forwarded-Proto/-Host/-For headers are believed (download URLs
	// and the client address of status reports).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ReportRatePerMinute and ReportBurst limit device status reports per
	// client address (IPv6: per /64); defaults 12 and 24.
	ReportRatePerMinute int `yaml:"report_rate_per_minute"`
	ReportBurst         int `yaml:"report_burst"`
}

// Proxies returns TrustedProxies parsed; Validate has checked them.
func (c CodePush) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// S3 is an S3-compatible bucket for OTA packages (codepush.storage: s3).
type S3 struct {
	Endpoint            string   `yaml:"endpoint"` // e.g. https://s3.eu-west-1.amazonaws.com
	Region              string   `yaml:"region"`
	Bucket              string   `yaml:"bucket"`
	Prefix              string   `yaml:"prefix"`
	AccessKeyID         Secret   `yaml:"access_key_id"`
	AccessKeyIDFile     string   `yaml:"access_key_id_file"`
	SecretAccessKey     Secret   `yaml:"secret_access_key"`
	SecretAccessKeyFile string   `yaml:"secret_access_key_file"`
	PublicBaseURL       string   `yaml:"public_base_url"` // a CDN in front of the bucket; empty: presigned URLs
	PresignTTL          Duration `yaml:"presign_ttl"`     // default 1h, at most 168h
}

// Notify is an outbound notification target.
type Notify struct {
	Kind    string   `yaml:"kind"` // slack, webhook
	URL     Secret   `yaml:"url"`
	URLFile string   `yaml:"url_file"`
	Events  []string `yaml:"events"`
}

// App is one mobile app.
type App struct {
	Name              string    `yaml:"name"`
	Repository        string    `yaml:"repository"`
	TagPattern        string    `yaml:"tag_pattern"`
	OTATagPattern     string    `yaml:"ota_tag_pattern"`
	WebhookSecret     Secret    `yaml:"webhook_secret"`
	WebhookSecretFile string    `yaml:"webhook_secret_file"`
	Root              string    `yaml:"root"`
	Native            Native    `yaml:"native"`
	Rollout           Rollout   `yaml:"rollout"`
	Sentry            AppSentry `yaml:"sentry"`
	IOS               IOS       `yaml:"ios"`
	Android           Android   `yaml:"android"`
	OTA               OTA       `yaml:"ota"`
	// OnTagMove is what a release does when its tag moves to another
	// commit: refuse (stay on the commit; the default) or restart.
	OnTagMove string `yaml:"on_tag_move"`
	// GitHubDeployments shows each lane's progress on GitHub as a
	// Deployment of the tag's commit.
	GitHubDeployments bool `yaml:"github_deployments"`
}

// Native tunes the native-vs-JS classifier for one app.
type Native struct {
	ExtraGlobs  []string `yaml:"extra_globs"`
	IgnoreGlobs []string `yaml:"ignore_globs"`
	ForceNative []string `yaml:"force_native"`
	ForceJS     []string `yaml:"force_js"`
}

// Rollout is the schedule and health rules shared by an app's staged lanes.
type Rollout struct {
	Soak   Duration   `yaml:"soak"`
	Window string     `yaml:"window"`
	Gates  []GateRule `yaml:"gates"`
}

// GateRule bounds one health measurement (see gates.go).
type GateRule struct {
	Provider     string   `yaml:"provider"`
	Metric       string   `yaml:"metric"`
	Query        string   `yaml:"query"`
	Max          *float64 `yaml:"max"`
	Min          *float64 `yaml:"min"`
	MinSamples   int64    `yaml:"min_samples"`
	FailureLimit int      `yaml:"failure_limit"`
	Interval     Duration `yaml:"interval"`
	Lanes        []string `yaml:"lanes"`
}

// IOS configures the TestFlight and App Store lane.
type IOS struct {
	Enabled                 bool     `yaml:"enabled"`
	BundleID                string   `yaml:"bundle_id"`
	TagPattern              string   `yaml:"tag_pattern"`
	InternalGroups          []string `yaml:"internal_groups"`
	ExternalGroups          []string `yaml:"external_groups"`
	ProcessingTimeout       Duration `yaml:"processing_timeout"`
	UsesNonExemptEncryption bool     `yaml:"uses_non_exempt_encryption"`
	AppStore                bool     `yaml:"app_store"`
	PhasedRelease           bool     `yaml:"phased_release"`
	// AppID is the App Store Connect app id; empty: looked up by bundle id.
	AppID string `yaml:"app_id"`
	// BuildSource is "pickup" (a CI uploaded the build; find it by version
	// and build number) or "upload" (releasepilot uploads the IPA asset).
	BuildSource string `yaml:"build_source"`
	// IPAAsset names the GitHub release asset to upload ("*.ipa" glob).
	IPAAsset string `yaml:"ipa_asset"`
	// PollInterval is the first processing poll interval; it grows from there.
	PollInterval Duration `yaml:"poll_interval"`
	// Locale of "What to Test", and the default locale of the App Store
	// "What's New" text.
	Locale string `yaml:"locale"`
	// WhatsNew sets the App Store "What's New" text per locale
	// (appStoreVersionLocalizations); locales not listed get the
	// default locale's entry, else the release notes.
	WhatsNew map[string]string `yaml:"whats_new"`
	// EncryptionDeclarationID is the App Store Connect app encryption
	// declaration linked to builds that use non-exempt encryption.
	EncryptionDeclarationID string `yaml:"encryption_declaration_id"`
	// ReviewTimeout bounds each wait on a review: Beta App Review, App
	// Review, and another build, version or submission of the app that is
	// in review first. The lane fails with the reason after it.
	ReviewTimeout Duration `yaml:"review_timeout"`
}

// Android configures the Play lane.
type Android struct {
	Enabled              bool   `yaml:"enabled"`
	PackageName          string `yaml:"package_name"`
	TagPattern           string `yaml:"tag_pattern"`
	Stages               []int  `yaml:"stages"`
	Approval             bool   `yaml:"approval"`
	ReleaseNotesLanguage string `yaml:"release_notes_language"`
	// Track is where the staged rollout runs; production by default.
	Track string `yaml:"track"`
	// SkipInternal goes straight to Track without the internal track.
	SkipInternal bool `yaml:"skip_internal"`
	// AABAsset names the GitHub release asset to upload ("*.aab" glob);
	// empty: pick up a versionCode already uploaded by CI.
	AABAsset string `yaml:"aab_asset"`
	// InAppUpdatePriority is Play's in-app update priority, 0 to 5.
	InAppUpdatePriority int `yaml:"in_app_update_priority"`
	// BundleTimeout bounds the wait for the release's bundle (the
	// aab_asset on the GitHub release, or CI's upload); the lane fails
	// with the reason after it.
	BundleTimeout Duration `yaml:"bundle_timeout"`
}

// OTA configures the CodePush lane.
type OTA struct {
	Enabled bool  `yaml:"enabled"`
	Stages  []int `yaml:"stages"`
	// AppName is the CodePush app name prefix; apps are <app_name>-ios and
	// <app_name>-android. Empty: the app's name.
	AppName string `yaml:"app_name"`
	// BundleAsset names the GitHub release asset holding the JS bundle for a
	// platform; {platform} is replaced by ios or android.
	BundleAsset string `yaml:"bundle_asset"`
	// Mandatory marks OTA releases mandatory by default.
	Mandatory bool `yaml:"mandatory"`
	// StagingSoak is how long a release stays on Staging before it is
	// promoted to Production at the first stage.
	StagingSoak Duration `yaml:"staging_soak"`
	// BundleTimeout bounds the wait for the bundle asset on the GitHub
	// release; the lane fails with the reason after it.
	BundleTimeout Duration `yaml:"bundle_timeout"`
	// Protocol is what the app's devices speak: "codepush" (the default,
	// react-native-code-push) or "expo" (expo-updates, Expo Updates v1).
	Protocol string `yaml:"protocol"`
	// Expo configures protocol "expo".
	Expo Expo `yaml:"expo"`
	// AllowUnverifiedStaging lets releases made by hand that name no commit
	// reach Staging (never Production); off by default.
	AllowUnverifiedStaging bool `yaml:"allow_unverified_staging"`
	// SigningPublicKey is the PEM RSA public key (the app's
	// CodePushPublicKey) every package released to the app's CodePush apps
	// must be signed with; empty: unsigned packages are accepted.
	SigningPublicKey     string `yaml:"signing_public_key"`
	SigningPublicKeyFile string `yaml:"signing_public_key_file"`
}

// SigningKey returns the parsed signing public key, or nil; Validate has
// checked it.
func (o OTA) SigningKey() *rsa.PublicKey {
	if o.SigningPublicKey == "" {
		return nil
	}
	k, _ := codepush.ParsePublicKey([]byte(o.SigningPublicKey))
	return k
}

// Expo configures an app served over the Expo Updates protocol.
type Expo struct {
	// DistAsset names the GitHub release asset holding `npx expo export`
	// output (dist/ with metadata.json) as .tar.gz, .tgz or .zip.
	DistAsset string `yaml:"dist_asset"`
	// Certificate and PrivateKey sign manifests (expo-signature) when a
	// client sends expo-expect-signature: the PEM certificate (chain, leaf
	// first) embedded in the app and its RSA private key.
	Certificate     Secret `yaml:"certificate"`
	CertificateFile string `yaml:"certificate_file"`
	PrivateKey      Secret `yaml:"private_key"`
	PrivateKeyFile  string `yaml:"private_key_file"`
	// KeyID is the keyid of the app's codeSigningMetadata; default "main"
	// (what `npx expo-updates codesigning:configure` writes).
	KeyID string `yaml:"key_id"`
}

// Duration reads "90s", "24h".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Load reads the config at path. An empty path means DefaultPath when it
// exists, else built-in defaults. Every error names the key path.
func Load(path string) (*Config, error) {
	explicit := path != ""
	if path == "" {
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
	case !explicit && errors.Is(err, os.ErrNotExist):
		c := &Config{}
		c.applyDefaults()
		return c, c.Validate()
	default:
		return nil, invalid(fmt.Errorf("config: %w", err))
	}
	c, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, invalid(fmt.Errorf("%s: %w", path, err))
	}
	return c, nil
}

// Parse decodes, resolves secrets (relative *_file paths against baseDir),
// fills defaults and validates. Every error wraps ErrInvalid.
func Parse(data []byte, baseDir string) (*Config, error) {
	c, err := parse(data, baseDir)
	if err != nil {
		return nil, invalid(err)
	}
	return c, nil
}

func parse(data []byte, baseDir string) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, errEOF) {
			c := &Config{}
			c.applyDefaults()
			return c, c.Validate()
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if err := checkKeys(&root, &Config{}); err != nil {
		return nil, err
	}
	var c Config
	if err := root.Decode(&c); err != nil {
		return nil, decodeError(err)
	}
	if err := c.resolveSecrets(baseDir); err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
