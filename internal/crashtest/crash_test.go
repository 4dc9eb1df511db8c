//go:build crash

package crashtest

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// The Play requests the crash points hold.
const (
	playUpload = `^/upload/androidpublisher/v3/applications/[^/]+/edits/[^/]+/bundles$`
	playCommit = `:commit$`
	playTrack  = `/tracks/production$`
)

// androidRelease tags v1.1.0 (versionCode 2, a native change: no binary is
// live yet) and returns the commit.
func androidRelease(c *cluster) string {
	return c.fakes.release(RepoRelease{Tag: "v1.1.0", Version: "1.1.0", Build: "2", App: "one", VersionCode: 2, IPA: true})
}

// fullRollout is versionCode 2's production state after each commit of a
// clean run: the upload and internal-track commits, then 10, 25, 50, 100 %.
var fullRollout = []string{"-", "-", "inProgress 0.1", "inProgress 0.25", "inProgress 0.5", "completed"}

func requireFullRollout(t *testing.T, c *cluster) {
	t.Helper()
	commits := c.fakes.playCommits()
	requireEachCommitChanges(t, commits)
	require.Equal(t, fullRollout, productionOf(commits, 2), "every Play change happened once")
	require.Equal(t, []int64{1, 2}, c.fakes.playBundles(), "versionCode 2 shipped; none burned")
}

// TestKillMidUpload: the replica uploading the AAB to Play dies with the
// bytes in flight. The survivor uploads the same versionCode again (Play
// never saw the first) and the release completes.
func TestKillMidUpload(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{android: true})
		commit := androidRelease(c)
		hold := c.fakes.rule(Rule{Fake: "play", Path: playUpload})
		rel := c.tag("v1.1.0", commit)
		killed := c.killHeld(hold, func() int { return c.runner("android_lane") })
		up := c.event(rel, "android.bundle_uploaded", 0, nil)
		resumed(t, "the upload", killed, up.At)
		l := c.lane(rel, release.Android)
		c.untilCompleted(l.ID)
		requireFullRollout(t, c)
		uploads := 0
		for _, m := range c.fakes.mutations() {
			if m.Fake == "play" && m.Status == 200 && len(m.Path) > 7 && m.Path[:7] == "/upload" {
				uploads++
			}
		}
		require.Equal(t, 1, uploads, "the bundle reached Play once")
	})
}

// TestKillMidIOSUpload: the replica sending the IPA's parts to App Store
// Connect dies after the first part. The survivor resumes the same upload
// (no second buildUpload) and the release goes on to the App Store.
func TestKillMidIOSUpload(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{ios: true})
		commit := androidRelease(c)
		hold := c.fakes.rule(Rule{Fake: "asc", Method: http.MethodPut, Path: `^/presigned-upload/`, Skip: 1})
		rel := c.tag("v1.1.0", commit)
		killed := c.killHeld(hold, func() int { return c.runner("ios_lane") })
		up := c.event(rel, "ios.uploaded", 0, nil)
		resumed(t, "the upload", killed, up.At)
		l := c.lane(rel, release.IOS)
		iosToTheEnd(t, c, l.ID)
		counts := c.fakes.ascMutations()
		require.Equal(t, 1, counts["POST /v1/buildUploads"], "one upload: %v", counts)
		require.Equal(t, 1, counts["PATCH /v1/buildUploadFiles/{id}"], "committed once: %v", counts)
		requireASCOnce(t, counts)
	})
}

// iosToTheEnd waits for the phased release to start (day 1), completes it
// by command (Apple takes seven days), and waits for the lane to finish.
func iosToTheEnd(t *testing.T, c *cluster, laneID string) {
	t.Helper()
	c.until(laneID, "the phased release started", func(s release.Status) bool { return s.Percent > 0 })
	c.command(laneID, "complete")
	c.untilCompleted(laneID)
	var data struct {
		VersionID string `json:"version_id"`
	}
	c.laneData(laneID, &data)
	v := c.fakes.ascVersion(data.VersionID)
	require.Equal(t, "COMPLETE", v.Phased, "%+v", v)
}

// requireASCOnce: each App Store Connect change of the lane happened once.
func requireASCOnce(t *testing.T, counts map[string]int) {
	t.Helper()
	for kind, n := range counts {
		require.Equal(t, 1, n, "%s happened %d times: %v", kind, n, counts)
	}
}

