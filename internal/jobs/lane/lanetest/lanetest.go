// Package lanetest is what the tests of the lane packages (ioslane,
// androidlane, otalane) share: GitHub release assets served from memory,
// a tag deleted while a lane job downloads its asset, and the check that
// jobs.PastPointOfNoReturn reads a lane's own data. Only tests import it.
package lanetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Assets serves GitHub release assets of one repository from memory, as a
// lane's asset reader. A fetch of a tag and pattern nothing was Put for (or
// of another repository) fails with fs.ErrNotExist, as a GitHub release
// without the asset does; a found one is written to a temporary file in Dir,
// which the lane closes and removes.
type Assets struct {
	Repository string
	Dir        string // "" is the system's temporary directory

	mu      sync.Mutex
	assets  map[[2]string]asset // by tag and pattern
	fetches int
}

type asset struct {
	name    string
	content []byte
}

var _ lane.Assets = (*Assets)(nil)

// NewAssets serves the assets of repository, writing fetched files to dir.
func NewAssets(repository, dir string) *Assets {
	return &Assets{Repository: repository, Dir: dir}
}

// Put makes a fetch of tag and pattern return content under the asset name.
func (a *Assets) Put(tag, pattern, name string, content []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.assets == nil {
		a.assets = map[[2]string]asset{}
	}
	a.assets[[2]string{tag, pattern}] = asset{name: name, content: content}
}

// Delete removes the asset of tag and pattern, as if it never was uploaded.
func (a *Assets) Delete(tag, pattern string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.assets, [2]string{tag, pattern})
}

// Fetches counts the fetches so far, found or not.
func (a *Assets) Fetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetches
}

// FetchAsset implements lane.Assets.
func (a *Assets) FetchAsset(_ context.Context, repository, tag, pattern string) (*os.File, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fetches++
	as, ok := a.assets[[2]string{tag, pattern}]
	if !ok || repository != a.Repository {
		return nil, "", fmt.Errorf("release %s of %s has no asset %s: %w", tag, repository, pattern, fs.ErrNotExist)
	}
	f, err := os.CreateTemp(a.Dir, "asset-*")
	if err != nil {
		return nil, "", err
	}
	if _, err := f.Write(as.content); err != nil {
		f.Close()
		return nil, "", err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, "", err
	}
	return f, as.name, nil
}

// DeletingTag wraps assets so that each fetch, once the asset is in
// hand, deletes the tag of release releaseID and applies the withdrawal as
// the tag-change job does: the lane job has read its lane as pending and
// holds the download when the withdrawal commits.
func DeletingTag(t testing.TB, assets lane.Assets, st *store.Store, apps map[string]config.App, releaseID string, now func() time.Time) lane.Assets {
	changes := &jobs.TagChanges{Store: st, Apps: apps, Now: now}
	return deletingTag{Assets: assets, during: func() {
		ctx := context.Background()
		_, err := st.SetTagState(ctx, releaseID, release.TagDeleted, "", now())
		require.NoError(t, err)
		require.NoError(t, changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: releaseID, Change: jobs.TagChangeDeleted}))
	}}
}

type deletingTag struct {
	lane.Assets
	during func()
}

func (d deletingTag) FetchAsset(ctx context.Context, repository, tag, pattern string) (*os.File, string, error) {
	f, name, err := d.Assets.FetchAsset(ctx, repository, tag, pattern)
	d.during()
	return f, name, err
}

// PointOfNoReturn is a lane and its data (a lane package's own data type),
// with what jobs.PastPointOfNoReturn must answer for them.
type PointOfNoReturn struct {
	Lane release.Lane
	Data any
	Past bool
	Why  string
}

// CheckPointOfNoReturn checks jobs.PastPointOfNoReturn against each case,
// reading the data as the lane package stores it (JSON), so a renamed field
// of the lane's data fails.
func CheckPointOfNoReturn(t testing.TB, cases []PointOfNoReturn) {
	t.Helper()
	for _, tc := range cases {
		b, err := json.Marshal(tc.Data)
		require.NoError(t, err)
		past, why := jobs.PastPointOfNoReturn(tc.Lane, b)
		require.Equal(t, tc.Past, past, "%+v", tc.Data)
		require.Equal(t, tc.Why, why)
	}
}
