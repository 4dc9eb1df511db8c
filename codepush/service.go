package codepush

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Gate can refuse a release before it is persisted, e.g. because the commit
// changes native code that the binaries in targetRange do not have. Release,
// Promote and a Patch that changes the target range call it. A typed *Error is
// returned as is; any other error becomes KindConflict.
type Gate interface {
	CheckRelease(ctx context.Context, app, deployment, targetRange, commit string) error
}

// GateFunc adapts a function to Gate.
type GateFunc func(ctx context.Context, app, deployment, targetRange, commit string) error

// CheckRelease implements Gate.
func (f GateFunc) CheckRelease(ctx context.Context, app, deployment, targetRange, commit string) error {
	return f(ctx, app, deployment, targetRange, commit)
}

// Actor is who performs a management operation; the embedding service
// authenticates and puts it in the request context with WithActor.
type Actor struct {
	Name string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or the zero Actor.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// Config configures a Service. Zero values are usable except Blobs, which
// releases need.
type Config struct {
	Store Store // default: a new MemStore
	Blobs Blobs
	Gate  Gate             // optional
	Now   func() time.Time // default: time.Now
	// PublicURL is the base of package download URLs, e.g.
	// "https://ota.example.com". Empty: from X-Forwarded-Proto and
	// X-Forwarded-Host when the request comes through one of
	// TrustedProxies, else the local address the request arrived on —
	// never from the Host header.
	PublicURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-Proto,
	// X-Forwarded-Host and X-Forwarded-For headers are believed; from
	// anywhere else those headers are ignored.
	TrustedProxies []netip.Prefix
	// ListenAddr is the host:port download URLs use when PublicURL is empty
	// and the request carries no local address (a handler called directly).
	ListenAddr string
	// SigningKeys holds, per app name, the RSA public key every package
	// released to that app must be signed with (CodePush code signing:
	// CodePush/.codepushrelease, RS256). Apps without a key accept unsigned
	// packages.
	SigningKeys map[string]*rsa.PublicKey
	// ReportsPerMinute and ReportBurst limit status reports per client
	// address (IPv6: per /64): a token bucket refilled ReportsPerMinute times
	// a minute holding at most ReportBurst. Defaults 12 and 24; a negative
	// ReportsPerMinute turns the limit off.
	ReportsPerMinute int
	ReportBurst      int
	// MaxPackageSize bounds uploads; default 200 MiB, as code-push-server.
	MaxPackageSize int64
	// Logger receives internal errors the handlers answer with 500; default
	// slog.Default().
	Logger *slog.Logger
	// DiffCount is how many earlier releases each release gets diff
	// packages against (0: DefaultDiffCount; negative: none). Diffs need a
	// Store that is a DiffStore and are built by BuildDiffs, which Diffs
	// schedules.
	DiffCount int
	Diffs     DiffScheduler // optional
}

// Service implements the CodePush rules on top of a Store and Blobs.
type Service struct {
	cfg Config

	mu       sync.Mutex   // serialises mutations made by this process
	reloadMu sync.Mutex   // orders snapshot reloads
	views    sync.Map     // deployment key -> *deploymentView
	reports  *addrLimiter // nil: reports are not limited
}

// deploymentView is an immutable snapshot of one deployment.
type deploymentView struct {
	app, name, key string
	releases       []viewRelease
	diffs          map[string]map[string]Diff // blob key -> device package hash -> diff
}

// New returns a Service with the in-memory view of every deployment loaded.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		cfg.Store = &MemStore{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxPackageSize <= 0 {
		cfg.MaxPackageSize = 200 << 20
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.ReportsPerMinute == 0 {
		cfg.ReportsPerMinute = 12
	}
	if cfg.ReportBurst <= 0 {
		cfg.ReportBurst = 24
	}
	s := &Service{cfg: cfg}
	if cfg.ReportsPerMinute > 0 {
		s.reports = newAddrLimiter(cfg.ReportsPerMinute, cfg.ReportBurst, cfg.Now)
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload rebuilds the view of every deployment from the Store.
func (s *Service) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	apps, err := s.cfg.Store.Apps(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range apps {
		for _, d := range a.Deployments {
			if err := s.loadView(ctx, a.Name, d); err != nil {
				return err
			}
			seen[d.Key] = true
		}
	}
	s.views.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			s.views.Delete(k)
		}
		return true
	})
	return nil
}

