package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swapjoy/releasepilot/codepush"
)

// CodePush is the codepush.Store of the OTA server on releasepilot's
// database. Every change to an app, a deployment list or a history also
// appends the deployment keys it touched to a change log in the same
// transaction, which other replicas follow (Follower) to refresh their
// in-memory views; counters are not logged, since the views do not hold them.
type CodePush struct {
	db *DB
	st *Store
}

var _ codepush.Store = (*CodePush)(nil)

// NewCodePush returns the CodePush store on db.
func NewCodePush(db *DB) *CodePush { return &CodePush{db: db, st: New(db)} }

// channel is the Postgres notification channel of the change log, per
// schema so that databases shared by several installations stay apart.
func (c *CodePush) channel() string {
	const base = "releasepilot_codepush"
	if c.db.Schema == "" {
		return base
	}
	if ch := base + "_" + c.db.Schema; len(ch) <= 63 {
		return ch
	}
	// Channel names are identifiers: at most 63 bytes.
	sum := sha256.Sum256([]byte(c.db.Schema))
	return base + "_" + hex.EncodeToString(sum[:8])
}

// listen wakes the follower on every committed change (Postgres only),
// reconnecting after errors until ctx ends. Polling remains the backstop.
func (c *CodePush) listen(ctx context.Context, wake chan<- struct{}, log *slog.Logger) {
	if c.db.Engine != Postgres || c.db.listener == nil {
		return
	}
	backoff := 5 * time.Second
	for ctx.Err() == nil {
		started := time.Now()
		err := c.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > 10*time.Minute {
			backoff = 5 * time.Second // it worked for a while
		}
		log.Warn("codepush change notifications: listener failed; polling meanwhile", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Minute)
	}
}

func (c *CodePush) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	// A connection of its own: the listener pool belongs to River.
	conn, err := pgx.ConnectConfig(ctx, c.db.listener.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{c.channel()}.Sanitize()); err != nil {
		return err
	}
	for {
		// Also once right after LISTEN: whatever committed before it (or
		// while reconnecting) was not notified to us.
		select {
		case wake <- struct{}{}:
		default: // a poll is already due
		}
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
	}
}

// setupLock is the Postgres advisory lock key of SetupLock ("rpcpsetu").
const setupLock = 0x7270637073657475

