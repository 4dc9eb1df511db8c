package codepushtest_test

import (
	"testing"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/codepushtest"
)

func TestMemStoreConforms(t *testing.T) {
	t.Parallel()
	codepushtest.TestStore(t, func(t *testing.T) codepush.Store { return &codepush.MemStore{} })
}

func TestDirBlobsConforms(t *testing.T) {
	t.Parallel()
	codepushtest.TestBlobs(t, func(t *testing.T) codepush.Blobs { return codepush.DirBlobs{Dir: t.TempDir()} })
}

func TestMemStoreDiffsConform(t *testing.T) {
	t.Parallel()
	codepushtest.TestDiffStore(t, func(t *testing.T) codepush.Store { return &codepush.MemStore{} })
}
