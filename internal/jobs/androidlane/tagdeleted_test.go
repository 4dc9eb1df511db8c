package androidlane_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane/lanetest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// A lane job already running when its tag is deleted does not upload: the
// withdrawal commits first, and the job's next record is refused.
func TestTagDeletedWhileAndroidLaneDownloads(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setupAndroid(t, e, nil)
			// The job has read its lane as pending and holds the AAB when
			// the withdrawal commits.
			b.android.Assets = lanetest.DeletingTag(t, b.assets, b.st, map[string]config.App{"acme": b.app}, b.rel.ID, func() time.Time { return b.now })
			err := b.work(t)
			var cancel *river.JobCancelError
			require.ErrorAs(t, err, &cancel, "the job stops for good")
			require.ErrorIs(t, err, store.ErrWithdrawn)
			require.Equal(t, release.StateCancelled, b.status(t).State)
			for _, x := range b.fake.Exchanges() {
				require.NotEqual(t, playstoretest.MethodBundlesUpload, x.Method, "nothing was uploaded")
				require.NotEqual(t, playstoretest.MethodBundlesUploadChunk, x.Method)
				require.NotEqual(t, playstoretest.MethodTracksUpdate, x.Method)
			}
			vc, err := b.st.VersionCodes().Max(context.Background(), androidPkg)
			require.NoError(t, err)
			require.Zero(t, vc, "no versionCode burned")
			// River runs it again: the cancelled lane does nothing.
			require.NoError(t, b.work(t))
		})
	}
}
