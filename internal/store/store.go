// Package store persists releasepilot's state with database/sql on SQLite
// (modernc.org/sqlite, the default) or Postgres (pgx), chosen by URL. Both
// engines run the same SQL where the dialects overlap and have their own
// embedded migrations; River's tables are migrated alongside ours.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Engine names a database engine.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Errors with a kind the HTTP layer and jobs act on.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// DB is an open database with its engine and, on Postgres, the pgx pool River
// uses for LISTEN/NOTIFY.
type DB struct {
	SQL    *sql.DB
	Engine Engine
	// Schema is the Postgres schema from the URL's search_path, or "".
	Schema   string
	listener *pgxpool.Pool
	// writer, on SQLite, lets one of our transactions at a time ask SQLite
	// for its write lock (see Store.Tx).
	writer chan struct{}
	// stopCheckpoints ends SQLite's background checkpointer.
	stopCheckpoints func()
}

// SQLitePath is the default database file under a data directory.
func SQLitePath(dataDir string) string { return filepath.Join(dataDir, "releasepilot.db") }

// Open connects to rawURL. An empty URL means SQLite at SQLitePath(dataDir);
// its directory is created. Postgres URLs may carry search_path to select a
// schema (tests use one fresh schema each).
func Open(ctx context.Context, rawURL, dataDir string) (*DB, error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return openPostgres(ctx, rawURL)
	case rawURL == "":
		return openSQLite(ctx, SQLitePath(dataDir))
	case strings.HasPrefix(rawURL, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//"))
	case strings.HasPrefix(rawURL, "file:"):
		return openSQLite(ctx, strings.TrimPrefix(rawURL, "file:"))
	}
	return nil, errors.New("database.url: scheme is not postgres://, postgresql://, sqlite: or file:")
}

// sqliteBusyTimeout is how long a SQLite write waits for the lock.
const sqliteBusyTimeout = 10 * time.Second

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("database.url: SQLite path is empty")
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	// WAL for concurrent readers, a busy timeout instead of SQLITE_BUSY, and
	// BEGIN IMMEDIATE so a transaction never fails upgrading a read lock.
	// Checkpoints run in the background (checkpoints below), not in the
	// commit that happens to fill the WAL: that commit's caller (a webhook
	// delivery, say) would wait for the copy and its fsync.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(" + strconv.Itoa(int(sqliteBusyTimeout.Milliseconds())) + ")&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(0)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// Readers do not wait for each other in WAL mode, and River's workers
	// read beside every webhook: four connections made deliveries queue
	// for one behind plan jobs' reads. Writers take turns anyway.
	db.SetMaxOpenConns(12)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	d := &DB{SQL: db, Engine: SQLite, writer: make(chan struct{}, 1)}
	d.stopCheckpoints = d.checkpoints(sqliteCheckpointEvery)
	return d, nil
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("database.url: not a valid URL")
	}
	schema := u.Query().Get("search_path")
	db, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", redactURL(err, rawURL))
	}
	db.SetMaxOpenConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres at %s: %w", safeHost(u), redactURL(err, rawURL))
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres listener: %w", redactURL(err, rawURL))
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres listener: %w", redactURL(err, rawURL))
	}
	return &DB{SQL: db, Engine: Postgres, Schema: schema, listener: pool}, nil
}

// safeHost shows where we connect without user or password.
func safeHost(u *url.URL) string { return u.Host + u.Path }

// redactURL keeps a password out of driver errors that quote the URL.
func redactURL(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return errors.New(msg)
}

// RiverDriver returns the River driver for the engine; both are
// riverdriver.Driver[*sql.Tx], so one client type serves both.
func (db *DB) RiverDriver() riverdriver.Driver[*sql.Tx] {
	if db.Engine == Postgres {
		return riverdatabasesql.NewWithPgxListener(db.SQL, db.listener)
	}
	return riversqlite.New(db.SQL)
}

// Ping checks the connection.
func (db *DB) Ping(ctx context.Context) error { return db.SQL.PingContext(ctx) }

// sqliteCheckpointEvery is how often the background checkpointer copies
// the WAL into the database (SQLite's own would every 1000 pages, about a
// second of writes at 200 webhook deliveries/s).
const sqliteCheckpointEvery = 500 * time.Millisecond

// checkpoints copies SQLite's WAL into the database every interval, in
// PASSIVE mode (it waits for no reader or writer), until the returned stop
// is called.
func (db *DB) checkpoints(every time.Duration) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = db.SQL.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-stopped }) }
}

// Close closes the pools.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
	}
	if db.listener != nil {
		db.listener.Close()
	}
	return db.SQL.Close()
}
