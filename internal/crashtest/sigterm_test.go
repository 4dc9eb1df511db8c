//go:build crash

package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// TestSIGTERMDuringLoad: tags and commands arrive while replica 0 is told to
// stop, and a slow client holds a request open on it. The replica drains
// and exits 0; every webhook and every command any replica accepted (202)
// is done — planned, applied or rejected — by the replicas left or after a
// restart.
func TestSIGTERMDuringLoad(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, engine store.Engine, n int) {
		c := newCluster(t, engine, n, app{android: true})
		const tags = 8
		commits := make([]string, tags)
		for i := range tags {
			commits[i] = c.fakes.release(RepoRelease{Tag: fmt.Sprintf("v1.2.%d", i), Version: fmt.Sprintf("1.2.%d", i),
				Build: strconv.Itoa(10 + i), App: fmt.Sprintf("load %d", i), VersionCode: int64(10 + i)})
		}
		first := "http://" + c.replicas[0].addr

		// A client that sent headers and a few bytes of its body, and
		// nothing more.
		slow, err := net.Dial("tcp", c.replicas[0].addr)
		require.NoError(t, err)
		defer slow.Close()
		_, err = fmt.Fprintf(slow, "POST /v1/lanes/lane_x/halt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 500\r\n\r\n{\"rea", c.token)
		require.NoError(t, err)

		var mu sync.Mutex
		var releases []string
		var commands []int64
		stopping := make(chan struct{})
		// Until replica 0 is told to stop, everything goes to it; then to
		// the others (or to replica 0 once restarted), as a load balancer
		// would. A delivery or command that was not accepted is sent again,
		// as GitHub redelivers and people press the button again.
		target := func() string {
			select {
			case <-stopping:
				return c.baseExcept(0)
			default:
				return first
			}
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // webhooks
			defer wg.Done()
			for i := range tags {
				d := githubtest.NewDelivery("push", githubtest.TagPushPayload(Repository, fmt.Sprintf("v1.2.%d", i), commits[i]), []byte(c.secret))
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					base := target()
					if base == "" {
						continue
					}
					req, err := d.Request(context.Background(), base+"/webhooks/github")
					if err != nil {
						continue
					}
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						continue
					}
					var out struct {
						ReleaseID string `json:"release_id"`
					}
					ok := res.StatusCode == http.StatusAccepted && json.NewDecoder(res.Body).Decode(&out) == nil
					res.Body.Close()
					if ok {
						mu.Lock()
						releases = append(releases, out.ReleaseID)
						mu.Unlock()
						break
					}
				}
				time.Sleep(150 * time.Millisecond)
			}
		}()
		go func() { // a command on every lane as it appears
			defer wg.Done()
			sent := map[string]bool{}
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				rels := append([]string(nil), releases...)
				mu.Unlock()
				for _, rel := range rels {
					lanes, _ := c.st.Lanes(context.Background(), rel)
					for _, l := range lanes {
						if sent[l.ID] || l.Status.State.Terminal() {
							continue
						}
						cmd := "cancel"
						if l.Status.State == release.StateRolling || l.Status.State == release.StateWaiting {
							cmd = "halt"
						}
						base := target()
						if base == "" {
							continue
						}
						req, _ := http.NewRequest(http.MethodPost, base+"/v1/lanes/"+l.ID+"/"+cmd, nil)
						req.Header.Set("Authorization", "Bearer "+c.token)
						res, err := http.DefaultClient.Do(req)
						if err != nil {
							continue
						}
						var out struct {
							CommandID int64 `json:"command_id"`
						}
						if res.StatusCode == http.StatusAccepted && json.NewDecoder(res.Body).Decode(&out) == nil {
							sent[l.ID] = true
							mu.Lock()
							commands = append(commands, out.CommandID)
							mu.Unlock()
						}
						res.Body.Close()
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()

		// Stop replica 0 in the middle of it.
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(releases) >= 3 }, 30*time.Second, 20*time.Millisecond)
		r := c.replicas[0]
		termAt := time.Now()
		close(stopping)
		require.NoError(t, syscall.Kill(r.pid, syscall.SIGTERM))
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("replica 0 did not stop after SIGTERM: %s", c.logTail(0))
		}
		took := time.Since(termAt)
		t.Logf("replica 0 drained and exited %d in %s", r.code, took.Round(10*time.Millisecond))
		require.Equal(t, 0, r.code, "a clean drain exits 0: %s", c.logTail(0))
		require.Less(t, took, 15*time.Second, "the drain ends by shutdown_timeout (5s) and a margin")
		if n == 1 {
			c.start(0) // the process supervisor's part
		}
		wg.Wait()

		mu.Lock()
		defer mu.Unlock()
		t.Logf("%d webhooks and %d commands accepted", len(releases), len(commands))
		require.Len(t, releases, tags, "every delivery was accepted in the end")
		require.NotEmpty(t, commands)
		for _, rel := range releases {
			c.event(rel, "release.planned", 0, nil)
		}
		ctx := context.Background()
		for _, id := range commands {
			require.Eventually(t, func() bool {
				cmd, err := c.st.GetCommand(ctx, id)
				return err == nil && cmd.State != store.CommandPending
			}, 90*time.Second, 50*time.Millisecond, "command %d never finished", id)
			cmd, err := c.st.GetCommand(ctx, id)
			require.NoError(t, err)
			l, err := c.st.GetLane(ctx, cmd.LaneID)
			require.NoError(t, err)
			kind := "command.applied"
			if cmd.State == store.CommandRejected {
				kind = "command.rejected"
			}
			c.event(l.ReleaseID, kind, 0, func(e release.Event) bool { return e.Details["command_id"] == float64(id) })
		}
	})
}
