package playstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// TestEmptyTrackIsATrackWithoutReleases: Play answers edits.tracks.get of
// a track that never had a release with 404 trackEmpty ("Track not found:
// no APK version codes in the specified track."). That is a track with no
// releases: reading it gives none, and a first release can be put on it.
func TestEmptyTrackIsATrackWithoutReleases(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.fake.SeedBundles(pkg, 42)

	ts, err := tb.client.Track(ctx, pkg, playstore.TrackInternal)
	require.NoError(t, err)
	require.Equal(t, playstore.TrackState{Track: playstore.TrackInternal}, ts)
	var sawEmpty bool
	for _, x := range tb.fake.Exchanges() {
		sawEmpty = sawEmpty || (x.Method == playstoretest.MethodTracksGet && x.Status == 404)
	}
	require.True(t, sawEmpty, "the fake answers 404 trackEmpty for a never-used track")

	res, err := tb.client.PutRelease(ctx, pkg, playstore.TrackInternal, playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusCompleted})
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, []playstoretest.Release{{Name: "1.4.2", VersionCodes: []int64{42}, Status: "completed"}}, tb.fake.Track(pkg, playstore.TrackInternal))

	// A track Play does not know at all is still not found.
	_, err = tb.client.Track(ctx, pkg, "nightly")
	require.ErrorIs(t, err, playstore.ErrNotFound)
}
