package codepush

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
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
	// "https://ota.example.com". Empty: derived from each request's Host.
	PublicURL string
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

	mu       sync.Mutex // serialises mutations made by this process
	reloadMu sync.Mutex // orders snapshot reloads
	views    sync.Map   // deployment key -> *deploymentView
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
	s := &Service{cfg: cfg}
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
	return App{}, notFound("app %q not found", name)
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
		return App{}, conflict("app %q already exists", name)
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
			return Deployment{}, conflict("deployment %q already exists in app %q", name, app)
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
	return Deployment{}, nil, notFound("deployment %q not found in app %q", dep, app)
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

	s.mu.Lock()
	defer s.mu.Unlock()
	d, h, err := s.deployment(ctx, in.App, in.Deployment)
	if err != nil {
		return Release{}, err
	}
	if n := len(h); n > 0 && unfinishedRollout(h[n-1].Rollout) && !h[n-1].Disabled {
		return Release{}, conflict("release %s is rolled out to %d%%: complete it (patch rollout to 100) or disable it before releasing a new package", h[n-1].Label, h[n-1].Rollout)
	}
	if prev := lastHashForAppVersion(h, in.AppVersion); prev == hash {
		return Release{}, conflict("the uploaded package is identical to the contents of the latest release targeting %q", in.AppVersion)
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
	if err == nil && n > s.cfg.MaxPackageSize {
		err = invalid("package", strconv.FormatInt(n, 10)+" bytes", "larger than the limit of %d bytes", s.cfg.MaxPackageSize)
	}
	if err == nil && n == 0 {
		err = invalid("package", "", "the package is empty")
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, 0, err
	}
	return tmp, n, nil
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

func (p PackageInfo) validate() error {
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
			return -1, notFound("the deployment has no releases")
		}
		return len(h) - 1, nil
	}
	for i := range h {
		if h[i].Label == label {
			return i, nil
		}
	}
	return -1, notFound("release %s not found", label)
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
	i, err := findLabel(src, info.Label)
	if err != nil {
		return Release{}, err
	}
	sr := src[i]
	if n := len(dh); n > 0 {
		if unfinishedRollout(dh[n-1].Rollout) && !dh[n-1].Disabled {
			return Release{}, conflict("cannot promote to an unfinished rollout release (%s at %d%%) unless it is disabled", dh[n-1].Label, dh[n-1].Rollout)
		}
		if dh[n-1].PackageHash == sr.PackageHash {
			return Release{}, conflict("release %s of %s is identical to the current release %s of %s", sr.Label, from, dh[n-1].Label, to)
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
				Message: fmt.Sprintf("cannot update the rollout of %s: its rollout is already complete", r.Label)}
		}
		if *info.Rollout <= r.Rollout {
			return Release{}, false, &Error{Kind: KindConflict, Field: "rollout", Value: strconv.Itoa(*info.Rollout),
				Message: fmt.Sprintf("rollout must be greater than %d, the current value of %s", r.Rollout, r.Label)}
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
		return Release{}, notFound("deployment %q has no release to roll back", dep)
	}
	latest := h[len(h)-1]
	var t Release
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
			return Release{}, err
		}
		t = h[i]
		if i == len(h)-1 {
			return Release{}, conflict("release %s is already the latest release", target)
		}
		if t.Disabled {
			return Release{}, &Error{Kind: KindConflict, Field: "label", Value: t.Label,
				Message: fmt.Sprintf("release %s is disabled; roll back to an enabled release, or disable %s instead", t.Label, latest.Label)}
		}
	}
	if t.AppVersion != latest.AppVersion {
		return Release{}, &Error{Kind: KindConflict, Field: "label", Value: t.Label,
			Message: fmt.Sprintf("cannot roll back to a different app version: %s targets %q, the latest release %s targets %q", t.Label, t.AppVersion, latest.Label, latest.AppVersion)}
	}
	what := fmt.Sprintf("rollback of %s to %s blocked by the release gate (to stop serving %s now, disable it instead)", latest.Label, t.Label, latest.Label)
	if err := s.checkGateFor(ctx, what, app, dep, t.AppVersion, t.Commit); err != nil {
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

// DeployReport is a report_status/deploy body.
type DeployReport struct {
	DeploymentKey             string
	AppVersion                string
	ClientUniqueID            string
	Label                     string
	Status                    string // DeploymentSucceeded, DeploymentFailed (or Downloaded)
	PreviousLabelOrAppVersion string
	PreviousDeploymentKey     string // defaults to DeploymentKey
}

// Report statuses.
const (
	StatusSucceeded  = "DeploymentSucceeded"
	StatusFailed     = "DeploymentFailed"
	StatusDownloaded = "Downloaded"
)

// MaxReportField bounds every string field of a status report, in bytes.
// Real values are far shorter: a client id is a 36-character UUID, a label
// "v123", an app version "1.4.0".
const MaxReportField = 128

// reportLabelRE is the shape of the labels metrics are keyed by (reference
// §1.6); labelRE, stricter, is what this server generates.
var reportLabelRE = regexp.MustCompile(`^v[0-9]+$`)

func boundedField(field, v string) error {
	if len(v) > MaxReportField {
		return invalid(field, v[:32]+"…", "at most %d bytes", MaxReportField)
	}
	return nil
}

// hasLabel reports whether label is in the deployment's served history.
func (dv *deploymentView) hasLabel(label string) bool {
	if !reportLabelRE.MatchString(label) {
		return false
	}
	for i := range dv.releases {
		if dv.releases[i].Label == label {
			return true
		}
	}
	return false
}

// ReportDeploy records an install (or a client-side rollback) as
// code-push-server's metrics path for SDK >= 1.5.2 does: a failed labelled
// report counts a failure; anything else counts an install and moves the active
// device from the previous label (or binary version) to the new one.
//
// Deployment keys ship inside app binaries, so anyone can send reports.
// What a report may create is therefore bounded: a label must be one of the
// deployment's releases, an app version must be a semantic version, and
// every field is at most MaxReportField bytes; anything else is KindInvalid
// naming the field. Valid reports can still be forged; see the OTA gate's
// documentation for what that means for rollouts.
func (s *Service) ReportDeploy(ctx context.Context, r DeployReport) error {
	for _, f := range [][2]string{{"deployment_key", r.DeploymentKey}, {"app_version", r.AppVersion}, {"client_unique_id", r.ClientUniqueID},
		{"label", r.Label}, {"status", r.Status}, {"previous_label_or_app_version", r.PreviousLabelOrAppVersion}, {"previous_deployment_key", r.PreviousDeploymentKey}} {
		if err := boundedField(f[0], f[1]); err != nil {
			return err
		}
	}
	if !validKey(r.DeploymentKey) {
		return invalid("deployment_key", r.DeploymentKey, "must be 10 to 100 characters of letters, digits, '_' or '-'")
	}
	if r.AppVersion == "" {
		return invalid("app_version", "", "a deploy status report must contain app_version")
	}
	if _, ok := NormalizeAppVersion(r.AppVersion); !ok {
		return invalid("app_version", r.AppVersion, "must be a semantic version such as 1.4.0")
	}
	if r.Label != "" && r.Status != StatusSucceeded && r.Status != StatusFailed && r.Status != StatusDownloaded {
		return invalid("status", r.Status, "a report for a labelled package needs status DeploymentSucceeded or DeploymentFailed")
	}
	if r.PreviousDeploymentKey != "" && !validKey(r.PreviousDeploymentKey) {
		return invalid("previous_deployment_key", r.PreviousDeploymentKey, "must be 10 to 100 characters of letters, digits, '_' or '-'")
	}
	dv := s.view(r.DeploymentKey)
	if dv == nil {
		return notFound("no deployment has the key %q", r.DeploymentKey)
	}
	if r.Label != "" && !dv.hasLabel(r.Label) {
		return invalid("label", r.Label, "not a release of this deployment")
	}
	if r.Label != "" && r.Status == StatusFailed {
		return s.cfg.Store.AddCounts(ctx, []CountDelta{{DeploymentKey: r.DeploymentKey, Label: r.Label, Counts: Counts{Failed: 1}}})
	}
	cur := CountDelta{DeploymentKey: r.DeploymentKey, Label: r.Label, Counts: Counts{Active: 1, Installed: 1}}
	if r.Label == "" {
		cur = CountDelta{DeploymentKey: r.DeploymentKey, Label: r.AppVersion, Counts: Counts{Active: 1}}
	}
	deltas := []CountDelta{cur}
	if prev := r.PreviousLabelOrAppVersion; prev != "" {
		pk := r.PreviousDeploymentKey
		if pk == "" {
			pk = r.DeploymentKey
		}
		pv := s.view(pk)
		isLabel := reportLabelRE.MatchString(prev)
		if _, ok := NormalizeAppVersion(prev); !isLabel && !ok {
			return invalid("previous_label_or_app_version", prev, "must be a label such as v7 or a semantic version such as 1.4.0")
		}
		if pv == nil {
			return s.cfg.Store.AddCounts(ctx, deltas) // never create counters for unknown keys
		}
		if isLabel && !pv.hasLabel(prev) {
			return invalid("previous_label_or_app_version", prev, "not a release of the previous deployment")
		}
		deltas = append(deltas, CountDelta{DeploymentKey: pk, Label: prev, Counts: Counts{Active: -1}})
	}
	return s.cfg.Store.AddCounts(ctx, deltas)
}

// ReportDownload counts a download of a label, which must be one of the
// deployment's releases.
func (s *Service) ReportDownload(ctx context.Context, deploymentKey, label string) error {
	if err := boundedField("label", label); err != nil {
		return err
	}
	if !validKey(deploymentKey) {
		return invalid("deployment_key", deploymentKey, "must be 10 to 100 characters of letters, digits, '_' or '-'")
	}
	if label == "" {
		return invalid("label", "", "a download report must name the label")
	}
	dv := s.view(deploymentKey)
	if dv == nil {
		return notFound("no deployment has the key %q", deploymentKey)
	}
	if !dv.hasLabel(label) {
		return invalid("label", label, "not a release of this deployment")
	}
	return s.cfg.Store.AddCounts(ctx, []CountDelta{{DeploymentKey: deploymentKey, Label: label, Counts: Counts{Downloaded: 1}}})
}

// OpenPackage opens the stored content of a package by its blob key.
func (s *Service) OpenPackage(ctx context.Context, key string) (io.ReadCloser, error) {
	if s.cfg.Blobs == nil {
		return nil, notFound("package %q not found", key)
	}
	return s.cfg.Blobs.Open(ctx, key)
}