// SetupLock runs fn while no other replica runs its own: on Postgres it
// holds a session advisory lock, so replicas starting together do not both
// create the same app with different deployment keys. SQLite serves one
// process, and fn runs directly.
func (c *CodePush) SetupLock(ctx context.Context, fn func(ctx context.Context) error) error {
	if c.db.Engine != Postgres {
		return fn(ctx)
	}
	conn, err := c.db.SQL.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(setupLock)); err != nil {
		return fmt.Errorf("codepush setup lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(setupLock)) //nolint:errcheck
	return fn(ctx)
}

// changeLock is the Postgres advisory lock key that serialises writers of the
// change log ("rpcpchng"), so that seq order is commit order.
const changeLock = 0x7270637063686e67

// HistoryChange is a change to a deployment's history, as a history hook
// sees it inside the change's transaction.
type HistoryChange struct {
	Op            HistoryOp
	DeploymentKey string
	// Release is the release appended or its new state; Old, for an
	// update, the state it replaced.
	Release, Old codepush.Release
}

// HistoryOp names what changed a history.
type HistoryOp string

// History operations.
const (
	HistoryAppend HistoryOp = "append"
	HistoryUpdate HistoryOp = "update"
	HistoryClear  HistoryOp = "clear"
)

// HistoryHook runs inside the transaction of a history change; an error
// rolls the change back.
type HistoryHook func(ctx context.Context, tx *Store, ch HistoryChange) error

type historyHookKey struct{}

// WithHistoryHook returns ctx with fn run inside the transaction of every
// history change the CodePush store makes with that context, so that what
// the embedding service records about the change (a release and its lane,
// an audit event) commits with it or not at all. fn must write through tx
// only.
func WithHistoryHook(ctx context.Context, fn HistoryHook) context.Context {
	return context.WithValue(ctx, historyHookKey{}, fn)
}

// change runs fn in a transaction that also logs keys as changed, and runs
// the context's history hook, if any, with what hc returns.
func (c *CodePush) change(ctx context.Context, fn func(tx *Store) ([]string, error), hc ...HistoryChange) error {
	return c.st.Tx(ctx, func(tx *Store) error {
		if c.db.Engine == Postgres {
			// Held until commit: a lower seq can never commit after a higher
			// one has been seen by a follower.
			if _, err := tx.q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(changeLock)); err != nil {
				return fmt.Errorf("codepush change lock: %w", err)
			}
		}
		keys, err := fn(tx)
		if err != nil {
			return err
		}
		if hook, ok := ctx.Value(historyHookKey{}).(HistoryHook); ok {
			for _, ch := range hc {
				if err := hook(ctx, tx, ch); err != nil {
					return err
				}
			}
		}
		now := time.Now().UnixMilli()
		for _, k := range dedupeKeys(keys) {
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_changes (deployment_key, at) VALUES ($1, $2)`, k, now); err != nil {
				return fmt.Errorf("codepush change log: %w", err)
			}
		}
		if c.db.Engine == Postgres && len(keys) > 0 {
			// Delivered at commit: followers poll at once instead of at
			// their next tick.
			if _, err := tx.q.ExecContext(ctx, `SELECT pg_notify($1, '')`, c.channel()); err != nil {
				return fmt.Errorf("codepush change notify: %w", err)
			}
		}
		return nil
	})
}

func dedupeKeys(keys []string) []string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func cpConflict(format string, args ...any) error {
	return &codepush.Error{Kind: codepush.KindConflict, Message: fmt.Sprintf(format, args...)}
}

func cpNotFound(format string, args ...any) error {
	return &codepush.Error{Kind: codepush.KindNotFound, Message: fmt.Sprintf(format, args...)}
}

// isUniqueViolation reports a unique or primary key violation on either engine.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// Apps implements codepush.Store.
func (c *CodePush) Apps(ctx context.Context) ([]codepush.App, error) {
	rows, err := c.db.SQL.QueryContext(ctx, `SELECT a.name, a.created_at, COALESCE(d.name, ''), COALESCE(d.key, '')
		FROM codepush_apps a LEFT JOIN codepush_deployments d ON d.app = a.name
		ORDER BY a.created_at, a.name, d.position`)
	if err != nil {
		return nil, fmt.Errorf("codepush apps: %w", err)
	}
	defer rows.Close()
	var out []codepush.App
	for rows.Next() {
		var name, dname, dkey string
		var created int64
		if err := rows.Scan(&name, &created, &dname, &dkey); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].Name != name {
			out = append(out, codepush.App{Name: name, CreatedAt: fromMS(created)})
		}
		if dkey != "" {
			a := &out[len(out)-1]
			a.Deployments = append(a.Deployments, codepush.Deployment{Name: dname, Key: dkey})
		}
	}
	return out, rows.Err()
}

// SaveApp implements codepush.Store.
func (c *CodePush) SaveApp(ctx context.Context, app codepush.App) error {
	err := c.change(ctx, func(tx *Store) ([]string, error) {
		var keys []string
		for _, d := range app.Deployments {
			var owner string
			err := tx.q.QueryRowContext(ctx, `SELECT app FROM codepush_deployments WHERE key = $1 AND app <> $2`, d.Key, app.Name).Scan(&owner)
			if err == nil {
				return nil, cpConflict("deployment key is already used by app %q", owner)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
			keys = append(keys, d.Key)
		}
		old, err := tx.q.QueryContext(ctx, `SELECT key FROM codepush_deployments WHERE app = $1`, app.Name)
		if err != nil {
			return nil, err
		}
		for old.Next() {
			var k string
			if err := old.Scan(&k); err != nil {
				old.Close()
				return nil, err
			}
			keys = append(keys, k) // removed deployments leave the views too
		}
		old.Close()
		if err := old.Err(); err != nil {
			return nil, err
		}
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_apps (name, created_at) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at`, app.Name, ms(app.CreatedAt)); err != nil {
			return nil, err
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM codepush_deployments WHERE app = $1`, app.Name); err != nil {
			return nil, err
		}
		for i, d := range app.Deployments {
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_deployments (key, app, name, position) VALUES ($1, $2, $3, $4)`,
				d.Key, app.Name, d.Name, i); err != nil {
				return nil, err
			}
		}
		return keys, nil
	})
	if isUniqueViolation(err) {
		// Another replica took the key or name between our check and insert.
		return cpConflict("app %q: a deployment key or name is already in use", app.Name)
	}
	if err != nil && codepush.KindOf(err) == "" {
		return fmt.Errorf("save codepush app %s: %w", app.Name, err)
	}
	return err
}

