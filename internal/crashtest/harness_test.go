//go:build crash

package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// roleEnv makes the test binary serve the fakes instead of running tests.
const roleEnv = "RELEASEPILOT_CRASHTEST_ROLE"

// releasepilotBin is the releasepilot built once for the whole run.
var releasepilotBin string

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "fakes" {
		serveFakes()
		return
	}
	dir, err := os.MkdirTemp("", "releasepilot-crash-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	releasepilotBin = filepath.Join(dir, "releasepilot")
	build := exec.Command("go", "build", "-o", releasepilotBin, "github.com/swapjoy/releasepilot/cmd/releasepilot")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build releasepilot: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serveFakes runs the fakes in this (child) process until its parent goes.
func serveFakes() {
	f, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakes:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(f.Info())
	fmt.Printf("FAKES %s\n", b)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); sig <- syscall.SIGTERM }() // the parent is gone
	<-sig
	f.Close()
}

// fakes is the test's handle on the fakes process.
type fakes struct {
	t    *testing.T
	info Info
}

func startFakes(t *testing.T) *fakes {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=fakes")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the fakes process did not start")
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "FAKES ")
	require.True(t, ok, "fakes said %q", line)
	f := &fakes{t: t}
	require.NoError(t, json.Unmarshal([]byte(rest), &f.info))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return f
}

func (f *fakes) call(method, path string, in, out any) {
	f.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(f.t, err)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.info.Control+path, body)
	require.NoError(f.t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	require.Equal(f.t, 200, res.StatusCode, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(f.t, json.Unmarshal(b, out))
	}
}

// release adds a tag with its commit and GitHub release.
func (f *fakes) release(r RepoRelease) string {
	var out struct{ Commit string }
	f.call(http.MethodPost, "/releases", r, &out)
	return out.Commit
}

// rule arms a pause rule.
func (f *fakes) rule(r Rule) int {
	var out struct{ ID int }
	f.call(http.MethodPost, "/rules", r, &out)
	return out.ID
}

// hit waits until the rule holds something; it returns the failpoint's pid
// (0 for a request) and when.
func (f *fakes) hit(id int) (int, time.Time) {
	f.t.Helper()
	var out struct {
		PID int       `json:"pid"`
		At  time.Time `json:"at"`
	}
	f.call(http.MethodGet, fmt.Sprintf("/rules/%d/hit?wait=120s", id), nil, &out)
	return out.PID, out.At
}

func (f *fakes) releaseRule(id int) {
	f.call(http.MethodPost, fmt.Sprintf("/rules/%d/release", id), nil, nil)
}

func (f *fakes) mutations() []Mutation {
	var out []Mutation
	f.call(http.MethodGet, "/mutations", nil, &out)
	return out
}

func (f *fakes) playCommits() []PlayCommit {
	var out []PlayCommit
	f.call(http.MethodGet, "/play/commits", nil, &out)
	return out
}

func (f *fakes) playBundles() []int64 {
	var out []int64
	f.call(http.MethodGet, "/play/bundles", nil, &out)
	return out
}

func (f *fakes) ascMutations() map[string]int {
	out := map[string]int{}
	f.call(http.MethodGet, "/asc/mutations", nil, &out)
	return out
}

func (f *fakes) ascVersion(id string) ASCVersion {
	var out ASCVersion
	f.call(http.MethodGet, "/asc/versions/"+id, nil, &out)
	return out
}

// app is the crash test app's configuration.
type app struct {
	ios, android, ota bool
	soak              time.Duration
	stages            string // android stages, e.g. "[10, 25, 50, 100]"
	otaStages         string
}

// cluster is one database and the replicas serving it.
type cluster struct {
	t        *testing.T
	engine   store.Engine
	dir      string
	cfg      string
	fakes    *fakes
	token    string
	secret   string
	db       *store.DB
	st       *store.Store
	river    *river.Client[*sql.Tx]
	mu       sync.Mutex
	replicas []*replica
}

type replica struct {
	i        int
	cmd      *exec.Cmd
	pid      int
	addr     string
	log      string
	done     chan struct{}
	code     int
	restarts int
}

