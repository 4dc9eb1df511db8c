package main

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestShutdownWithASlowClientExits0: a client holding a request open (its
// body trickles) cannot make the drain fail: at shutdown_timeout the
// connection is closed and serve exits 0.
func TestShutdownWithASlowClientExits0(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := "operator-token-0123456789"
	srv := startServe(t, fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s/data\nshutdown_timeout: 1s\ntokens:\n  - {name: ops, role: operator, token: %q}\n", dir, token))
	addr := srv.addr

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/lanes/lane_x/halt HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"reason\":", addr, token)
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the handler is reading the body

	stopAt := time.Now()
	srv.stop(t, 20*time.Second)
	took := time.Since(stopAt)
	require.Less(t, took, 10*time.Second, "the drain ends at shutdown_timeout, not when the client gives up")
	require.GreaterOrEqual(t, took, 900*time.Millisecond, "the request was given shutdown_timeout to finish")
	require.Contains(t, srv.errb.String(), "HTTP connections still open at the end of shutdown_timeout; closing them")
	require.Contains(t, srv.errb.String(), "releasepilot stopped")
}