const cpReleaseCols = `label, app_version, description, mandatory, disabled, rollout, package_hash, size, blob_key, blob_url,
	method, original_label, original_deployment, released_by, commit_sha, upload_time`

// Releases implements codepush.Store.
func (c *CodePush) Releases(ctx context.Context, deploymentKey string) ([]codepush.Release, error) {
	rows, err := c.db.SQL.QueryContext(ctx, `SELECT `+cpReleaseCols+` FROM codepush_releases WHERE deployment_key = $1 ORDER BY id`, deploymentKey)
	if err != nil {
		return nil, fmt.Errorf("codepush releases: %w", err)
	}
	defer rows.Close()
	var out []codepush.Release
	for rows.Next() {
		var r codepush.Release
		var method string
		var uploaded int64
		if err := rows.Scan(&r.Label, &r.AppVersion, &r.Description, &r.Mandatory, &r.Disabled, &r.Rollout, &r.PackageHash, &r.Size,
			&r.BlobKey, &r.BlobURL, &method, &r.OriginalLabel, &r.OriginalDeployment, &r.ReleasedBy, &r.Commit, &uploaded); err != nil {
			return nil, err
		}
		r.Method, r.UploadTime = codepush.ReleaseMethod(method), fromMS(uploaded)
		out = append(out, r)
	}
	return out, rows.Err()
}

func releaseArgs(key string, r codepush.Release) []any {
	return []any{key, r.Label, r.AppVersion, r.Description, r.Mandatory, r.Disabled, r.Rollout, r.PackageHash, r.Size,
		r.BlobKey, r.BlobURL, string(r.Method), r.OriginalLabel, r.OriginalDeployment, r.ReleasedBy, r.Commit, ms(r.UploadTime)}
}

// AppendRelease implements codepush.Store: the insert and the completion of
// the previous latest release's rollout commit together, and a duplicate
// label (another replica appended vN first) is a conflict.
func (c *CodePush) AppendRelease(ctx context.Context, deploymentKey string, r codepush.Release) error {
	err := c.change(ctx, func(tx *Store) ([]string, error) {
		var prev sql.NullInt64
		if err := tx.q.QueryRowContext(ctx, `SELECT max(id) FROM codepush_releases WHERE deployment_key = $1`, deploymentKey).Scan(&prev); err != nil {
			return nil, err
		}
		res, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_releases (deployment_key, `+cpReleaseCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			ON CONFLICT (deployment_key, label) DO NOTHING`, releaseArgs(deploymentKey, r)...)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			return nil, cpConflict("release %s already exists", r.Label)
		}
		if prev.Valid {
			if _, err := tx.q.ExecContext(ctx, `UPDATE codepush_releases SET rollout = 100 WHERE id = $1`, prev.Int64); err != nil {
				return nil, err
			}
		}
		return []string{deploymentKey}, nil
	}, HistoryChange{Op: HistoryAppend, DeploymentKey: deploymentKey, Release: r})
	if err != nil && codepush.KindOf(err) == "" {
		return fmt.Errorf("append codepush release %s: %w", r.Label, err)
	}
	return err
}

