package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

var slackSecret = []byte("8f742231b10e8888abcd99yyyzzz85a5")

// slackForm is the form Slack posts for a slash command.
func slackForm(user, text string) string {
	return url.Values{
		"token": {"gIkuvaNzQIHg97ATvDxqgjtO"}, "team_id": {"T0001"}, "team_domain": {"acme"},
		"channel_id": {"C2147483705"}, "channel_name": {"releases"}, "user_id": {user}, "user_name": {"steve"},
		"command": {"/release"}, "text": {text}, "api_app_id": {"A123456"},
		"response_url": {"https://hooks.slack.com/commands/1234/5678"}, "trigger_id": {"13345224609.738474920.8088930838d88f008e0"},
	}.Encode()
}

type slackRig struct {
	t    testing.TB
	h    http.Handler
	st   *store.Store
	now  time.Time
	exec *recordingExecutor
	rel  release.Release
	lane release.Lane
}

func newSlackRig(t testing.TB) *slackRig {
	t.Helper()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, now))
	r, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "0123456789abcdef", CreatedAt: now})
	require.NoError(t, err)
	lane, err := st.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: release.Android, Kind: release.KindStore,
		Plan:   release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, []release.GateRule{{Metric: "crash_rate", Max: 0.01}}),
		Status: release.Status{State: release.StateWaiting, StepIndex: 1, Percent: 10, StepStartedAt: now}}, now)
	require.NoError(t, err)
	exec, runner := startAndroidRunner(t, db, st)
	s := httpapi.New(httpapi.Deps{Store: st, Commands: runner, Freezes: []release.Freeze{
		{From: now.Add(30 * time.Minute), To: now.Add(3 * time.Hour), Reason: "launch event", Apps: []string{"acme"}},
		{From: now, To: now.Add(99 * time.Hour), Reason: "not ours", Apps: []string{"other"}},
	}, Slack: &httpapi.Slack{SigningSecret: slackSecret,
		Users: map[string]httpapi.Role{"U0OPERATOR": httpapi.RoleOperator, "U0VIEWER": httpapi.RoleViewer}}})
	return &slackRig{t: t, h: s.Handler(), st: st, now: now, exec: exec, rel: r, lane: lane}
}

// post sends body as Slack does: signed with the secret at ts.
func (g *slackRig) post(body string, ts time.Time, sig string) (int, map[string]any) {
	g.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/slack", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	if sig == "" {
		sig = httpapi.SignSlack(slackSecret, ts, []byte(body))
	}
	req.Header.Set("X-Slack-Signature", sig)
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, req)
	var out map[string]any
	require.NoError(g.t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return rec.Code, out
}

// say runs a slash command as user and returns Slack's view of the answer.
func (g *slackRig) say(user, text string) (responseType, reply string) {
	g.t.Helper()
	code, out := g.post(slackForm(user, text), time.Now(), "")
	require.Equal(g.t, http.StatusOK, code, out)
	return out["response_type"].(string), out["text"].(string)
}

// TestSignSlackMatchesSlackDocs checks the signature against the worked
// example in Slack's "Verifying requests from Slack".
func TestSignSlackMatchesSlackDocs(t *testing.T) {
	t.Parallel()
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	got := httpapi.SignSlack(slackSecret, time.Unix(1531420618, 0), []byte(body))
	require.Equal(t, "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", got)
}

func TestSlackRefusesWhatSlackDidNotSign(t *testing.T) {
	t.Parallel()
	g := newSlackRig(t)
	body := slackForm("U0OPERATOR", "halt acme v1.4.0 android crash spike")
	now := time.Now()
	for name, tc := range map[string]struct {
		ts   time.Time
		sig  string
		want string
	}{
		"wrong signature": {now, "v0=" + strings.Repeat("0", 64), "X-Slack-Signature does not match the body"},
		"other secret":    {now, httpapi.SignSlack([]byte("another-secret"), now, []byte(body)), "does not match"},
		"replayed":        {now.Add(-6 * time.Minute), "", "is more than 5m0s from now (a replayed request?)"},
		"from the future": {now.Add(6 * time.Minute), "", "is more than 5m0s from now"},
	} {
		code, out := g.post(body, tc.ts, tc.sig)
		require.Equal(t, http.StatusUnauthorized, code, name)
		require.Contains(t, out["error"].(map[string]any)["message"], tc.want, name)
	}
	// Unsigned.
	req := httptest.NewRequest(http.MethodPost, "/webhooks/slack", strings.NewReader(body))
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Contains(t, rec.Body.String(), "missing X-Slack-Signature or X-Slack-Request-Timestamp")

	// Signed, but not a slash command.
	code, out := g.post("user_id=U0OPERATOR", now, "")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"].(map[string]any)["message"], "command: missing from the slash command's form")
	code, out = g.post("%zz=1", now, "")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"].(map[string]any)["message"], "body is not a URL-encoded form")
	code, _ = g.post(strings.Repeat("x", 70<<10), now, "")
	require.Equal(t, http.StatusRequestEntityTooLarge, code)

	l, err := g.st.GetLane(context.Background(), g.lane.ID)
	require.NoError(t, err)
	require.Equal(t, release.StateWaiting, l.Status.State, "nothing unverified acted")
	evs, err := g.st.Events(context.Background(), g.rel.ID, 0, 100)
	require.NoError(t, err)
	for _, e := range evs {
		require.NotEqual(t, "command.requested", e.Kind)
	}
}

