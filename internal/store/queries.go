package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store runs releasepilot's queries, on the pool or inside a transaction.
type Store struct {
	DB *DB
	// LogWait bounds how long a reader of the whole audit log waits for
	// older transactions to finish (see LogEvents): 0 means three seconds,
	// a negative value not at all.
	LogWait time.Duration
	q       querier
	tx      *sql.Tx
}

// New returns a store on db.
func New(db *DB) *Store { return &Store{DB: db, q: db.SQL} }

// SQLTx is the transaction a store made by Tx runs in (nil otherwise), for
// River's InsertTx so jobs commit with the state that caused them.
func (s *Store) SQLTx() *sql.Tx { return s.tx }

// Tx runs fn in one transaction: everything fn writes through tx commits
// together or not at all.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	if s.DB.writer != nil {
		// SQLite has one writer at a time, and a transaction waiting for
		// the write lock polls for it, sleeping up to 100 ms between tries:
		// many of ours waiting at once (webhook deliveries under load) get
		// it unfairly, some after hundreds of milliseconds. So ours queue
		// here, in order, and only the first polls (against River's own
		// writes). The wait is bounded like SQLite's busy timeout.
		t := time.NewTimer(sqliteBusyTimeout)
		select {
		case s.DB.writer <- struct{}{}:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("begin: %w", ctx.Err())
		case <-t.C:
			return errors.New("begin: database is busy: another transaction held it for the whole busy timeout")
		}
		defer func() { <-s.DB.writer }()
	}
	sqlTx, err := s.DB.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&Store{DB: s.DB, LogWait: s.LogWait, q: sqlTx, tx: sqlTx}); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// NewID returns a random identifier with a prefix, e.g. rel_3f2a….
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}

// UpsertApp records an app from the configuration.
func (s *Store) UpsertApp(ctx context.Context, a release.App, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO apps (name, repository, created_at, updated_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (name) DO UPDATE SET repository = excluded.repository, updated_at = excluded.updated_at`,
		a.Name, a.Repository, ms(now))
	return err
}

// Apps lists the recorded apps by name.
func (s *Store) Apps(ctx context.Context) ([]release.App, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, repository FROM apps ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []release.App
	for rows.Next() {
		var a release.App
		if err := rows.Scan(&a.Name, &a.Repository); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// CreateRelease inserts r unless a release for the same app and tag exists.
// It returns the stored release and whether it was created now; r.ID is
// assigned when empty.
func (s *Store) CreateRelease(ctx context.Context, r release.Release) (release.Release, bool, error) {
	if r.ID == "" {
		r.ID = NewID("rel")
	}
	if r.State == "" {
		r.State = release.ReleasePlanning
	}
	// Only the tag's current release (not superseded) is unique. A new
	// release comes back from the insert itself (one round trip on the
	// webhook's path); a known one is read.
	got, err := scanRelease(s.q.QueryRowContext(ctx, `INSERT INTO releases (id, app, tag, version, commit_sha, state, notes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (app, tag) WHERE superseded_by = '' DO NOTHING RETURNING `+releaseCols,
		r.ID, r.App, r.Tag, r.Version, r.Commit, string(r.State), r.Notes, ms(r.CreatedAt)))
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return release.Release{}, false, fmt.Errorf("create release %s %s: %w", r.App, r.Tag, err)
	}
	got, err = s.ReleaseByTag(ctx, r.App, r.Tag)
	return got, false, err
}

const releaseCols = `id, app, tag, version, commit_sha, state, notes, created_at, updated_at, superseded_by, tag_state, tag_commit`

func scanRelease(row interface{ Scan(...any) error }) (release.Release, error) {
	var r release.Release
	var state, tagState string
	var c, u int64
	err := row.Scan(&r.ID, &r.App, &r.Tag, &r.Version, &r.Commit, &state, &r.Notes, &c, &u, &r.SupersededBy, &tagState, &r.TagCommit)
	r.State, r.CreatedAt, r.UpdatedAt, r.TagState = release.ReleaseState(state), fromMS(c), fromMS(u), release.TagState(tagState)
	return r, err
}

// GetRelease reads one release.
func (s *Store) GetRelease(ctx context.Context, id string) (release.Release, error) {
	r, err := scanRelease(s.q.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE id = $1`, id))
	return r, notFound(err, "release "+id)
}

