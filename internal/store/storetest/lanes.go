package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// CreateLanes inserts many lanes with their rollout status at once (a few
// hundred rows per statement, one transaction), for tests and benchmarks
// that need thousands of lanes: store.CreateLane, a statement per row,
// would take longer than what they measure. Each lane needs its ID and
// ReleaseID set; the stored status version is 1.
func CreateLanes(tb testing.TB, db *store.DB, lanes []release.Lane, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.SQL.BeginTx(ctx, nil)
	require.NoError(tb, err)
	defer func() { _ = tx.Rollback() }()
	plans := map[string]string{}
	const chunk = 500
	for from := 0; from < len(lanes); from += chunk {
		part := lanes[from:min(from+chunk, len(lanes))]
		var lv, rv strings.Builder
		var la, ra []any
		for i, l := range part {
			require.NotEmpty(tb, l.ID, "CreateLanes needs lane ids")
			key := fmt.Sprintf("%p", l.Plan.Steps)
			plan, ok := plans[key]
			if !ok {
				b, err := json.Marshal(l.Plan)
				require.NoError(tb, err)
				plan = string(b)
				plans[key] = plan
			}
			if i > 0 {
				lv.WriteString(", ")
				rv.WriteString(", ")
			}
			n := len(la)
			fmt.Fprintf(&lv, "($%d, $%d, $%d, $%d, '', $%d, '{}', $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+6)
			la = append(la, l.ID, l.ReleaseID, string(l.Platform), string(l.Kind), plan, now.UnixMilli())
			st := l.Status
			if st.State == "" {
				st.State = release.StatePending
			}
			m := len(ra)
			fmt.Fprintf(&rv, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, 1, $%d, $%d)", m+1, m+2, m+3, m+4, m+5, m+6, m+7, m+8, m+9)
			ra = append(ra, l.ID, string(st.State), st.StepIndex, st.Percent, st.Reason, ms(st.StepStartedAt), ms(st.NextEligibleAt), now.UnixMilli(), ms(st.StageStartedAt))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO lanes (id, release_id, platform, kind, reason, plan, data, created_at, updated_at) VALUES `+lv.String(), la...)
		require.NoError(tb, err)
		_, err = tx.ExecContext(ctx, `INSERT INTO rollouts (lane_id, state, step_index, percent, reason, step_started_at, next_eligible_at, version, updated_at, stage_started_at) VALUES `+rv.String(), ra...)
		require.NoError(tb, err)
	}
	require.NoError(tb, tx.Commit())
}

// CreateReleases inserts n active releases of app (which must exist),
// tagged v1.0.0, v1.0.1 … at version 1.0.<i>, a few hundred rows per
// statement, and returns their ids in that order.
func CreateReleases(tb testing.TB, db *store.DB, app string, n int, now time.Time) []string {
	tb.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	const chunk = 500
	for from := 0; from < n; from += chunk {
		var v strings.Builder
		var args []any
		for i := from; i < min(from+chunk, n); i++ {
			ids[i] = fmt.Sprintf("rel_%s_%06d", app, i)
			if i > from {
				v.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&v, "($%d, $%d, $%d, $%d, 'abc', 'active', '', $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+5)
			args = append(args, ids[i], app, fmt.Sprintf("v1.0.%d", i), fmt.Sprintf("1.0.%d", i), now.UnixMilli())
		}
		_, err := db.SQL.ExecContext(ctx, `INSERT INTO releases (id, app, tag, version, commit_sha, state, notes, created_at, updated_at) VALUES `+v.String(), args...)
		require.NoError(tb, err)
	}
	return ids
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
