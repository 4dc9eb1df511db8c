// Package nativechecktest holds a repository in memory that the
// fingerprinter reads as it reads GitHub or a local checkout (a
// nativecheck.Source). Only tests import it.
package nativechecktest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

// Repo is a repository in memory: commit -> path -> content. Its tree
// entries carry git's blob SHA-1 of each file, as GitHub's trees do; a
// commit or path it does not hold is fs.ErrNotExist.
type Repo map[string]map[string]string

var _ nativecheck.Source = Repo(nil)

// Tree implements nativecheck.Source: every file of commit, by path, never
// truncated.
func (r Repo) Tree(_ context.Context, commit string) ([]nativecheck.Entry, bool, error) {
	files, ok := r[commit]
	if !ok {
		return nil, false, fmt.Errorf("commit %s: %w", commit, fs.ErrNotExist)
	}
	var out []nativecheck.Entry
	for _, p := range slices.Sorted(maps.Keys(files)) {
		c := files[p]
		sum := sha1.Sum([]byte(fmt.Sprintf("blob %d\x00%s", len(c), c)))
		out = append(out, nativecheck.Entry{Path: p, Type: "blob", Mode: "100644", SHA: hex.EncodeToString(sum[:]), Size: int64(len(c))})
	}
	return out, false, nil
}

// ReadFile implements nativecheck.Source.
func (r Repo) ReadFile(_ context.Context, commit, path string) ([]byte, error) {
	c, ok := r[commit][path]
	if !ok {
		return nil, fmt.Errorf("%s at %s: %w", path, commit, fs.ErrNotExist)
	}
	return []byte(c), nil
}
