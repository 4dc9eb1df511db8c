package store_test

import (
	"testing"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/codepushtest"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func TestCodePushBlobsContract(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			codepushtest.TestBlobs(t, func(t *testing.T) codepush.Blobs {
				return &store.CodePushBlobs{DB: storetest.Open(t, e)}
			})
		})
	}
}

func TestCodePushDiffsContract(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			codepushtest.TestDiffStore(t, func(t *testing.T) codepush.Store { return store.NewCodePush(storetest.Open(t, e)) })
		})
	}
}
