package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
)

// CodePushBlobs stores OTA packages in the database, content-addressed by
// SHA-256: every replica serves every package. It implements codepush.Blobs.
type CodePushBlobs struct {
	DB *DB
	// MaxBytes bounds one package (default 200 MiB).
	MaxBytes int64
}

var _ codepush.Blobs = (*CodePushBlobs)(nil)

// Put stores the content of r once; storing the same content again is a no-op.
func (b *CodePushBlobs) Put(ctx context.Context, r io.Reader) (string, string, int64, error) {
	limit := b.MaxBytes
	if limit <= 0 {
		limit = 200 << 20
	}
	// Spool to a temporary file first: the key is the hash of the whole
	// content, and nothing is written until it is known and within limits.
	f, err := os.CreateTemp("", "releasepilot-blob-*")
	if err != nil {
		return "", "", 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err != nil {
		return "", "", 0, fmt.Errorf("read package: %w", err)
	}
	if n > limit {
		return "", "", 0, &codepush.Error{Kind: codepush.KindInvalid, Field: "package", Message: fmt.Sprintf("package is larger than %d bytes", limit)}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", "", 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", "", 0, err
	}
	if _, err := b.DB.SQL.ExecContext(ctx, `INSERT INTO codepush_blobs (key, size, data, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING`,
		sum, n, data, time.Now().UnixMilli()); err != nil {
		return "", "", 0, fmt.Errorf("store package %s: %w", sum, err)
	}
	return sum, sum, n, nil
}

// Open returns the content stored under key, verified against its hash.
func (b *CodePushBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	var data []byte
	err := b.DB.SQL.QueryRowContext(ctx, `SELECT data FROM codepush_blobs WHERE key = $1`, key).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &codepush.Error{Kind: codepush.KindNotFound, Field: "package", Value: key, Message: "no package " + key}
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != key {
		return nil, fmt.Errorf("package %s: stored content does not match its hash", key)
	}
	return sizedBlob{bytes.NewReader(data)}, nil
}

// sizedBlob is a blob read from the database; Size gives the package route
// its Content-Length.
type sizedBlob struct{ *bytes.Reader }

func (sizedBlob) Close() error { return nil }
