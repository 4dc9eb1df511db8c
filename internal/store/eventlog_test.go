package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// openAppend appends an event for rel in a transaction that stays open
// until commit is closed.
type openAppend struct {
	id     chan int64
	commit chan struct{}
	done   chan error
}

func appendAndHold(s *store.Store, rel, kind string) *openAppend {
	o := &openAppend{id: make(chan int64, 1), commit: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		o.done <- s.Tx(context.Background(), func(tx *store.Store) error {
			id, err := tx.AppendEvent(context.Background(), release.Event{At: now, Actor: "test", ReleaseID: rel, Kind: kind})
			if err != nil {
				close(o.id)
				return err
			}
			o.id <- id
			<-o.commit
			return nil
		})
	}()
	return o
}

func kinds(evs []store.LogEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// TestLogEventsWaitForAnOlderOpenAppend is the case a global lock used to
// prevent: A appends, B appends (a higher id), B commits, a reader reads,
// A commits, the reader reads again. Paging by id would hand out B first
// and then never A; paging by cursor hands out A then B, each once.
func TestLogEventsWaitForAnOlderOpenAppend(t *testing.T) {
	t.Parallel()
	// On SQLite B cannot append while A is open (one writer at a time).
	s := store.New(storetest.Open(t, store.Postgres))
	// A waits for the test: reads need not wait for it (and hold back
	// every other reader of the test database meanwhile).
	s.LogWait = -1
	ctx := context.Background()

	a := appendAndHold(s, "rel_a", "a")
	idA, ok := <-a.id
	require.True(t, ok, "append A")
	b := appendAndHold(s, "rel_b", "b")
	idB, ok := <-b.id
	require.True(t, ok, "append B")
	require.Less(t, idA, idB)
	close(b.commit)
	require.NoError(t, <-b.done)

	naive, err := s.Events(ctx, "", 0, 10)
	require.NoError(t, err)
	require.Len(t, naive, 1, "a reader paging by id sees B alone and moves past A's id")
	require.Equal(t, idB, naive[0].ID)

	first, err := s.LogEvents(ctx, store.EventCursor{}, 10)
	require.NoError(t, err)
	require.Empty(t, first, "B waits for A, which may still commit before it")
	heads, err := s.EventHeads(ctx, store.EventCursor{}, 10)
	require.NoError(t, err)
	require.Empty(t, heads)
	last, err := s.LastEventCursor(ctx)
	require.NoError(t, err)
	require.Equal(t, store.EventCursor{}, last)

	close(a.commit)
	require.NoError(t, <-a.done)
	lost, err := s.Events(ctx, "", naive[0].ID, 10)
	require.NoError(t, err)
	require.Empty(t, lost, "paging by id lost A")

	// Now wait, for other tests' transactions in the test database.
	waiting := *s
	waiting.LogWait = 30 * time.Second
	s = &waiting
	second, err := s.LogEvents(ctx, store.EventCursor{}, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, kinds(second))
	require.Equal(t, idA, second[0].ID)
	require.Equal(t, idB, second[1].ID)
	require.Less(t, second[0].Cursor.Xid, second[1].Cursor.Xid)
	rest, err := s.LogEvents(ctx, second[1].Cursor, 10)
	require.NoError(t, err)
	require.Empty(t, rest, "nothing twice")
	last, err = s.LastEventCursor(ctx)
	require.NoError(t, err)
	require.Equal(t, second[1].Cursor, last)
}

// TestEventOrderUnderConcurrentAppenders appends from many goroutines to a
// few releases while a reader tails the whole log: every event is read
// exactly once, and each release's events come in the order of their
// per-release sequence, which has no gaps.
func TestEventOrderUnderConcurrentAppenders(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, e)
			s := store.New(db)
			ctx := context.Background()
			const writers, each, releases = 8, 25, 3
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						rel := fmt.Sprintf("rel_%d", (w+i)%releases)
						// Half the appends share a transaction with a
						// second event, as jobs do.
						err := s.Tx(ctx, func(tx *store.Store) error {
							if _, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "test", ReleaseID: rel, Kind: fmt.Sprintf("w%d.%d", w, i)}); err != nil {
								return err
							}
							if i%2 == 0 {
								_, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "test", Kind: fmt.Sprintf("w%d.%d.global", w, i)})
								return err
							}
							return nil
						})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()

			want := writers*each + writers*((each+1)/2)
			seen := map[int64]bool{}
			var cursor store.EventCursor
			var got []store.LogEvent
			deadline := time.Now().Add(time.Minute)
			for len(got) < want {
				require.True(t, time.Now().Before(deadline), "read %d of %d events", len(got), want)
				select {
				case err := <-errs:
					require.NoError(t, err)
				default:
				}
				evs, err := s.LogEvents(ctx, cursor, 7)
				require.NoError(t, err)
				for _, ev := range evs {
					require.False(t, seen[ev.ID], "event %d read twice", ev.ID)
					seen[ev.ID] = true
					got = append(got, ev)
					cursor = ev.Cursor
				}
				if len(evs) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			<-done
			rest, err := s.LogEvents(ctx, cursor, 10)
			require.NoError(t, err)
			require.Empty(t, rest)

			// Each release's events: seq 1..n, in id order and in the order
			// the tail read them.
			lastSeq := map[string]int64{}
			for _, ev := range got {
				if ev.ReleaseID == "" {
					continue
				}
				var seq int64
				require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT seq FROM events WHERE id = $1`, ev.ID).Scan(&seq))
				require.Equal(t, lastSeq[ev.ReleaseID]+1, seq, "release %s, event %d", ev.ReleaseID, ev.ID)
				lastSeq[ev.ReleaseID] = seq
			}
			for r := range releases {
				rel := fmt.Sprintf("rel_%d", r)
				evs, err := s.Events(ctx, rel, 0, 1000)
				require.NoError(t, err)
				require.Len(t, evs, int(lastSeq[rel]))
				var prev int64
				for i, ev := range evs {
					var seq int64
					require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT seq FROM events WHERE id = $1`, ev.ID).Scan(&seq))
					require.Equal(t, int64(i+1), seq, "a release's ids follow its sequence")
					require.Greater(t, ev.ID, prev)
					prev = ev.ID
				}
			}
		})
	}
}

