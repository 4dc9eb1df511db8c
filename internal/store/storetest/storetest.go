// Package storetest gives tests a fresh, migrated database on SQLite or on
// Postgres (one new schema per test, dropped afterwards).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/store"
)

// PostgresEnv names the variable holding the test Postgres URL.
const PostgresEnv = "RELEASEPILOT_TEST_POSTGRES_URL"

// Engines lists the engines a conformance test runs on: SQLite always,
// Postgres too (its subtests skip with a message when PostgresEnv is unset;
// .ci/run always sets it).
var Engines = []store.Engine{store.SQLite, store.Postgres}

// URL returns a database URL for a fresh database of engine e: a file in a
// temporary directory, or a new Postgres schema that is dropped at cleanup.
func URL(t testing.TB, e store.Engine) string {
	t.Helper()
	if e == store.SQLite {
		return "sqlite:" + t.TempDir() + "/releasepilot.db"
	}
	base := os.Getenv(PostgresEnv)
	if base == "" && os.Getenv("CI") != "" {
		t.Fatalf("%s is not set, and CI must run the Postgres tests (.ci/run sets it)", PostgresEnv)
	}
	if base == "" {
		t.Skipf("%s is not set: skipping the Postgres run (.ci/run sets it; e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", PostgresEnv)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "rp_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err, "create test schema")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated database of engine e, closed at cleanup.
func Open(t testing.TB, e store.Engine) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, URL(t, e), "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.Migrate(ctx, nil))
	return db
}
