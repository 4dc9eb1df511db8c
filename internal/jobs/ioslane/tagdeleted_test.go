package ioslane_test

import (
	"context"
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// An iOS lane whose tag (with its build number, v1.4.0+46) is deleted while
// its job downloads the IPA uploads nothing: the job records the asset
// before the first byte leaves, and that record is refused.
func TestTagDeletedWhileIOSLaneDownloads(t *testing.T) {
	t.Parallel()
	b := setupIOS(t, store.SQLite, iosOpts{version: "1.4.0+46", noBuild: true, configure: func(a *config.App) {
		a.IOS.BuildSource, a.IOS.IPAAsset = "upload", "*.ipa"
	}})
	b.putIPA("v1.4.0+46", makeIPA(t, xmlPlist("1.4.0", "46")))
	b.ios.Assets = lanetest.DeletingTag(t, b.assets, b.st, map[string]config.App{"acme": b.app}, b.rel.ID, b.clock.Now)
	err := b.work(context.Background())
	var cancel *river.JobCancelError
	require.ErrorAs(t, err, &cancel)
	require.ErrorIs(t, err, store.ErrWithdrawn)
	require.Equal(t, release.StateCancelled, b.status(t).State)
	require.EqualValues(t, 0, b.asc.UploadParts(), "no byte was uploaded")
	require.Zero(t, b.fake.Mutations("POST /v1/buildUploads"))
}