// TestMigration0130KeepsTheOrderOfOldEvents upgrades a log written before
// 0130: old events are numbered per release in id order, and a notify
// cursor saved by id carries on where it was. The database is one the
// release before issue 13 left: every migration but 130–139 applied (0140
// to 0170 included), so issue 13's run after later ones, as they will in
// a deployment.
func TestMigration0130KeepsTheOrderOfOldEvents(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := store.Open(ctx, storetest.URL(t, e), "")
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			ms, err := store.Migrations(e)
			require.NoError(t, err)
			_, err = db.SQL.ExecContext(ctx, `CREATE TABLE releasepilot_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`)
			require.NoError(t, err)
			for _, m := range ms {
				if m.Version >= 130 && m.Version < 140 {
					continue
				}
				_, err := db.SQL.ExecContext(ctx, m.SQL)
				require.NoError(t, err, m.Name)
				_, err = db.SQL.ExecContext(ctx, `INSERT INTO releasepilot_migrations VALUES ($1, $2, 0)`, m.Version, m.Name)
				require.NoError(t, err)
			}
			for i, rel := range []string{"rel_1", "rel_2", "", "rel_1", "rel_1", "rel_2"} {
				_, err := db.SQL.ExecContext(ctx, `INSERT INTO events (at, actor, release_id, kind) VALUES (1, 'old', $1, $2)`, rel, fmt.Sprint("old", i))
				require.NoError(t, err)
			}
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO notify_cursors (target, event_id, updated_at) VALUES ('slack', 4, 1)`)
			require.NoError(t, err)

			require.NoError(t, db.Migrate(ctx, nil))
			rows, err := db.SQL.QueryContext(ctx, `SELECT kind, seq, xid FROM events ORDER BY id`)
			require.NoError(t, err)
			var got []string
			for rows.Next() {
				var kind string
				var seq, xid int64
				require.NoError(t, rows.Scan(&kind, &seq, &xid))
				got = append(got, fmt.Sprintf("%s:%d:%d", kind, seq, xid))
			}
			require.NoError(t, rows.Err())
			rows.Close()
			require.Equal(t, []string{"old0:1:0", "old1:1:0", "old2:0:0", "old3:2:0", "old4:3:0", "old5:2:0"}, got)

			s := store.New(db)
			s.LogWait = 30 * time.Second // other tests' transactions in this database hold "new" back a while
			_, err = s.AppendEvent(ctx, release.Event{At: now, Actor: "new", ReleaseID: "rel_1", Kind: "new"})
			require.NoError(t, err)
			var seq int64
			require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT seq FROM events WHERE kind = 'new'`).Scan(&seq))
			require.Equal(t, int64(4), seq, "the release's sequence carries on")
			c, err := s.NotifyCursor(ctx, "slack")
			require.NoError(t, err)
			require.Equal(t, store.EventCursor{ID: 4}, c)
			evs, err := s.LogEvents(ctx, c, 10)
			require.NoError(t, err)
			require.Equal(t, []string{"old4", "old5", "new"}, kinds(evs))
		})
	}
}

// TestLogEventsIgnoreOtherDatabases: a transaction open in another
// database of the cluster cannot write our events, so it does not hold
// readers back (pg_snapshot_xmin alone would, for as long as it stays open).
func TestLogEventsIgnoreOtherDatabases(t *testing.T) {
	t.Parallel()
	s := store.New(storetest.Open(t, store.Postgres))
	ctx := context.Background()
	u, err := url.Parse(os.Getenv(storetest.PostgresEnv))
	require.NoError(t, err)
	u.Path = "/postgres"
	other, err := sql.Open("pgx", u.String())
	require.NoError(t, err)
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck
	var otherXid int64
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&otherXid))

	id, err := s.AppendEvent(ctx, release.Event{At: now, Actor: "test", ReleaseID: "rel_1", Kind: "after"})
	require.NoError(t, err)
	// Other tests' transactions in this database may hold it back for a
	// while; the other database's, open until the end, would for good.
	var evs []store.LogEvent
	require.Eventually(t, func() bool {
		evs, err = s.LogEvents(ctx, store.EventCursor{}, 10)
		require.NoError(t, err)
		return len(evs) == 1
	}, 30*time.Second, 10*time.Millisecond, "the other database's transaction does not hold the event back")
	require.Equal(t, id, evs[0].ID)
	require.Greater(t, evs[0].Cursor.Xid, otherXid, "the event's transaction began after the open one")
}
