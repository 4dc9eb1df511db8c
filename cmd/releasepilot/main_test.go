package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func runCmd(args ...string) (int, string, string) {
	var out, errb syncBuf
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{nil, 2, "", "Usage:"},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"serve", "--help"}, 0, "releasepilot serve [--config FILE]", ""},
		{[]string{"migrate", "-h"}, 0, "Apply the database migrations", ""},
		{[]string{"version", "--help"}, 0, "Print the version", ""},
		{[]string{"demo", "--help"}, 0, "--keep-serving", ""},
		{[]string{"demo", "--help"}, 0, "four times against in-process fakes of GitHub, npm,\nApp Store Connect, Google Play and Sentry", ""},
		{[]string{"serve", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"serve", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"version"}, 0, "releasepilot dev", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(tt.args...)
			require.Equal(t, tt.code, code, "stdout=%s stderr=%s", out, errs)
			require.Contains(t, out, tt.out)
			require.Contains(t, errs, tt.err)
		})
	}
}

func TestMalformedConfigExits2AndCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	data := filepath.Join(dir, "data")
	require.NoError(t, os.WriteFile(cfg, []byte("data_dir: "+data+"\napps:\n  - name: a\n    repository: a/b\n    webhook_secret: s\n  - name: b\n    repository: a/c\n    webhook_secret: s\n    android:\n      stages: [10, 50, 120]\n"), 0o600))
	for _, cmd := range []string{"serve", "migrate"} {
		code, _, errs := runCmd(cmd, "--config", cfg)
		require.Equal(t, 2, code)
		require.Contains(t, errs, "apps[1].android.stages[2]: 120 is not a percentage")
		require.NoDirExists(t, data, "nothing is created for a bad config")
	}
	code, _, errs := runCmd("serve", "--config", filepath.Join(dir, "missing.yaml"))
	require.Equal(t, 2, code)
	require.Contains(t, errs, "missing.yaml")
}

// Values config accepts by shape but a component refuses when it reads its
// own section at start are configuration errors too: exit 2, naming the key,
// never the secret.
func TestComponentConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, yaml, want string }{
		{"play service account", "playstore:\n  service_account: '{\"type\": \"service_account\", \"private_key\": \"not-a-key-SECRETVALUE\"}'\n",
			"releasepilot: config: playstore.service_account:"},
		{"asc key", "appstore:\n  key_id: K1\n  issuer_id: i\n  private_key: \"-----BEGIN PRIVATE KEY-----\\nSECRETVALUE\\n-----END PRIVATE KEY-----\"\n",
			"releasepilot: config: appstore.private_key:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			require.NoError(t, os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndata_dir: "+filepath.Join(dir, "data")+"\n"+tt.yaml), 0o600))
			code, _, errs := runCmd("serve", "--config", cfg)
			require.Equal(t, 2, code, errs)
			require.Contains(t, errs, tt.want)
			require.NotContains(t, errs, "SECRETVALUE")
		})
	}
}

// serving is `serve` running inside the test.
type serving struct {
	addr    string
	started map[string]any // its "releasepilot started" log record
	out     syncBuf
	errb    syncBuf
	cancel  context.CancelFunc
	done    chan int
}

// startServe runs `serve` with the config and waits for the started log
// line, which gives the address it listens on.
func startServe(t *testing.T, cfgYAML string) *serving {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "releasepilot.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(cfgYAML), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- run(ctx, []string{"serve", "--config", cfg}, &s.out, &s.errb) }()
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(s.errb.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "releasepilot started" {
				s.addr, _ = rec["addr"].(string)
				s.started = rec
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "serve did not start: %s", s.errb.String())
	return s
}

// stop cancels serve's context, as SIGTERM does, and requires it to exit 0
// within wait.
func (s *serving) stop(t *testing.T, wait time.Duration) {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		require.Equal(t, 0, code, s.errb.String())
	case <-time.After(wait):
		t.Fatal("serve did not stop")
	}
}

// serveAndCheckHealth runs `serve` with the config, waits for the started
// log line, asks /health, then stops it with a cancelled context (as SIGTERM).
func serveAndCheckHealth(t *testing.T, cfgYAML string, engine string) {
	s := startServe(t, cfgYAML)
	require.Equal(t, engine, s.started["database"])

	res, err := http.Get("http://" + s.addr + "/health")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	var h map[string]string
	require.NoError(t, json.NewDecoder(res.Body).Decode(&h))
	require.Equal(t, "ok", h["status"])
	require.Equal(t, "connected", h["database"])
	require.Equal(t, "running", h["jobs"])
	for _, k := range []string{"version", "uptime", "timestamp"} {
		require.NotEmpty(t, h[k], k)
	}

	s.stop(t, 40*time.Second)
	require.Contains(t, s.errb.String(), "releasepilot stopped")
}

func TestServeSQLite(t *testing.T) {
	dir := t.TempDir()
	serveAndCheckHealth(t, "listen: 127.0.0.1:0\ndata_dir: "+dir+"/data\nshutdown_timeout: 10s\n", "sqlite")
	require.FileExists(t, filepath.Join(dir, "data", "releasepilot.db"))
}

func TestServePostgres(t *testing.T) {
	url := storetest.URL(t, store.Postgres)
	serveAndCheckHealth(t, "listen: 127.0.0.1:0\nshutdown_timeout: 10s\ndatabase:\n  url: \""+url+"\"\n", "postgres")
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("data_dir: "+dir+"/d\n"), 0o600))
	code, out, errs := runCmd("migrate", "--config", cfg)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "migrations applied")
	code, _, errs = runCmd("migrate", "--config", cfg)
	require.Equal(t, 0, code, "migrate is repeatable: %s", errs)
}

// TestTwoServesOnOnePostgres runs two full services (as two `serve`
// processes would) on one Postgres database: each reconcile tick is enqueued
// by the elected leader and worked once, by one of them.
func TestTwoServesOnOnePostgres(t *testing.T) {
	url := storetest.URL(t, store.Postgres)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "releasepilot.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nshutdown_timeout: 10s\njobs:\n  reconcile_interval: 1s\ndatabase:\n  url: \""+url+"\"\n"), 0o600))
		var out, errb syncBuf
		go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &out, &errb) }()
	}
	time.Sleep(9 * time.Second)
	cancel()
	for i := 0; i < 2; i++ {
		select {
		case code := <-done:
			require.Equal(t, 0, code)
		case <-time.After(40 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
	db, err := store.Open(context.Background(), url, "")
	require.NoError(t, err)
	defer db.Close()
	// A tick enqueued just as the services stopped may not have run; every
	// other one ran exactly once, on one service.
	rows, err := db.SQL.QueryContext(context.Background(), `SELECT state, COALESCE(array_length(attempted_by, 1), 0) FROM river_job WHERE kind = 'reconcile' ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	ticks, unfinished := 0, 0
	for rows.Next() {
		var state string
		var attempts int
		require.NoError(t, rows.Scan(&state, &attempts))
		ticks++
		if state != "completed" {
			unfinished++
			continue
		}
		require.Equal(t, 1, attempts, "each tick ran once, on one service")
	}
	require.NoError(t, rows.Err())
	require.LessOrEqual(t, unfinished, 1)
	require.GreaterOrEqual(t, ticks, 3, "the periodic job kept running")
	require.LessOrEqual(t, ticks, 9, "one job per tick, not one per service")
}