// ReleaseByTag reads the current release of an app for a tag (not one a
// moved tag superseded).
func (s *Store) ReleaseByTag(ctx context.Context, app, tag string) (release.Release, error) {
	r, err := scanRelease(s.q.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE app = $1 AND tag = $2 AND superseded_by = ''`, app, tag))
	return r, notFound(err, fmt.Sprintf("release of %s at %s", app, tag))
}

// ListReleases lists an app's releases (all apps when app is ""), newest first.
func (s *Store) ListReleases(ctx context.Context, app string, limit int) ([]release.Release, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE ($1 = '' OR app = $1) ORDER BY created_at DESC, id DESC LIMIT $2`, app, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []release.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateRelease writes a release's state, commit, version and notes.
func (s *Store) UpdateRelease(ctx context.Context, r release.Release) error {
	res, err := s.q.ExecContext(ctx, `UPDATE releases SET state = $2, notes = $3, commit_sha = $4, version = $5, updated_at = $6 WHERE id = $1`,
		r.ID, string(r.State), r.Notes, r.Commit, r.Version, ms(r.UpdatedAt))
	if err != nil {
		return err
	}
	return oneRow(res, "release "+r.ID)
}

func oneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// CreateLane inserts a lane with its rollout status. l.ID is assigned when
// empty; the returned lane carries the stored status version.
func (s *Store) CreateLane(ctx context.Context, l release.Lane, now time.Time) (release.Lane, error) {
	if l.ID == "" {
		l.ID = NewID("lane")
	}
	plan, err := json.Marshal(l.Plan)
	if err != nil {
		return l, err
	}
	if l.Status.State == "" {
		l.Status.State = release.StatePending
	}
	if _, err := s.q.ExecContext(ctx, `INSERT INTO lanes (id, release_id, platform, kind, reason, plan, data, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $7)`, l.ID, l.ReleaseID, string(l.Platform), string(l.Kind), l.Reason, string(plan), ms(now)); err != nil {
		return l, fmt.Errorf("create %s lane of release %s: %w", l.Platform, l.ReleaseID, err)
	}
	st := l.Status
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = now
	}
	if _, err := s.q.ExecContext(ctx, `INSERT INTO rollouts (lane_id, state, step_index, percent, reason, step_started_at, next_eligible_at, version, updated_at, stage_started_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)`, l.ID, string(st.State), st.StepIndex, st.Percent, st.Reason, ms(st.StepStartedAt), ms(st.NextEligibleAt), ms(st.UpdatedAt), ms(st.StageStartedAt)); err != nil {
		return l, err
	}
	st.Version = 1
	l.Status = st
	return l, nil
}

const laneCols = `l.id, l.release_id, l.platform, l.kind, l.reason, l.plan, r.state, r.step_index, r.percent, r.reason, r.step_started_at, r.next_eligible_at, r.version, r.updated_at, r.stage_started_at, r.pending_command`
const laneFrom = ` FROM lanes l JOIN rollouts r ON r.lane_id = l.id `

func scanLane(row interface{ Scan(...any) error }) (release.Lane, error) {
	var l release.Lane
	var platform, kind, plan, state, pending string
	var started, next, updated, stage int64
	if err := row.Scan(&l.ID, &l.ReleaseID, &platform, &kind, &l.Reason, &plan, &state, &l.Status.StepIndex, &l.Status.Percent,
		&l.Status.Reason, &started, &next, &l.Status.Version, &updated, &stage, &pending); err != nil {
		return l, err
	}
	l.Status.StageStartedAt = fromMS(stage)
	l.Platform, l.Kind, l.Status.State = release.Platform(platform), release.LaneKind(kind), release.State(state)
	l.Status.PendingCommand = release.Command(pending)
	l.Status.StepStartedAt, l.Status.NextEligibleAt, l.Status.UpdatedAt = fromMS(started), fromMS(next), fromMS(updated)
	p, err := parsePlan(plan)
	if err != nil {
		return l, fmt.Errorf("lane %s plan: %w", l.ID, err)
	}
	l.Plan = p
	return l, nil
}

// GetLane reads one lane with its status.
func (s *Store) GetLane(ctx context.Context, id string) (release.Lane, error) {
	l, err := scanLane(s.q.QueryRowContext(ctx, `SELECT `+laneCols+laneFrom+`WHERE l.id = $1`, id))
	return l, notFound(err, "lane "+id)
}

// Lanes lists a release's lanes by platform.
func (s *Store) Lanes(ctx context.Context, releaseID string) ([]release.Lane, error) {
	return s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE l.release_id = $1 ORDER BY l.platform`, releaseID)
}

// DueLanes lists lanes whose rollout is rolling or waiting and eligible at now.
func (s *Store) DueLanes(ctx context.Context, now time.Time, limit int) ([]release.Lane, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE r.state IN ('rolling', 'waiting') AND r.next_eligible_at <= $1 ORDER BY r.next_eligible_at, l.id LIMIT $2`, ms(now), limit)
}