// TestKillAfterPlayCommitBeforeRecord: Play applied the 25 % commit and the
// replica died before it heard back. The survivor finds 25 % on Play,
// records it once without a second commit, and the rollout completes.
func TestKillAfterPlayCommitBeforeRecord(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{android: true})
		commit := androidRelease(c)
		hold := c.fakes.rule(Rule{Fake: "play", Method: http.MethodPost, Path: playCommit, Phase: "after", Track: `"userFraction": 0.25`})
		rel := c.tag("v1.1.0", commit)
		l := c.lane(rel, release.Android)
		killed := c.killHeld(hold, func() int { return c.leaseHolder(l.ID) })
		adv := c.event(rel, "rollout.advance", 0, func(e release.Event) bool { return e.Details["percent"] == float64(25) })
		resumed(t, "25% recorded", killed, adv.At)
		c.untilCompleted(l.ID)
		requireFullRollout(t, c)
		n25 := 0
		evs, err := c.st.Events(t.Context(), rel, 0, 1000)
		require.NoError(t, err)
		for _, e := range evs {
			if e.Kind == "rollout.advance" && e.Details["percent"] == float64(25) {
				n25++
			}
		}
		require.Equal(t, 1, n25, "25% recorded once")
	})
}

// haltAtTen rolls v1.1.0 out to 10 % with a long soak, and returns the
// release and its lane.
func haltAtTen(t *testing.T, engine store.Engine, n int) (*cluster, string, release.Lane) {
	c := newCluster(t, engine, n, app{android: true, soak: time.Hour})
	commit := androidRelease(c)
	rel := c.tag("v1.1.0", commit)
	l := c.lane(rel, release.Android)
	c.until(l.ID, "10%", func(s release.Status) bool { return s.Percent == 10 })
	return c, rel, l
}

// requireHalted: the lane and Play both say halted at 10 %, the halt is
// recorded once as applied, and nothing moves afterwards.
func requireHalted(t *testing.T, c *cluster, rel string, l release.Lane) {
	t.Helper()
	commits := c.fakes.playCommits()
	requireEachCommitChanges(t, commits)
	require.Equal(t, []string{"-", "-", "inProgress 0.1", "halted 0.1"}, productionOf(commits, 2), "halted on Play, once")
	time.Sleep(3 * time.Second) // three reconcile intervals: nothing may move a halted lane
	st, err := c.st.GetLane(t.Context(), l.ID)
	require.NoError(t, err)
	require.Equal(t, release.StateHalted, st.Status.State)
	require.Equal(t, 10, st.Status.Percent)
	require.Empty(t, st.Status.PendingCommand)
	require.Len(t, c.fakes.playCommits(), len(commits), "no Play change after the halt")
	ev := c.events(rel)
	require.Equal(t, 1, ev["command.halt"])
	require.Equal(t, 1, ev["command.applied"])
	require.Zero(t, ev["command.rejected"])
	require.Equal(t, 1, ev["rollout.advance"], "nothing advanced past the halt")
}

// TestKillHaltBeforeItReachesPlay: the replica running an accepted halt dies
// before Play received the halted track. The halt was durable from its 202:
// the survivor applies it, and nothing advances meanwhile.
func TestKillHaltBeforeItReachesPlay(t *testing.T) {
	t.Parallel()
	killDuringHalt(t, Rule{Fake: "play", Method: http.MethodPut, Path: playTrack, Body: `"halted"`})
}

// TestKillHaltAfterItReachedPlay: Play applied the halt and the replica died
// before it recorded it. The survivor finds Play halted, sends nothing more,
// and records the halt.
func TestKillHaltAfterItReachedPlay(t *testing.T) {
	t.Parallel()
	killDuringHalt(t, Rule{Fake: "play", Method: http.MethodPost, Path: playCommit, Phase: "after", Track: `"status": "halted"`})
}

// killDuringHalt halts a lane at 10 %, kills the lane's lease holder while
// the Play request hold matches is held, and checks that the survivor
// applies the halt once and nothing moves after it.
func killDuringHalt(t *testing.T, hold Rule) {
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c, rel, l := haltAtTen(t, engine, n)
		rule := c.fakes.rule(hold)
		c.command(l.ID, "halt")
		killed := c.killHeld(rule, func() int { return c.leaseHolder(l.ID) })
		applied := c.event(rel, "command.applied", 0, nil)
		resumed(t, "the halt", killed, applied.At)
		requireHalted(t, c, rel, l)
	})
}

