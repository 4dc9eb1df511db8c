package codepush

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

type countingStore struct {
	MemStore
	reads atomic.Int64
}

func (c *countingStore) Apps(ctx context.Context) ([]App, error) {
	c.reads.Add(1)
	return c.MemStore.Apps(ctx)
}

func (c *countingStore) Releases(ctx context.Context, key string) ([]Release, error) {
	c.reads.Add(1)
	return c.MemStore.Releases(ctx, key)
}

func TestUpdateCheckReadsNoStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &countingStore{}
	svc, err := New(ctx, Config{Store: store, Blobs: DirBlobs{Dir: t.TempDir()}})
	require.NoError(t, err)
	a, err := svc.CreateApp(ctx, "A", false)
	require.NoError(t, err)
	_, err = svc.Release(ctx, ReleaseInput{App: "A", Deployment: Production, AppVersion: "*", Package: strings.NewReader("x")})
	require.NoError(t, err)
	before := store.reads.Load()
	for i := 0; i < 100; i++ {
		info, err := svc.CheckUpdate(UpdateRequest{DeploymentKey: a.Deployments[1].Key, AppVersion: "1.0.0"})
		require.NoError(t, err)
		require.True(t, info.IsAvailable)
		_, err = svc.CheckUpdate(UpdateRequest{DeploymentKey: "unknown-key-12345", AppVersion: "1.0.0"})
		require.ErrorIs(t, err, ErrNotFound)
	}
	require.Equal(t, before, store.reads.Load(), "update checks must be answered from memory")
}

// TestUpdateChecksDuringReleases runs checks concurrently with changes (under
// -race) and requires every answer to come from a consistent snapshot.
func TestUpdateChecksDuringReleases(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	key := tb.key(t, Production)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				info, err := tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: key, AppVersion: "1.0.0"})
				if err != nil || (info.IsAvailable && info.PackageHash != sha("content "+strings.TrimPrefix(info.Label, "v"))) {
					t.Errorf("inconsistent answer %+v, %v", info, err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		tb.release(t, Production, "1.0.0", "content "+strconv.Itoa(i))
	}
	close(stop)
	wg.Wait()
	info, err := tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: key, AppVersion: "1.0.0"})
	require.NoError(t, err)
	require.Equal(t, "v20", info.Label)
}
