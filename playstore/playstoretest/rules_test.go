package playstoretest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/api/androidpublisher/v3"

	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

func TestInAppUpdatePriorityIsFrozenOnceRolledOut(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
		playstoretest.Release{VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1, InAppUpdatePriority: 3})
	tb.fake.ConsoleUpdate(pkg, "beta", playstoretest.Release{VersionCodes: []int64{50}, Status: "draft", InAppUpdatePriority: 1})
	live := &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{41}}
	put := func(id, track string, rels ...*androidpublisher.TrackRelease) error {
		_, err := tb.svc.Edits.Tracks.Update(pkg, id, track, &androidpublisher.Track{Track: track, Releases: rels}).Do()
		return err
	}
	id := tb.insert(t)

	// A rebuilt release that leaves the priority out asks for 0.
	err := put(id, "production", live, &androidpublisher.TrackRelease{Status: "inProgress", UserFraction: 0.25, VersionCodes: []int64{42}})
	g := gerr(t, err)
	require.Equal(t, 400, g.Code)
	require.Equal(t, "Invalid value at 'track_config.releases[1].in_app_update_priority': in_app_update_priority can not be updated once the release is rolled out (it is 3, the request asks for 0).", g.Message)
	require.Equal(t, "badRequest", g.Errors[0].Reason)
	require.Contains(t, string(g.Body), `"status":"INVALID_ARGUMENT"`)

	for _, status := range []string{"inProgress", "halted"} {
		err = put(id, "production", live, &androidpublisher.TrackRelease{Status: status, UserFraction: 0.25, VersionCodes: []int64{42}, InAppUpdatePriority: 5})
		require.Contains(t, gerr(t, err).Message, "(it is 3, the request asks for 5)", status)
	}
	err = put(id, "production", &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{42}, InAppUpdatePriority: 1})
	require.Contains(t, gerr(t, err).Message, "(it is 3, the request asks for 1)", "completing keeps it too")
	err = put(id, "production", &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{41}, InAppUpdatePriority: 2})
	require.Contains(t, gerr(t, err).Message, "(it is 0, the request asks for 2)", "a completed release is rolled out")

	// Writing back what was read goes through.
	require.NoError(t, put(id, "production", live, &androidpublisher.TrackRelease{Status: "inProgress", UserFraction: 0.25, VersionCodes: []int64{42}, InAppUpdatePriority: 3}))
	// A draft has not rolled out: its priority may change.
	require.NoError(t, put(id, "beta", &androidpublisher.TrackRelease{Status: "draft", VersionCodes: []int64{50}, InAppUpdatePriority: 4}))
	// A release new to the track may carry any priority, even when its
	// versionCode is rolled out on another track.
	require.NoError(t, put(id, "alpha", &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{42}, InAppUpdatePriority: 5}))
	_, err = tb.svc.Edits.Commit(pkg, id).Do()
	require.NoError(t, err)
	require.Equal(t, 3, tb.fake.Track(pkg, "production")[1].InAppUpdatePriority)
	require.Equal(t, 4, tb.fake.Track(pkg, "beta")[0].InAppUpdatePriority)

	// The rule reads the committed track, not the edit: a release started in
	// this edit may still be changed in it.
	id = tb.insert(t)
	require.NoError(t, put(id, "internal", &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{43}, InAppUpdatePriority: 2}))
	require.NoError(t, put(id, "internal", &androidpublisher.TrackRelease{Status: "completed", VersionCodes: []int64{43}}))
}

func TestErrorIfInReview(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	start := &androidpublisher.Track{Track: "production", Releases: []*androidpublisher.TrackRelease{
		{Status: "completed", VersionCodes: []int64{41}}, {Status: "inProgress", UserFraction: 0.1, VersionCodes: []int64{42}}}}
	id := tb.insert(t)
	_, err := tb.svc.Edits.Tracks.Update(pkg, id, "production", start).Do()
	require.NoError(t, err)
	_, err = tb.svc.Edits.Commit(pkg, id).ChangesInReviewBehavior("ERROR_IF_IN_REVIEW").Do()
	require.NoError(t, err, "nothing is in review")
	require.Equal(t, 1, tb.fake.Commits(pkg))

	tb.fake.SetLifecycleState(pkg, 42, playstoretest.LifecycleInReview)
	id = tb.insert(t)
	start.Releases[1].UserFraction = 0.25
	_, err = tb.svc.Edits.Tracks.Update(pkg, id, "production", start).Do()
	require.NoError(t, err)
	_, err = tb.svc.Edits.Commit(pkg, id).ChangesInReviewBehavior("ERROR_IF_IN_REVIEW").Do()
	g := gerr(t, err)
	require.Equal(t, 400, g.Code)
	require.Equal(t, playstoretest.MsgChangesInReview, g.Message)
	require.Equal(t, "badRequest", g.Errors[0].Reason)
	require.NotContains(t, g.Message, "changesNotSentForReview", "not to be taken for a review-flag refusal")
	require.Equal(t, 1, tb.fake.Commits(pkg))
	require.Equal(t, 0.1, tb.fake.Track(pkg, "production")[1].UserFraction)

	// The edit was not invalidated: the default behaviour cancels the review
	// and submits everything.
	_, err = tb.svc.Edits.Get(pkg, id).Do()
	require.NoError(t, err)
	_, err = tb.svc.Edits.Commit(pkg, id).ChangesInReviewBehavior("CANCEL_IN_REVIEW_AND_SUBMIT").Do()
	require.NoError(t, err)
	require.Equal(t, 2, tb.fake.Commits(pkg))
	require.Equal(t, 0.25, tb.fake.Track(pkg, "production")[1].UserFraction)
}

