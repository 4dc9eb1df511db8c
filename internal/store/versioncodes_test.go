package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
	"github.com/swapjoy/releasepilot/playstore/playstoretest/wirecheck"
)

var _ playstore.VersionCodeLedger = store.VersionCodes{}

// replicas opens the same fresh database twice, as two processes would.
func replicas(t *testing.T, e store.Engine) (a, b *store.Store) {
	t.Helper()
	ctx := context.Background()
	url := storetest.URL(t, e)
	open := func() *store.Store {
		db, err := store.Open(ctx, url, "")
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		require.NoError(t, db.Migrate(ctx, nil))
		return store.New(db)
	}
	return open(), open()
}

func TestVersionCodeLedger(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := replicas(t, e)
			la, lb := a.VersionCodes(), b.VersionCodes()

			m, err := la.Max(ctx, "com.acme")
			require.NoError(t, err)
			require.Zero(t, m)
			seen, err := la.Seen(ctx, "com.acme", 42)
			require.NoError(t, err)
			require.False(t, seen)

			require.NoError(t, la.Record(ctx, "com.acme", 42))
			require.NoError(t, la.Record(ctx, "com.acme", 42), "recording twice is fine")
			require.NoError(t, la.Record(ctx, "com.acme", 7))
			require.NoError(t, la.Record(ctx, "com.other", 900))

			// The other replica sees what this one recorded.
			seen, err = lb.Seen(ctx, "com.acme", 42)
			require.NoError(t, err)
			require.True(t, seen)
			seen, err = lb.Seen(ctx, "com.acme", 43)
			require.NoError(t, err)
			require.False(t, seen)
			seen, err = lb.Seen(ctx, "com.acme", 900)
			require.NoError(t, err)
			require.False(t, seen, "versionCodes are per package")
			m, err = lb.Max(ctx, "com.acme")
			require.NoError(t, err)
			require.EqualValues(t, 42, m)

			// Big versionCodes survive the round trip (Play allows up to 2100000000).
			require.NoError(t, lb.Record(ctx, "com.acme", 2_100_000_000))
			m, err = la.Max(ctx, "com.acme")
			require.NoError(t, err)
			require.EqualValues(t, 2_100_000_000, m)

			require.ErrorContains(t, la.Record(ctx, "", 1), "package name is empty")
			require.ErrorContains(t, la.Record(ctx, "com.acme", 0), "versionCode 0 of com.acme must be positive")
		})
	}
}

func TestVersionCodeLedgerConcurrentReplicas(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := replicas(t, e)
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := range 20 {
				for _, s := range []*store.Store{a, b} {
					wg.Go(func() {
						// Both replicas record the same codes at once.
						errs <- s.VersionCodes().Record(ctx, "com.acme", int64(100+i))
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			m, err := a.VersionCodes().Max(ctx, "com.acme")
			require.NoError(t, err)
			require.EqualValues(t, 119, m)
			var n int
			require.NoError(t, a.DB.SQL.QueryRowContext(ctx, `SELECT count(*) FROM play_version_codes`).Scan(&n))
			require.Equal(t, 20, n)
		})
	}
}

func TestVersionCodeLedgerInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.Open(t, store.SQLite))
	boom := errors.New("boom")
	err := s.Tx(ctx, func(tx *store.Store) error {
		require.NoError(t, tx.VersionCodes().Record(ctx, "com.acme", 5))
		return boom
	})
	require.ErrorIs(t, err, boom)
	seen, err := s.VersionCodes().Seen(ctx, "com.acme", 5)
	require.NoError(t, err)
	require.False(t, seen, "a rolled-back record is gone")
}

// A replica whose upload failed before any commit leaves the versionCode
// free for the other; one whose commit outcome is unknown makes the other
// refuse it: the ratchet is shared through the database.
func TestVersionCodeLedgerGuardsPlayAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := replicas(t, e)
			fake := playstoretest.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
			srv := httptest.NewServer(wirecheck.Handler(t, fake))
			t.Cleanup(srv.Close)
			fake.AddApp("com.acme")
			fake.SeedBundles("com.acme", 41)
			client := func(s *store.Store, email string) *playstore.Client {
				key, err := fake.ServiceAccountJSON(srv.URL, email)
				require.NoError(t, err)
				c, err := playstore.New(ctx, playstore.Config{CredentialsJSON: key, Endpoint: srv.URL + "/", ReportingEndpoint: srv.URL + "/",
					Ledger: s.VersionCodes(), Sleep: func(context.Context, time.Duration) error { return nil }})
				require.NoError(t, err)
				return c
			}
			ca, cb := client(a, "a@example.iam.gserviceaccount.com"), client(b, "b@example.iam.gserviceaccount.com")
			bundle := func(vc int64) playstore.Bundle {
				aab := playstoretest.FakeBundle(vc, 512)
				return playstore.Bundle{VersionCode: vc, Content: bytes.NewReader(aab), Size: int64(len(aab))}
			}

			// The upload request fails: that edit never commits.
			fake.Inject(playstoretest.Fault{Method: playstoretest.MethodBundlesUpload, Kind: playstoretest.FaultInternal})
			_, err := ca.UploadBundle(ctx, "com.acme", bundle(42))
			require.Error(t, err)
			require.Equal(t, []int64{41}, fake.Bundles("com.acme"), "the upload never committed")
			st, err := b.VersionCodes().State(ctx, "com.acme", 42)
			require.NoError(t, err)
			require.Equal(t, playstore.VersionCodeSent, st)

			res, err := cb.UploadBundle(ctx, "com.acme", bundle(42))
			require.NoError(t, err, "the other replica uploads the same versionCode")
			require.False(t, res.Skipped)
			require.Equal(t, []int64{41, 42}, fake.Bundles("com.acme"))
			st, err = a.VersionCodes().State(ctx, "com.acme", 42)
			require.NoError(t, err)
			require.Equal(t, playstore.VersionCodeCommitted, st)

			// A commit whose outcome nobody can tell (the probe fails too).
			fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultInternal})
			fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsDelete, Kind: playstoretest.FaultInternal, Times: 5})
			_, err = ca.UploadBundle(ctx, "com.acme", bundle(43))
			require.ErrorIs(t, err, playstore.ErrVersionCodeReused)
			require.Equal(t, []int64{41, 42}, fake.Bundles("com.acme"))

			_, err = cb.UploadBundle(ctx, "com.acme", bundle(43))
			var reused *playstore.VersionCodeReusedError
			require.ErrorAs(t, err, &reused, fmt.Sprint(err))
			require.EqualValues(t, 44, reused.Next)
			next, err := cb.NextVersionCode(ctx, "com.acme")
			require.NoError(t, err)
			require.EqualValues(t, 44, next)
		})
	}
}