func (s *Store) lanes(ctx context.Context, q string, args ...any) ([]release.Lane, error) {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []release.Lane
	for rows.Next() {
		l, err := scanLane(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// UpdateStatus writes next as the lane's rollout status if the stored version
// is still next.Version; otherwise someone else moved the lane first and the
// write is refused with ErrConflict. It returns next with the new version.
func (s *Store) UpdateStatus(ctx context.Context, laneID string, next release.Status) (release.Status, error) {
	if !next.State.Valid() {
		return next, fmt.Errorf("state %q is not a known state", next.State)
	}
	res, err := s.q.ExecContext(ctx, `UPDATE rollouts SET state = $2, step_index = $3, percent = $4, reason = $5, step_started_at = $6,
		next_eligible_at = $7, updated_at = $8, stage_started_at = $10, version = version + 1,
		gates_due_at = CASE WHEN `+stageStartSQL("")+` = $11 THEN gates_due_at ELSE 0 END WHERE lane_id = $1 AND version = $9`,
		laneID, string(next.State), next.StepIndex, next.Percent, next.Reason, ms(next.StepStartedAt), ms(next.NextEligibleAt), ms(next.UpdatedAt), next.Version,
		ms(next.StageStartedAt), ms(next.StageStart()))
	if err != nil {
		return next, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return next, err
	}
	if n == 0 {
		if _, err := s.GetLane(ctx, laneID); err != nil {
			return next, err
		}
		return next, fmt.Errorf("lane %s changed since version %d: %w", laneID, next.Version, ErrConflict)
	}
	next.Version++
	return next, nil
}

// LaneData reads the lane's adapter state (build ids, submission ids…) into v.
func (s *Store) LaneData(ctx context.Context, laneID string, v any) error {
	var raw string
	if err := s.q.QueryRowContext(ctx, `SELECT data FROM lanes WHERE id = $1`, laneID).Scan(&raw); err != nil {
		return notFound(err, "lane "+laneID)
	}
	return json.Unmarshal([]byte(raw), v)
}

// SetLaneData replaces the lane's adapter state with v. A withdrawn lane
// (WithdrawLane) refuses it with an error matching ErrWithdrawn and
// ErrNotFound, so its job stops before the next remote change.
func (s *Store) SetLaneData(ctx context.Context, laneID string, v any, now time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	res, err := s.q.ExecContext(ctx, `UPDATE lanes SET data = $2, updated_at = $3 WHERE id = $1 AND withdrawn_at = 0`, laneID, string(b), ms(now))
	if err != nil {
		return err
	}
	if err := oneRow(res, "lane "+laneID); err != nil {
		return s.withdrawnOr(ctx, laneID, err)
	}
	return nil
}

// SetLaneKind changes a lane's kind and reason (e.g. a refused lane).
func (s *Store) SetLaneKind(ctx context.Context, laneID string, kind release.LaneKind, reason string, now time.Time) error {
	res, err := s.q.ExecContext(ctx, `UPDATE lanes SET kind = $2, reason = $3, updated_at = $4 WHERE id = $1`, laneID, string(kind), reason, ms(now))
	if err != nil {
		return err
	}
	return oneRow(res, "lane "+laneID)
}

// RecordBinary records a store binary once; recording the same app, platform
// and build number again changes nothing and reports false.
func (s *Store) RecordBinary(ctx context.Context, b release.Binary) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO binaries (app, platform, version, build_number, commit_sha, fingerprint, release_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (app, platform, build_number) DO NOTHING`,
		b.App, string(b.Platform), b.Version, b.BuildNumber, b.Commit, b.Fingerprint, b.ReleaseID, ms(b.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("record %s binary %s (%s): %w", b.Platform, b.Version, b.BuildNumber, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Binaries lists an app's binaries for a platform, newest first.
func (s *Store) Binaries(ctx context.Context, app string, p release.Platform) ([]release.Binary, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT app, platform, version, build_number, commit_sha, fingerprint, release_id, created_at
		FROM binaries WHERE app = $1 AND platform = $2 ORDER BY created_at DESC, id DESC`, app, string(p))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []release.Binary
	for rows.Next() {
		var b release.Binary
		var platform string
		var c int64
		if err := rows.Scan(&b.App, &platform, &b.Version, &b.BuildNumber, &b.Commit, &b.Fingerprint, &b.ReleaseID, &c); err != nil {
			return nil, err
		}
		b.Platform, b.CreatedAt = release.Platform(platform), fromMS(c)
		out = append(out, b)
	}
	return out, rows.Err()
}

// LatestBinary is the newest binary of an app for a platform.
func (s *Store) LatestBinary(ctx context.Context, app string, p release.Platform) (release.Binary, error) {
	bs, err := s.Binaries(ctx, app, p)
	if err != nil {
		return release.Binary{}, err
	}
	if len(bs) == 0 {
		return release.Binary{}, fmt.Errorf("no %s binary of %s: %w", p, app, ErrNotFound)
	}
	return bs[0], nil
}

// AppendEvent adds an entry to the audit log and returns its id.
//
// A release's events take turns: the appender bumps the release's counter
// in event_sequences first and holds that row lock until its transaction
// commits, so within one release seq and id grow in commit order and
// per-release readers may page with "after id". Appenders of different
// releases never wait on each other, so across releases ids are NOT in
// commit order: readers of the whole log use LogEvents.
func (s *Store) AppendEvent(ctx context.Context, e release.Event) (int64, error) {
	details, err := eventDetails(e)
	if err != nil {
		return 0, err
	}
	var id int64
	if e.ReleaseID != "" && s.DB.Engine == Postgres {
		// One round trip: the counter's row is locked before the event's
		// id is drawn, as below.
		err = s.q.QueryRowContext(ctx, `WITH s AS (INSERT INTO event_sequences (release_id, seq) VALUES ($3, 1)
				ON CONFLICT (release_id) DO UPDATE SET seq = event_sequences.seq + 1 RETURNING seq)
			INSERT INTO events (at, actor, release_id, lane_id, kind, details, seq) SELECT $1, $2, $3, $4, $5, $6, s.seq FROM s RETURNING id`,
			ms(e.At), e.Actor, e.ReleaseID, e.LaneID, e.Kind, details).Scan(&id)
		return id, err
	}
	err = s.Tx(ctx, func(tx *Store) error {
		var seq int64
		if e.ReleaseID != "" {
			if err := tx.q.QueryRowContext(ctx, `INSERT INTO event_sequences (release_id, seq) VALUES ($1, 1)
				ON CONFLICT (release_id) DO UPDATE SET seq = event_sequences.seq + 1 RETURNING seq`, e.ReleaseID).Scan(&seq); err != nil {
				return fmt.Errorf("event sequence of release %s: %w", e.ReleaseID, err)
			}
		}
		// xid comes from the column's default: the writing transaction on
		// Postgres, 0 on SQLite.
		return tx.q.QueryRowContext(ctx, `INSERT INTO events (at, actor, release_id, lane_id, kind, details, seq) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			ms(e.At), e.Actor, e.ReleaseID, e.LaneID, e.Kind, details, seq).Scan(&id)
	})
	return id, err
}

// eventDetails checks an event and gives its details as stored.
func eventDetails(e release.Event) (string, error) {
	if e.Kind == "" || e.Actor == "" {
		return "", errors.New("event needs a kind and an actor")
	}
	if len(e.Details) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(e.Details)
	if err != nil {
		return "", fmt.Errorf("event %s details: %w", e.Kind, err)
	}
	return string(b), nil
}

// Events lists a release's audit events after an id, oldest first. With
// releaseID "" it lists the whole log by id, which is a listing, not a
// tail: an event that commits later may have a lower id than one already
// listed. Readers that follow the whole log use LogEvents.
func (s *Store) Events(ctx context.Context, releaseID string, afterID int64, limit int) ([]release.Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	return s.events(ctx, `SELECT id, at, actor, release_id, lane_id, kind, details FROM events
		WHERE ($1 = '' OR release_id = $1) AND id > $2 ORDER BY id LIMIT $3`, releaseID, afterID, limit)
}

// Delivery is a recorded webhook delivery.
type Delivery struct {
	Source     string
	ID         string
	Event      string
	ReceivedAt time.Time
	Outcome    string
	ReleaseID  string
}

// RecordDelivery records a webhook delivery id. It returns false when the id
// was recorded before (a redelivery), in which case nothing is written.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO webhook_deliveries (source, delivery_id, event, received_at, outcome, release_id)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source, delivery_id) DO NOTHING`,
		d.Source, d.ID, d.Event, ms(d.ReceivedAt), d.Outcome, d.ReleaseID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetDeliveryOutcome records what a delivery led to.
func (s *Store) SetDeliveryOutcome(ctx context.Context, source, id, outcome, releaseID string) error {
	res, err := s.q.ExecContext(ctx, `UPDATE webhook_deliveries SET outcome = $3, release_id = $4 WHERE source = $1 AND delivery_id = $2`, source, id, outcome, releaseID)
	if err != nil {
		return err
	}
	return oneRow(res, "delivery "+id)
}

// GetDelivery reads a recorded delivery.
func (s *Store) GetDelivery(ctx context.Context, source, id string) (Delivery, error) {
	var d Delivery
	var at int64
	err := s.q.QueryRowContext(ctx, `SELECT source, delivery_id, event, received_at, outcome, release_id FROM webhook_deliveries WHERE source = $1 AND delivery_id = $2`, source, id).
		Scan(&d.Source, &d.ID, &d.Event, &at, &d.Outcome, &d.ReleaseID)
	d.ReceivedAt = fromMS(at)
	return d, notFound(err, "delivery "+id)
}

// PlansWaiting counts, up to limit, the releases of apps created at or
// after since that are still being planned (their plan job queued, running
// or retrying). Planning gives up within about an hour and a half, so a
// since of a few hours bounds the read to recent releases, on the (app,
// created_at) index.
func (s *Store) PlansWaiting(ctx context.Context, apps []string, since time.Time, limit int) (int, error) {
	if len(apps) == 0 || limit <= 0 {
		return 0, nil
	}
	args := append([]any{ms(since), string(release.ReleasePlanning), limit}, anys(apps)...)
	var n int
	// The walk must be the (app, created_at) index, newest first, stopping
	// at limit: "state || ''" keeps both engines off the (state, …) index,
	// which would walk every other app's releases being planned (20,000
	// of a failing repository made SQLite's intake collapse).
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM releases
		WHERE app IN (`+placeholders(4, len(apps))+`) AND created_at >= $1 AND state || '' = $2 ORDER BY created_at DESC LIMIT $3) w`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("plans waiting of %s: %w", strings.Join(apps, ", "), err)
	}
	return n, nil
}