// Invalidate reloads the view of one deployment from the Store; call it when
// another replica changed that deployment (or created or deleted it).
func (s *Service) Invalidate(ctx context.Context, deploymentKey string) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	apps, err := s.cfg.Store.Apps(ctx)
	if err != nil {
		return err
	}
	for _, a := range apps {
		for _, d := range a.Deployments {
			if d.Key == deploymentKey {
				return s.loadView(ctx, a.Name, d)
			}
		}
	}
	s.views.Delete(deploymentKey)
	return nil
}

func (s *Service) loadView(ctx context.Context, app string, d Deployment) error {
	h, err := s.cfg.Store.Releases(ctx, d.Key)
	if err != nil {
		return err
	}
	diffs, err := s.loadDiffs(ctx, h)
	if err != nil {
		return err
	}
	s.views.Store(d.Key, &deploymentView{app: app, name: d.Name, key: d.Key, releases: newViewReleases(h), diffs: diffs})
	return nil
}

func (s *Service) view(key string) *deploymentView {
	v, ok := s.views.Load(key)
	if !ok {
		return nil
	}
	return v.(*deploymentView)
}

// CheckUpdate answers a device's update check from the in-memory view.
func (s *Service) CheckUpdate(req UpdateRequest) (UpdateInfo, error) {
	if !validKey(req.DeploymentKey) {
		return UpdateInfo{}, invalid("deployment_key", req.DeploymentKey, "must be 10 to 100 characters of letters, digits, '_' or '-'")
	}
	v, ok := NormalizeAppVersion(req.AppVersion)
	if !ok {
		return UpdateInfo{}, invalid("app_version", req.AppVersion, "must be a semantic version such as 1.4.0")
	}
	dv := s.view(req.DeploymentKey)
	if dv == nil {
		return UpdateInfo{}, notFound("no deployment has the key %q", req.DeploymentKey)
	}
	return resolveView(dv.releases, v, req), nil
}

