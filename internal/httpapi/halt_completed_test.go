package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// TestHaltOfACompletedLane: Play can halt a fully rolled-out release (its
// predecessor takes its place), so a completed Android lane takes a halt;
// Apple cannot, so one on a completed iOS store lane is refused up front.
func TestHaltOfACompletedLane(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.Open(t, store.SQLite))
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	r, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "abc", CreatedAt: t0})
	require.NoError(t, err)
	plan := release.StagedPlan(release.DefaultStages, release.Wait{}, nil)
	done := release.Status{State: release.StateCompleted, StepIndex: len(plan.Steps), Percent: 100, StepStartedAt: t0}
	android, err := st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore, Plan: plan, Status: done}, t0)
	require.NoError(t, err)
	ios, err := st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindStore, Plan: plan, Status: done}, t0)
	require.NoError(t, err)

	h := httpapi.New(httpapi.Deps{Store: st, Tokens: []httpapi.Token{httpapi.NewToken("ops", httpapi.RoleOperator, opToken)}}).Handler()
	post := func(path string) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodPost, path, nil)
		req.Header.Set("Authorization", "Bearer "+opToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	code, body := post("/v1/lanes/" + android.ID + "/halt?dry_run=true")
	require.Equal(t, 200, code, body)
	require.Equal(t, "halt", body["action"])
	require.Equal(t, "halted", body["to"].(map[string]any)["state"])

	code, body = post("/v1/lanes/" + ios.ID + "/halt?dry_run=true")
	require.Equal(t, 409, code, body)
	require.Contains(t, body["error"].(map[string]any)["message"], "Apple cannot halt a release that reached everyone")
}
