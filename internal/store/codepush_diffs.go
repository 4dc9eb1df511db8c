package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
)

var _ codepush.DiffStore = (*CodePush)(nil)

// SaveDiff implements codepush.DiffStore: the first diff saved for a pair
// stays; the deployment is logged as changed so that every replica's
// update-check view picks the diff up.
func (c *CodePush) SaveDiff(ctx context.Context, deploymentKey string, d codepush.Diff) error {
	return c.change(ctx, func(tx *Store) ([]string, error) {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_diffs (from_hash, to_blob, blob_key, size, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (to_blob, from_hash) DO NOTHING`, d.FromHash, d.ToBlob, d.BlobKey, d.Size, d.CreatedAt.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("codepush diff: %w", err)
		}
		return []string{deploymentKey}, nil
	})
}

// DiffsTo implements codepush.DiffStore.
func (c *CodePush) DiffsTo(ctx context.Context, toBlobs []string) ([]codepush.Diff, error) {
	if len(toBlobs) == 0 {
		return nil, nil
	}
	args := make([]any, len(toBlobs))
	marks := make([]string, len(toBlobs))
	for i, k := range toBlobs {
		args[i] = k
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	rows, err := c.db.SQL.QueryContext(ctx, `SELECT from_hash, to_blob, blob_key, size, created_at FROM codepush_diffs
		WHERE to_blob IN (`+strings.Join(marks, ", ")+`) ORDER BY to_blob, from_hash`, args...)
	if err != nil {
		return nil, fmt.Errorf("codepush diffs: %w", err)
	}
	defer rows.Close()
	var out []codepush.Diff
	for rows.Next() {
		var d codepush.Diff
		var at int64
		if err := rows.Scan(&d.FromHash, &d.ToBlob, &d.BlobKey, &d.Size, &at); err != nil {
			return nil, err
		}
		d.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
