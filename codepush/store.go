package codepush

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Store persists apps, deployment histories and counters. Implementations must
// be safe for concurrent use. Errors other than *Error are treated as internal.
type Store interface {
	// Apps returns every app with its deployments.
	Apps(ctx context.Context) ([]App, error)
	// SaveApp creates or replaces an app and its deployment list. It must fail
	// with KindConflict when a deployment key is already used by another app.
	SaveApp(ctx context.Context, app App) error
	// Releases returns a deployment's history, oldest first.
	Releases(ctx context.Context, deploymentKey string) ([]Release, error)
	// AppendRelease adds r at the end of the history and, in the same
	// transaction, sets the previous latest release's Rollout to 100 (as
	// code-push-server's commitPackage does). It must fail with KindConflict
	// when the label already exists, so that two replicas cannot both append vN.
	AppendRelease(ctx context.Context, deploymentKey string, r Release) error
	// UpdateRelease replaces the release old with r (both have the same
	// Label) as a compare-and-swap: it must fail with KindConflict, changing
	// nothing, when the stored release no longer equals old in every field
	// (another replica patched it, or AppendRelease completed its rollout,
	// since old was read), and with KindNotFound when the label does not
	// exist. A Patch is a read-modify-write whose lock is per process, so
	// this check is what keeps one replica from undoing another's change.
	UpdateRelease(ctx context.Context, deploymentKey string, old, r Release) error
	// AddCounts applies counter deltas atomically per delta.
	AddCounts(ctx context.Context, deltas []CountDelta) error
	// Counts returns the counters of a deployment keyed by label or app version.
	Counts(ctx context.Context, deploymentKey string) (map[string]Counts, error)
}

// MemStore is an in-memory Store. The zero value is ready to use.
type MemStore struct {
	mu       sync.Mutex
	apps     []App
	releases map[string][]Release
	counts   map[string]map[string]Counts
	diffs    []Diff
}

var _ Store = (*MemStore)(nil)

// Apps implements Store.
func (m *MemStore) Apps(ctx context.Context) ([]App, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]App, len(m.apps))
	for i, a := range m.apps {
		a.Deployments = slices.Clone(a.Deployments)
		out[i] = a
	}
	return out, nil
}

// SaveApp implements Store.
func (m *MemStore) SaveApp(ctx context.Context, app App) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := -1
	for i, a := range m.apps {
		if a.Name == app.Name {
			idx = i
			continue
		}
		for _, d := range a.Deployments {
			for _, nd := range app.Deployments {
				if d.Key == nd.Key {
					return conflict("deployment key is already used by app %q", a.Name)
				}
			}
		}
	}
	app.Deployments = slices.Clone(app.Deployments)
	if idx < 0 {
		m.apps = append(m.apps, app)
	} else {
		m.apps[idx] = app
	}
	return nil
}

// Releases implements Store.
func (m *MemStore) Releases(ctx context.Context, deploymentKey string) ([]Release, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.releases[deploymentKey]), nil
}

// AppendRelease implements Store.
func (m *MemStore) AppendRelease(ctx context.Context, deploymentKey string, r Release) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.releases[deploymentKey]
	for _, e := range h {
		if e.Label == r.Label {
			return conflict("release %s already exists", r.Label)
		}
	}
	if m.releases == nil {
		m.releases = map[string][]Release{}
	}
	h = slices.Clone(h)
	if n := len(h); n > 0 {
		h[n-1].Rollout = 100
	}
	m.releases[deploymentKey] = append(h, r)
	return nil
}

// UpdateRelease implements Store.
func (m *MemStore) UpdateRelease(ctx context.Context, deploymentKey string, old, r Release) error {
	if old.Label != r.Label {
		return invalid("label", r.Label, "an update cannot change the label %s", old.Label)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := slices.Clone(m.releases[deploymentKey])
	for i := range h {
		if h[i].Label == r.Label {
			if !SameRelease(h[i], old) {
				return conflict("release %s was changed by someone else since it was read; read it again and retry", r.Label)
			}
			h[i] = r
			m.releases[deploymentKey] = h
			return nil
		}
	}
	return notFound("release %s not found", r.Label)
}

// SameRelease reports whether a and b are equal in every field, upload times
// compared as instants.
func SameRelease(a, b Release) bool {
	if !a.UploadTime.Equal(b.UploadTime) {
		return false
	}
	a.UploadTime, b.UploadTime = time.Time{}, time.Time{}
	return a == b
}

// AddCounts implements Store.
func (m *MemStore) AddCounts(ctx context.Context, deltas []CountDelta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]map[string]Counts{}
	}
	for _, d := range deltas {
		byLabel := m.counts[d.DeploymentKey]
		if byLabel == nil {
			byLabel = map[string]Counts{}
			m.counts[d.DeploymentKey] = byLabel
		}
		c := byLabel[d.Label]
		c.Active += d.Active
		c.Downloaded += d.Downloaded
		c.Installed += d.Installed
		c.Failed += d.Failed
		byLabel[d.Label] = c
	}
	return nil
}

// Counts implements Store.
func (m *MemStore) Counts(ctx context.Context, deploymentKey string) (map[string]Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Counts, len(m.counts[deploymentKey]))
	for k, v := range m.counts[deploymentKey] {
		out[k] = v
	}
	return out, nil
}