func validKey(k string) bool {
	if len(k) < 10 || len(k) > 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NewDeploymentKey returns a random key in code-push-server's format.
func NewDeploymentKey() string {
	var b [21]byte
	rand.Read(b[:])
	k := base64.StdEncoding.EncodeToString(b[:])
	k = strings.NewReplacer("+", "_", "/", "-").Replace(k)
	if k[0] == '-' {
		k = "_" + k[1:]
	}
	return k
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$`)

// Apps lists every app.
func (s *Service) Apps(ctx context.Context) ([]App, error) { return s.cfg.Store.Apps(ctx) }

// App returns one app.
func (s *Service) App(ctx context.Context, name string) (App, error) {
	apps, err := s.cfg.Store.Apps(ctx)
	if err != nil {
		return App{}, err
	}
	for _, a := range apps {
		if a.Name == name {
			return a, nil
		}
	}
	return App{}, appNotFound(name)
}

// CreateApp creates an app with Staging and Production deployments, unless
// noDeployments is set.
func (s *Service) CreateApp(ctx context.Context, name string, noDeployments bool) (App, error) {
	if !nameRE.MatchString(name) {
		return App{}, invalid("name", name, "app names are 1 to 100 letters, digits, '.', '_', '-' or spaces")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.App(ctx, name); err == nil {
		return App{}, conflict("An app named '%s' already exists.", name)
	} else if KindOf(err) != KindNotFound {
		return App{}, err
	}
	a := App{Name: name, CreatedAt: s.cfg.Now().UTC()}
	if !noDeployments {
		a.Deployments = []Deployment{{Name: Staging, Key: NewDeploymentKey()}, {Name: Production, Key: NewDeploymentKey()}}
	}
	if err := s.cfg.Store.SaveApp(ctx, a); err != nil {
		return App{}, err
	}
	for _, d := range a.Deployments {
		s.views.Store(d.Key, &deploymentView{app: a.Name, name: d.Name, key: d.Key})
	}
	return a, nil
}

// AddDeployment adds a deployment to an app; an empty key is generated.
func (s *Service) AddDeployment(ctx context.Context, app, name, key string) (Deployment, error) {
	if !nameRE.MatchString(name) {
		return Deployment{}, invalid("name", name, "deployment names are 1 to 100 letters, digits, '.', '_', '-' or spaces")
	}
	if key == "" {
		key = NewDeploymentKey()
	} else if !validKey(key) {
		return Deployment{}, invalid("key", key, "must be 10 to 100 characters of letters, digits, '_' or '-'")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.App(ctx, app)
	if err != nil {
		return Deployment{}, err
	}
	for _, d := range a.Deployments {
		if d.Name == name {
			return Deployment{}, conflict("A deployment named '%s' already exists.", name)
		}
	}
	if s.view(key) != nil {
		return Deployment{}, conflict("deployment key is already in use")
	}
	d := Deployment{Name: name, Key: key}
	a.Deployments = append(a.Deployments, d)
	if err := s.cfg.Store.SaveApp(ctx, a); err != nil {
		return Deployment{}, err
	}
	s.views.Store(key, &deploymentView{app: app, name: name, key: key})
	return d, nil
}

// RenameDeployment renames a deployment of an app; its key and history stay.
func (s *Service) RenameDeployment(ctx context.Context, app, from, to string) (Deployment, error) {
	if !nameRE.MatchString(to) {
		return Deployment{}, invalid("name", to, "deployment names are 1 to 100 letters, digits, '.', '_', '-' or spaces")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.App(ctx, app)
	if err != nil {
		return Deployment{}, err
	}
	i := slices.IndexFunc(a.Deployments, func(d Deployment) bool { return d.Name == from })
	if i < 0 {
		return Deployment{}, deploymentNotFound(from)
	}
	if from == to {
		return a.Deployments[i], nil
	}
	if slices.ContainsFunc(a.Deployments, func(d Deployment) bool { return d.Name == to }) {
		return Deployment{}, conflict("A deployment named '%s' already exists.", to)
	}
	a.Deployments[i].Name = to
	if err := s.cfg.Store.SaveApp(ctx, a); err != nil {
		return Deployment{}, err
	}
	return a.Deployments[i], s.Invalidate(ctx, a.Deployments[i].Key)
}

// RemoveDeployment removes a deployment: devices using its key get 404
// from then on. Its history stays stored but is no longer served.
func (s *Service) RemoveDeployment(ctx context.Context, app, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.App(ctx, app)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(a.Deployments, func(d Deployment) bool { return d.Name == name })
	if i < 0 {
		return deploymentNotFound(name)
	}
	key := a.Deployments[i].Key
	a.Deployments = slices.Delete(a.Deployments, i, i+1)
	if err := s.cfg.Store.SaveApp(ctx, a); err != nil {
		return err
	}
	s.views.Delete(key)
	return nil
}

// RemoveApp removes an app and its deployments.
func (s *Service) RemoveApp(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.App(ctx, name)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteApp(ctx, name); err != nil {
		return err
	}
	for _, d := range a.Deployments {
		s.views.Delete(d.Key)
	}
	return nil
}

// ClearHistory empties a deployment's history and its counters, as
// code-push-server's "deployment clear" does: devices get no update from
// it until the next release.
func (s *Service) ClearHistory(ctx context.Context, app, dep string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, _, err := s.deployment(ctx, app, dep)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.ClearReleases(ctx, d.Key); err != nil {
		return err
	}
	return s.Invalidate(ctx, d.Key)
}

// deployment finds a deployment and its current history (from the Store, not
// the view, so that management decisions see the latest data).
func (s *Service) deployment(ctx context.Context, app, dep string) (Deployment, []Release, error) {
	a, err := s.App(ctx, app)
	if err != nil {
		return Deployment{}, nil, err
	}
	for _, d := range a.Deployments {
		if d.Name == dep {
			h, err := s.cfg.Store.Releases(ctx, d.Key)
			return d, h, err
		}
	}
	return Deployment{}, nil, deploymentNotFound(dep)
}

// History returns a deployment's releases, oldest first.
func (s *Service) History(ctx context.Context, app, dep string) ([]Release, error) {
	_, h, err := s.deployment(ctx, app, dep)
	return h, err
}

// Metrics returns a deployment's counters keyed by label (or app version for
// devices that went back to a store binary).
func (s *Service) Metrics(ctx context.Context, app, dep string) (map[string]Counts, error) {
	d, _, err := s.deployment(ctx, app, dep)
	if err != nil {
		return nil, err
	}
	return s.cfg.Store.Counts(ctx, d.Key)
}

// LabelCounter is a Store that reads the counters of some labels of a
// deployment, named by app and deployment name, without its history
// (*store.CodePush is one). A deployment that does not exist has none.
type LabelCounter interface {
	LabelCounts(ctx context.Context, app, deployment string, labels []string) (map[string]Counts, error)
}

// LabelMetrics returns the counters of the given labels (of every label
// when none are given) of a deployment. With a Store that is a
// LabelCounter it reads only those counters — what a reconcile pass needs
// for each OTA lane — and a deployment that does not exist has none;
// otherwise it filters Metrics.
func (s *Service) LabelMetrics(ctx context.Context, app, dep string, labels ...string) (map[string]Counts, error) {
	if lc, ok := s.cfg.Store.(LabelCounter); ok {
		return lc.LabelCounts(ctx, app, dep, labels)
	}
	m, err := s.Metrics(ctx, app, dep)
	if err != nil || len(labels) == 0 {
		return m, err
	}
	out := make(map[string]Counts, len(labels))
	for _, l := range labels {
		if c, ok := m[l]; ok {
			out[l] = c
		}
	}
	return out, nil
}

func nextLabel(h []Release) string {
	if len(h) == 0 {
		return "v1"
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(h[len(h)-1].Label, "v"))
	return "v" + strconv.Itoa(n+1)
}

func validateRange(field, r string) error {
	if strings.TrimSpace(r) == "" {
		return invalid(field, r, "a target binary range is required, e.g. 1.4.0, ~1.4.0 or ^1.4.0")
	}
	if _, ok := ParseRange(r); !ok {
		return invalid(field, r, "not a valid semver range (node-semver syntax: 1.2.3, *, 1.2.x, ~1.2.3, ^1.2.3, 1.2.3 - 1.4.0)")
	}
	return nil
}

func validateRollout(field string, r int) error {
	if r < 1 || r > 100 {
		return invalid(field, strconv.Itoa(r), "rollout must be an integer from 1 to 100")
	}
	return nil
}

func validateDescription(d string) error {
	if utf8.RuneCountInString(d) > 10000 {
		return invalid("description", string([]rune(d)[:40])+"…", "descriptions are at most 10,000 characters")
	}
	return nil
}

func (s *Service) checkGate(ctx context.Context, app, dep, rng, commit string) error {
	if s.cfg.Gate == nil {
		return nil
	}
	err := s.cfg.Gate.CheckRelease(ctx, app, dep, rng, commit)
	if err == nil || KindOf(err) != "" {
		return err
	}
	return &Error{Kind: KindConflict, Field: "appVersion", Value: rng, Message: "refused by the release gate: " + err.Error()}
}

// checkGateFor is checkGate for an operation that does not create content
// (a rollback, a re-enable): a refusal keeps its kind and field and says
// which operation it blocked, prefixed by what.
func (s *Service) checkGateFor(ctx context.Context, what, app, dep, rng, commit string) error {
	err := s.checkGate(ctx, app, dep, rng, commit)
	var e *Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Message = what + ": " + e.Message
	return &c
}

func (s *Service) commit(ctx context.Context, d Deployment, r Release) (Release, error) {
	if err := s.cfg.Store.AppendRelease(ctx, d.Key, r); err != nil {
		return Release{}, err
	}
	err := s.Invalidate(ctx, d.Key)
	s.scheduleDiffs(ctx, d.Key, r) // after the view serves r: scheduling may wait on the queue
	return r, err
}

// ReleaseInput describes a new upload.
type ReleaseInput struct {
	App, Deployment string
	AppVersion      string // target binary range, required
	Description     string
	Mandatory       bool
	Disabled        bool
	Rollout         int    // 1..100; 0 means 100
	Commit          string // passed to the Gate
	Package         io.Reader
	// ExactTarget: AppVersion is an exact runtime version (an Expo
	// update's), matched as a string, not a semver range.
	ExactTarget bool
}

// Release uploads a package (a zip or a single bundle file) as a new release.
func (s *Service) Release(ctx context.Context, in ReleaseInput) (Release, error) {
	if err := s.validateRelease(&in); err != nil {
		return Release{}, err
	}
	if in.Package == nil {
		return Release{}, invalid("package", "", "a package file is required")
	}
	// A regular file (what the management API spools uploads to) is read
	// in place rather than copied again; the caller keeps it.
	if f, ok := in.Package.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if err := s.checkSize(st.Size()); err != nil {
				return Release{}, err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return Release{}, err
			}
			return s.releaseSpooled(ctx, in, f, st.Size())
		}
	}
	tmp, size, err := s.spool(in.Package)
	if err != nil {
		return Release{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	return s.releaseSpooled(ctx, in, tmp, size)
}

func (s *Service) validateRelease(in *ReleaseInput) error {
	if in.Rollout == 0 {
		in.Rollout = 100
	}
	validate := validateRange
	if in.ExactTarget {
		validate = validateRuntimeVersion
	}
	if err := validate("appVersion", in.AppVersion); err != nil {
		return err
	}
	if err := validateRollout("rollout", in.Rollout); err != nil {
		return err
	}
	if err := validateDescription(in.Description); err != nil {
		return err
	}
	if s.cfg.Blobs == nil {
		return errors.New("codepush: no Blobs configured")
	}
	return nil
}

// releaseSpooled finishes a release whose package is in tmp (size bytes).
func (s *Service) releaseSpooled(ctx context.Context, in ReleaseInput, tmp *os.File, size int64) (Release, error) {
	hash, err := PackageHash(tmp, size)
	if err != nil {
		return Release{}, err
	}
	if key := s.cfg.SigningKeys[in.App]; key != nil {
		if err := VerifySignature(tmp, size, hash, key); err != nil {
			return Release{}, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	d, h, err := s.deployment(ctx, in.App, in.Deployment)
	if err != nil {
		return Release{}, err
	}
	if n := len(h); n > 0 && unfinishedRollout(h[n-1].Rollout) && !h[n-1].Disabled {
		return Release{}, conflict("Please update the previous release to 100%% rollout before releasing a new package. (%s is rolled out to %d%%: patch its rollout to 100, or disable it.)", h[n-1].Label, h[n-1].Rollout)
	}
	if prev := lastHashForAppVersion(h, in.AppVersion); prev == hash {
		return Release{}, conflict("The uploaded package was not released because it is identical to the contents of the specified deployment's current release.")
	}
	if err := s.checkGate(ctx, in.App, in.Deployment, in.AppVersion, in.Commit); err != nil {
		return Release{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Release{}, err
	}
	key, _, _, err := s.cfg.Blobs.Put(ctx, tmp)
	if err != nil {
		return Release{}, err
	}
	r := Release{
		Label: nextLabel(h), AppVersion: in.AppVersion, Description: in.Description,
		Mandatory: in.Mandatory, Disabled: in.Disabled, Rollout: in.Rollout,
		PackageHash: hash, Size: size, BlobKey: key, Method: MethodUpload,
		ReleasedBy: ActorFrom(ctx).Name, Commit: in.Commit, UploadTime: s.cfg.Now().UTC(),
	}
	return s.commit(ctx, d, r)
}

func (s *Service) spool(r io.Reader) (*os.File, int64, error) {
	tmp, err := os.CreateTemp("", "codepush-upload-*")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(tmp, io.LimitReader(r, s.cfg.MaxPackageSize+1))
	if err == nil {
		err = s.checkSize(n)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, 0, err
	}
	return tmp, n, nil
}

func (s *Service) checkSize(n int64) error {
	if n > s.cfg.MaxPackageSize {
		return &Error{Kind: KindTooLarge, Field: "package", Value: strconv.FormatInt(n, 10) + " bytes",
			Message: fmt.Sprintf("The uploaded file is larger than the size limit of %d megabytes.", s.cfg.MaxPackageSize>>20)}
	}
	if n == 0 {
		return invalid("package", "", "the package is empty")
	}
	return nil
}

// verifyStored checks the stored content of r against the app's signing
// key, when it has one: a promote or a rollback serves content again, and
// the key may have been configured since it was uploaded.
func (s *Service) verifyStored(ctx context.Context, app string, r Release) error {
	key := s.cfg.SigningKeys[app]
	if key == nil {
		return nil
	}
	if r.BlobKey == "" || s.cfg.Blobs == nil {
		return invalid("package", r.Label, "release %s is stored elsewhere (%s) and cannot be checked against the app's signing key", r.Label, r.BlobURL)
	}
	rc, err := s.cfg.Blobs.Open(ctx, r.BlobKey)
	if err != nil {
		return err
	}
	tmp, size, err := s.spool(rc)
	rc.Close()
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := VerifySignature(tmp, size, r.PackageHash, key); err != nil {
		var e *Error
		if errors.As(err, &e) {
			c := *e
			c.Message = fmt.Sprintf("release %s: %s", r.Label, e.Message)
			return &c
		}
		return err
	}
	return nil
}

// lastHashForAppVersion is getLastPackageHashWithSameAppVersion.
func lastHashForAppVersion(h []Release, appVersion string) string {
	if len(h) == 0 {
		return ""
	}
	v, ok := ParseVersion(appVersion)
	if !ok {
		last := h[len(h)-1]
		a, _ := ParseRange(appVersion)
		b, okb := ParseRange(last.AppVersion)
		if okb && a.String() == b.String() {
			return last.PackageHash
		}
		return ""
	}
	for i := len(h) - 1; i >= 0; i-- {
		if r, ok := ParseRange(h[i].AppVersion); ok && r.Satisfies(v) {
			return h[i].PackageHash
		}
	}
	return ""
}

// PackageInfo holds optional overrides for Promote and Patch.
type PackageInfo struct {
	Label       string  `json:"label,omitempty"` // source (promote) or target (patch) release; empty = latest
	AppVersion  *string `json:"appVersion,omitempty"`
	Description *string `json:"description,omitempty"`
	Mandatory   *bool   `json:"isMandatory,omitempty"`
	Disabled    *bool   `json:"isDisabled,omitempty"`
	Rollout     *int    `json:"rollout,omitempty"`
}

// normalize treats empty strings as absent, as code-push-server does: the
// CLI sends "" for a description it was not given.
func (p *PackageInfo) normalize() {
	if p.AppVersion != nil && *p.AppVersion == "" {
		p.AppVersion = nil
	}
	if p.Description != nil && *p.Description == "" {
		p.Description = nil
	}
}

func (p *PackageInfo) validate() error {
	p.normalize()
	if p.Label != "" && !labelRE.MatchString(p.Label) {
		return invalid("label", p.Label, "labels look like v1, v2, ...")
	}
	if p.AppVersion != nil {
		if err := validateRange("appVersion", *p.AppVersion); err != nil {
			return err
		}
	}
	if p.Description != nil {
		if err := validateDescription(*p.Description); err != nil {
			return err
		}
	}
	if p.Rollout != nil {
		return validateRollout("rollout", *p.Rollout)
	}
	return nil
}

var labelRE = regexp.MustCompile(`^v[1-9][0-9]*$`)

func findLabel(h []Release, label string) (int, error) {
	if label == "" {
		if len(h) == 0 {
			return -1, notFound("Deployment has no releases.")
		}
		return len(h) - 1, nil
	}
	for i := range h {
		if h[i].Label == label {
			return i, nil
		}
	}
	return -1, notFound("Release not found for given label (%s).", label)
}

// Promote copies a release of deployment from (the latest, or info.Label) to
// deployment to, with info's overrides. Rollout is not carried over: it is
// info.Rollout or 100.
func (s *Service) Promote(ctx context.Context, app, from, to string, info PackageInfo) (Release, error) {
	if err := info.validate(); err != nil {
		return Release{}, err
	}
	if from == to {
		return Release{}, invalid("to", to, "cannot promote a deployment to itself")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, src, err := s.deployment(ctx, app, from)
	if err != nil {
		return Release{}, err
	}
	dst, dh, err := s.deployment(ctx, app, to)
	if err != nil {
		return Release{}, err
	}
	if len(src) == 0 {
		return Release{}, notFound("Cannot promote from a deployment with no enabled releases.")
	}
	i, err := findLabel(src, info.Label)
	if err != nil {
		return Release{}, err
	}
	sr := src[i]
	if n := len(dh); n > 0 {
		if unfinishedRollout(dh[n-1].Rollout) && !dh[n-1].Disabled {
			return Release{}, conflict("Cannot promote to an unfinished rollout release unless it is already disabled. (%s of %s is rolled out to %d%%.)", dh[n-1].Label, to, dh[n-1].Rollout)
		}
		if dh[n-1].PackageHash == sr.PackageHash {
			return Release{}, conflict("The uploaded package was not promoted because it is identical to the contents of the targeted deployment's current release. (%s of %s is %s of %s.)", sr.Label, from, dh[n-1].Label, to)
		}
	}
	r := Release{
		Label: nextLabel(dh), AppVersion: sr.AppVersion, Description: sr.Description,
		Mandatory: sr.Mandatory, Disabled: sr.Disabled, Rollout: 100,
		PackageHash: sr.PackageHash, Size: sr.Size, BlobKey: sr.BlobKey, BlobURL: sr.BlobURL,
		Method: MethodPromote, OriginalLabel: sr.Label, OriginalDeployment: from,
		ReleasedBy: ActorFrom(ctx).Name, Commit: sr.Commit, UploadTime: s.cfg.Now().UTC(),
	}
	if info.AppVersion != nil {
		r.AppVersion = *info.AppVersion
	}
	if info.Description != nil {
		r.Description = *info.Description
	}
	if info.Mandatory != nil {
		r.Mandatory = *info.Mandatory
	}
	if info.Disabled != nil {
		r.Disabled = *info.Disabled
	}
	if info.Rollout != nil {
		r.Rollout = *info.Rollout
	}
	if err := s.checkGate(ctx, app, to, r.AppVersion, r.Commit); err != nil {
		return Release{}, err
	}
	if err := s.verifyStored(ctx, app, sr); err != nil {
		return Release{}, err
	}
	return s.commit(ctx, dst, r)
}

// Patch changes a release's metadata (the latest, or info.Label). It reports
// false, with no error, when nothing changed. A rollout can only grow, and
// only while it is unfinished.
func (s *Service) Patch(ctx context.Context, app, dep string, info PackageInfo) (Release, bool, error) {
	if err := info.validate(); err != nil {
		return Release{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, h, err := s.deployment(ctx, app, dep)
	if err != nil {
		return Release{}, false, err
	}
	i, err := findLabel(h, info.Label)
	if err != nil {
		return Release{}, false, err
	}
	old := h[i]
	r := old
	changed := false
	if info.Disabled != nil && *info.Disabled != r.Disabled {
		r.Disabled, changed = *info.Disabled, true
	}
	if info.Mandatory != nil && *info.Mandatory != r.Mandatory {
		r.Mandatory, changed = *info.Mandatory, true
	}
	if info.Description != nil && *info.Description != r.Description {
		r.Description, changed = *info.Description, true
	}
	if info.Rollout != nil {
		if !unfinishedRollout(r.Rollout) {
			return Release{}, false, &Error{Kind: KindConflict, Field: "rollout", Value: strconv.Itoa(*info.Rollout),
				Message: fmt.Sprintf("Cannot update rollout value for a completed rollout release. (%s is rolled out to everyone.)", r.Label)}
		}
		if *info.Rollout <= r.Rollout {
			return Release{}, false, &Error{Kind: KindConflict, Field: "rollout", Value: strconv.Itoa(*info.Rollout),
				Message: fmt.Sprintf("Rollout value must be greater than \"%d\", the existing value. (%s)", r.Rollout, r.Label)}
		}
		r.Rollout, changed = *info.Rollout, true
	}
	rangeChanged := info.AppVersion != nil && *info.AppVersion != r.AppVersion
	if rangeChanged {
		r.AppVersion, changed = *info.AppVersion, true
	}
	// A release served again (or to other binaries) passes the gate as a
	// new one would: the binaries in its range may have changed since it
	// was released or disabled.
	switch {
	case rangeChanged:
		if err := s.checkGate(ctx, app, dep, r.AppVersion, r.Commit); err != nil {
			return Release{}, false, err
		}
	case old.Disabled && !r.Disabled:
		if err := s.checkGateFor(ctx, "re-enabling "+r.Label+" refused", app, dep, r.AppVersion, r.Commit); err != nil {
			return Release{}, false, err
		}
	}
	if !changed {
		return r, false, nil
	}
	if err := s.cfg.Store.UpdateRelease(ctx, d.Key, old, r); err != nil {
		if KindOf(err) == KindConflict {
			// Another replica changed it; serve what is stored now.
			if ierr := s.Invalidate(ctx, d.Key); ierr != nil {
				s.cfg.Logger.WarnContext(ctx, "codepush: reload after a conflicting patch failed", "err", ierr)
			}
		}
		return Release{}, false, err
	}
	return r, true, s.Invalidate(ctx, d.Key)
}

// Rollback appends a copy of an earlier release so that devices on the
// latest release go back to its content, as code-push-server does. The
// target is the named label, or by default the newest enabled release
// before the latest (code-push-server takes the one just before, which after
// a halted rollout is a disabled release: copying it would leave the bad
// release served). The target must be enabled and have the same target
// binary range as the latest release, and it passes the Gate again.
//
// The copy is always enabled, and the latest release is disabled before the
// copy is appended: appending sets the previous latest release's rollout to
// 100 (code-push-server's commitPackage), so the release rolled back from must
// not stay servable. Should the append fail, the release stays disabled,
// which also sends its devices back to the newest earlier enabled release.
func (s *Service) Rollback(ctx context.Context, app, dep, target string) (Release, error) {
	if target != "" && !labelRE.MatchString(target) {
		return Release{}, invalid("label", target, "labels look like v1, v2, ...")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, h, err := s.deployment(ctx, app, dep)
	if err != nil {
		return Release{}, err
	}
	if len(h) == 0 {
		return Release{}, notFound("Cannot perform rollback because there are no releases on this deployment.")
	}
	latest := h[len(h)-1]
	var t Release
	if target == "" && len(h) == 1 {
		// code-push-server answers 404; a conflict tells lanes to disable
		// the release instead, and the CLI prints the sentence either way.
		return Release{}, conflict("Cannot perform rollback because there are no prior releases to rollback to.")
	}
	if target == "" {
		i := len(h) - 2
		for i >= 0 && h[i].Disabled {
			i--
		}
		if i < 0 {
			return Release{}, &Error{Kind: KindConflict, Field: "label", Value: "",
				Message: fmt.Sprintf("deployment %q has no enabled release before %s to roll back to; disable %s instead", dep, latest.Label, latest.Label)}
		}
		t = h[i]
	} else {
		i, err := findLabel(h, target)
		if err != nil {
			return Release{}, notFound("Cannot perform rollback because the target release (%s) could not be found in the deployment history.", target)
		}
		t = h[i]
		if i == len(h)-1 {
			return Release{}, conflict("Cannot perform rollback because the target release (%s) is already the latest release.", target)
		}
		if t.Disabled {
			return Release{}, &Error{Kind: KindConflict, Field: "label", Value: t.Label,
				Message: fmt.Sprintf("release %s is disabled; roll back to an enabled release, or disable %s instead", t.Label, latest.Label)}
		}
	}
	if t.AppVersion != latest.AppVersion {
		return Release{}, &Error{Kind: KindConflict, Field: "label", Value: t.Label,
			Message: fmt.Sprintf("Cannot perform rollback to a different app version. Please perform a new release with the desired replacement package. (%s targets %q, the latest release %s targets %q.)", t.Label, t.AppVersion, latest.Label, latest.AppVersion)}
	}
	what := fmt.Sprintf("rollback of %s to %s blocked by the release gate (to stop serving %s now, disable it instead)", latest.Label, t.Label, latest.Label)
	if err := s.checkGateFor(ctx, what, app, dep, t.AppVersion, t.Commit); err != nil {
		return Release{}, err
	}
	if err := s.verifyStored(ctx, app, t); err != nil {
		return Release{}, err
	}
	if !latest.Disabled {
		off := latest
		off.Disabled = true
		if err := s.cfg.Store.UpdateRelease(ctx, d.Key, latest, off); err != nil {
			if KindOf(err) == KindConflict {
				if ierr := s.Invalidate(ctx, d.Key); ierr != nil {
					s.cfg.Logger.WarnContext(ctx, "codepush: reload after a conflicting rollback failed", "err", ierr)
				}
			}
			return Release{}, err
		}
	}
	r := Release{
		Label: nextLabel(h), AppVersion: t.AppVersion, Description: t.Description,
		Mandatory: t.Mandatory, Disabled: false, Rollout: 100,
		PackageHash: t.PackageHash, Size: t.Size, BlobKey: t.BlobKey, BlobURL: t.BlobURL,
		Method: MethodRollback, OriginalLabel: t.Label,
		ReleasedBy: ActorFrom(ctx).Name, Commit: t.Commit, UploadTime: s.cfg.Now().UTC(),
	}
	r, err = s.commit(ctx, d, r)
	if err != nil && !latest.Disabled {
		// The disable above is committed: serve it.
		if ierr := s.Invalidate(ctx, d.Key); ierr != nil {
			s.cfg.Logger.WarnContext(ctx, "codepush: reload after a failed rollback failed", "err", ierr)
		}
	}
	return r, err
}

// OpenPackage opens the stored content of a package by its blob key.
func (s *Service) OpenPackage(ctx context.Context, key string) (io.ReadCloser, error) {
	if s.cfg.Blobs == nil {
		return nil, notFound("package %q not found", key)
	}
	return s.cfg.Blobs.Open(ctx, key)
}