func TestVersionCodeLedgerStates(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := replicas(t, e)
			la, lb := a.VersionCodes(), b.VersionCodes()
			state := func(vc int64) playstore.VersionCodeState {
				t.Helper()
				st, err := lb.State(ctx, "com.acme", vc)
				require.NoError(t, err)
				return st
			}
			maxCommitted := func() int64 {
				t.Helper()
				m, err := lb.MaxCommitted(ctx, "com.acme")
				require.NoError(t, err)
				return m
			}

			require.Equal(t, playstore.VersionCodeUnseen, state(42))
			require.NoError(t, la.Record(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeSent, state(42))
			require.Zero(t, maxCommitted(), "sent only: Play holds nothing")

			// Two commits in flight; one is known to have failed.
			require.NoError(t, la.Committing(ctx, "com.acme", 42))
			require.NoError(t, lb.Committing(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeCommitUnknown, state(42))
			require.EqualValues(t, 42, maxCommitted())
			require.NoError(t, la.NotCommitted(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeCommitUnknown, state(42), "the other commit is still unknown")
			require.NoError(t, lb.NotCommitted(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeSent, state(42))
			require.NoError(t, lb.NotCommitted(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeSent, state(42), "never below zero")
			require.NoError(t, la.Record(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeSent, state(42))

			require.NoError(t, la.Committing(ctx, "com.acme", 42))
			require.NoError(t, la.Record(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeCommitUnknown, state(42), "Record never undoes Committing")
			require.NoError(t, la.Committed(ctx, "com.acme", 42))
			require.NoError(t, la.NotCommitted(ctx, "com.acme", 42))
			require.Equal(t, playstore.VersionCodeCommitted, state(42), "committed is final")

			// Committed straight away (Play listed a code never recorded).
			require.NoError(t, lb.Committed(ctx, "com.acme", 50))
			require.Equal(t, playstore.VersionCodeCommitted, state(50))
			require.EqualValues(t, 50, maxCommitted())
			require.NoError(t, la.Record(ctx, "com.acme", 60))
			require.EqualValues(t, 50, maxCommitted())
			m, err := la.Max(ctx, "com.acme")
			require.NoError(t, err)
			require.EqualValues(t, 60, m, "Max counts every recorded versionCode")
			seen, err := la.Seen(ctx, "com.acme", 50)
			require.NoError(t, err)
			require.True(t, seen)

			require.ErrorContains(t, la.Committing(ctx, "", 1), "package name is empty")
			require.ErrorContains(t, la.Committed(ctx, "com.acme", -1), "versionCode -1 of com.acme must be positive")
		})
	}
}

// Rows recorded before migration 0007 never said whether they committed:
// they count as an unknown commit, so upgrading never frees a versionCode.
func TestVersionCodeStateMigrationKeepsOldRowsReserved(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, _ := replicas(t, e)
			require.NoError(t, s.VersionCodes().Record(ctx, "com.acme", 42))
			// Back to the schema before 0007, with the row as it was then.
			for _, q := range []string{
				`ALTER TABLE play_version_codes DROP COLUMN pending_commits`,
				`ALTER TABLE play_version_codes DROP COLUMN committed_at`,
				`DELETE FROM releasepilot_migrations WHERE version = 7`,
			} {
				_, err := s.DB.SQL.ExecContext(ctx, q)
				require.NoError(t, err, q)
			}
			require.NoError(t, s.DB.Migrate(ctx, nil))
			st, err := s.VersionCodes().State(ctx, "com.acme", 42)
			require.NoError(t, err)
			require.Equal(t, playstore.VersionCodeCommitUnknown, st)
			require.NoError(t, s.VersionCodes().Record(ctx, "com.acme", 43))
			st, err = s.VersionCodes().State(ctx, "com.acme", 43)
			require.NoError(t, err)
			require.Equal(t, playstore.VersionCodeSent, st, "new rows start as sent")
		})
	}
}
