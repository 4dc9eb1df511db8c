package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations
var migrations embed.FS

// Migration is one embedded schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the embedded migrations of an engine in order.
func Migrations(e Engine) ([]Migration, error) {
	dir := "migrations/" + string(e)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, ent := range entries {
		name := ent.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", name)
		}
		b, err := fs.ReadFile(migrations, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// migrationLock is the Postgres advisory lock key that serialises replicas
// migrating at the same time ("rpmigrat").
const migrationLock = 0x72706d6967726174

// Migrate applies River's migrations and ours, each of ours in its own
// transaction with its version recorded. On Postgres an advisory lock keeps
// two replicas from migrating at once. It is safe to run repeatedly.
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if db.Engine == Postgres {
		conn, err := db.SQL.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock)) //nolint:errcheck
	}
	rm, err := rivermigrate.New(db.RiverDriver(), &rivermigrate.Config{Logger: log, Schema: db.Schema})
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	res, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range res.Versions {
		log.Info("applied river migration", "version", v.Version)
	}

	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS releasepilot_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	ms, err := Migrations(db.Engine)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := db.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// noForeignKeys in a SQLite migration runs it with foreign keys off: the
// way SQLite documents for rebuilding a table that others reference (PRAGMA
// foreign_keys cannot change inside a transaction). The migration's
// foreign_key_check must come back empty before it commits.
const noForeignKeys = "-- releasepilot: foreign_keys off"

// keepIndexes, followed by a table name, in a SQLite migration that
// rebuilds that table re-creates afterwards every index the table had
// before: an index a later-numbered migration made, on a database that
// applied it first, survives the rebuild.
const keepIndexes = "-- releasepilot: keep indexes of "

func keptTables(sql string) []string {
	var out []string
	for _, line := range strings.Split(sql, "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), keepIndexes); ok && t != "" {
			out = append(out, strings.TrimSpace(t))
		}
	}
	return out
}

func (db *DB) apply(ctx context.Context, m Migration) error {
	if db.Engine == SQLite && strings.Contains(m.SQL, noForeignKeys) {
		conn, err := db.SQL.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
			return err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`) //nolint:errcheck
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var indexes []string
		for _, table := range keptTables(m.SQL) {
			rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL`, table)
			if err != nil {
				_ = tx.Rollback()
				return err
			}
			for rows.Next() {
				var q string
				if err := rows.Scan(&q); err != nil {
					rows.Close()
					_ = tx.Rollback()
					return err
				}
				indexes = append(indexes, q)
			}
			rows.Close()
		}
		return applyTx(ctx, tx, m, func() error {
			for _, q := range indexes {
				q = strings.Replace(q, "CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1)
				q = strings.Replace(q, "CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("re-create index after rebuild: %w", err)
				}
			}
			rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
			if err != nil {
				return err
			}
			defer rows.Close()
			if rows.Next() {
				return errors.New("foreign_key_check found rows that reference nothing")
			}
			return rows.Err()
		})
	}
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	return applyTx(ctx, tx, m, nil)
}

func applyTx(ctx context.Context, tx *sql.Tx, m Migration, check func() error) error {
	defer tx.Rollback() //nolint:errcheck
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM releasepilot_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO releasepilot_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// AppliedMigrations lists the versions recorded as applied.
func (db *DB) AppliedMigrations(ctx context.Context) ([]int, error) {
	rows, err := db.SQL.QueryContext(ctx, `SELECT version FROM releasepilot_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

var _ = sql.ErrNoRows
