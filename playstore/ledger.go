package playstore

import (
	"context"
	"sync"
)

// VersionCodeLedger remembers every versionCode ever sent to Play, per app.
// The client records a versionCode before the bytes leave, so a crash right
// after sending still counts it as used. The service keeps a SQL ledger; a
// MemoryLedger suits tests and one-shot tools.
type VersionCodeLedger interface {
	// Record marks versionCode as sent for pkg. Recording twice is fine.
	Record(ctx context.Context, pkg string, versionCode int64) error
	// Seen reports whether versionCode was ever recorded for pkg.
	Seen(ctx context.Context, pkg string, versionCode int64) (bool, error)
	// Max returns the highest versionCode recorded for pkg, 0 if none.
	Max(ctx context.Context, pkg string) (int64, error)
}

// MemoryLedger is a VersionCodeLedger in memory.
type MemoryLedger struct {
	mu   sync.Mutex
	seen map[string]map[int64]bool
}

// NewMemoryLedger returns an empty ledger.
func NewMemoryLedger() *MemoryLedger { return &MemoryLedger{seen: map[string]map[int64]bool{}} }

func (l *MemoryLedger) Record(_ context.Context, pkg string, versionCode int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[pkg] == nil {
		l.seen[pkg] = map[int64]bool{}
	}
	l.seen[pkg][versionCode] = true
	return nil
}

func (l *MemoryLedger) Seen(_ context.Context, pkg string, versionCode int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[pkg][versionCode], nil
}

func (l *MemoryLedger) Max(_ context.Context, pkg string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m int64
	for vc := range l.seen[pkg] {
		m = max(m, vc)
	}
	return m, nil
}