func TestReportingDailyTimelineRules(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	tb.fake.SetVitals(pkg, playstoretest.CrashRateMetricSet, playstoretest.VitalsSeries{FreshUntil: day(18),
		Points: []playstoretest.VitalsPoint{{Day: day(16), VersionCode: 42, Rate: 0.002, DistinctUsers: 1000}}})
	token := tokenFor(t, tb, playstoretest.ScopeReporting)
	query := func(start, end string) (int, map[string]any) {
		t.Helper()
		body := `{"metrics":["userPerceivedCrashRate"],"filter":"versionCode = 42","timelineSpec":{"aggregationPeriod":"DAILY","startTime":` + start + `,"endTime":` + end + `}}`
		req, err := http.NewRequest("POST", tb.url+"/v1beta1/apps/"+pkg+"/crashRateMetricSet:query?alt=json&prettyPrint=false", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), string(b))
		return resp.StatusCode, out
	}
	la := `{"id":"America/Los_Angeles"}`
	date := func(d int, extra string) string {
		return `{"year":2026,"month":11,"day":` + strconv.Itoa(d) + extra + `}`
	}
	end := date(18, `,"timeZone":`+la)

	for _, tc := range []struct {
		name, start, end, msg string
	}{
		{"minutes", date(15, `,"minutes":30,"timeZone":`+la), end, "timeline_spec.start_time: DAILY aggregation requires hours, minutes, seconds and nanos to be unset."},
		{"seconds", date(15, `,"seconds":1,"timeZone":`+la), end, "timeline_spec.start_time: DAILY aggregation requires hours, minutes, seconds and nanos to be unset."},
		{"nanos on the end", date(15, `,"timeZone":`+la), date(18, `,"nanos":5,"timeZone":`+la), "timeline_spec.end_time: DAILY aggregation requires hours, minutes, seconds and nanos to be unset."},
		{"a UTC offset", date(15, `,"utcOffset":"-28800s"`), date(18, `,"utcOffset":"-28800s"`), "timeline_spec.start_time: DAILY aggregation supports the America/Los_Angeles time zone only, not a UTC offset."},
		{"another zone", date(15, `,"timeZone":{"id":"UTC"}`), date(18, `,"timeZone":{"id":"UTC"}`), `timeline_spec.start_time: DAILY aggregation supports the America/Los_Angeles time zone only, not "UTC".`},
		{"zones differ", date(15, `,"timeZone":`+la), date(18, ""), "timeline_spec: the time zone of end_time must match the time zone of start_time."},
	} {
		code, out := query(tc.start, tc.end)
		require.Equal(t, 400, code, tc.name)
		e := out["error"].(map[string]any)
		require.Equal(t, tc.msg, e["message"], tc.name)
		require.Equal(t, "INVALID_ARGUMENT", e["status"], tc.name)
	}

	// Both zones unset: the metric set's default, America/Los_Angeles.
	code, out := query(date(15, ""), date(18, ""))
	require.Equal(t, 200, code, out)
	rows := out["rows"].([]any)
	require.Len(t, rows, 1)
	row := rows[0].(map[string]any)
	require.Equal(t, map[string]any{"year": 2026.0, "month": 11.0, "day": 16.0, "timeZone": map[string]any{"id": "America/Los_Angeles"}}, row["startTime"])
	// Proto snake_case keys are read too.
	code, _ = query(date(15, `,"time_zone":`+la), end)
	require.Equal(t, 200, code)
	code, _ = query(date(15, `,"time_zone":`+la+`,"minutes":1`), end)
	require.Equal(t, 400, code)
}

// TestHaltedReleaseCanBeCompleted: Play itself completes a halted release
// when a track update asks for it (what the Play Console's "resume and
// roll out to everyone" does). The playstore client's Complete refuses to,
// so that a scheduled step never undoes a halt: that rule is the client's,
// and the fake must not lend it a hand.
func TestHaltedReleaseCanBeCompleted(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.fake.ConsoleUpdate(pkg, "production",
		playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"},
		playstoretest.Release{VersionCodes: []int64{42}, Status: "halted", UserFraction: 0.5})
	id := tb.insert(t)
	_, err := tb.svc.Edits.Tracks.Update(pkg, id, "production", &androidpublisher.Track{Track: "production",
		Releases: []*androidpublisher.TrackRelease{{Status: "completed", VersionCodes: []int64{42}}}}).Do()
	require.NoError(t, err)
	_, err = tb.svc.Edits.Commit(pkg, id).ChangesInReviewBehavior("ERROR_IF_IN_REVIEW").Do()
	require.NoError(t, err)
	require.Equal(t, []playstoretest.Release{{VersionCodes: []int64{42}, Status: "completed"}}, tb.fake.Track(pkg, "production"))
}
