package expoupdates_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
)

// cancelAwareBlobs fails as remote storage does when the request's context
// is cancelled.
type cancelAwareBlobs struct{ codepush.DirBlobs }

func (b cancelAwareBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get object %s: %w", key, err)
	}
	return b.DirBlobs.Open(ctx, key)
}

// TestAssetClientGoneIs499: an asset request whose device went away is
// answered 499 and logged at debug, not as a server error.
func TestAssetClientGoneIs499(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	blobs := cancelAwareBlobs{codepush.DirBlobs{Dir: t.TempDir()}}
	key, _, _, err := blobs.Put(ctx, strings.NewReader("console.log(1)"))
	require.NoError(t, err)
	cp, err := codepush.New(ctx, codepush.Config{Blobs: blobs})
	require.NoError(t, err)
	var logs bytes.Buffer
	srv := expoupdates.NewServer(expoupdates.Config{CodePush: cp, Apps: map[string]expoupdates.App{},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h := srv.Handler()

	gone, cancel := context.WithCancel(ctx)
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, expoupdates.PathAssets+key+".js", nil).WithContext(gone))
	require.Equal(t, codepush.StatusClientClosedRequest, rec.Code)
	require.NotContains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), `level=DEBUG msg="expo: client went away"`)

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, expoupdates.PathAssets+key+".js", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "console.log(1)", rec.Body.String())
}
