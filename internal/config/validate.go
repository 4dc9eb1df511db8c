package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"

	"github.com/swapjoy/releasepilot/codepush"
)

// Defaults used when a key is absent.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultDataDir           = "./data"
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReconcileInterval = time.Minute
	DefaultRescueAfter       = 15 * time.Second
	DefaultActionTimeout     = 30 * time.Second
	// DefaultPassBudget leaves a reconcile pass well inside the default
	// interval (and under River's 5-minute bound of the reconcile job).
	DefaultPassBudget        = 20 * time.Second
	DefaultWorkers           = 10
	DefaultControlWorkers    = 5
	DefaultPlanPerRepository = 2
	DefaultTagPattern        = "v*"
	DefaultGitHubAPI         = "https://api.github.com/"
	DefaultNPMRegistry       = "https://registry.npmjs.org/"
	DefaultVerdictEntries    = 20000
	DefaultVerdictMaxAge     = 30 * 24 * time.Hour
	DefaultProcessingTimeout = 2 * time.Hour
	DefaultSoak              = 24 * time.Hour
	// DefaultReviewTimeout bounds a wait on Apple's reviews: they take a
	// day or two; a week means something needs a person.
	DefaultReviewTimeout = 7 * 24 * time.Hour
	// DefaultBundleTimeout bounds the Android lane's wait for its bundle.
	DefaultBundleTimeout = 6 * time.Hour
	// DefaultOTABundleTimeout bounds the OTA lane's wait for its bundle.
	DefaultOTABundleTimeout = 2 * time.Hour
)

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if c.Jobs.ReconcileInterval == 0 {
		c.Jobs.ReconcileInterval = Duration(DefaultReconcileInterval)
	}
	if c.Jobs.ControlWorkers == 0 {
		c.Jobs.ControlWorkers = DefaultControlWorkers
	}
	// jobs.workers was the one queue's workers: it still sets the plan
	// queue's (validate refuses both set to different values).
	if c.Jobs.PlanWorkers == 0 {
		c.Jobs.PlanWorkers = DefaultWorkers
		if c.Jobs.Workers > 0 {
			c.Jobs.PlanWorkers = c.Jobs.Workers
		}
	}
	if c.Jobs.PlanPerRepository == 0 {
		c.Jobs.PlanPerRepository = DefaultPlanPerRepository
	}
	if c.Jobs.RescueAfter == 0 {
		c.Jobs.RescueAfter = Duration(DefaultRescueAfter)
	}
	if c.Jobs.ActionTimeout == 0 {
		c.Jobs.ActionTimeout = Duration(DefaultActionTimeout)
	}
	if c.Jobs.PassBudget == 0 {
		c.Jobs.PassBudget = Duration(min(DefaultPassBudget, c.Jobs.ReconcileInterval.D()/2))
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "auto"
	}
	if c.GitHub.APIURL == "" {
		c.GitHub.APIURL = DefaultGitHubAPI
	}
	if c.NPM.Registry == "" {
		c.NPM.Registry = DefaultNPMRegistry
	}
	c.Dashboard.applyDefaults()
	if c.NPM.VerdictCache.MaxEntries == 0 {
		c.NPM.VerdictCache.MaxEntries = DefaultVerdictEntries
	}
	if c.NPM.VerdictCache.MaxAge == 0 {
		c.NPM.VerdictCache.MaxAge = Duration(DefaultVerdictMaxAge)
	}
	if c.Sentry.URL == "" {
		c.Sentry.URL = DefaultSentryURL
	}
	if c.CodePush.Storage == "" {
		c.CodePush.Storage = "auto"
	}
	if c.CodePush.StorageDir == "" {
		c.CodePush.StorageDir = strings.TrimRight(c.DataDir, "/") + "/packages"
	}
	c.otaDeliveryDefaults()
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.TagPattern == "" {
			a.TagPattern = DefaultTagPattern
		}
		if a.Rollout.Soak == 0 {
			a.Rollout.Soak = Duration(DefaultSoak)
		}
		if a.IOS.ProcessingTimeout == 0 {
			a.IOS.ProcessingTimeout = Duration(DefaultProcessingTimeout)
		}
		if len(a.Android.Stages) == 0 {
			a.Android.Stages = []int{10, 25, 50, 100}
		}
		if a.Android.ReleaseNotesLanguage == "" {
			a.Android.ReleaseNotesLanguage = "en-US"
		}
		if len(a.OTA.Stages) == 0 {
			a.OTA.Stages = []int{10, 25, 50, 100}
		}
		if a.OTA.AppName == "" {
			a.OTA.AppName = a.Name
		}
		if a.OTA.BundleAsset == "" {
			a.OTA.BundleAsset = "bundle-{platform}.zip"
		}
		if a.IOS.BuildSource == "" {
			a.IOS.BuildSource = "pickup"
		}
		if a.IOS.PollInterval == 0 {
			a.IOS.PollInterval = Duration(30 * time.Second)
		}
		if a.IOS.Locale == "" {
			a.IOS.Locale = "en-US"
		}
		if a.Android.Track == "" {
			a.Android.Track = "production"
		}
		if a.IOS.ReviewTimeout == 0 {
			a.IOS.ReviewTimeout = Duration(DefaultReviewTimeout)
		}
		if a.Android.BundleTimeout == 0 {
			a.Android.BundleTimeout = Duration(DefaultBundleTimeout)
		}
		if a.OTA.BundleTimeout == 0 {
			a.OTA.BundleTimeout = Duration(DefaultOTABundleTimeout)
		}
	}
	if c.PlayStore.VitalsUnit == "" {
		c.PlayStore.VitalsUnit = "percent"
	}
}

