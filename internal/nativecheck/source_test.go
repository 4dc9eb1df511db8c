package nativecheck_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"sort"
	"sync"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

// memSource is an in-memory repository: commit id → path → content.
type memSource struct {
	mu        sync.Mutex
	commits   map[string]map[string]string
	truncated bool
	reads     int
}

func newMemSource() *memSource { return &memSource{commits: map[string]map[string]string{}} }

func (m *memSource) add(commit string, files map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commits[commit] = maps.Clone(files)
}

func blobSHA(content string) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write([]byte(content))
	return hex.EncodeToString(h.Sum(nil))
}

func (m *memSource) Tree(_ context.Context, commit string) ([]nativecheck.Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	files, ok := m.commits[commit]
	if !ok {
		return nil, false, fmt.Errorf("commit %s: %w", commit, fs.ErrNotExist)
	}
	out := make([]nativecheck.Entry, 0, len(files))
	for p, c := range files {
		out = append(out, nativecheck.Entry{Path: p, Type: "blob", Mode: "100644", SHA: blobSHA(c), Size: int64(len(c))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, m.truncated, nil
}

func (m *memSource) ReadFile(_ context.Context, commit, path string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	c, ok := m.commits[commit][path]
	if !ok {
		return nil, fmt.Errorf("%s at %s: %w", path, commit, fs.ErrNotExist)
	}
	return []byte(c), nil
}