// UpdateRelease implements codepush.Store as a compare-and-swap: the row is
// rewritten only while every column still holds old's value, so a Patch
// read before another replica's change (a patch, or AppendRelease
// completing the rollout) fails with a conflict instead of undoing it.
func (c *CodePush) UpdateRelease(ctx context.Context, deploymentKey string, old, r codepush.Release) error {
	if old.Label != r.Label {
		return &codepush.Error{Kind: codepush.KindInvalid, Field: "label", Value: r.Label, Message: "an update cannot change the label " + old.Label}
	}
	err := c.change(ctx, func(tx *Store) ([]string, error) {
		args := append(releaseArgs(deploymentKey, r), releaseArgs(deploymentKey, old)[2:]...)
		res, err := tx.q.ExecContext(ctx, `UPDATE codepush_releases SET app_version = $3, description = $4, mandatory = $5, disabled = $6,
			rollout = $7, package_hash = $8, size = $9, blob_key = $10, blob_url = $11, method = $12, original_label = $13,
			original_deployment = $14, released_by = $15, commit_sha = $16, upload_time = $17
			WHERE deployment_key = $1 AND label = $2 AND app_version = $18 AND description = $19 AND mandatory = $20 AND disabled = $21
			AND rollout = $22 AND package_hash = $23 AND size = $24 AND blob_key = $25 AND blob_url = $26 AND method = $27
			AND original_label = $28 AND original_deployment = $29 AND released_by = $30 AND commit_sha = $31 AND upload_time = $32`, args...)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			var exists int
			err := tx.q.QueryRowContext(ctx, `SELECT 1 FROM codepush_releases WHERE deployment_key = $1 AND label = $2`, deploymentKey, r.Label).Scan(&exists)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, cpNotFound("release %s not found", r.Label)
			}
			if err != nil {
				return nil, err
			}
			return nil, cpConflict("release %s was changed by someone else since it was read; read it again and retry", r.Label)
		}
		return []string{deploymentKey}, nil
	}, HistoryChange{Op: HistoryUpdate, DeploymentKey: deploymentKey, Release: r, Old: old})
	if err != nil && codepush.KindOf(err) == "" {
		return fmt.Errorf("update codepush release %s: %w", r.Label, err)
	}
	return err
}

// DeleteApp implements codepush.Store: the app and its deployments go;
// their histories stay stored but unreachable.
func (c *CodePush) DeleteApp(ctx context.Context, name string) error {
	err := c.change(ctx, func(tx *Store) ([]string, error) {
		rows, err := tx.q.QueryContext(ctx, `SELECT key FROM codepush_deployments WHERE app = $1`, name)
		if err != nil {
			return nil, err
		}
		var keys []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM codepush_deployments WHERE app = $1`, name); err != nil {
			return nil, err
		}
		res, err := tx.q.ExecContext(ctx, `DELETE FROM codepush_apps WHERE name = $1`, name)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			return nil, cpNotFound("App %q does not exist.", name)
		}
		return keys, nil
	})
	if err != nil && codepush.KindOf(err) == "" {
		return fmt.Errorf("delete codepush app %s: %w", name, err)
	}
	return err
}

// ClearReleases implements codepush.Store.
func (c *CodePush) ClearReleases(ctx context.Context, deploymentKey string) error {
	err := c.change(ctx, func(tx *Store) ([]string, error) {
		for _, table := range []string{"codepush_releases", "codepush_counts", "codepush_reports", "codepush_clients"} {
			if _, err := tx.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE deployment_key = $1`, deploymentKey); err != nil {
				return nil, err
			}
		}
		return []string{deploymentKey}, nil
	}, HistoryChange{Op: HistoryClear, DeploymentKey: deploymentKey})
	if err != nil && codepush.KindOf(err) == "" {
		return fmt.Errorf("clear codepush history: %w", err)
	}
	return err
}

