package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// AccessKey is a releasepilot credential with a role, made for the CodePush
// CLI (code-push login --accessKey) and usable wherever an API token is.
// Only the SHA-256 of its secret is stored.
type AccessKey struct {
	Name      string
	Role      string // viewer, operator, admin
	CreatedBy string // the actor that created it
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// HashSecret is how access key secrets are stored and looked up: SHA-256,
// hex. Secrets are 32 random bytes, so a fast hash is enough; a slow one
// would only slow every request.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

const accessKeyCols = `name, role, created_by, created_at, expires_at`

func scanAccessKey(row interface{ Scan(...any) error }) (AccessKey, error) {
	var k AccessKey
	var c, e int64
	err := row.Scan(&k.Name, &k.Role, &k.CreatedBy, &c, &e)
	k.CreatedAt, k.ExpiresAt = fromMS(c), fromMS(e)
	return k, err
}

// CreateAccessKey stores k with the hash of its secret. A name or secret
// already in use is ErrConflict.
func (s *Store) CreateAccessKey(ctx context.Context, k AccessKey, secretHash string) error {
	res, err := s.q.ExecContext(ctx, `INSERT INTO access_keys (name, role, secret_hash, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, k.Name, k.Role, secretHash, k.CreatedBy, ms(k.CreatedAt), ms(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create access key %s: %w", k.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("access key %q already exists: %w", k.Name, ErrConflict)
	}
	return nil
}

// AccessKeyByHash finds the key whose secret hashes to secretHash.
func (s *Store) AccessKeyByHash(ctx context.Context, secretHash string) (AccessKey, error) {
	k, err := scanAccessKey(s.q.QueryRowContext(ctx, `SELECT `+accessKeyCols+` FROM access_keys WHERE secret_hash = $1`, secretHash))
	return k, notFound(err, "access key")
}

// AccessKey reads one key by name.
func (s *Store) AccessKey(ctx context.Context, name string) (AccessKey, error) {
	k, err := scanAccessKey(s.q.QueryRowContext(ctx, `SELECT `+accessKeyCols+` FROM access_keys WHERE name = $1`, name))
	return k, notFound(err, fmt.Sprintf("access key %q", name))
}

// AccessKeys lists every key, oldest first.
func (s *Store) AccessKeys(ctx context.Context) ([]AccessKey, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+accessKeyCols+` FROM access_keys ORDER BY created_at, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AccessKey
	for rows.Next() {
		k, err := scanAccessKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// UpdateAccessKey renames a key and sets its expiry; the secret stays.
func (s *Store) UpdateAccessKey(ctx context.Context, name string, k AccessKey) error {
	res, err := s.q.ExecContext(ctx, `UPDATE access_keys SET name = $2, expires_at = $3 WHERE name = $1`, name, k.Name, ms(k.ExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("access key %q already exists: %w", k.Name, ErrConflict)
	}
	if err != nil {
		return err
	}
	return oneRow(res, fmt.Sprintf("access key %q", name))
}

// DeleteAccessKey revokes a key: it stops working at once.
func (s *Store) DeleteAccessKey(ctx context.Context, name string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM access_keys WHERE name = $1`, name)
	if err != nil {
		return err
	}
	return oneRow(res, fmt.Sprintf("access key %q", name))
}
