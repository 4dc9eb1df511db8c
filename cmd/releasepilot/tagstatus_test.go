package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
)

// TestStatusShowsTagStatus: `releasepilot status` says what became of a
// release's tag, as the API's tag_status does: moved to which commit, or
// deleted; a release whose tag is untouched has no tag line.
func TestStatusShowsTagStatus(t *testing.T) {
	ctx := context.Background()
	t.Setenv("RP_CLI_TOKEN", "cli-viewer-token-0123")
	cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\ndata_dir: "+t.TempDir()+"\nshutdown_timeout: 5s\ntokens:\n  - {name: ops, role: viewer, token: \"${RP_CLI_TOKEN}\"}\napps:\n  - {name: acme, repository: acme/mobile, webhook_secret: s}\n"), "")
	require.NoError(t, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(t, err)
	now := time.Now().UTC()
	moved, _, err := svc.Store.CreateRelease(ctx, release.Release{App: "acme", Tag: "v2.0.1", Version: "2.0.1", Commit: "abc0000000000000000000000000000000000001", CreatedAt: now})
	require.NoError(t, err)
	_, err = svc.Store.SetTagState(ctx, moved.ID, release.TagMoved, "def0000000000000000000000000000000000002", now)
	require.NoError(t, err)
	deleted, _, err := svc.Store.CreateRelease(ctx, release.Release{App: "acme", Tag: "v2.0.2", Version: "2.0.2", Commit: "abc0000000000000000000000000000000000003", CreatedAt: now})
	require.NoError(t, err)
	_, err = svc.Store.SetTagState(ctx, deleted.ID, release.TagDeleted, "", now)
	require.NoError(t, err)
	plain, _, err := svc.Store.CreateRelease(ctx, release.Release{App: "acme", Tag: "v2.0.3", Version: "2.0.3", Commit: "abc0000000000000000000000000000000000004", CreatedAt: now})
	require.NoError(t, err)
	require.NoError(t, svc.Start(ctx))
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	server := "http://" + svc.Addr
	t.Setenv("RELEASEPILOT_TOKEN", "cli-viewer-token-0123")

	code, out, errs := runCmd("status", moved.ID, "--server", server)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "\n  tag: tag v2.0.1 moved to def000000000; this release stays on abc000000000 (on_tag_move: refuse) — tag a new version to ship def000000000\n")

	code, out, errs = runCmd("status", deleted.ID, "--server", server)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "\n  tag: tag v2.0.2 was deleted; lanes that had not passed their point of no return were cancelled\n")

	code, out, errs = runCmd("status", plain.ID, "--server", server)
	require.Equal(t, 0, code, errs)
	require.NotContains(t, out, "tag:")
}