// NotifyTopics are the events notify targets may subscribe to.
var NotifyTopics = []string{"started", "planned", "refused", "advanced", "halted", "resumed", "completed", "failed",
	"cancelled", "tag_moved", "tag_deleted"}

var (
	appName  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
)

// DatabaseEngine returns "sqlite" or "postgres" for the configured URL.
func (c *Config) DatabaseEngine() string {
	u := c.Database.URL.Value()
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		return "postgres"
	}
	return "sqlite"
}

// Validate checks every value and names the key path of the first bad one.
// Its errors wrap ErrInvalid.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return invalid(err)
	}
	return nil
}

func (c *Config) validate() error {
	if err := checkNumbers(reflect.ValueOf(c).Elem(), ""); err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("listen: %q: port %q is not a number between 0 and 65535", c.Listen, port)
	}
	if u := c.PlayStore.VitalsUnit; u != "percent" && u != "fraction" {
		return fmt.Errorf("playstore.vitals_unit: %q is not one of percent, fraction", u)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("shutdown_timeout: %s is negative", c.ShutdownTimeout.D())
	}
	if u := c.Database.URL.Value(); u != "" {
		ok := false
		for _, p := range []string{"postgres://", "postgresql://", "sqlite:", "file:"} {
			if strings.HasPrefix(u, p) {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("database.url: scheme is not postgres://, postgresql://, sqlite: or file:")
		}
	}
	switch c.CodePush.Storage {
	case "auto", "database", "directory", "s3":
	default:
		return fmt.Errorf("codepush.storage: %q is not one of auto, database, directory, s3", c.CodePush.Storage)
	}
	if err := c.validateOTADelivery(); err != nil {
		return err
	}
	if c.CodePush.PublicURL != "" {
		if err := checkURL("codepush.public_url", c.CodePush.PublicURL); err != nil {
			return err
		}
	}
	for i, p := range c.CodePush.TrustedProxies {
		if _, err := parseProxy(p); err != nil {
			return fmt.Errorf("codepush.trusted_proxies[%d]: %q is not an IP address or CIDR block (e.g. 10.0.0.0/8)", i, p)
		}
	}
	if c.CodePush.ReportRatePerMinute < 0 {
		return fmt.Errorf("codepush.report_rate_per_minute: %d is negative", c.CodePush.ReportRatePerMinute)
	}
	if c.CodePush.ReportBurst < 0 {
		return fmt.Errorf("codepush.report_burst: %d is negative", c.CodePush.ReportBurst)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "text":
	default:
		return fmt.Errorf("log.format: %q is not one of auto, json, text", c.Log.Format)
	}
	for _, k := range []struct {
		key string
		n   int
	}{{"jobs.workers", c.Jobs.Workers}, {"jobs.control_workers", c.Jobs.ControlWorkers}, {"jobs.plan_workers", c.Jobs.PlanWorkers}} {
		if (k.n < 1 && k.key != "jobs.workers") || k.n < 0 || k.n > 1000 {
			return fmt.Errorf("%s: %d is not between 1 and 1000", k.key, k.n)
		}
	}
	if c.Jobs.Workers != 0 && c.Jobs.Workers != c.Jobs.PlanWorkers {
		return fmt.Errorf("jobs.workers: %d differs from jobs.plan_workers: %d (jobs.workers is the old name of jobs.plan_workers; set one)", c.Jobs.Workers, c.Jobs.PlanWorkers)
	}
	if n := c.Jobs.PlanPerRepository; n < 1 || n > c.Jobs.PlanWorkers {
		return fmt.Errorf("jobs.plan_per_repository: %d is not between 1 and jobs.plan_workers (%d)", n, c.Jobs.PlanWorkers)
	}
	if c.Jobs.ReconcileInterval.D() < time.Second {
		return fmt.Errorf("jobs.reconcile_interval: %s is shorter than 1s", c.Jobs.ReconcileInterval.D())
	}
	if d := c.Jobs.RescueAfter.D(); d < time.Second || d > 10*time.Minute {
		return fmt.Errorf("jobs.rescue_after: %s is not between 1s and 10m", d)
	}
	if d := c.Jobs.ActionTimeout.D(); d < time.Second || d > 10*time.Minute {
		return fmt.Errorf("jobs.action_timeout: %s is not between 1s and 10m", d)
	}
	if d := c.Jobs.PassBudget.D(); d < 100*time.Millisecond || d >= c.Jobs.ReconcileInterval.D() || d > 4*time.Minute {
		return fmt.Errorf("jobs.pass_budget: %s is not between 100ms and the reconcile interval (%s, at most 4m)", d, c.Jobs.ReconcileInterval.D())
	}
	if c.AppStore.PrivateKey.IsSet() {
		if c.AppStore.KeyID == "" {
			return fmt.Errorf("appstore.key_id: empty while appstore.private_key is set")
		}
		if !c.AppStore.Individual && c.AppStore.IssuerID == "" {
			return fmt.Errorf("appstore.issuer_id: empty for a team key (set appstore.individual: true for an individual key)")
		}
		if !strings.Contains(c.AppStore.PrivateKey.Value(), "-----BEGIN PRIVATE KEY-----") {
			return fmt.Errorf("appstore.private_key: not a PKCS#8 PEM key (the .p8 file starts with -----BEGIN PRIVATE KEY-----)")
		}
	}
	if c.AppStore.BaseURL != "" {
		if err := checkURL("appstore.base_url", c.AppStore.BaseURL); err != nil {
			return err
		}
	}
	if err := checkURL("github.api_url", c.GitHub.APIURL); err != nil {
		return err
	}
	if err := c.GitHub.validate(); err != nil {
		return err
	}
	if err := checkURL("npm.registry", c.NPM.Registry); err != nil {
		return err
	}
	if c.NPM.VerdictCache.MaxEntries < 0 {
		return fmt.Errorf("npm.verdict_cache.max_entries: %d is negative", c.NPM.VerdictCache.MaxEntries)
	}
	names := map[string]bool{}
	secrets := map[string]int{}
	for i, t := range c.Tokens {
		p := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			return fmt.Errorf("%s.name: empty", p)
		}
		if names["token:"+t.Name] {
			return fmt.Errorf("%s.name: %q is used twice", p, t.Name)
		}
		names["token:"+t.Name] = true
		switch t.Role {
		case "viewer", "operator", "admin":
		default:
			return fmt.Errorf("%s.role: %q is not one of viewer, operator, admin", p, t.Role)
		}
		if len(t.Token.Value()) < 16 {
			return fmt.Errorf("%s.token: shorter than 16 characters", p)
		}
		// One secret under two entries would take the role of whichever
		// comes last; say so rather than pick one.
		if j, ok := secrets[t.Token.Value()]; ok {
			return fmt.Errorf("%s.token: the same token as tokens[%d] (%q); give each token its own secret", p, j, c.Tokens[j].Name)
		}
		secrets[t.Token.Value()] = i
	}
	if err := c.Slack.validate(); err != nil {
		return err
	}
	if err := c.Dashboard.validate(); err != nil {
		return err
	}
	if err := c.validateProviders(); err != nil {
		return err
	}
	for i, n := range c.Notify {
		p := fmt.Sprintf("notify[%d]", i)
		if n.Kind != "slack" && n.Kind != "webhook" {
			return fmt.Errorf("%s.kind: %q is not one of slack, webhook", p, n.Kind)
		}
		if !n.URL.IsSet() {
			return fmt.Errorf("%s.url: empty", p)
		}
		if u, err := url.Parse(n.URL.Value()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s.url: not an http(s) URL", p)
		}
		for j, e := range n.Events {
			if !slices.Contains(NotifyTopics, e) {
				return fmt.Errorf("%s.events[%d]: %q is not one of %s", p, j, e, strings.Join(NotifyTopics, ", "))
			}
		}
	}
	for i := range c.Apps {
		if err := c.Apps[i].validate(fmt.Sprintf("apps[%d]", i)); err != nil {
			return err
		}
		if err := c.GitHub.validateDeployments(fmt.Sprintf("apps[%d]", i), c.Apps[i]); err != nil {
			return err
		}
		if names["app:"+c.Apps[i].Name] {
			return fmt.Errorf("apps[%d].name: %q is used twice", i, c.Apps[i].Name)
		}
		names["app:"+c.Apps[i].Name] = true
	}
	for i, f := range c.Freezes {
		p := fmt.Sprintf("freezes[%d]", i)
		from, err := time.Parse(time.RFC3339, f.From)
		if err != nil {
			return fmt.Errorf("%s.from: %q is not an RFC 3339 time (e.g. 2026-12-20T00:00:00+01:00)", p, f.From)
		}
		to, err := time.Parse(time.RFC3339, f.To)
		if err != nil {
			return fmt.Errorf("%s.to: %q is not an RFC 3339 time (e.g. 2027-01-04T00:00:00+01:00)", p, f.To)
		}
		if !to.After(from) {
			return fmt.Errorf("%s.to: %s is not after from (%s)", p, f.To, f.From)
		}
		for j, a := range f.Apps {
			if !names["app:"+a] {
				return fmt.Errorf("%s.apps[%d]: %q is not a configured app", p, j, a)
			}
		}
	}
	return nil
}

