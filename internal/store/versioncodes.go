package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/swapjoy/releasepilot/playstore"
)

// VersionCodes is the SQL ledger of every versionCode sent to Google Play,
// per package, and of whether it reached a committed edit. It has the
// method set of playstore.VersionCodeLedger, so every replica sharing the
// database shares one ratchet.
type VersionCodes struct {
	s *Store
	// Now stamps records; nil means time.Now.
	Now func() time.Time
}

// VersionCodes returns the versionCode ledger on s (inside a transaction
// when s is one).
func (s *Store) VersionCodes() VersionCodes { return VersionCodes{s: s} }

func (v VersionCodes) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Record marks versionCode as sent for pkg. Recording it again changes
// nothing.
func (v VersionCodes) Record(ctx context.Context, pkg string, versionCode int64) error {
	if err := checkVersionCode(pkg, versionCode); err != nil {
		return err
	}
	_, err := v.s.q.ExecContext(ctx, `INSERT INTO play_version_codes (package, version_code, recorded_at) VALUES ($1, $2, $3)
		ON CONFLICT (package, version_code) DO NOTHING`, pkg, versionCode, ms(v.now()))
	if err != nil {
		return fmt.Errorf("record versionCode %d of %s: %w", versionCode, pkg, err)
	}
	return nil
}

// Committing notes that an edit holding versionCode is about to be
// committed: until NotCommitted or Committed, its outcome is unknown.
func (v VersionCodes) Committing(ctx context.Context, pkg string, versionCode int64) error {
	if err := checkVersionCode(pkg, versionCode); err != nil {
		return err
	}
	_, err := v.s.q.ExecContext(ctx, `INSERT INTO play_version_codes (package, version_code, recorded_at, pending_commits) VALUES ($1, $2, $3, 1)
		ON CONFLICT (package, version_code) DO UPDATE SET pending_commits = play_version_codes.pending_commits + 1`, pkg, versionCode, ms(v.now()))
	if err != nil {
		return fmt.Errorf("note commit of versionCode %d of %s: %w", versionCode, pkg, err)
	}
	return nil
}

// NotCommitted says one commit noted by Committing is known not to have
// happened.
func (v VersionCodes) NotCommitted(ctx context.Context, pkg string, versionCode int64) error {
	if err := checkVersionCode(pkg, versionCode); err != nil {
		return err
	}
	_, err := v.s.q.ExecContext(ctx, `UPDATE play_version_codes SET pending_commits = pending_commits - 1
		WHERE package = $1 AND version_code = $2 AND pending_commits > 0`, pkg, versionCode)
	if err != nil {
		return fmt.Errorf("note failed commit of versionCode %d of %s: %w", versionCode, pkg, err)
	}
	return nil
}

// Committed marks versionCode as held by Play in a committed edit; the
// first time it is known stays recorded.
func (v VersionCodes) Committed(ctx context.Context, pkg string, versionCode int64) error {
	if err := checkVersionCode(pkg, versionCode); err != nil {
		return err
	}
	now := ms(v.now())
	_, err := v.s.q.ExecContext(ctx, `INSERT INTO play_version_codes (package, version_code, recorded_at, committed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (package, version_code) DO UPDATE SET committed_at = COALESCE(play_version_codes.committed_at, excluded.committed_at)`,
		pkg, versionCode, now, now)
	if err != nil {
		return fmt.Errorf("record commit of versionCode %d of %s: %w", versionCode, pkg, err)
	}
	return nil
}

// State says what is known of versionCode for pkg.
func (v VersionCodes) State(ctx context.Context, pkg string, versionCode int64) (playstore.VersionCodeState, error) {
	var pending int64
	var committed sql.NullInt64
	err := v.s.q.QueryRowContext(ctx, `SELECT pending_commits, committed_at FROM play_version_codes WHERE package = $1 AND version_code = $2`,
		pkg, versionCode).Scan(&pending, &committed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return playstore.VersionCodeUnseen, nil
	case err != nil:
		return 0, fmt.Errorf("read versionCode %d of %s: %w", versionCode, pkg, err)
	case committed.Valid:
		return playstore.VersionCodeCommitted, nil
	case pending > 0:
		return playstore.VersionCodeCommitUnknown, nil
	}
	return playstore.VersionCodeSent, nil
}

// Seen reports whether versionCode was ever recorded for pkg.
func (v VersionCodes) Seen(ctx context.Context, pkg string, versionCode int64) (bool, error) {
	var n int
	err := v.s.q.QueryRowContext(ctx, `SELECT count(*) FROM play_version_codes WHERE package = $1 AND version_code = $2`, pkg, versionCode).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read versionCode %d of %s: %w", versionCode, pkg, err)
	}
	return n > 0, nil
}

// Max returns the highest versionCode recorded for pkg, 0 if none.
func (v VersionCodes) Max(ctx context.Context, pkg string) (int64, error) {
	var m int64
	err := v.s.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_code), 0) FROM play_version_codes WHERE package = $1`, pkg).Scan(&m)
	if err != nil {
		return 0, fmt.Errorf("read highest versionCode of %s: %w", pkg, err)
	}
	return m, nil
}

// MaxCommitted returns the highest versionCode of pkg that is committed or
// whose commit outcome is unknown, 0 if none.
func (v VersionCodes) MaxCommitted(ctx context.Context, pkg string) (int64, error) {
	var m int64
	err := v.s.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_code), 0) FROM play_version_codes
		WHERE package = $1 AND (committed_at IS NOT NULL OR pending_commits > 0)`, pkg).Scan(&m)
	if err != nil {
		return 0, fmt.Errorf("read highest committed versionCode of %s: %w", pkg, err)
	}
	return m, nil
}

func checkVersionCode(pkg string, vc int64) error {
	switch {
	case pkg == "":
		return errors.New("versionCode ledger: package name is empty")
	case vc <= 0:
		return fmt.Errorf("versionCode ledger: versionCode %d of %s must be positive", vc, pkg)
	}
	return nil
}
