package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// DueCursor is where a walk over due lanes stands: the (next_eligible_at,
// lane id) of the last lane it took. The zero cursor is the beginning.
type DueCursor struct {
	At     time.Time
	LaneID string
}

// DueLanesAfter lists up to limit lanes that are rolling or waiting and
// eligible at now, in (next_eligible_at, lane id) order, strictly after c.
// Each batch is one indexed range read (rollouts_due_keyset), so walking
// every due lane costs the same per lane whatever the batch.
func (s *Store) DueLanesAfter(ctx context.Context, now time.Time, c DueCursor, limit int) ([]release.Lane, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.lanes(ctx, `SELECT `+laneCols+s.walkFrom("rollouts_due_keyset")+`WHERE r.state IN ('rolling', 'waiting') AND r.next_eligible_at <= $1
		AND (r.next_eligible_at, r.lane_id) > ($2, $3)
		ORDER BY r.next_eligible_at, r.lane_id LIMIT $4`, ms(now), ms(c.At), c.LaneID, limit)
}

// walkFrom is laneFrom for a walk in the order of a partial index of
// rollouts. SQLite, without statistics, would rather read the lanes by
// state and sort all that are left for every batch (a pass would cost the
// square of the lanes), so it is told which index to walk.
func (s *Store) walkFrom(index string) string {
	if s.DB.Engine == SQLite {
		return ` FROM rollouts r INDEXED BY ` + index + ` JOIN lanes l ON l.id = r.lane_id `
	}
	return laneFrom
}

// placeholders returns "$from, $from+1, …" for n values.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