func checkURL(key, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", key, v)
	}
	return nil
}

// CheckTagPattern validates a tag pattern: a glob, or a regexp after "re:".
func CheckTagPattern(p string) error {
	if re, ok := strings.CutPrefix(p, "re:"); ok {
		_, err := regexp.Compile(re)
		return err
	}
	_, err := path.Match(p, "")
	return err
}

func (a *App) validate(p string) error {
	if !appName.MatchString(a.Name) {
		return fmt.Errorf("%s.name: %q is not a valid app name (lowercase letters, digits, . _ -)", p, a.Name)
	}
	if !repoName.MatchString(a.Repository) {
		return fmt.Errorf("%s.repository: %q is not owner/name", p, a.Repository)
	}
	if !a.WebhookSecret.IsSet() {
		return fmt.Errorf("%s.webhook_secret: empty; GitHub deliveries cannot be verified without it", p)
	}
	for key, pat := range map[string]string{"tag_pattern": a.TagPattern, "ota_tag_pattern": a.OTATagPattern, "ios.tag_pattern": a.IOS.TagPattern, "android.tag_pattern": a.Android.TagPattern} {
		if pat == "" {
			continue
		}
		if err := CheckTagPattern(pat); err != nil {
			return fmt.Errorf("%s.%s: %q is not a valid pattern: %v", p, key, pat, err)
		}
	}
	if strings.HasPrefix(a.Root, "/") || strings.Contains(a.Root, "..") {
		return fmt.Errorf("%s.root: %q must be a relative path inside the repository", p, a.Root)
	}
	for key, globs := range map[string][]string{"native.extra_globs": a.Native.ExtraGlobs, "native.ignore_globs": a.Native.IgnoreGlobs} {
		for j, g := range globs {
			if !doublestar.ValidatePattern(g) {
				return fmt.Errorf("%s.%s[%d]: %q is not a valid glob", p, key, j, g)
			}
		}
	}
	if a.Rollout.Window != "" {
		if !strings.HasPrefix(a.Rollout.Window, "CRON_TZ=") && !strings.HasPrefix(a.Rollout.Window, "TZ=") {
			return fmt.Errorf("%s.rollout.window: %q needs a CRON_TZ= prefix so it does not depend on the machine's zone", p, a.Rollout.Window)
		}
		sched, err := cron.ParseStandard(a.Rollout.Window)
		if err != nil {
			return fmt.Errorf("%s.rollout.window: %q: %v", p, a.Rollout.Window, err)
		}
		// cron gives up after five years without a match: such a window
		// (the 30th of February, say) would hold every rollout forever.
		if sched.Next(time.Now()).IsZero() {
			return fmt.Errorf("%s.rollout.window: %q never opens (no matching minute in the next five years)", p, a.Rollout.Window)
		}
	}
	if a.Rollout.Soak < 0 {
		return fmt.Errorf("%s.rollout.soak: %s is negative", p, a.Rollout.Soak.D())
	}
	if err := a.validateGates(p); err != nil {
		return err
	}
	switch a.OnTagMove {
	case "", "refuse", "restart":
	default:
		return fmt.Errorf("%s.on_tag_move: %q is not one of refuse, restart", p, a.OnTagMove)
	}
	if a.IOS.PhasedRelease && !a.IOS.AppStore {
		return fmt.Errorf("%s.ios.phased_release: true while ios.app_store is false (a phased release needs the App Store step)", p)
	}
	if a.IOS.Enabled && a.IOS.BundleID == "" {
		return fmt.Errorf("%s.ios.bundle_id: empty while ios.enabled is true", p)
	}
	if a.Android.Enabled && a.Android.PackageName == "" {
		return fmt.Errorf("%s.android.package_name: empty while android.enabled is true", p)
	}
	switch a.IOS.BuildSource {
	case "pickup", "upload":
	default:
		return fmt.Errorf("%s.ios.build_source: %q is not one of pickup, upload", p, a.IOS.BuildSource)
	}
	if a.IOS.BuildSource == "upload" && a.IOS.IPAAsset == "" {
		return fmt.Errorf("%s.ios.ipa_asset: empty while ios.build_source is upload", p)
	}
	if a.IOS.PollInterval.D() < time.Second {
		return fmt.Errorf("%s.ios.poll_interval: %s is shorter than 1s", p, a.IOS.PollInterval.D())
	}
	switch a.Android.Track {
	case "production", "beta", "alpha", "internal":
	default:
		return fmt.Errorf("%s.android.track: %q is not one of production, beta, alpha, internal", p, a.Android.Track)
	}
	if a.Android.InAppUpdatePriority < 0 || a.Android.InAppUpdatePriority > 5 {
		return fmt.Errorf("%s.android.in_app_update_priority: %d is not between 0 and 5", p, a.Android.InAppUpdatePriority)
	}
	if !strings.Contains(a.OTA.BundleAsset, "{platform}") {
		return fmt.Errorf("%s.ota.bundle_asset: %q needs {platform} (one bundle per platform)", p, a.OTA.BundleAsset)
	}
	if err := a.validateWaits(p); err != nil {
		return err
	}
	if a.OTA.SigningPublicKey != "" {
		if _, err := codepush.ParsePublicKey([]byte(a.OTA.SigningPublicKey)); err != nil {
			return fmt.Errorf("%s.ota.signing_public_key: not an RSA public key in PEM (-----BEGIN PUBLIC KEY-----, as openssl rsa -pubout writes it): %v", p, err)
		}
	}
	if err := checkStages(p+".android.stages", a.Android.Stages); err != nil {
		return err
	}
	return checkStages(p+".ota.stages", a.OTA.Stages)
}

