package playstore

import (
	"context"
	"sync"
)

// VersionCodeState is what the ledger knows of a versionCode.
type VersionCodeState int

const (
	// VersionCodeUnseen: never recorded.
	VersionCodeUnseen VersionCodeState = iota
	// VersionCodeSent: sent to Play, but only in edits known not to have
	// committed (no commit was requested, Play refused it, or the edit was
	// deleted first). Play discards such an edit with its bundles, so the
	// same versionCode may be uploaded again when Play does not list it.
	VersionCodeSent
	// VersionCodeCommitUnknown: an edit holding it was sent to commit and
	// the outcome is unknown (5xx, a lost connection, a crash): Play may
	// hold it, now or later, so it is never sent again.
	VersionCodeCommitUnknown
	// VersionCodeCommitted: Play committed it.
	VersionCodeCommitted
)

func (s VersionCodeState) String() string {
	switch s {
	case VersionCodeUnseen:
		return "unseen"
	case VersionCodeSent:
		return "sent, never committed"
	case VersionCodeCommitUnknown:
		return "commit outcome unknown"
	case VersionCodeCommitted:
		return "committed"
	}
	return "unknown state"
}

// VersionCodeLedger remembers every versionCode sent to Play, per app, and
// whether it reached a committed edit. The client records a versionCode
// before the bytes leave and notes each commit before it is requested, so a
// crash at any point leaves the ledger on the safe side: a commit that may
// have happened counts as one. The service keeps a SQL ledger; a
// MemoryLedger suits tests and one-shot tools.
type VersionCodeLedger interface {
	// Record marks versionCode as sent for pkg. Recording twice is fine, and
	// it never undoes Committing or Committed.
	Record(ctx context.Context, pkg string, versionCode int64) error
	// Committing notes, before the request leaves, that an edit holding
	// versionCode is being committed. Until a matching NotCommitted, or
	// Committed, the outcome is unknown.
	Committing(ctx context.Context, pkg string, versionCode int64) error
	// NotCommitted says one commit noted by Committing is known not to have
	// happened (Play refused it, or the edit is deleted).
	NotCommitted(ctx context.Context, pkg string, versionCode int64) error
	// Committed marks versionCode as held by Play in a committed edit.
	Committed(ctx context.Context, pkg string, versionCode int64) error
	// State says what is known of versionCode for pkg.
	State(ctx context.Context, pkg string, versionCode int64) (VersionCodeState, error)
	// Max returns the highest versionCode recorded for pkg in any state, 0
	// if none: a new build goes above it.
	Max(ctx context.Context, pkg string) (int64, error)
	// MaxCommitted returns the highest versionCode of pkg that is committed
	// or whose commit outcome is unknown, 0 if none.
	MaxCommitted(ctx context.Context, pkg string) (int64, error)
}

// MemoryLedger is a VersionCodeLedger in memory.
type MemoryLedger struct {
	mu   sync.Mutex
	seen map[string]map[int64]*ledgerEntry
}

type ledgerEntry struct {
	pending   int // commits noted and not known to have failed
	committed bool
}

func (e *ledgerEntry) state() VersionCodeState {
	switch {
	case e == nil:
		return VersionCodeUnseen
	case e.committed:
		return VersionCodeCommitted
	case e.pending > 0:
		return VersionCodeCommitUnknown
	}
	return VersionCodeSent
}

// NewMemoryLedger returns an empty ledger.
func NewMemoryLedger() *MemoryLedger {
	return &MemoryLedger{seen: map[string]map[int64]*ledgerEntry{}}
}

func (l *MemoryLedger) entry(pkg string, vc int64) *ledgerEntry {
	if l.seen[pkg] == nil {
		l.seen[pkg] = map[int64]*ledgerEntry{}
	}
	if l.seen[pkg][vc] == nil {
		l.seen[pkg][vc] = &ledgerEntry{}
	}
	return l.seen[pkg][vc]
}

func (l *MemoryLedger) Record(_ context.Context, pkg string, versionCode int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry(pkg, versionCode)
	return nil
}

func (l *MemoryLedger) Committing(_ context.Context, pkg string, versionCode int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry(pkg, versionCode).pending++
	return nil
}

func (l *MemoryLedger) NotCommitted(_ context.Context, pkg string, versionCode int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entry(pkg, versionCode); e.pending > 0 {
		e.pending--
	}
	return nil
}

func (l *MemoryLedger) Committed(_ context.Context, pkg string, versionCode int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry(pkg, versionCode).committed = true
	return nil
}

func (l *MemoryLedger) State(_ context.Context, pkg string, versionCode int64) (VersionCodeState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[pkg][versionCode].state(), nil
}

// Seen reports whether versionCode was ever recorded for pkg.
func (l *MemoryLedger) Seen(_ context.Context, pkg string, versionCode int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[pkg][versionCode] != nil, nil
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

func (l *MemoryLedger) MaxCommitted(_ context.Context, pkg string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m int64
	for vc, e := range l.seen[pkg] {
		if e.state() >= VersionCodeCommitUnknown {
			m = max(m, vc)
		}
	}
	return m, nil
}
