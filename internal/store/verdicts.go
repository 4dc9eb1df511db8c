package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Defaults bounding the package verdict cache.
const (
	DefaultVerdictEntries = 20000
	DefaultVerdictMaxAge  = 30 * 24 * time.Hour
)

// PackageVerdicts is the SQL cache of npm package verdicts shared by every
// replica. It has the method set of nativecheck.VerdictCache. It is
// bounded: an entry older than MaxAge is never returned and is pruned, and
// when more than MaxEntries are stored the least recently used go.
type PackageVerdicts struct {
	s          *Store
	MaxEntries int
	MaxAge     time.Duration
	// Now stamps entries; nil means time.Now.
	Now func() time.Time
}

// PackageVerdicts returns the verdict cache on s; zero bounds take the
// defaults.
func (s *Store) PackageVerdicts(maxEntries int, maxAge time.Duration) PackageVerdicts {
	if maxEntries <= 0 {
		maxEntries = DefaultVerdictEntries
	}
	if maxAge <= 0 {
		maxAge = DefaultVerdictMaxAge
	}
	return PackageVerdicts{s: s, MaxEntries: maxEntries, MaxAge: maxAge}
}

func (v PackageVerdicts) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// touchEvery limits how often a read refreshes an entry's used_at: a
// verdict read many times an hour costs one write.
const touchEvery = time.Hour

const (
	maxVerdictKey   = 1024
	maxVerdictBytes = 64 << 10
)

func checkVerdictKey(key string) error {
	if key == "" {
		return errors.New("package verdict key: empty")
	}
	if len(key) > maxVerdictKey {
		return fmt.Errorf("package verdict key: %d bytes, more than %d", len(key), maxVerdictKey)
	}
	return nil
}

// LoadVerdict returns the verdict stored under key, if it is younger than
// MaxAge.
func (v PackageVerdicts) LoadVerdict(ctx context.Context, key string) ([]byte, bool, error) {
	if err := checkVerdictKey(key); err != nil {
		return nil, false, err
	}
	var (
		verdict         string
		created, usedAt int64
	)
	err := v.s.q.QueryRowContext(ctx, `SELECT verdict, created_at, used_at FROM package_verdicts WHERE cache_key = $1`, key).
		Scan(&verdict, &created, &usedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load package verdict: %w", err)
	}
	now := v.now()
	if fromMS(created).Before(now.Add(-v.MaxAge)) {
		return nil, false, nil
	}
	if fromMS(usedAt).Before(now.Add(-touchEvery)) {
		if _, err := v.s.q.ExecContext(ctx, `UPDATE package_verdicts SET used_at = $1 WHERE cache_key = $2`, ms(now), key); err != nil {
			return nil, false, fmt.Errorf("touch package verdict: %w", err)
		}
	}
	return []byte(verdict), true, nil
}

// SaveVerdict stores a verdict under key (replacing an older one), then
// prunes entries past MaxAge and the least recently used beyond
// MaxEntries.
func (v PackageVerdicts) SaveVerdict(ctx context.Context, key string, verdict []byte) error {
	if err := checkVerdictKey(key); err != nil {
		return err
	}
	if len(verdict) == 0 || len(verdict) > maxVerdictBytes {
		return fmt.Errorf("package verdict of %s: %d bytes, want 1 to %d", key, len(verdict), maxVerdictBytes)
	}
	now := ms(v.now())
	_, err := v.s.q.ExecContext(ctx, `INSERT INTO package_verdicts (cache_key, verdict, created_at, used_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (cache_key) DO UPDATE SET verdict = excluded.verdict, created_at = excluded.created_at, used_at = excluded.used_at`,
		key, string(verdict), now)
	if err != nil {
		return fmt.Errorf("save package verdict: %w", err)
	}
	// Pruning runs as statements of their own, not in one transaction
	// with the insert: replicas saving at once must not hold each other's
	// row locks. A prune that loses a race is redone by the next save.
	if _, err := v.s.q.ExecContext(ctx, `DELETE FROM package_verdicts WHERE created_at < $1`, ms(v.now().Add(-v.MaxAge))); err != nil {
		return fmt.Errorf("prune package verdicts: %w", err)
	}
	n, err := v.CountVerdicts(ctx)
	if err != nil {
		return err
	}
	if over := n - v.MaxEntries; over > 0 {
		_, err := v.s.q.ExecContext(ctx, `DELETE FROM package_verdicts WHERE cache_key IN
			(SELECT cache_key FROM package_verdicts ORDER BY used_at, cache_key LIMIT $1)`, over)
		if err != nil {
			return fmt.Errorf("prune package verdicts: %w", err)
		}
	}
	return nil
}

// CountVerdicts reports how many verdicts are stored (for tests and
// metrics).
func (v PackageVerdicts) CountVerdicts(ctx context.Context) (int, error) {
	var n int
	if err := v.s.q.QueryRowContext(ctx, `SELECT count(*) FROM package_verdicts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count package verdicts: %w", err)
	}
	return n, nil
}