// validateWaits checks the deadlines of the lanes' waits and what Apple
// needs before a review: the encryption declaration and What's New texts.
func (a *App) validateWaits(p string) error {
	for key, d := range map[string]Duration{"ios.processing_timeout": a.IOS.ProcessingTimeout, "ios.review_timeout": a.IOS.ReviewTimeout,
		"android.bundle_timeout": a.Android.BundleTimeout, "ota.bundle_timeout": a.OTA.BundleTimeout} {
		if d.D() < time.Minute {
			return fmt.Errorf("%s.%s: %s is shorter than 1m; every wait needs a deadline a poll can reach", p, key, d.D())
		}
	}
	toReview := a.IOS.AppStore || len(a.IOS.ExternalGroups) > 0
	if a.IOS.Enabled && a.IOS.UsesNonExemptEncryption && toReview && a.IOS.EncryptionDeclarationID == "" {
		return fmt.Errorf("%s.ios.encryption_declaration_id: empty while ios.uses_non_exempt_encryption is true; Apple reviews such a build only with an app encryption declaration", p)
	}
	if a.IOS.EncryptionDeclarationID != "" && !a.IOS.UsesNonExemptEncryption {
		return fmt.Errorf("%s.ios.encryption_declaration_id: %q is set while ios.uses_non_exempt_encryption is false", p, a.IOS.EncryptionDeclarationID)
	}
	if strings.ContainsAny(a.IOS.EncryptionDeclarationID, "/?# ") {
		return fmt.Errorf("%s.ios.encryption_declaration_id: %q is not an App Store Connect id", p, a.IOS.EncryptionDeclarationID)
	}
	for _, locale := range slices.Sorted(maps.Keys(a.IOS.WhatsNew)) {
		text := a.IOS.WhatsNew[locale]
		switch {
		case !localeRE.MatchString(locale):
			return fmt.Errorf("%s.ios.whats_new.%s: not a locale such as en-US or de-DE", p, locale)
		case strings.TrimSpace(text) == "":
			return fmt.Errorf("%s.ios.whats_new.%s: empty; leave the locale out to use the default", p, locale)
		case utf8.RuneCountInString(text) > 4000:
			return fmt.Errorf("%s.ios.whats_new.%s: %d characters; the App Store takes at most 4000", p, locale, utf8.RuneCountInString(text))
		}
	}
	return nil
}

var localeRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

func checkStages(p string, stages []int) error {
	last := 0
	for i, s := range stages {
		if s < 1 || s > 100 {
			return fmt.Errorf("%s[%d]: %d is not a percentage", p, i, s)
		}
		if s <= last {
			return fmt.Errorf("%s[%d]: %d does not increase on %d", p, i, s, last)
		}
		last = s
	}
	if last != 100 {
		return fmt.Errorf("%s: the last stage is %d, not 100", p, last)
	}
	return nil
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

func (s Slack) validate() error {
	if !s.SigningSecret.IsSet() {
		if len(s.Users) > 0 {
			return errors.New("slack.signing_secret: empty while slack.users is set; Slack commands cannot be verified without it")
		}
		return nil
	}
	if len(s.Users) == 0 {
		return errors.New("slack.users: empty while slack.signing_secret is set; map Slack user ids to roles (viewer, operator, admin)")
	}
	for _, id := range slices.Sorted(maps.Keys(s.Users)) {
		if !slackUserID.MatchString(id) {
			return fmt.Errorf("slack.users.%s: not a Slack user id (U… or W…, as in the user's profile)", id)
		}
		switch s.Users[id] {
		case "viewer", "operator", "admin":
		default:
			return fmt.Errorf("slack.users.%s: %q is not one of viewer, operator, admin", id, s.Users[id])
		}
	}
	return nil
}

// ErrInvalid is wrapped by every error that comes from a bad configuration
// value, whether config itself or a component reading its own section finds
// it. Commands exit 2 on it.
var ErrInvalid = errors.New("invalid configuration")

type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }

func invalid(err error) error {
	if errors.Is(err, ErrInvalid) {
		return err
	}
	return invalidError{err}
}

// Invalid marks err, found in the value at key, as a configuration error:
// "key: err". Components that check their own section when they start (a
// key that does not parse, say) use it so the command exits 2.
func Invalid(key string, err error) error {
	return invalid(fmt.Errorf("%s: %w", key, err))
}

// checkNumbers walks the decoded config and refuses what no key should hold:
// NaN or infinite numbers (a gate with max: .nan never halts) and negative
// durations, naming the key path. New keys are covered without a line here.
func checkNumbers(v reflect.Value, at string) error {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if err := checkNumbers(v.Field(i), join(at, name)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := checkNumbers(v.Index(i), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			if err := checkNumbers(v.MapIndex(k), join(at, fmt.Sprint(k))); err != nil {
				return err
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return checkNumbers(v.Elem(), at)
		}
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: %v is not a finite number", at, f)
		}
	case reflect.Int64:
		if v.Type() == durationType && v.Int() < 0 {
			return fmt.Errorf("%s: %s is negative", at, time.Duration(v.Int()))
		}
	}
	return nil
}
