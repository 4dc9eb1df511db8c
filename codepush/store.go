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
	// DeleteApp removes an app and its deployments (KindNotFound when there
	// is no such app).
	DeleteApp(ctx context.Context, name string) error
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
	// ClearReleases empties a deployment's history and forgets its counters
	// and the clients counted, in one transaction.
	ClearReleases(ctx context.Context, deploymentKey string) error
	// RecordReport counts one device's report atomically:
	//   - Downloaded, Failed and Succeeded add 1 to downloaded, failed and
	//     installed of r.Label only the first time r.ClientID reports that
	//     status for that label; the first Failed or Succeeded of a client
	//     for a label also adds 1 to clients;
	//   - Succeeded and the empty status (a device back on its binary) move
	//     the client's active count: when the label the client was last
	//     counted on in this deployment differs, that label's active loses 1
	//     and r.Label's gains 1; with PreviousDeploymentKey set, the client
	//     also leaves the label it was counted on there.
	// Active counts therefore never go negative.
	RecordReport(ctx context.Context, r ClientReport) error
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
	seen     map[memReport]bool
	current  map[[2]string]string // (deployment key, client id) -> label counted active
}

type memReport struct{ key, label, status, client string }

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

// DeleteApp implements Store.
func (m *MemStore) DeleteApp(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.apps, func(a App) bool { return a.Name == name })
	if i < 0 {
		return appNotFound(name)
	}
	m.apps = slices.Delete(m.apps, i, i+1)
	return nil
}

// ClearReleases implements Store.
func (m *MemStore) ClearReleases(ctx context.Context, deploymentKey string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.releases, deploymentKey)
	delete(m.counts, deploymentKey)
	for k := range m.seen {
		if k.key == deploymentKey {
			delete(m.seen, k)
		}
	}
	for k := range m.current {
		if k[0] == deploymentKey {
			delete(m.current, k)
		}
	}
	return nil
}

// RecordReport implements Store.
func (m *MemStore) RecordReport(ctx context.Context, r ClientReport) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]map[string]Counts{}
		m.seen = map[memReport]bool{}
		m.current = map[[2]string]string{}
	}
	add := func(key, label string, f func(*Counts)) {
		byLabel := m.counts[key]
		if byLabel == nil {
			byLabel = map[string]Counts{}
			m.counts[key] = byLabel
		}
		c := byLabel[label]
		f(&c)
		byLabel[label] = c
	}
	leave := func(key, client string) {
		if old, ok := m.current[[2]string{key, client}]; ok {
			delete(m.current, [2]string{key, client})
			add(key, old, func(c *Counts) { c.Active = max(c.Active-1, 0) })
		}
	}
	if r.Status != "" {
		k := memReport{r.DeploymentKey, r.Label, r.Status, r.ClientID}
		if !m.seen[k] {
			m.seen[k] = true
			other := StatusFailed
			if r.Status == StatusFailed {
				other = StatusSucceeded
			}
			first := r.Status != StatusDownloaded && !m.seen[memReport{r.DeploymentKey, r.Label, other, r.ClientID}]
			add(r.DeploymentKey, r.Label, func(c *Counts) {
				switch r.Status {
				case StatusDownloaded:
					c.Downloaded++
				case StatusFailed:
					c.Failed++
				case StatusSucceeded:
					c.Installed++
				}
				if first {
					c.Clients++
				}
			})
		}
	}
	if r.Status != StatusSucceeded && r.Status != "" {
		return nil
	}
	if r.PreviousDeploymentKey != "" && r.PreviousDeploymentKey != r.DeploymentKey {
		leave(r.PreviousDeploymentKey, r.ClientID)
	}
	ck := [2]string{r.DeploymentKey, r.ClientID}
	if cur, ok := m.current[ck]; ok && cur == r.Label {
		return nil
	}
	leave(r.DeploymentKey, r.ClientID)
	m.current[ck] = r.Label
	add(r.DeploymentKey, r.Label, func(c *Counts) { c.Active++ })
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
