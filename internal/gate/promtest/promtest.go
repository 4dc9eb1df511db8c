// Package promtest runs a real Prometheus server for tests: Debian's
// prometheus package (the prometheus and promtool binaries), with the
// test's samples loaded from OpenMetrics text by promtool into a fresh
// TSDB, listening on a free loopback port. It is not a fake: queries are
// evaluated by Prometheus itself.
package promtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running Prometheus.
type Server struct {
	// URL is its base URL, e.g. http://127.0.0.1:40123/.
	URL string
}

// RequiredEnv, set to "required" (as .ci/run does) or with CI set, makes a
// missing Prometheus fail the test instead of skipping it.
const RequiredEnv = "RELEASEPILOT_TEST_PROMETHEUS"

// lookPath finds a binary; without it, the test fails where Prometheus is
// required (CI installs the package) and is skipped elsewhere with how to
// install it.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed: the Prometheus tests need a real server (apt-get install -y prometheus; .ci/run installs it)", name)
	if os.Getenv("CI") != "" || os.Getenv(RequiredEnv) == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startMu keeps parallel tests of one binary from starting servers at the
// same moment: each start is CPU-heavy for a second or two.
var startMu sync.Mutex

// Start loads openMetrics (OpenMetrics text, timestamps in seconds, ending
// with "# EOF") into a new TSDB and starts Prometheus on it. The server is
// stopped and its data removed at cleanup. Samples keep their timestamps:
// query them at the test's clock, not the wall clock.
func Start(t testing.TB, openMetrics string) *Server {
	t.Helper()
	promtool := lookPath(t, "promtool")
	prometheus := lookPath(t, "prometheus")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	input := filepath.Join(dir, "samples.om")
	if err := os.WriteFile(input, []byte(openMetrics), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", input, data).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  scrape_interval: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startMu.Lock()
	defer startMu.Unlock()
	var lastErr error
	for range 3 {
		srv, err := start(t, prometheus, config, data)
		if err == nil {
			return srv
		}
		lastErr = err // most likely the port was taken between probe and start
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return nil
}

func start(t testing.TB, prometheus, config, data string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var logs bytes.Buffer
	cmd := exec.Command(prometheus,
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=100y", // the samples are dated by the test's clock
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	base := "http://" + addr + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("prometheus exited: %v\n%s", err, logs.String())
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("prometheus not ready after 60s\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		res, err := http.Get(base + "-/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Cleanup(stop)
				return &Server{URL: base}, nil
			}
		}
	}
}

// Gauge writes OpenMetrics samples of one gauge series: value v at every
// step from from to to (inclusive).
func Gauge(name, labels string, from, to time.Time, step time.Duration, v float64) string {
	var b bytes.Buffer
	for at := from; !at.After(to); at = at.Add(step) {
		fmt.Fprintf(&b, "%s{%s} %s %d\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64), at.Unix())
	}
	return b.String()
}
