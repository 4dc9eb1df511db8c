package s3blobs_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/codepushtest"
	"github.com/swapjoy/releasepilot/codepush/s3blobs"
	"github.com/swapjoy/releasepilot/codepush/s3blobs/s3test"
)

func TestS3BlobsConformWithPresignedURLs(t *testing.T) {
	g := s3test.Start(t)
	n := 0
	codepushtest.TestBlobs(t, func(t *testing.T) codepush.Blobs {
		n++
		bucket := fmt.Sprintf("ota-presigned-%d", n)
		g.Bucket(t, bucket)
		b, err := s3blobs.New(s3blobs.Config{Endpoint: g.Endpoint, Region: "eu-west-1", Bucket: bucket, Prefix: "packages/",
			AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PresignTTL: 10 * time.Minute})
		require.NoError(t, err)
		require.NoError(t, b.Check(context.Background()))
		return b
	})
}

func TestS3PresignedURLsAreSignedAndExpire(t *testing.T) {
	g := s3test.Start(t)
	g.Bucket(t, "ota")
	ctx := context.Background()
	b, err := s3blobs.New(s3blobs.Config{Endpoint: g.Endpoint, Region: "eu-west-1", Bucket: "ota",
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PresignTTL: 90 * time.Second})
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
	require.NotContains(t, u, s3test.SecretKey)

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
	bad, err := s3blobs.New(s3blobs.Config{Endpoint: g.Endpoint, Region: "eu-west-1", Bucket: "ota", AccessKeyID: s3test.AccessKey, SecretAccessKey: "wrong-secret"})
	require.NoError(t, err)
	require.Error(t, bad.Check(ctx))
	missing, err := s3blobs.New(s3blobs.Config{Endpoint: g.Endpoint, Region: "eu-west-1", Bucket: "no-such-bucket", AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey})
	require.NoError(t, err)
	require.ErrorContains(t, missing.Check(ctx), "does not exist")
}

func TestS3PublicBaseURL(t *testing.T) {
	g := s3test.Start(t)
	g.Bucket(t, "cdn")
	ctx := context.Background()
	b, err := s3blobs.New(s3blobs.Config{Endpoint: g.Endpoint, Bucket: "cdn", Region: "eu-west-1", Prefix: "ota/",
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PublicBaseURL: "https://cdn.example.com/"})
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