// newCluster starts the fakes and n replicas on a fresh database of engine.
func newCluster(t *testing.T, engine store.Engine, n int, a app) *cluster {
	t.Helper()
	c := &cluster{t: t, engine: engine, dir: t.TempDir(), token: "crash-admin-token-0123456789", secret: "crash-webhook-secret"}
	c.fakes = startFakes(t)
	url := storetest.URL(t, engine)
	ctx := context.Background()
	db, err := store.Open(ctx, url, "")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, nil))
	c.db, c.st = db, store.New(db)
	c.river, err = river.NewClient(db.RiverDriver(), &river.Config{Schema: db.Schema})
	require.NoError(t, err)

	if a.soak == 0 {
		a.soak = time.Second
	}
	if a.stages == "" {
		a.stages = "[10, 25, 50, 100]"
	}
	if a.otaStages == "" {
		a.otaStages = "[50, 100]"
	}
	in := c.fakes.info
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %q
shutdown_timeout: 5s
log: {level: info, format: json}
database: {url: %q}
jobs: {reconcile_interval: 1s, rescue_after: 2s, action_timeout: 5s}
tokens:
  - {name: harness, role: admin, token: %q}
github: {api_url: %q, token: %q}
npm: {registry: %q}
appstore: {base_url: %q, key_id: %q, issuer_id: %q, private_key: %q}
playstore: {endpoint: %q, reporting_endpoint: %q, service_account: %q}
apps:
  - name: %s
    repository: %s
    webhook_secret: %q
    rollout: {soak: %s}
    ios:
      enabled: %t
      bundle_id: %s
      build_source: upload
      ipa_asset: "*.ipa"
      internal_groups: [QA]
      app_store: true
      phased_release: true
      poll_interval: 1s
    android: {enabled: %t, package_name: %s, aab_asset: "*.aab", stages: %s}
    ota: {enabled: %t, stages: %s}
