package ioslane_test

import (
	"context"
	"os"
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// deletingAssets deletes the tag while the lane job downloads its IPA.
type deletingAssets struct {
	lane.Assets
	during func()
}

func (d deletingAssets) FetchAsset(ctx context.Context, repository, tag, pattern string) (*os.File, string, error) {
	f, name, err := d.Assets.FetchAsset(ctx, repository, tag, pattern)
	d.during()
	return f, name, err
}

// An iOS lane whose tag (with its build number, v1.4.0+46) is deleted while
// its job downloads the IPA uploads nothing: the job records the asset
// before the first byte leaves, and that record is refused.
func TestTagDeletedWhileIOSLaneDownloads(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{version: "1.4.0+46", noBuild: true, configure: func(a *config.App) {
		a.IOS.BuildSource, a.IOS.IPAAsset = "upload", "*.ipa"
	}})
	b.assets.ipa["v1.4.0+46"] = makeIPA(t, xmlPlist("1.4.0", "46"))
	changes := &jobs.TagChanges{Store: b.st, Apps: map[string]config.App{"acme": b.app}, Now: b.clock.Now}
	b.ios.Assets = deletingAssets{Assets: b.assets, during: func() {
		ctx := context.Background()
		_, err := b.st.SetTagState(ctx, b.rel.ID, release.TagDeleted, "", b.clock.Now())
		require.NoError(t, err)
		require.NoError(t, changes.Apply(ctx, jobs.TagChangeArgs{ReleaseID: b.rel.ID, Change: jobs.TagChangeDeleted}))
	}}
	err := b.work(context.Background())
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	require.ErrorIs(t, err, store.ErrWithdrawn)
	require.Equal(t, release.StateCancelled, b.status(t).State)
	require.EqualValues(t, 0, b.asc.UploadParts(), "no byte was uploaded")
	require.Zero(t, b.fake.Mutations("POST /v1/buildUploads"))
}