// TestKillDuringSoak: the leader dies while the lane soaks at 10 %; the
// survivor takes over the schedule and the rollout completes, each step
// once.
func TestKillDuringSoak(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{android: true, soak: 4 * time.Second})
		commit := androidRelease(c)
		rel := c.tag("v1.1.0", commit)
		l := c.lane(rel, release.Android)
		ten := c.until(l.ID, "soaking at 10%", func(s release.Status) bool { return s.Percent == 10 })
		killed := c.kill(c.leader())
		adv := c.event(rel, "rollout.advance", 0, func(e release.Event) bool { return e.Details["percent"] == float64(25) })
		soakEnd := ten.Status.StepStartedAt.Add(4 * time.Second)
		from := killed
		if soakEnd.After(from) {
			from = soakEnd // the schedule could not move before the soak ended
		}
		resumed(t, "the next step after the soak", from, adv.At)
		c.untilCompleted(l.ID)
		requireFullRollout(t, c)
	})
}

// TestKillDuringIOSPhasedStep: App Store Connect took the release request
// that starts the phased release, and the replica died before it recorded
// the step. The survivor finds the version released and sends no second
// request.
func TestKillDuringIOSPhasedStep(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{ios: true})
		commit := androidRelease(c)
		hold := c.fakes.rule(Rule{Fake: "asc", Method: http.MethodPost, Path: `^/v1/appStoreVersionReleaseRequests$`, Phase: "after"})
		rel := c.tag("v1.1.0", commit)
		l := c.lane(rel, release.IOS)
		killed := c.killHeld(hold, func() int { return c.leaseHolder(l.ID) })
		adv := c.event(rel, "rollout.advance", 0, nil)
		resumed(t, "the phased release step", killed, adv.At)
		iosToTheEnd(t, c, l.ID)
		requireASCOnce(t, c.fakes.ascMutations())
	})
}

// TestKillDuringOTAPromotion: the replica promoting the OTA release from
// Staging to Production dies after the promotion, before it recorded it.
// The survivor finds the promotion in the history instead of promoting
// again, and the OTA rollout completes.
func TestKillDuringOTAPromotion(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{android: true, ota: true, stages: "[100]"})
		first := androidRelease(c)
		rel1 := c.tag("v1.1.0", first)
		l1 := c.lane(rel1, release.Android)
		c.until(l1.ID, "the store release completed", func(s release.Status) bool { return s.State == release.StateCompleted })

		second := c.fakes.release(RepoRelease{Tag: "v1.1.1", Version: "1.1.1", Build: "3", App: "two", Lodash: "4.17.22", Parent: first, Bundles: true})
		hold := c.fakes.rule(Rule{Fake: "hook", Method: "ota.promoted"})
		rel := c.tag("v1.1.1", second)
		pid, _ := c.fakes.hit(hold)
		killed := c.kill(pid)
		c.fakes.releaseRule(hold)
		promoted := c.event(rel, "ota.promoted", 0, nil)
		resumed(t, "the promotion", killed, promoted.At)
		l := c.lane(rel, release.Android)
		require.Equal(t, release.KindOTA, l.Kind)
		c.untilCompleted(l.ID)
		ev := c.events(rel)
		require.Equal(t, 1, ev["ota.promoted"])
		require.Equal(t, 1, ev["ota.staged"])

		for dep, want := range map[string]string{"Staging": "Upload", "Production": "Promote"} {
			code, body := c.get("/v1/codepush/apps/" + AppName + "-android/deployments/" + dep + "/history")
			require.Equal(t, 200, code, body)
			var hist struct {
				History []map[string]any `json:"history"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &hist), body)
			n := 0
			for _, h := range hist.History {
				if h["releaseMethod"] == want {
					n++
				}
			}
			require.Equal(t, 1, n, "%s: one %s, not more: %s", dep, want, body)
		}
	})
}

// TestKillDuringPlanning: the replica planning the release dies while it
// reads the tree from GitHub. The survivor plans it once.
func TestKillDuringPlanning(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{android: true})
		commit := androidRelease(c)
		hold := c.fakes.rule(Rule{Fake: "github", Method: http.MethodGet, Path: `/git/trees/`})
		rel := c.tag("v1.1.0", commit)
		killed := c.killHeld(hold, func() int { return c.runner("plan_release") })
		planned := c.event(rel, "release.planned", 0, nil)
		resumed(t, "planning", killed, planned.At)
		l := c.lane(rel, release.Android)
		c.untilCompleted(l.ID)
		lanes, err := c.st.Lanes(t.Context(), rel)
		require.NoError(t, err)
		ev := c.events(rel)
		require.Equal(t, 1, ev["release.planned"])
		require.Equal(t, len(lanes), ev["lane.planned"], "each lane planned once")
		requireFullRollout(t, c)
	})
}

func (c *cluster) get(path string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, c.base()+path, nil)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res.StatusCode, string(b)
}
