package playstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
)

// pagingReporting serves the Reporting API with one processed day and query
// pages whose nextPageToken comes from token(page); it stops paging by
// itself after stopAfter pages so that a client without a guard terminates.
func pagingReporting(t *testing.T, token func(page int) string, stopAfter int) (*playstore.Client, *atomic.Int64) {
	t.Helper()
	var queries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = fmt.Fprint(w, `{"freshnessInfo":{"freshnesses":[{"aggregationPeriod":"DAILY","latestEndTime":{"year":2026,"month":11,"day":18,"timeZone":{"id":"America/Los_Angeles"}}}]}}`)
			return
		}
		if !strings.HasSuffix(r.URL.Path, ":query") {
			http.NotFound(w, r)
			return
		}
		n := int(queries.Add(1))
		next := ""
		if n < stopAfter {
			next = token(n)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"rows": []any{map[string]any{"aggregationPeriod": "DAILY",
				"startTime": map[string]any{"year": 2026, "month": 11, "day": 17, "timeZone": map[string]string{"id": "America/Los_Angeles"}},
				"metrics": []any{
					map[string]any{"metric": "userPerceivedCrashRate", "decimalValue": map[string]string{"value": "0.001"}},
					map[string]any{"metric": "userPerceivedAnrRate", "decimalValue": map[string]string{"value": "0.001"}},
					map[string]any{"metric": "distinctUsers", "decimalValue": map[string]string{"value": "100"}},
				}}},
			"nextPageToken": next,
		})
	}))
	t.Cleanup(srv.Close)
	c, err := playstore.New(context.Background(), playstore.Config{HTTPClient: srv.Client(), Endpoint: srv.URL + "/", ReportingEndpoint: srv.URL + "/",
		Sleep: func(context.Context, time.Duration) error { return nil }})
	require.NoError(t, err)
	return c, &queries
}

func TestVitalsPagingStopsOnARepeatedToken(t *testing.T) {
	t.Parallel()
	c, queries := pagingReporting(t, func(int) string { return "same-token" }, 1000)
	_, err := c.Vitals(context.Background(), pkg, 42, day(16))
	require.ErrorContains(t, err, `Play repeated nextPageToken "same-token"`)
	require.EqualValues(t, 2, queries.Load(), "the first page and the one that repeated its token")
}

func TestVitalsPagingStopsOnATokenCycle(t *testing.T) {
	t.Parallel()
	c, queries := pagingReporting(t, func(p int) string { return fmt.Sprintf("t%d", p%3) }, 1000)
	_, err := c.Vitals(context.Background(), pkg, 42, day(16))
	require.ErrorContains(t, err, "Play repeated nextPageToken")
	require.EqualValues(t, 4, queries.Load())
}

func TestVitalsPagingIsCapped(t *testing.T) {
	t.Parallel()
	c, queries := pagingReporting(t, func(p int) string { return fmt.Sprintf("page-%d", p) }, 100_000)
	_, err := c.Vitals(context.Background(), pkg, 42, day(16))
	require.ErrorContains(t, err, fmt.Sprintf("still paging after %d pages", playstore.MaxVitalsPages))
	require.EqualValues(t, playstore.MaxVitalsPages, queries.Load())
}

func TestVitalsPagingReadsEveryPage(t *testing.T) {
	t.Parallel()
	c, queries := pagingReporting(t, func(p int) string { return fmt.Sprintf("page-%d", p) }, 3)
	v, err := c.Vitals(context.Background(), pkg, 42, day(16))
	require.NoError(t, err)
	require.EqualValues(t, 4, queries.Load(), "three crash pages, then the server stops paging: one ANR page")
	require.Equal(t, 3, v.Crash.Days)
	require.Equal(t, int64(100), v.Crash.MinDailyUsers, "daily distinct users are not added up")
}
