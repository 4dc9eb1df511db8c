package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// LaneWithData is a lane and its adapter state, undecoded.
type LaneWithData struct {
	release.Lane
	Data json.RawMessage
}

// OTALanes lists the newest OTA lanes of an app on a platform (at most
// limit), newest first, with their data: how the CodePush API finds the lane
// a release belongs to.
func (s *Store) OTALanes(ctx context.Context, app string, p release.Platform, limit int) ([]LaneWithData, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+laneCols+`, l.data`+laneFrom+`JOIN releases rel ON rel.id = l.release_id
		WHERE rel.app = $1 AND l.platform = $2 AND l.kind = $3 ORDER BY l.created_at DESC, l.id DESC LIMIT $4`,
		app, string(p), string(release.KindOTA), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LaneWithData
	for rows.Next() {
		var data string
		var lw LaneWithData
		l, err := scanLane(scanTail{rows, &data})
		if err != nil {
			return nil, err
		}
		lw.Lane, lw.Data = l, json.RawMessage(data)
		out = append(out, lw)
	}
	return out, rows.Err()
}

// scanTail scans a lane row followed by extra columns.
type scanTail struct {
	row  interface{ Scan(...any) error }
	tail *string
}

func (s scanTail) Scan(dest ...any) error { return s.row.Scan(append(dest, s.tail)...) }

// SetLanePlan replaces a lane's plan.
func (s *Store) SetLanePlan(ctx context.Context, laneID string, p release.Plan, now time.Time) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	res, err := s.q.ExecContext(ctx, `UPDATE lanes SET plan = $2, updated_at = $3 WHERE id = $1`, laneID, string(b), ms(now))
	if err != nil {
		return err
	}
	return oneRow(res, "lane "+laneID)
}