// RecordReport implements codepush.Store. Uniqueness is the database's: a
// report is counted only by the transaction whose insert into
// codepush_reports took, and a client's active label row is locked (Postgres)
// or written under SQLite's single writer, so concurrent reports of one
// device count once.
func (c *CodePush) RecordReport(ctx context.Context, r codepush.ClientReport) error {
	err := c.st.Tx(ctx, func(tx *Store) error {
		bump := func(key, label, col string, delta int) error {
			expr := col + ` + 1`
			if delta < 0 {
				expr = `CASE WHEN ` + col + ` > 0 THEN ` + col + ` - 1 ELSE 0 END`
			}
			ins := 0
			if delta > 0 {
				ins = 1
			}
			_, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_counts (deployment_key, label, `+col+`) VALUES ($1, $2, $3)
				ON CONFLICT (deployment_key, label) DO UPDATE SET `+col+` = `+strings.ReplaceAll(expr, col, "codepush_counts."+col),
				key, label, ins)
			return err
		}
		if r.Status != "" {
			res, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_reports (deployment_key, label, status, client_id) VALUES ($1, $2, $3, $4)
				ON CONFLICT DO NOTHING`, r.DeploymentKey, r.Label, r.Status, r.ClientID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				col := map[string]string{codepush.StatusDownloaded: "downloaded", codepush.StatusFailed: "failed", codepush.StatusSucceeded: "installed"}[r.Status]
				if col == "" {
					return fmt.Errorf("unknown report status %q", r.Status)
				}
				if err := bump(r.DeploymentKey, r.Label, col, 1); err != nil {
					return err
				}
				if r.Status != codepush.StatusDownloaded {
					var deploys int
					if err := tx.q.QueryRowContext(ctx, `SELECT count(*) FROM codepush_reports WHERE deployment_key = $1 AND label = $2 AND client_id = $3
						AND status IN ($4, $5)`, r.DeploymentKey, r.Label, r.ClientID, codepush.StatusSucceeded, codepush.StatusFailed).Scan(&deploys); err != nil {
						return err
					}
					if deploys == 1 {
						if err := bump(r.DeploymentKey, r.Label, "clients", 1); err != nil {
							return err
						}
					}
				}
			}
		}
		if r.Status != codepush.StatusSucceeded && r.Status != "" {
			return nil
		}
		// current locks (Postgres) and returns the label the client is
		// counted active on in key, creating an empty row to lock if needed.
		current := func(key string) (string, error) {
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_clients (deployment_key, client_id, label) VALUES ($1, $2, '')
				ON CONFLICT DO NOTHING`, key, r.ClientID); err != nil {
				return "", err
			}
			q := `SELECT label FROM codepush_clients WHERE deployment_key = $1 AND client_id = $2`
			if c.db.Engine == Postgres {
				q += ` FOR UPDATE`
			}
			var label string
			err := tx.q.QueryRowContext(ctx, q, key, r.ClientID).Scan(&label)
			return label, err
		}
		if pk := r.PreviousDeploymentKey; pk != "" && pk != r.DeploymentKey {
			prev, err := current(pk)
			if err != nil {
				return err
			}
			if prev != "" {
				if err := bump(pk, prev, "active", -1); err != nil {
					return err
				}
			}
			if _, err := tx.q.ExecContext(ctx, `DELETE FROM codepush_clients WHERE deployment_key = $1 AND client_id = $2`, pk, r.ClientID); err != nil {
				return err
			}
		}
		cur, err := current(r.DeploymentKey)
		if err != nil || cur == r.Label {
			return err
		}
		if cur != "" {
			if err := bump(r.DeploymentKey, cur, "active", -1); err != nil {
				return err
			}
		}
		if _, err := tx.q.ExecContext(ctx, `UPDATE codepush_clients SET label = $3 WHERE deployment_key = $1 AND client_id = $2`,
			r.DeploymentKey, r.ClientID, r.Label); err != nil {
			return err
		}
		return bump(r.DeploymentKey, r.Label, "active", 1)
	})
	if err != nil {
		return fmt.Errorf("codepush report: %w", err)
	}
	return nil
}

// AddCounts adds counter deltas in bulk, in one transaction, in key order
// (so two calls cannot deadlock on Postgres). It is for imports and
// fixtures: devices' reports go through RecordReport, which counts each
// device once. No counter goes below zero.
func (c *CodePush) AddCounts(ctx context.Context, deltas []codepush.CountDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	ds := slices.Clone(deltas)
	slices.SortStableFunc(ds, func(a, b codepush.CountDelta) int {
		if n := strings.Compare(a.DeploymentKey, b.DeploymentKey); n != 0 {
			return n
		}
		return strings.Compare(a.Label, b.Label)
	})
	err := c.st.Tx(ctx, func(tx *Store) error {
		for _, d := range ds {
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO codepush_counts (deployment_key, label) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				d.DeploymentKey, d.Label); err != nil {
				return err
			}
			set := make([]string, 0, 5)
			for i, col := range []string{"active", "downloaded", "installed", "failed", "clients"} {
				set = append(set, fmt.Sprintf(`%[1]s = CASE WHEN %[1]s + $%[2]d > 0 THEN %[1]s + $%[2]d ELSE 0 END`, col, i+3))
			}
			if _, err := tx.q.ExecContext(ctx, `UPDATE codepush_counts SET `+strings.Join(set, ", ")+` WHERE deployment_key = $1 AND label = $2`,
				d.DeploymentKey, d.Label, d.Active, d.Downloaded, d.Installed, d.Failed, d.Clients); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("codepush counters: %w", err)
	}
	return nil
}

// Counts implements codepush.Store.
func (c *CodePush) Counts(ctx context.Context, deploymentKey string) (map[string]codepush.Counts, error) {
	rows, err := c.db.SQL.QueryContext(ctx, `SELECT label, active, downloaded, installed, failed, clients FROM codepush_counts WHERE deployment_key = $1`, deploymentKey)
	if err != nil {
		return nil, fmt.Errorf("codepush counters: %w", err)
	}
	return scanCounts(rows)
}

// LabelCounts implements codepush.LabelCounter: the counters of labels (of
// every label when there are none) of app's deployment named deployment,
// in one query over the (app, name) and (deployment_key, label) keys —
// without reading the deployment's history or the other apps. A label
// without counters, or a deployment that does not exist, is absent.
func (c *CodePush) LabelCounts(ctx context.Context, app, deployment string, labels []string) (map[string]codepush.Counts, error) {
	q := `SELECT c.label, c.active, c.downloaded, c.installed, c.failed, c.clients FROM codepush_deployments d
		JOIN codepush_counts c ON c.deployment_key = d.key WHERE d.app = $1 AND d.name = $2`
	args := []any{app, deployment}
	if len(labels) > 0 {
		q += ` AND c.label IN (` + placeholders(3, len(labels)) + `)`
		args = append(args, anys(labels)...)
	}
	rows, err := c.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("codepush counters of %s %s: %w", app, deployment, err)
	}
	return scanCounts(rows)
}

// scanCounts reads rows of (label, active, downloaded, installed, failed,
// clients) into counters by label, and closes them.
func scanCounts(rows *sql.Rows) (map[string]codepush.Counts, error) {
	defer rows.Close()
	out := map[string]codepush.Counts{}
	for rows.Next() {
		var label string
		var n codepush.Counts
		if err := rows.Scan(&label, &n.Active, &n.Downloaded, &n.Installed, &n.Failed, &n.Clients); err != nil {
			return nil, err
		}
		out[label] = n
	}
	return out, rows.Err()
}

// CodePushChange is one entry of the change log.
type CodePushChange struct {
	Seq           int64
	DeploymentKey string
	At            time.Time
}

// LastChange returns the newest change log sequence number (0 when empty).
// Read it before loading a view, then follow from it: nothing committed in
// between is missed.
func (c *CodePush) LastChange(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	if err := c.db.SQL.QueryRowContext(ctx, `SELECT max(seq) FROM codepush_changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("codepush change log: %w", err)
	}
	return seq.Int64, nil
}

// ChangesSince lists up to limit changes after seq, oldest first.
func (c *CodePush) ChangesSince(ctx context.Context, seq int64, limit int) ([]CodePushChange, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := c.db.SQL.QueryContext(ctx, `SELECT seq, deployment_key, at FROM codepush_changes WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("codepush change log: %w", err)
	}
	defer rows.Close()
	var out []CodePushChange
	for rows.Next() {
		var ch CodePushChange
		var at int64
		if err := rows.Scan(&ch.Seq, &ch.DeploymentKey, &at); err != nil {
			return nil, err
		}
		ch.At = fromMS(at)
		out = append(out, ch)
	}
	return out, rows.Err()
}

// PruneChanges deletes change log entries older than before.
func (c *CodePush) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	res, err := c.db.SQL.ExecContext(ctx, `DELETE FROM codepush_changes WHERE at < $1`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune codepush change log: %w", err)
	}
	return res.RowsAffected()
}

// ChangeRetention is how long change log entries are kept. A follower that
// could not read the log for half of it reloads every view instead.
const ChangeRetention = time.Hour

// Follower keeps a replica's in-memory CodePush views current with changes
// other replicas commit: it reads the change log — every Interval, and on
// Postgres also when a commit notifies it — and invalidates each changed
// deployment once.
type Follower struct {
	Store *CodePush
	// Since is the sequence number the views were loaded at (LastChange
	// read before loading them).
	Since int64
	// Interval between polls; default one second.
	Interval time.Duration
	// Invalidate reloads one deployment's view (codepush.Service.Invalidate).
	Invalidate func(ctx context.Context, deploymentKey string) error
	// Reload reloads every view (codepush.Service.Reload), after the log
	// could not be read for too long.
	Reload func(ctx context.Context) error
	Log    *slog.Logger
}

// Run polls until ctx ends or the database is closed, every Interval and,
// on Postgres, as soon as a change is notified. It prunes old entries every
// few minutes.
func (f *Follower) Run(ctx context.Context) {
	interval := f.Interval
	if interval <= 0 {
		interval = time.Second
	}
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	wake := make(chan struct{}, 1)
	go f.Store.listen(lctx, wake, log)
	lastOK, lastPrune := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		err := f.Poll(ctx)
		if err == nil && time.Since(lastOK) > ChangeRetention/2 && f.Reload != nil {
			// Entries we never saw may have been pruned meanwhile.
			err = f.Reload(ctx)
		}
		switch {
		case err == nil:
			lastOK = time.Now()
		case ctx.Err() != nil:
			return
		case strings.Contains(err.Error(), "sql: database is closed"):
			return // the service shut down
		default:
			log.Warn("codepush change log: poll failed; retrying", "err", err)
			continue
		}
		if time.Since(lastPrune) > 5*time.Minute {
			lastPrune = time.Now()
			if _, err := f.Store.PruneChanges(ctx, time.Now().Add(-ChangeRetention)); err != nil {
				log.Warn("codepush change log: prune failed", "err", err)
			}
		}
	}
}

// Poll applies the changes committed since the last poll. When an
// invalidation fails, the position does not move, so the next poll retries.
func (f *Follower) Poll(ctx context.Context) error {
	for {
		chs, err := f.Store.ChangesSince(ctx, f.Since, 1000)
		if err != nil || len(chs) == 0 {
			return err
		}
		keys := make([]string, 0, len(chs))
		for _, ch := range chs {
			keys = append(keys, ch.DeploymentKey)
		}
		for _, k := range dedupeKeys(keys) {
			if err := f.Invalidate(ctx, k); err != nil {
				return fmt.Errorf("invalidate deployment view: %w", err)
			}
		}
		f.Since = chs[len(chs)-1].Seq
		if len(chs) < 1000 {
			return nil
		}
	}
}
