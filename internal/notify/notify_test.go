package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/notify"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

type sink struct {
	mu     sync.Mutex
	bodies []map[string]any
	fail   bool
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s.bodies = append(s.bodies, m)
}

func (s *sink) got() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestTopicsMatchConfig(t *testing.T) {
	t.Parallel()
	require.Equal(t, config.NotifyTopics, notify.Topics)
}

func TestNotifierDeliversOnceInOrderAndRetries(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			st := store.New(storetest.Open(t, e))
			ctx := context.Background()
			require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
			rel, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "c", CreatedAt: t0})
			require.NoError(t, err)
			// History before notifications were configured is not replayed.
			_, err = st.AppendEvent(ctx, release.Event{At: t0, Actor: "system", ReleaseID: rel.ID, Kind: "lane.failed", Details: map[string]any{"platform": "ios", "reason": "old"}})
			require.NoError(t, err)

			slack, hook := &sink{}, &sink{}
			slackSrv, hookSrv := httptest.NewServer(slack), httptest.NewServer(hook)
			defer slackSrv.Close()
			defer hookSrv.Close()
			n := &notify.Notifier{Store: st, Targets: []notify.Target{
				{Kind: "slack", URL: slackSrv.URL + "/services/T000/B000/secret"},
				{Kind: "webhook", URL: hookSrv.URL, Topics: []string{"advanced", "halted"}},
			}}
			require.NoError(t, n.Pass(ctx)) // sets the cursors at the newest event
			require.Empty(t, slack.got())

			add := func(kind, actor string, d map[string]any) {
				_, err := st.AppendEvent(ctx, release.Event{At: t0, Actor: actor, ReleaseID: rel.ID, Kind: kind, Details: d})
				require.NoError(t, err)
			}
			add("rollout.advance", "system", map[string]any{"platform": "android", "percent": 25})
			add("command.halt", "token:alice", map[string]any{"platform": "android", "reason": "crash spike"})
			add("rollout.hold", "system", map[string]any{"platform": "android"})
			add("lane.failed", "system", map[string]any{"platform": "ios", "reason": "build INVALID"})

			hook.fail = true
			err = n.Pass(ctx)
			require.Error(t, err)
			require.NotContains(t, err.Error(), "secret", "target URLs are secrets")
			require.Len(t, slack.got(), 2, "slack got halted and failed (its default topics)")
			require.Empty(t, hook.got())

			hook.fail = false
			require.NoError(t, n.Pass(ctx))
			require.NoError(t, n.Pass(ctx), "a second pass sends nothing new")
			require.Len(t, slack.got(), 2)
			got := hook.got()
			require.Len(t, got, 2, "the webhook got advanced and halted once, after it came back")
			require.Equal(t, "advanced", got[0]["topic"])
			require.Equal(t, "halted", got[1]["topic"])
			require.Equal(t, "🛑 acme v1.4.0 [android]: halt by token:alice — crash spike", got[1]["text"])
			require.Equal(t, "🛑 acme v1.4.0 [android]: halt by token:alice — crash spike", slack.got()[0]["text"])
			require.Equal(t, "❌ acme v1.4.0 [ios]: failed — build INVALID", slack.got()[1]["text"])
		})
	}
}

func TestDeliveryErrorsNeverShowTheURL(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.Open(t, store.SQLite))
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	n := &notify.Notifier{Store: st, Targets: []notify.Target{{Kind: "slack", URL: "http://127.0.0.1:1/services/T0/B0/hunter2secret"}}}
	require.NoError(t, n.Pass(ctx))
	_, err := st.AppendEvent(ctx, release.Event{At: t0, Actor: "system", Kind: "lane.failed", Details: map[string]any{"platform": "ios", "reason": "x"}})
	require.NoError(t, err)
	err = n.Pass(ctx)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2secret")
	require.NotContains(t, err.Error(), "127.0.0.1:1")
	require.Contains(t, err.Error(), "delivery failed: Post: dial failed")
}

// TestAdvanceSaysWhatComesNext: an advance's message tells the channel
// when the next stage can come and what stands before it — while the lane
// still stands there; a late notification says nothing stale.
func TestAdvanceSaysWhatComesNext(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.Open(t, store.SQLite))
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	rel, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "c", CreatedAt: t0})
	require.NoError(t, err)
	lane, err := st.CreateLane(ctx, release.Lane{ReleaseID: rel.ID, Platform: release.Android, Kind: release.KindStore,
		Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(2 * time.Hour)}, []release.GateRule{{Metric: "crash_rate", Max: 0.01}}),
		Status: release.Status{State: release.StateRolling, StepIndex: 1, Percent: 10, StepStartedAt: t0}}, t0)
	require.NoError(t, err)
	slack := &sink{}
	srv := httptest.NewServer(slack)
	defer srv.Close()
	n := &notify.Notifier{Store: st, Targets: []notify.Target{{Kind: "slack", URL: srv.URL, Topics: []string{"advanced"}}}, Now: func() time.Time { return t0.Add(30 * time.Minute) }}
	_, err = st.AppendEvent(ctx, release.Event{At: t0, Actor: "system", ReleaseID: rel.ID, Kind: "release.created"})
	require.NoError(t, err)
	require.NoError(t, n.Pass(ctx)) // sets the cursor

	advance := func(pct int) {
		_, err := st.AppendEvent(ctx, release.Event{At: t0, Actor: "system", ReleaseID: rel.ID, LaneID: lane.ID, Kind: "rollout.advance",
			Details: map[string]any{"platform": "android", "percent": pct}})
		require.NoError(t, err)
	}
	advance(10) // where the lane stands
	advance(5)  // an older stage: the lane has moved on since
	require.NoError(t, n.Pass(ctx))
	got := slack.got()
	require.Len(t, got, 2)
	require.Equal(t, "📈 acme v1.4.0 [android]: rolled out to 10% — next: 25% not before 2026-11-25T14:00:00Z (in 1h30m0s), after soak 2h0m0s until 2026-11-25T14:00:00Z, then gate crash_rate ≤ 0.01 on fresh data", got[0]["text"])
	require.Equal(t, "📈 acme v1.4.0 [android]: rolled out to 5%", got[1]["text"])
}
