package store

import (
	"context"
	"fmt"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Fingerprint is a stored native fingerprint; Data is the JSON the
// fingerprinter produced (hash plus inputs).
type Fingerprint struct {
	App       string
	Platform  release.Platform
	Commit    string
	Algorithm string
	Hash      string
	Data      []byte
	CreatedAt time.Time
}

// SaveFingerprint stores a fingerprint; storing it again changes nothing.
func (s *Store) SaveFingerprint(ctx context.Context, f Fingerprint) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO fingerprints (app, platform, commit_sha, algorithm, hash, data, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app, platform, commit_sha, algorithm) DO NOTHING`,
		f.App, string(f.Platform), f.Commit, f.Algorithm, f.Hash, string(f.Data), ms(f.CreatedAt))
	if err != nil {
		return fmt.Errorf("save %s fingerprint of %s: %w", f.Platform, f.Commit, err)
	}
	return nil
}

// GetFingerprint reads the fingerprint of a commit.
func (s *Store) GetFingerprint(ctx context.Context, app string, p release.Platform, commit, algorithm string) (Fingerprint, error) {
	f := Fingerprint{App: app, Platform: p, Commit: commit, Algorithm: algorithm}
	var data string
	var c int64
	err := s.q.QueryRowContext(ctx, `SELECT hash, data, created_at FROM fingerprints WHERE app = $1 AND platform = $2 AND commit_sha = $3 AND algorithm = $4`,
		app, string(p), commit, algorithm).Scan(&f.Hash, &data, &c)
	f.Data, f.CreatedAt = []byte(data), fromMS(c)
	return f, notFound(err, fmt.Sprintf("%s fingerprint of %s", p, commit))
}
