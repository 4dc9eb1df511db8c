package store_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// TestSQLiteCheckpointsInTheBackground: commits never copy the WAL into
// the database themselves (that would stall whichever webhook delivery
// filled it); a background checkpointer does, so the database file grows
// while the service runs.
func TestSQLiteCheckpointsInTheBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.URL(t, store.SQLite)
	path := strings.TrimPrefix(url, "sqlite:")
	db, err := store.Open(ctx, url, "")
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, nil))
	var auto int
	require.NoError(t, db.SQL.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto))
	require.Zero(t, auto, "no checkpoint in a commit")

	before, err := os.Stat(path)
	require.NoError(t, err)
	s := store.New(db)
	big := strings.Repeat("x", 4000)
	for i := range 500 {
		_, err := s.AppendEvent(ctx, release.Event{At: time.Now(), Actor: "test", Kind: "big", Details: map[string]any{"i": i, "pad": big}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		st, err := os.Stat(path)
		return err == nil && st.Size() > before.Size()+1<<20
	}, 10*time.Second, 50*time.Millisecond, "the WAL was copied into the database")
}

// TestSQLiteTransactionsQueue: our transactions wait for each other in
// order rather than for SQLite's lock; one that cannot get its turn before
// its context ends says so.
func TestSQLiteTransactionsQueue(t *testing.T) {
	t.Parallel()
	s := store.New(storetest.Open(t, store.SQLite))
	ctx := context.Background()
	held := make(chan struct{})
	finish := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Tx(ctx, func(*store.Store) error {
			close(held)
			<-finish
			return nil
		})
	}()
	<-held
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := s.Tx(short, func(*store.Store) error { return nil })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(finish)
	require.NoError(t, <-done)
	require.NoError(t, s.Tx(ctx, func(*store.Store) error { return nil }))
}