// anys is a statement's arguments from strings.
func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// LanesByID reads the lanes with the given ids in one query, keyed by id;
// ids that name no lane are absent.
func (s *Store) LanesByID(ctx context.Context, ids []string) (map[string]release.Lane, error) {
	out := make(map[string]release.Lane, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := anys(ids)
	ls, err := s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE l.id IN (`+placeholders(1, len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read %d lanes: %w", len(ids), err)
	}
	for _, l := range ls {
		out[l.ID] = l
	}
	return out, nil
}

// AcquireLaneLeases takes the leases of many lanes for node under one
// token in one statement, on the terms of AcquireLaneLease, and returns
// the ids of the lanes it got (the others are someone else's).
func (s *Store) AcquireLaneLeases(ctx context.Context, ids []string, node, token string, until, now, deadBefore time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{node, token, ms(until), ms(now), ms(deadBefore)}
	var values strings.Builder
	for i, id := range ids {
		if i > 0 {
			values.WriteString(", ")
		}
		fmt.Fprintf(&values, "($%d, $1, $2, $3)", len(args)+1)
		args = append(args, id)
	}
	rows, err := s.q.QueryContext(ctx, `INSERT INTO lane_leases (lane_id, node, token, expires_at) VALUES `+values.String()+`
		ON CONFLICT (lane_id) DO UPDATE SET node = excluded.node, token = excluded.token, expires_at = excluded.expires_at
		WHERE lane_leases.token = excluded.token OR lane_leases.expires_at < $4
			OR lane_leases.node IN (SELECT node FROM replicas WHERE heartbeat_at < $5)
		RETURNING lane_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("take the leases of %d lanes: %w", len(ids), err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		got = append(got, id)
	}
	return got, rows.Err()
}

// ReleaseLeases gives back every lane lease token still holds.
func (s *Store) ReleaseLeases(ctx context.Context, token string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM lane_leases WHERE token = $1`, token)
	return err
}

// GatesDueCursor is where a walk over lanes whose gates are due stands.
type GatesDueCursor struct {
	At     int64 // gates_due_at of the last lane taken
	LaneID string
}

// GatesDueLanes lists up to limit moving lanes whose gates are due at now
// (SetGatesDue; a new stage makes them due at once), in (gates due,
// lane id) order after c, from an index: lanes whose gates were measured
// within their intervals cost nothing.
func (s *Store) GatesDueLanes(ctx context.Context, now time.Time, c GatesDueCursor, limit int) ([]release.Lane, GatesDueCursor, error) {
	if limit <= 0 {
		limit = 500
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+laneCols+`, r.gates_due_at`+s.walkFrom("rollouts_gates_due")+`WHERE r.state IN ('rolling', 'waiting') AND r.gates_due_at <= $1
		AND (r.gates_due_at, r.lane_id) > ($2, $3)
		ORDER BY r.gates_due_at, r.lane_id LIMIT $4`, now.UnixMilli(), c.At, c.LaneID, limit)
	if err != nil {
		return nil, c, fmt.Errorf("lanes whose gates are due: %w", err)
	}
	defer rows.Close()
	var out []release.Lane
	for rows.Next() {
		var at int64
		l, err := scanLane(scanExtra{rows, &at})
		if err != nil {
			return nil, c, err
		}
		out = append(out, l)
		c = GatesDueCursor{At: at, LaneID: l.ID}
	}
	return out, c, rows.Err()
}

// scanExtra scans a lane row with one more column after laneCols.
type scanExtra struct {
	row   interface{ Scan(...any) error }
	extra *int64
}

func (p scanExtra) Scan(dest ...any) error { return p.row.Scan(append(dest, p.extra)...) }

// stageStartSQL is release.Status.StageStart in SQL, over the stored
// (pre-update) columns of rollouts (alias r, or none): a lane without a
// stage start (OTA lanes reach their first percentage outside Reconcile)
// begins a stage at each step.
func stageStartSQL(alias string) string {
	if alias != "" {
		alias += "."
	}
	return `(CASE WHEN ` + alias + `stage_started_at <> 0 THEN ` + alias + `stage_started_at ELSE ` + alias + `step_started_at END)`
}

// GatesNever is the gates_due_at of a lane whose gates are not measured in
// its current stage (no rules, or not yet at a percentage).
var GatesNever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// GatesDue is when a lane's gates are next due, as judged in the stage
// that began at Stage (release.Status.StageStart).
type GatesDue struct {
	LaneID string
	Stage  time.Time
	At     time.Time
}

// SetGatesDue records when the lanes' gates are next due, in one
// statement. A lane whose stage changed meanwhile keeps its (new stage's)
// due time.
func (s *Store) SetGatesDue(ctx context.Context, due []GatesDue) error {
	if len(due) == 0 {
		return nil
	}
	if s.DB.Engine == SQLite {
		// SQLite joins an UPDATE's target with a VALUES list by scanning
		// the table for every row of it; row by row in one transaction
		// (the caller's, or this one) each update is a primary-key lookup.
		return s.Tx(ctx, func(tx *Store) error {
			for _, d := range due {
				if _, err := tx.q.ExecContext(ctx, `UPDATE rollouts SET gates_due_at = $3 WHERE lane_id = $1 AND `+stageStartSQL("")+` = $2`,
					d.LaneID, ms(d.Stage), d.At.UnixMilli()); err != nil {
					return fmt.Errorf("record when the gates of lane %s are due: %w", d.LaneID, err)
				}
			}
			return nil
		})
	}
	var values strings.Builder
	args := make([]any, 0, 3*len(due))
	for i, d := range due {
		if i > 0 {
			values.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&values, "($%d, CAST($%d AS BIGINT), CAST($%d AS BIGINT))", n+1, n+2, n+3)
		args = append(args, d.LaneID, ms(d.Stage), d.At.UnixMilli())
	}
	_, err := s.q.ExecContext(ctx, `UPDATE rollouts SET gates_due_at = v.column3 FROM (VALUES `+values.String()+`) AS v
		WHERE rollouts.lane_id = v.column1 AND `+stageStartSQL("rollouts")+` = v.column2`, args...)
	if err != nil {
		return fmt.Errorf("record when the gates of %d lanes are due: %w", len(due), err)
	}
	return nil
}

// RecordMeasurements stores many measurements in one statement (the gates
// pass records a page of lanes' at once), on RecordMeasurement's terms.
func (s *Store) RecordMeasurements(ctx context.Context, list []release.Measurement) error {
	// SQLite (modernc) looks each $n up by name when it binds, so a
	// statement's cost grows with the square of its parameters: a few
	// dozen rows a statement there.
	chunk := 500
	if s.DB.Engine == SQLite {
		chunk = 40
	}
	for len(list) > chunk {
		if err := s.recordMeasurements(ctx, list[:chunk]); err != nil {
			return err
		}
		list = list[chunk:]
	}
	return s.recordMeasurements(ctx, list)
}

func (s *Store) recordMeasurements(ctx context.Context, list []release.Measurement) error {
	if len(list) == 0 {
		return nil
	}
	var values strings.Builder
	args := make([]any, 0, 10*len(list))
	for i, m := range list {
		if m.LaneID == "" || m.Gate == "" || m.Phase == "" || m.At.IsZero() {
			return fmt.Errorf("gate measurement: lane, gate, phase and time are required (lane %q, gate %q, phase %q)", m.LaneID, m.Gate, m.Phase)
		}
		vals, value, err := measurementValues(m)
		if err != nil {
			return err
		}
		if i > 0 {
			values.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&values, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10)
		args = append(args, m.LaneID, m.Gate, ms(m.At), m.Percent, string(m.Phase), value, m.Samples, m.Reason, m.Source, vals)
	}
	if _, err := s.q.ExecContext(ctx, `INSERT INTO gate_measurements (lane_id, gate, measured_at, percent, phase, value, samples, reason, source, vals)
		VALUES `+values.String(), args...); err != nil {
		return fmt.Errorf("record %d gate measurements: %w", len(list), err)
	}
	return nil
}

// ReleasesByID reads the releases with the given ids in one query, keyed
// by id; ids that name no release are absent.
func (s *Store) ReleasesByID(ctx context.Context, ids []string) (map[string]release.Release, error) {
	out := make(map[string]release.Release, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := anys(ids)
	rows, err := s.q.QueryContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE id IN (`+placeholders(1, len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read %d releases: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		out[r.ID] = r
	}
	return out, rows.Err()
}

// LaneStage names a lane and when its current stage began.
type LaneStage struct {
	LaneID string
	Since  time.Time
}

// StageMeasurements reads many lanes' measurements of their current stage
// (as Measurements does for one: oldest first, at most
// MaxStageMeasurements each) and whether each was measured before it (as
// MeasuredBefore), a hundred lanes a query.
func (s *Store) StageMeasurements(ctx context.Context, lanes []LaneStage) (stage map[string][]release.Measurement, before map[string]bool, err error) {
	stage, before = map[string][]release.Measurement{}, map[string]bool{}
	for len(lanes) > 0 {
		part := lanes[:min(100, len(lanes))]
		lanes = lanes[len(part):]
		var after, earlier strings.Builder
		args := make([]any, 0, 2*len(part))
		for i, l := range part {
			if i > 0 {
				after.WriteString(" OR ")
				earlier.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&after, "(lane_id = $%d AND measured_at > $%d)", len(args)+1, len(args)+2)
			// One index probe per lane, however long its history.
			fmt.Fprintf(&earlier, "SELECT * FROM (SELECT lane_id FROM gate_measurements WHERE lane_id = $%d AND measured_at <= $%d LIMIT 1) b%d",
				len(args)+1, len(args)+2, i)
			args = append(args, l.LaneID, ms(l.Since))
		}
		rows, err := s.q.QueryContext(ctx, `SELECT `+measurementCols+` FROM gate_measurements WHERE `+after.String()+`
			ORDER BY lane_id, measured_at DESC, id DESC`, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("measurements of %d lanes: %w", len(part), err)
		}
		for rows.Next() {
			m, err := scanMeasurement(rows)
			if err != nil {
				rows.Close()
				return nil, nil, err
			}
			if len(stage[m.LaneID]) < MaxStageMeasurements {
				stage[m.LaneID] = append(stage[m.LaneID], m)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		rows, err = s.q.QueryContext(ctx, earlier.String(), args...)
		if err != nil {
			return nil, nil, fmt.Errorf("measurements of %d lanes: %w", len(part), err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, nil, err
			}
			before[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	for _, ms := range stage {
		slices.Reverse(ms)
	}
	return stage, before, nil
}

// LaneStatus is a lane's next status for UpdateStatuses.
type LaneStatus struct {
	LaneID string
	Next   release.Status
}

// UpdateStatuses writes many lanes' statuses on UpdateStatus's terms (each
// only if its stored version is still Next.Version), in one statement on
// Postgres (row by row on SQLite, where a statement is no round trip). It
// returns the statuses written, with their new versions, by lane; a lane
// that moved meanwhile, or is gone, is absent.
func (s *Store) UpdateStatuses(ctx context.Context, list []LaneStatus) (map[string]release.Status, error) {
	out := make(map[string]release.Status, len(list))
	for _, ls := range list {
		if !ls.Next.State.Valid() {
			return nil, fmt.Errorf("lane %s: state %q is not a known state", ls.LaneID, ls.Next.State)
		}
	}
	if s.DB.Engine != Postgres || len(list) == 1 {
		for _, ls := range list {
			st, err := s.UpdateStatus(ctx, ls.LaneID, ls.Next)
			if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[ls.LaneID] = st
		}
		return out, nil
	}
	var values strings.Builder
	args := make([]any, 0, 11*len(list))
	for i, ls := range list {
		if i > 0 {
			values.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&values, "($%d, $%d, CAST($%d AS INTEGER), CAST($%d AS INTEGER), $%d, CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS BIGINT))",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11)
		st := ls.Next
		args = append(args, ls.LaneID, string(st.State), st.StepIndex, st.Percent, st.Reason, ms(st.StepStartedAt), ms(st.NextEligibleAt),
			ms(st.UpdatedAt), st.Version, ms(st.StageStartedAt), ms(st.StageStart()))
	}
	rows, err := s.q.QueryContext(ctx, `UPDATE rollouts r SET state = v.column2, step_index = v.column3, percent = v.column4, reason = v.column5,
		step_started_at = v.column6, next_eligible_at = v.column7, updated_at = v.column8, stage_started_at = v.column10, version = r.version + 1,
		gates_due_at = CASE WHEN `+stageStartSQL("r")+` = v.column11 THEN r.gates_due_at ELSE 0 END
		FROM (VALUES `+values.String()+`) AS v WHERE r.lane_id = v.column1 AND r.version = v.column9 RETURNING r.lane_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("update the statuses of %d lanes: %w", len(list), err)
	}
	defer rows.Close()
	written := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		written[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, ls := range list {
		if written[ls.LaneID] {
			st := ls.Next
			st.Version++
			out[ls.LaneID] = st
		}
	}
	return out, nil
}

// AppendEvents appends events to the audit log in their order, on
// AppendEvent's terms, a few dozen rows a statement: a reconcile batch's
// events cost a round trip or two instead of two per lane. Each release's
// counter is bumped once by its number of events, all counters in one
// statement in release order (so two batches never wait on each other
// crosswise), before any id is drawn; a release's events then take the
// places the counter handed out, in the batch's order.
func (s *Store) AppendEvents(ctx context.Context, es []release.Event) error {
	if len(es) == 0 {
		return nil
	}
	type row struct {
		e       release.Event
		details string
		seq     int64
	}
	rows := make([]row, len(es))
	for i, e := range es {
		details, err := eventDetails(e)
		if err != nil {
			return err
		}
		rows[i] = row{e: e, details: details}
	}
	chunk := 200
	if s.DB.Engine == SQLite {
		chunk = 40 // see RecordMeasurements
	}
	return s.Tx(ctx, func(tx *Store) error {
		next, err := reserveSeqs(ctx, tx, rows, func(r row) string { return r.e.ReleaseID }, chunk)
		if err != nil {
			return err
		}
		for i := range rows {
			if id := rows[i].e.ReleaseID; id != "" {
				rows[i].seq = next[id]
				next[id]++
			}
		}
		for len(rows) > 0 {
			part := rows[:min(chunk, len(rows))]
			rows = rows[len(part):]
			var values strings.Builder
			args := make([]any, 0, 7*len(part))
			for i, r := range part {
				if i > 0 {
					values.WriteString(", ")
				}
				n := len(args)
				fmt.Fprintf(&values, "($%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7)
				args = append(args, ms(r.e.At), r.e.Actor, r.e.ReleaseID, r.e.LaneID, r.e.Kind, r.details, r.seq)
			}
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO events (at, actor, release_id, lane_id, kind, details, seq) VALUES `+values.String(), args...); err != nil {
				return fmt.Errorf("append %d events: %w", len(part), err)
			}
		}
		return nil
	})
}

// reserveSeqs bumps the event counter of every release that items name by
// the number of items naming it and returns each release's first reserved
// place. Counters are upserted in release order, chunk rows a statement.
func reserveSeqs[T any](ctx context.Context, tx *Store, items []T, release func(T) string, chunk int) (map[string]int64, error) {
	count := map[string]int64{}
	for _, it := range items {
		if id := release(it); id != "" {
			count[id]++
		}
	}
	ids := make([]string, 0, len(count))
	for id := range count {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	first := make(map[string]int64, len(ids))
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		var values strings.Builder
		args := make([]any, 0, 2*len(part))
		for i, id := range part {
			if i > 0 {
				values.WriteString(", ")
			}
			fmt.Fprintf(&values, "($%d, $%d)", len(args)+1, len(args)+2)
			args = append(args, id, count[id])
		}
		rows, err := tx.q.QueryContext(ctx, `INSERT INTO event_sequences (release_id, seq) VALUES `+values.String()+`
			ON CONFLICT (release_id) DO UPDATE SET seq = event_sequences.seq + excluded.seq RETURNING release_id, seq`, args...)
		if err != nil {
			return nil, fmt.Errorf("event sequences of %d releases: %w", len(part), err)
		}
		for rows.Next() {
			var id string
			var last int64
			if err := rows.Scan(&id, &last); err != nil {
				rows.Close()
				return nil, err
			}
			first[id] = last - count[id] + 1
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return first, nil
}
