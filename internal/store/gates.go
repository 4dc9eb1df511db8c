package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// RecordMeasurement stores one judged gate measurement of a lane and
// returns its id. A value that is not a number is stored as 0 (Judge never
// passes one as a success or a failure).
func (s *Store) RecordMeasurement(ctx context.Context, m release.Measurement) (int64, error) {
	if m.LaneID == "" || m.Gate == "" || m.Phase == "" || m.At.IsZero() {
		return 0, fmt.Errorf("gate measurement: lane, gate, phase and time are required (lane %q, gate %q, phase %q)", m.LaneID, m.Gate, m.Phase)
	}
	b, value, err := measurementValues(m)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.q.QueryRowContext(ctx, `INSERT INTO gate_measurements (lane_id, gate, measured_at, percent, phase, value, samples, reason, source, vals)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		m.LaneID, m.Gate, ms(m.At), m.Percent, string(m.Phase), value, m.Samples, m.Reason, m.Source, b).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record measurement of gate %s of lane %s: %w", m.Gate, m.LaneID, err)
	}
	return id, nil
}

// MaxStageMeasurements bounds how many of a stage's newest measurements
// GateReadings folds; a failure run longer than that counts as that long.
const MaxStageMeasurements = 2000

// Measurements lists a lane's measurements taken after since, oldest
// first, at most limit of the newest (0: MaxStageMeasurements). A
// measurement taken at the very instant a stage began belongs to the stage
// before: a pass measures before it decides.
func (s *Store) Measurements(ctx context.Context, laneID string, since time.Time, limit int) ([]release.Measurement, error) {
	if limit <= 0 || limit > MaxStageMeasurements {
		limit = MaxStageMeasurements
	}
	rows, err := s.q.QueryContext(ctx, `SELECT id, lane_id, gate, measured_at, percent, phase, value, samples, reason, source, vals
		FROM gate_measurements WHERE lane_id = $1 AND measured_at > $2 ORDER BY measured_at DESC, id DESC LIMIT $3`, laneID, ms(since), limit)
	if err != nil {
		return nil, fmt.Errorf("measurements of lane %s: %w", laneID, err)
	}
	defer rows.Close()
	var out []release.Measurement
	for rows.Next() {
		m, err := scanMeasurement(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// MeasuredBefore reports whether any gate of the lane was measured at or
// before t: whether the lane had a stage before the one that began at t.
func (s *Store) MeasuredBefore(ctx context.Context, laneID string, t time.Time) (bool, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM gate_measurements WHERE lane_id = $1 AND measured_at <= $2 LIMIT 1) x`, laneID, ms(t)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("measurements of lane %s: %w", laneID, err)
	}
	return n > 0, nil
}

// GateReadings folds a lane's measurements of the stage that began at since
// into a reading per gate key (release.Readings).
func (s *Store) GateReadings(ctx context.Context, laneID string, since time.Time) (map[string]release.GateReading, error) {
	ms, err := s.Measurements(ctx, laneID, since, 0)
	if err != nil {
		return nil, err
	}
	return release.Readings(ms), nil
}

// MovingLanes lists the lanes whose rollout is rolling or waiting, whenever
// they are next due: their gates are measured on their own schedule.
func (s *Store) MovingLanes(ctx context.Context, limit int) ([]release.Lane, error) {
	if limit <= 0 {
		limit = 500
	}
	return s.lanes(ctx, `SELECT `+laneCols+laneFrom+`WHERE r.state IN ('rolling', 'waiting') ORDER BY l.id LIMIT $1`, limit)
}

// measurementValues are a measurement's figures as stored: the raw values
// as JSON and the value, each without NaN or infinities.
func measurementValues(m release.Measurement) (string, float64, error) {
	vals := map[string]float64{}
	for k, v := range m.Values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			vals[k] = v
		}
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return "", 0, err
	}
	value := m.Value
	if math.IsNaN(value) || math.IsInf(value, 0) {
		value = 0
	}
	return string(b), value, nil
}

const measurementCols = `id, lane_id, gate, measured_at, percent, phase, value, samples, reason, source, vals`

func scanMeasurement(row interface{ Scan(...any) error }) (release.Measurement, error) {
	var m release.Measurement
	var at int64
	var phase, vals string
	if err := row.Scan(&m.ID, &m.LaneID, &m.Gate, &at, &m.Percent, &phase, &m.Value, &m.Samples, &m.Reason, &m.Source, &vals); err != nil {
		return m, err
	}
	m.At, m.Phase = fromMS(at), release.Phase(phase)
	if vals != "{}" && vals != "" {
		if err := json.Unmarshal([]byte(vals), &m.Values); err != nil {
			return m, fmt.Errorf("measurement %d values: %w", m.ID, err)
		}
	}
	if len(m.Values) == 0 {
		m.Values = nil
	}
	return m, nil
}
