package httpapi_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// deliveriesCounted reads releasepilot_webhook_deliveries_total{source="github"}
// by outcome.
func (b *hookBundle) deliveriesCounted(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := b.metrics.Registry.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "releasepilot_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			require.Equal(t, "github", labels["source"])
			out[labels["outcome"]] += m.GetCounter().GetValue()
		}
	}
	return out
}

// dump is every row of every table of the database, as text.
func dump(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if db.Engine == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := db.SQL.QueryContext(ctx, q)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Contains(t, tables, "webhook_deliveries")
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := db.SQL.QueryContext(ctx, `SELECT * FROM `+table)
		require.NoError(t, err, table)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			out[table] = append(out[table], fmt.Sprintf("%q", vals))
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return out
}

// TestDeliveriesNoAppTakesTouchNothing: a signed delivery for another
// repository, a tag no rule matches or an event that is not a tag changes
// no row of any table; it is answered 204 and counted by why.
func TestDeliveriesNoAppTakesTouchNothing(t *testing.T) {
	t.Parallel()
	secret := []byte(hookSecret)
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			b := setupExampleHook(t, e)
			// Something in the tables first, so an update would show.
			code, body := b.send(t, githubtest.NewDelivery("push", retag(t, githubtest.Example("push.0"), "v1.0.0"), secret))
			require.Equal(t, 202, code, body)
			before := dump(t, b.db)
			require.Len(t, before["webhook_deliveries"], 1)

			for _, d := range []struct {
				d       githubtest.Delivery
				outcome string
			}{
				{githubtest.NewDelivery("push", githubtest.TagPushPayload("evil/fork", "v9.9.9", commitSHA), secret), "ignored_repo"},
				{githubtest.NewDelivery("push", githubtest.TagDeletePayload("evil/fork", "v1.0.0", commitSHA), secret), "ignored_repo"},
				{githubtest.NewDelivery("push", retag(t, githubtest.Example("push.0"), "nightly"), secret), "ignored_tag"},
				{githubtest.NewDelivery("push", retag(t, githubtest.Example("push.0"), "v1.0"), secret), "ignored_tag"},
				{githubtest.NewDelivery("create", retag(t, githubtest.Example("create.0"), "build-7"), secret), "ignored_tag"},
				{githubtest.NewDelivery("push", githubtest.BranchPushPayload(exampleRepo, "main", commitSHA, commitSHA), secret), "ignored_event"},
				{githubtest.NewDelivery("issues", []byte(`{"action":"opened","repository":{"full_name":"`+exampleRepo+`"}}`), secret), "ignored_event"},
			} {
				code, body := b.send(t, d.d)
				require.Equal(t, 204, code, "%s: %s", d.outcome, body)
			}
			require.Equal(t, before, dump(t, b.db), "no row written, changed or deleted")
			require.Equal(t, map[string]float64{"created": 1, "ignored_repo": 2, "ignored_tag": 3, "ignored_event": 2}, b.deliveriesCounted(t))

			// The counter is on /metrics.
			s := b.metricsText(t)
			require.Contains(t, s, `releasepilot_webhook_deliveries_total{outcome="ignored_repo",source="github"} 2`)
		})
	}
}

// TestDeliveryOutcomesCounted counts the outcomes that do touch the
// database: a new release, the same tag again, a redelivery, a moved tag.
func TestDeliveryOutcomesCounted(t *testing.T) {
	t.Parallel()
	b := setupHook(t)
	secret := []byte(hookSecret)
	first := githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v3.0.0", commitSHA), secret)
	code, _ := b.send(t, first)
	require.Equal(t, 202, code)
	code, _ = b.send(t, first)
	require.Equal(t, 200, code)
	code, _ = b.send(t, githubtest.NewDelivery("create", githubtest.TagCreatePayload(repoName, "v3.0.0"), secret))
	require.Equal(t, 202, code)
	code, _ = b.send(t, githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v3.0.0", strings.Repeat("b", 40)), secret))
	require.Equal(t, 202, code)
	code, _ = b.send(t, githubtest.NewDelivery("push", githubtest.TagPushPayload(repoName, "v3.0.0", commitSHA), []byte("guess")))
	require.Equal(t, 401, code)
	require.Equal(t, map[string]float64{"created": 1, "redelivery": 1, "tag_change": 2, "rejected": 1}, b.deliveriesCounted(t))
}

func (b *hookBundle) metricsText(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}