`, filepath.Join(c.dir, "data"), url, c.token, in.GitHub+"/", in.GitHubToken, in.NPM, in.ASC, in.ASCKeyID, in.ASCIssuer, in.ASCKey,
		in.Play+"/", in.Play+"/", in.PlayAccount, AppName, Repository, c.secret, a.soak, a.ios, BundleID, a.android, Package, a.stages, a.ota, a.otaStages)
	c.cfg = filepath.Join(c.dir, "releasepilot.yaml")
	require.NoError(t, os.WriteFile(c.cfg, []byte(yaml), 0o600))
	for i := range n {
		c.replicas = append(c.replicas, &replica{i: i, log: filepath.Join(c.dir, fmt.Sprintf("replica-%d.log", i))})
		c.start(i)
	}
	t.Cleanup(func() {
		for _, r := range c.replicas {
			if r.cmd != nil && r.alive() {
				_ = r.cmd.Process.Kill()
				<-r.done
			}
		}
		if t.Failed() {
			for _, r := range c.replicas {
				b, _ := os.ReadFile(r.log)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("replica %d log (tail):\n%s", r.i, b)
			}
		}
	})
	return c
}

func (r *replica) alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// start starts replica i and waits until it serves.
func (c *cluster) start(i int) {
	c.t.Helper()
	r := c.replicas[i]
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(c.t, err)
	size, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(releasepilotBin, "serve", "--config", c.cfg)
	cmd.Env = append(os.Environ(), "RELEASEPILOT_FAILPOINTS_URL="+c.fakes.info.Control+"/hit")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(c.t, cmd.Start())
	done := make(chan struct{})
	c.mu.Lock()
	if r.cmd != nil {
		r.restarts++
	}
	r.cmd, r.pid, r.done, r.addr = cmd, cmd.Process.Pid, done, ""
	c.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		c.mu.Lock()
		r.code = cmd.ProcessState.ExitCode()
		c.mu.Unlock()
		close(done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	addr := ""
	for addr == "" {
		require.True(c.t, time.Now().Before(deadline), "replica %d did not start", i)
		require.True(c.t, r.alive(), "replica %d exited at start: %s", i, c.logTail(i))
		b, _ := os.ReadFile(r.log)
		if int64(len(b)) > size {
			for _, line := range strings.Split(string(b[size:]), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "releasepilot started" {
					addr, _ = rec["addr"].(string)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	r.addr = addr
	c.mu.Unlock()
}

func (c *cluster) logTail(i int) string {
	b, _ := os.ReadFile(c.replicas[i].log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// kill SIGKILLs the replica with pid and waits for it to be gone; on a
// single-replica cluster it starts it again (the process supervisor's
// part). It returns when the process died.
func (c *cluster) kill(pid int) time.Time {
	c.t.Helper()
	var r *replica
	for _, x := range c.replicas {
		if x.pid == pid && x.alive() {
			r = x
		}
	}
	require.NotNil(c.t, r, "no live replica has pid %d", pid)
	require.NoError(c.t, syscall.Kill(pid, syscall.SIGKILL))
	<-r.done
	at := time.Now()
	c.t.Logf("killed replica %d (pid %d)", r.i, pid)
	if len(c.replicas) == 1 {
		c.start(r.i)
	}
	return at
}

// base is the URL of a live replica.
func (c *cluster) base() string {
	if b := c.baseExcept(-1); b != "" {
		return b
	}
	c.t.Fatal("no live replica")
	return ""
}

// baseExcept is the URL of a live replica other than i, preferring the
// others; replica i only when it is the only one (and was restarted). ""
// when none serves.
func (c *cluster) baseExcept(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.replicas {
		if r.i != i && r.alive() && r.addr != "" {
			return "http://" + r.addr
		}
	}
	if len(c.replicas) == 1 && i >= 0 {
		if r := c.replicas[0]; r.alive() && r.addr != "" && r.restarts > 0 {
			return "http://" + r.addr
		}
	}
	return ""
}

// pidOf parses the pid out of a River client id (host-pid-random).
func pidOf(node string) int {
	parts := strings.Split(node, "-")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// runner is the pid of the replica running a job of kind.
func (c *cluster) runner(kind string) int {
	c.t.Helper()
	var pid int
	require.Eventually(c.t, func() bool {
		res, err := c.river.JobList(context.Background(), river.NewJobListParams().States(rivertype.JobStateRunning).Kinds(kind))
		if err != nil || len(res.Jobs) != 1 {
			return false
		}
		by := res.Jobs[0].AttemptedBy
		pid = pidOf(by[len(by)-1])
		return pid != 0
	}, 10*time.Second, 20*time.Millisecond, "no %s job is running", kind)
	return pid
}

// leaseHolder is the pid of the replica acting on a lane.
func (c *cluster) leaseHolder(laneID string) int {
	c.t.Helper()
	var node string
	require.Eventually(c.t, func() bool {
		return c.db.SQL.QueryRowContext(context.Background(), `SELECT node FROM lane_leases WHERE lane_id = $1`, laneID).Scan(&node) == nil
	}, 10*time.Second, 20*time.Millisecond, "nobody holds lane %s", laneID)
	return pidOf(node)
}

// leader is the pid of River's leader.
func (c *cluster) leader() int {
	c.t.Helper()
	var node string
	require.Eventually(c.t, func() bool {
		return c.db.SQL.QueryRowContext(context.Background(), `SELECT leader_id FROM river_leader`).Scan(&node) == nil
	}, 30*time.Second, 50*time.Millisecond, "no leader")
	return pidOf(node)
}

// tag sends GitHub's signed push of tag and returns the release id.
func (c *cluster) tag(tag, commit string) string {
	c.t.Helper()
	d := githubtest.NewDelivery("push", githubtest.TagPushPayload(Repository, tag, commit), []byte(c.secret))
	req, err := d.Request(context.Background(), c.base()+"/webhooks/github")
	require.NoError(c.t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	var out struct {
		ReleaseID string `json:"release_id"`
	}
	b, _ := io.ReadAll(res.Body)
	require.Equal(c.t, http.StatusAccepted, res.StatusCode, "%s", b)
	require.NoError(c.t, json.Unmarshal(b, &out))
	return out.ReleaseID
}

// command sends a person's command to a lane and requires a 202.
func (c *cluster) command(laneID, cmd string) {
	c.t.Helper()
	code, body := c.post("/v1/lanes/"+laneID+"/"+cmd, `{"reason":"crash test"}`)
	require.Equal(c.t, http.StatusAccepted, code, "%s", body)
}

func (c *cluster) post(path, body string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, c.base()+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// lane waits for the release's lane on platform and returns it.
func (c *cluster) lane(releaseID string, p release.Platform) release.Lane {
	c.t.Helper()
	var out release.Lane
	require.Eventually(c.t, func() bool {
		lanes, err := c.st.Lanes(context.Background(), releaseID)
		if err != nil {
			return false
		}
		for _, l := range lanes {
			if l.Platform == p {
				out = l
				return true
			}
		}
		return false
	}, 90*time.Second, 50*time.Millisecond, "release %s has no %s lane", releaseID, p)
	return out
}

// until waits for the lane to satisfy ok and returns it.
func (c *cluster) until(laneID, what string, ok func(release.Status) bool) release.Lane {
	c.t.Helper()
	var l release.Lane
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var err error
		l, err = c.st.GetLane(context.Background(), laneID)
		if err == nil && ok(l.Status) {
			return l
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("lane %s: %s did not happen; it is %s at %d%%: %s", laneID, what, l.Status.State, l.Status.Percent, l.Status.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// untilCompleted waits for the lane to complete and returns it.
func (c *cluster) untilCompleted(laneID string) release.Lane {
	c.t.Helper()
	return c.until(laneID, "completed", func(s release.Status) bool { return s.State == release.StateCompleted })
}

// killHeld waits until the rule hold holds a request, SIGKILLs the replica
// victim names then (it is asked only once the request is held), lets the
// held request go on, and returns when the replica died.
func (c *cluster) killHeld(hold int, victim func() int) time.Time {
	c.t.Helper()
	c.fakes.hit(hold)
	killed := c.kill(victim())
	c.fakes.releaseRule(hold)
	return killed
}

// event waits for the first event of kind on the release after afterID that
// satisfies match (nil: any), and returns it.
func (c *cluster) event(releaseID, kind string, afterID int64, match func(release.Event) bool) release.Event {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		evs, err := c.st.Events(context.Background(), releaseID, afterID, 1000)
		if err == nil {
			for _, e := range evs {
				if e.Kind == kind && (match == nil || match(e)) {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("release %s: no %s event", releaseID, kind)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// events counts the release's events by kind.
func (c *cluster) events(releaseID string) map[string]int {
	c.t.Helper()
	evs, err := c.st.Events(context.Background(), releaseID, 0, 1000)
	require.NoError(c.t, err)
	out := map[string]int{}
	for _, e := range evs {
		out[e.Kind]++
	}
	return out
}

func (c *cluster) laneData(laneID string, v any) {
	c.t.Helper()
	require.NoError(c.t, c.st.LaneData(context.Background(), laneID, v))
}

// resumed checks that work resumed within a minute of the kill.
func resumed(t *testing.T, what string, killed time.Time, at time.Time) {
	t.Helper()
	took := at.Sub(killed)
	t.Logf("%s %s after the kill", what, took.Round(10*time.Millisecond))
	require.Less(t, took, 60*time.Second, "%s took %s after the kill", what, took)
}

// productionOf is the state of versionCode vc on the production track in
// each commit Play applied ("-" when it was not there).
func productionOf(commits []PlayCommit, vc int64) []string {
	var out []string
	for _, c := range commits {
		s := "-"
		for _, r := range c.Production {
			for _, v := range r.VersionCodes {
				if v == vc {
					s = r.Status
					if r.Fraction > 0 {
						s += " " + strconv.FormatFloat(r.Fraction, 'g', -1, 64)
					}
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// requireEachCommitChanges: no commit Play applied left the tracks as the
// one before it (a mutation repeated).
func requireEachCommitChanges(t *testing.T, commits []PlayCommit) {
	t.Helper()
	prev := ""
	for i, c := range commits {
		b, _ := json.Marshal([]any{c.Production, c.Internal})
		require.NotEqual(t, prev, string(b), "commit %d changed nothing: a mutation happened twice", i)
		prev = string(b)
	}
}

// engines is what each crash point runs on: two replicas on Postgres, one
// process on SQLite (restarted after its kill).
var engines = []struct {
	engine   store.Engine
	replicas int
}{{store.Postgres, 2}, {store.SQLite, 1}}

// each runs fn as a parallel subtest per engine.
func each(t *testing.T, fn func(t *testing.T, engine store.Engine, replicas int)) {
	for _, e := range engines {
		t.Run(string(e.engine), func(t *testing.T) {
			t.Parallel()
			fn(t, e.engine, e.replicas)
		})
	}
}
