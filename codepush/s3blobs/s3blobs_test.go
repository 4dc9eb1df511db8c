package s3blobs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/codepushtest"
	"github.com/swapjoy/releasepilot/codepush/s3blobs"
)

// versitygwModule is the S3-compatible server the tests run against: the
// Versity S3 Gateway with its POSIX backend, built from the Go module proxy.
const versitygwModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

const (
	accessKey = "AKIARELEASEPILOTTEST"
	secretKey = "releasepilot-test-secret-key-0123456789"
)

// gateway is a running versitygw on an ephemeral loopback port.
type gateway struct {
	endpoint string
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
	t.Fatalf("versitygw (the S3-compatible server of this test) is not installed; .ci/run installs it with: go install %s", versitygwModule)
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

// startGateway runs versitygw on a fresh directory until the test ends.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	bin := findVersitygw(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken in between
		addr := freePort(t)
		root := t.TempDir()
		cmd := exec.Command(bin, "--access", accessKey, "--secret", secretKey, "--region", "eu-west-1",
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
				return &gateway{endpoint: "http://" + addr}
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

// bucket creates a bucket with an admin client (operators create buckets;
// the backend only uses one).
func (g *gateway) bucket(t *testing.T, name string) {
	t.Helper()
	u, _ := url.Parse(g.endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), Region: "eu-west-1", BucketLookup: minio.BucketLookupPath})
	require.NoError(t, err)
	require.NoError(t, c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: "eu-west-1"}))
}

func TestS3BlobsConformWithPresignedURLs(t *testing.T) {
	g := startGateway(t)
	n := 0
	codepushtest.TestBlobs(t, func(t *testing.T) codepush.Blobs {
		n++
		bucket := fmt.Sprintf("ota-presigned-%d", n)
		g.bucket(t, bucket)
		b, err := s3blobs.New(s3blobs.Config{Endpoint: g.endpoint, Region: "eu-west-1", Bucket: bucket, Prefix: "packages/",
			AccessKeyID: accessKey, SecretAccessKey: secretKey, PresignTTL: 10 * time.Minute})
		require.NoError(t, err)
		require.NoError(t, b.Check(context.Background()))
		return b
	})
}

func TestS3PresignedURLsAreSignedAndExpire(t *testing.T) {
	g := startGateway(t)
	g.bucket(t, "ota")
	ctx := context.Background()
	b, err := s3blobs.New(s3blobs.Config{Endpoint: g.endpoint, Region: "eu-west-1", Bucket: "ota",
		AccessKeyID: accessKey, SecretAccessKey: secretKey, PresignTTL: 90 * time.Second})
	require.NoError(t, err)
	key, _, _, err := b.Put(ctx, strings.NewReader("PK\x03\x04 a package"))
	require.NoError(t, err)

	u, err := b.BlobURL(ctx, key, "application/zip")
	require.NoError(t, err)
	pu, err := url.Parse(u)
	require.NoError(t, err)
	q := pu.Query()
	require.Equal(t, "AWS4-HMAC-SHA256", q.Get("X-Amz-Algorithm"))
	require.Equal(t, "90", q.Get("X-Amz-Expires"), "the configured lifetime")
	require.Equal(t, "/ota/"+key, pu.Path)
	require.NotContains(t, u, secretKey)

	resp, err := http.Get(u)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "application/zip", resp.Header.Get("Content-Type"), "response-content-type is honoured")

	// The server checks the signature: a tampered URL is refused.
	q.Set("X-Amz-Expires", "604800")
	pu.RawQuery = q.Encode()
	resp, err = http.Get(pu.String())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a URL whose lifetime was changed must not verify")

	// Wrong credentials are refused at start-up by Check.
	bad, err := s3blobs.New(s3blobs.Config{Endpoint: g.endpoint, Region: "eu-west-1", Bucket: "ota", AccessKeyID: accessKey, SecretAccessKey: "wrong-secret"})
	require.NoError(t, err)
	require.Error(t, bad.Check(ctx))
	missing, err := s3blobs.New(s3blobs.Config{Endpoint: g.endpoint, Region: "eu-west-1", Bucket: "no-such-bucket", AccessKeyID: accessKey, SecretAccessKey: secretKey})
	require.NoError(t, err)
	require.ErrorContains(t, missing.Check(ctx), "does not exist")
}

func TestS3PublicBaseURL(t *testing.T) {
	g := startGateway(t)
	g.bucket(t, "cdn")
	ctx := context.Background()
	b, err := s3blobs.New(s3blobs.Config{Endpoint: g.endpoint, Bucket: "cdn", Region: "eu-west-1", Prefix: "ota/",
		AccessKeyID: accessKey, SecretAccessKey: secretKey, PublicBaseURL: "https://cdn.example.com/"})
	require.NoError(t, err)
	key, _, _, err := b.Put(ctx, strings.NewReader("bundle"))
	require.NoError(t, err)
	u, err := b.BlobURL(ctx, key, "application/zip")
	require.NoError(t, err)
	require.Equal(t, "https://cdn.example.com/ota/"+key, u, "the CDN serves the object under its name")
}

func TestS3ConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		cfg  s3blobs.Config
		want string
	}{
		{s3blobs.Config{Endpoint: "s3.amazonaws.com", Bucket: "b", AccessKeyID: "a", SecretAccessKey: "s"}, "endpoint"},
		{s3blobs.Config{Endpoint: "https://s3.amazonaws.com/bucket", Bucket: "b", AccessKeyID: "a", SecretAccessKey: "s"}, "endpoint"},
		{s3blobs.Config{Endpoint: "https://s3.amazonaws.com", AccessKeyID: "a", SecretAccessKey: "s"}, "bucket"},
		{s3blobs.Config{Endpoint: "https://s3.amazonaws.com", Bucket: "b", AccessKeyID: "a"}, "secret_access_key"},
		{s3blobs.Config{Endpoint: "https://s3.amazonaws.com", Bucket: "b", AccessKeyID: "a", SecretAccessKey: "s", PresignTTL: 8 * 24 * time.Hour}, "presign_ttl"},
		{s3blobs.Config{Endpoint: "https://s3.amazonaws.com", Bucket: "b", AccessKeyID: "a", SecretAccessKey: "s", PublicBaseURL: "cdn.example.com"}, "public_base_url"},
	} {
		_, err := s3blobs.New(tc.cfg)
		require.ErrorContains(t, err, tc.want)
		if tc.cfg.SecretAccessKey != "" {
			require.NotContains(t, err.Error(), tc.cfg.SecretAccessKey+"\"", "secrets never appear in errors")
		}
	}
}