func TestSlackCommands(t *testing.T) {
	t.Parallel()
	g := newSlackRig(t)
	ctx := context.Background()

	kind, text := g.say("U0STRANGER", "status acme")
	require.Equal(t, "ephemeral", kind)
	require.Contains(t, text, "You (U0STRANGER) may not use releasepilot")

	_, text = g.say("U0VIEWER", "")
	require.Contains(t, text, "`/release status <app> [tag|latest]`")

	_, text = g.say("U0VIEWER", "status acme")
	require.Contains(t, text, "*acme v1.4.0* ("+g.rel.ID+", commit 0123456789ab)")
	require.Contains(t, text, "• android store: waiting at 10%; next: 25% not before ")
	require.Contains(t, text, "then gate crash_rate ≤ 0.01 on fresh data, then frozen until "+g.now.Add(3*time.Hour).UTC().Format(time.RFC3339)+": launch event")
	require.NotContains(t, text, "not ours")

	_, text = g.say("U0VIEWER", "status acme v9.9.9")
	require.Contains(t, text, "release of acme at v9.9.9")
	_, text = g.say("U0VIEWER", "status nope")
	require.Contains(t, text, `app "nope" has no releases`)

	_, text = g.say("U0VIEWER", "halt acme v1.4.0 android")
	require.Contains(t, text, "halt needs the operator role; you (U0VIEWER) are a viewer.")
	_, text = g.say("U0OPERATOR", "explode acme v1.4.0")
	require.Contains(t, text, `command "explode" is not one of`)
	_, text = g.say("U0OPERATOR", "halt acme <!channel>")
	require.Contains(t, text, "release of acme at &lt;!channel&gt;", "what people type is escaped, never a mention")

	// advance answers with what it would do, and does nothing.
	kind, text = g.say("U0OPERATOR", "advance acme latest android")
	require.Equal(t, "ephemeral", kind)
	require.Contains(t, text, "advance acme v1.4.0 android would take the lane from 10% (waiting) to 25% (rolling). Nothing has changed.")
	require.Contains(t, text, "`/release advance acme v1.4.0 android confirm `")
	l, err := g.st.GetLane(ctx, g.lane.ID)
	require.NoError(t, err)
	require.Equal(t, 10, l.Status.Percent)
	require.Empty(t, g.exec.seen())

	// resume is refused while the lane is not halted.
	_, text = g.say("U0OPERATOR", "resume acme v1.4.0 confirm")
	require.Contains(t, text, "resume acme v1.4.0 android: resume: lane is waiting, not halted or paused")

	// halt acts at once, in the channel, with the actor in the audit log.
	kind, text = g.say("U0OPERATOR", "halt acme v1.4.0 android ANR spike on Pixel 8")
	require.Equal(t, "in_channel", kind)
	require.Contains(t, text, "<@U0OPERATOR> asked to halt acme v1.4.0 android at 10% (ANR spike on Pixel 8). Queued")
	require.Eventually(t, func() bool {
		l, err := g.st.GetLane(ctx, g.lane.ID)
		return err == nil && l.Status.State == release.StateHalted
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"halt"}, g.exec.seen())

	// resume with confirm acts.
	kind, _ = g.say("U0OPERATOR", "resume acme v1.4.0 android confirm fixed in 1.4.1 server flag")
	require.Equal(t, "in_channel", kind)
	require.Eventually(t, func() bool {
		l, err := g.st.GetLane(ctx, g.lane.ID)
		return err == nil && l.Status.State == release.StateRolling
	}, 15*time.Second, 20*time.Millisecond)

	evs, err := g.st.Events(ctx, g.rel.ID, 0, 100)
	require.NoError(t, err)
	var got []string
	for _, e := range evs {
		if e.Kind == "command.requested" {
			got = append(got, e.Actor+": "+e.Details["command"].(string)+" "+e.Details["reason"].(string))
		}
	}
	require.Equal(t, []string{
		"slack:steve (U0OPERATOR): halt ANR spike on Pixel 8",
		"slack:steve (U0OPERATOR): resume fixed in 1.4.1 server flag",
	}, got)
}

// FuzzSlackCommand: whatever a person types, a signed slash command gets a
// 200 with a message, and nothing panics.
func FuzzSlackCommand(f *testing.F) {
	for _, s := range []string{"", "help", "status", "status acme", "status acme latest extra", "halt", "halt acme",
		"halt acme latest", "advance acme v1.4.0 android confirm", "complete acme v1.4.0 ios", "rollback acme v1.4.0 android confirm x",
		"STATUS ACME", "approve acme \x00 android", "cancel acme v1.4.0 android " + strings.Repeat("why ", 600)} {
		f.Add("U0OPERATOR", s)
	}
	f.Add("U0VIEWER", "halt acme v1.4.0")
	f.Add("", "status acme")
	g := newSlackRig(f)
	f.Fuzz(func(t *testing.T, user, text string) {
		body := slackForm(user, text)
		req := httptest.NewRequest(http.MethodPost, "/webhooks/slack", strings.NewReader(body))
		now := time.Now()
		req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("X-Slack-Signature", httpapi.SignSlack(slackSecret, now, []byte(body)))
		rec := httptest.NewRecorder()
		g.h.ServeHTTP(rec, req)
		if user == "" {
			require.Equal(t, http.StatusBadRequest, rec.Code)
			return
		}
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var out map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		require.NotEmpty(t, out["text"])
	})
}
