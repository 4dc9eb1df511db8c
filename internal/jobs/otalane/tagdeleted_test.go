package otalane_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// An OTA lane whose tag is deleted while its job downloads the bundle
// releases nothing, not even to Staging.
func TestTagDeletedWhileOTALaneDownloads(t *testing.T) {
	t.Parallel()
	b := setupOTA(t)
	l := b.lane(t, "v1.4.2", "c142", "v142\n")
	b.ota.Assets = lanetest.DeletingTag(t, b.assets, b.st, b.ota.Apps, l.ReleaseID, func() time.Time { return b.now })
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
	e.ota.Assets = lanetest.DeletingTag(t, e.ota.Assets, e.st, e.ota.Apps, l.ReleaseID, func() time.Time { return e.now })
	err := e.work(context.Background(), l)
	require.ErrorIs(t, err, store.ErrWithdrawn)
	require.Equal(t, release.StateCancelled, e.laneStatus(t, l).State)
	require.Empty(t, e.history(t, codepush.Staging), "nothing released")
}
