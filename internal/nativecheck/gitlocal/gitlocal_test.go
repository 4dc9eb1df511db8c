package gitlocal_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck/gitlocal"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(home, "x"),
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

func blobSHA(c string) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00%s", len(c), c)
	return hex.EncodeToString(h.Sum(nil))
}

func TestRepo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	files := map[string]string{"a b/ünï code.swift": "class X {}\n", "ios/Podfile": "use_react_native!\n", "empty": ""}
	for p, c := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644))
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "one")
	head := git(t, dir, "rev-parse", "HEAD")

	ctx := context.Background()
	r, err := gitlocal.Open(ctx, filepath.Join(dir, "ios"))
	require.NoError(t, err)
	defer r.Close()
	require.Equal(t, "ios/", r.Prefix)
	c, err := r.Resolve(ctx, "main")
	require.NoError(t, err)
	require.Equal(t, head, c)
	_, err = r.Resolve(ctx, "nope")
	require.ErrorIs(t, err, gitlocal.ErrUnknownRef)

	entries, truncated, err := r.Tree(ctx, head)
	require.NoError(t, err)
	require.False(t, truncated)
	got := map[string]string{}
	for _, e := range entries {
		if e.Type == "blob" {
			got[e.Path] = e.SHA
			require.Equal(t, int64(len(files[e.Path])), e.Size, e.Path)
		}
	}
	want := map[string]string{}
	for p, c := range files {
		want[p] = blobSHA(c) // what GitHub's trees API gives for the same files
	}
	require.Equal(t, want, got)

	// Concurrent reads share one cat-file process.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p, c := range files {
				b, err := r.ReadFile(ctx, head, p)
				require.NoError(t, err)
				require.Equal(t, c, string(b))
			}
		}()
	}
	wg.Wait()
	_, err = r.ReadFile(ctx, head, "missing.txt")
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = r.ReadFile(ctx, head, "ios")
	require.ErrorContains(t, err, "is a tree, not a file")
	b, err := r.ReadFile(ctx, head, "ios/Podfile") // still usable after errors
	require.NoError(t, err)
	require.Equal(t, files["ios/Podfile"], string(b))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "new.txt"), []byte("x"), 0o644))
	git(t, dir, "mv", "empty", "moved")
	dirty, err := r.Dirty(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"moved", "new.txt"}, dirty)

	_, err = gitlocal.Open(ctx, t.TempDir())
	require.ErrorIs(t, err, gitlocal.ErrNotRepository)
}
