// Package s3test runs a real S3-compatible server for tests: the Versity S3
// Gateway (versitygw) with its POSIX backend on an ephemeral loopback port.
// It verifies SigV4 signatures (headers and presigned URLs) and speaks
// multipart uploads like AWS S3. .ci/run installs it with go install.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
)

// Module is the S3-compatible server the tests run against: the
// Versity S3 Gateway with its POSIX backend, built from the Go module proxy.
const Module = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Credentials of the gateway's root account.
const (
	AccessKey = "AKIARELEASEPILOTTEST"
	SecretKey = "releasepilot-test-secret-key-0123456789"
	Region    = "eu-west-1"
)

// Gateway is a running versitygw on an ephemeral loopback port.
type Gateway struct {
	Endpoint string
}

// findVersitygw returns the versitygw binary: $VERSITYGW, then PATH, then
// GOPATH/bin, where .ci/run installs it. It is never silently skipped.
func findVersitygw(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	require.NoError(t, err)
	for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("versitygw (the S3-compatible server of this test) is not installed; .ci/run installs it with: go install %s", Module)
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Start runs versitygw on a fresh directory until the test ends.
func Start(t *testing.T) *Gateway {
	t.Helper()
	bin := findVersitygw(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken in between
		addr := freePort(t)
		root := t.TempDir()
		cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--region", Region,
			"--port", addr, "--quiet", "posix", "--sidecar", t.TempDir(), root)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				lastErr = fmt.Errorf("versitygw exited: %v\n%s", err, logs.String())
			default:
			}
			if lastErr != nil {
				break
			}
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				c.Close()
				t.Cleanup(func() {
					cmd.Process.Kill()
					<-done
				})
				return &Gateway{Endpoint: "http://" + addr}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if lastErr == nil {
			cmd.Process.Kill()
			<-done
			lastErr = fmt.Errorf("versitygw did not listen on %s within 20s:\n%s", addr, logs.String())
		}
	}
	t.Fatal(lastErr)
	return nil
}

// Bucket creates a bucket with an admin client (operators create buckets;
// the backend only uses one).
func (g *Gateway) Bucket(t *testing.T, name string) {
	t.Helper()
	u, _ := url.Parse(g.Endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: Region, BucketLookup: minio.BucketLookupPath})
	require.NoError(t, err)
	require.NoError(t, c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: Region}))
}
