package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// VersionCodes is the SQL ledger of every versionCode sent to Google Play,
// per package. It has the method set of playstore.VersionCodeLedger, so
// every replica sharing the database shares one ratchet.
type VersionCodes struct {
	s *Store
	// Now stamps records; nil means time.Now.
	Now func() time.Time
}

// VersionCodes returns the versionCode ledger on s (inside a transaction
// when s is one).
func (s *Store) VersionCodes() VersionCodes { return VersionCodes{s: s} }

// Record marks versionCode as sent for pkg. Recording it again changes
// nothing.
func (v VersionCodes) Record(ctx context.Context, pkg string, versionCode int64) error {
	if err := checkVersionCode(pkg, versionCode); err != nil {
		return err
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	_, err := v.s.q.ExecContext(ctx, `INSERT INTO play_version_codes (package, version_code, recorded_at) VALUES ($1, $2, $3)
		ON CONFLICT (package, version_code) DO NOTHING`, pkg, versionCode, ms(now))
	if err != nil {
		return fmt.Errorf("record versionCode %d of %s: %w", versionCode, pkg, err)
	}
	return nil
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

func checkVersionCode(pkg string, vc int64) error {
	switch {
	case pkg == "":
		return errors.New("versionCode ledger: package name is empty")
	case vc <= 0:
		return fmt.Errorf("versionCode ledger: versionCode %d of %s must be positive", vc, pkg)
	}
	return nil
}
