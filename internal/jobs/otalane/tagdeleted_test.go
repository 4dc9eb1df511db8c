package otalane_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

type deletingAssets struct {
	lane.Assets
	during func()
}

func (d deletingAssets) FetchAsset(ctx context.Context, repository, tag, pattern string) (*os.File, string, error) {
	f, name, err := d.Assets.FetchAsset(ctx, repository, tag, pattern)
	d.during()
	return f, name, err
}

// An OTA lane whose tag is deleted while its job downloads the bundle
// releases nothing, not even to Staging.
func TestTagDeletedWhileOTALaneDownloads(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	l := b.lane(t, "v1.4.2", "c142", "v142\n")
	changes := &jobs.TagChanges{Store: b.st, Apps: b.ota.Apps, Now: func() time.Time { return b.now }}
	b.ota.Assets = deletingAssets{Assets: b.assets, during: func() {
		ctx := context.Background()
		_, err := b.st.SetTagState(ctx, l.ReleaseID, release.TagDeleted, "", b.now)
		require.NoError(t, err)
		require.NoError(t, changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: l.ReleaseID, Change: jobs.TagChangeDeleted}))
	}}
	err := b.work(context.Background(), l)
	require.ErrorIs(t, err, store.ErrWithdrawn)
	require.Equal(t, release.StateCancelled, b.laneStatus(t, l).State)
	require.Empty(t, b.history(t, codepush.Staging), "nothing released")
	require.NoError(t, b.work(context.Background(), l), "run again, the cancelled lane does nothing")
}

// The same for an Expo lane fetching its npx expo export.
func TestTagDeletedWhileExpoLaneDownloads(t *testing.T) {
	t.Parallel()
	e := setupExpoLane(t)
	l := e.expoLane(t, "v1.0.1", "c101", "platform :ios, '15.0'\n")
	changes := &jobs.TagChanges{Store: e.st, Apps: e.ota.Apps, Now: func() time.Time { return e.now }}
	e.ota.Assets = deletingAssets{Assets: e.ota.Assets, during: func() {
		ctx := context.Background()
		_, err := e.st.SetTagState(ctx, l.ReleaseID, release.TagDeleted, "", e.now)
		require.NoError(t, err)
		require.NoError(t, changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: l.ReleaseID, Change: jobs.TagChangeDeleted}))
	}}
	err := e.work(context.Background(), l)
	require.ErrorIs(t, err, store.ErrWithdrawn)
	require.Equal(t, release.StateCancelled, e.laneStatus(t, l).State)
	require.Empty(t, e.history(t, codepush.Staging), "nothing released")
}
