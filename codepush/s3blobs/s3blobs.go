// Package s3blobs stores OTA package contents in an S3-compatible object
// store (AWS S3, Cloudflare R2, Google Cloud Storage's interoperability API,
// MinIO, versitygw …) through the minio-go client. It implements
// codepush.Blobs and codepush.BlobURLer: objects are content-addressed by
// SHA-256 and never rewritten, and devices download them from a configured
// CDN/public base URL or through presigned GET URLs.
package s3blobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/swapjoy/releasepilot/codepush"
)

// Config locates the bucket and says how devices reach its objects.
type Config struct {
	// Endpoint is the S3 API's URL, e.g. https://s3.eu-west-1.amazonaws.com
	// or http://127.0.0.1:9000; the scheme decides TLS.
	Endpoint string
	Region   string // e.g. eu-west-1; "us-east-1" when empty
	Bucket   string
	// Prefix is prepended to every object name (e.g. "ota/"); optional.
	Prefix          string
	AccessKeyID     string
	SecretAccessKey string
	// PublicBaseURL, when set, is where devices download objects:
	// PublicBaseURL + "/" + object name (a CDN in front of the bucket, or a
	// public bucket URL). Otherwise downloads use presigned GET URLs.
	PublicBaseURL string
	// PresignTTL is the lifetime of presigned URLs; default one hour, at
	// most seven days (SigV4's limit).
	PresignTTL time.Duration
	// MaxBytes bounds one blob (default 200 MiB).
	MaxBytes int64
	// Transport replaces the HTTP transport (tests); optional.
	Transport http.RoundTripper
}

// Blobs is an S3-compatible codepush.Blobs.
type Blobs struct {
	cfg    Config
	client *minio.Client
}

var (
	_ codepush.Blobs     = (*Blobs)(nil)
	_ codepush.BlobURLer = (*Blobs)(nil)
)

// MaxPresignTTL is the longest lifetime SigV4 allows for a presigned URL.
const MaxPresignTTL = 7 * 24 * time.Hour

// New checks cfg and builds the client. It does not contact the store; call
// Check for that.
func New(cfg Config) (*Blobs, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("endpoint %q: must be an http(s) URL with no path, e.g. https://s3.eu-west-1.amazonaws.com", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("bucket: required")
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("access_key_id and secret_access_key: both required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PresignTTL == 0 {
		cfg.PresignTTL = time.Hour
	}
	if cfg.PresignTTL < time.Second || cfg.PresignTTL > MaxPresignTTL {
		return nil, fmt.Errorf("presign_ttl %s: must be from 1s to %s", cfg.PresignTTL, MaxPresignTTL)
	}
	if cfg.PublicBaseURL != "" {
		pu, err := url.Parse(cfg.PublicBaseURL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("public_base_url %q: must be an absolute http(s) URL", cfg.PublicBaseURL)
		}
		cfg.PublicBaseURL = strings.TrimRight(cfg.PublicBaseURL, "/")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 200 << 20
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath, // works with every S3-compatible store and any bucket name
		Transport:    cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", cfg.Endpoint, err)
	}
	return &Blobs{cfg: cfg, client: c}, nil
}

// Check reads the bucket's existence, so that a wrong endpoint, credentials
// or bucket fail at start-up rather than at the first release.
func (b *Blobs) Check(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("s3 bucket %q at %s: %w", b.cfg.Bucket, b.cfg.Endpoint, err)
	}
	if !ok {
		return fmt.Errorf("s3 bucket %q does not exist at %s", b.cfg.Bucket, b.cfg.Endpoint)
	}
	return nil
}

func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	_, err := hex.DecodeString(key)
	return err == nil && strings.ToLower(key) == key
}

// object is the object name of a blob key.
func (b *Blobs) object(key string) string { return b.cfg.Prefix + key }

func notFound(key string) error {
	return &codepush.Error{Kind: codepush.KindNotFound, Field: "package", Value: key, Message: fmt.Sprintf("package %q not found", key)}
}

// Put implements codepush.Blobs. The content streams through a temporary
// file while it is hashed (its name is its hash, known only at the end), and
// from there to the bucket; nothing holds the whole package in memory. An
// object that already exists is not written again: objects are immutable.
func (b *Blobs) Put(ctx context.Context, r io.Reader) (string, string, int64, error) {
	f, err := os.CreateTemp("", "releasepilot-s3-*")
	if err != nil {
		return "", "", 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, b.cfg.MaxBytes+1))
	if err != nil {
		return "", "", 0, fmt.Errorf("read package: %w", err)
	}
	if n > b.cfg.MaxBytes {
		return "", "", 0, &codepush.Error{Kind: codepush.KindInvalid, Field: "package", Value: fmt.Sprintf("%d bytes", n),
			Message: fmt.Sprintf("larger than the limit of %d bytes", b.cfg.MaxBytes)}
	}
	key := hex.EncodeToString(h.Sum(nil))
	// Read the remote state first: content-addressed objects that exist
	// are already right.
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, b.object(key), minio.StatObjectOptions{})
	if err == nil && info.Size == n {
		return key, key, n, nil
	}
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return "", "", 0, fmt.Errorf("s3 stat %s: %w", key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", "", 0, err
	}
	_, err = b.client.PutObject(ctx, b.cfg.Bucket, b.object(key), f, n, minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		CacheControl: "public, max-age=31536000, immutable",
		PartSize:     16 << 20, // large packages go up in parts read from the file
		// Plain bodies with UNSIGNED-PAYLOAD, as the client does over TLS:
		// some S3-compatible stores keep "Content-Encoding: aws-chunked"
		// from a streaming-signed upload and serve it back, which breaks
		// clients that need the exact bytes. The content's integrity is
		// checked by its SHA-256 name on every read.
		DisableContentSha256: true,
	})
	if err != nil {
		return "", "", 0, fmt.Errorf("s3 put %s: %w", key, err)
	}
	return key, key, n, nil
}

// Open implements codepush.Blobs; the content is verified against its key
// as it is read, and a mismatch fails at EOF.
func (b *Blobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if !validKey(key) {
		return nil, notFound(key)
	}
	obj, err := b.client.GetObject(ctx, b.cfg.Bucket, b.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3 get %s: %w", key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, notFound(key)
		}
		return nil, fmt.Errorf("s3 get %s: %w", key, err)
	}
	return codepush.VerifyBlob(obj, key, info.Size, "s3blobs: object"), nil
}

// BlobURL implements codepush.BlobURLer: the public base URL's object, or a
// presigned GET valid for PresignTTL that asks the store to answer with
// contentType.
func (b *Blobs) BlobURL(ctx context.Context, key, contentType string) (string, error) {
	if !validKey(key) {
		return "", notFound(key)
	}
	if b.cfg.PublicBaseURL != "" {
		return b.cfg.PublicBaseURL + "/" + b.object(key), nil
	}
	q := url.Values{}
	if contentType != "" {
		q.Set("response-content-type", contentType)
	}
	u, err := b.client.PresignedGetObject(ctx, b.cfg.Bucket, b.object(key), b.cfg.PresignTTL, q)
	if err != nil {
		return "", fmt.Errorf("s3 presign %s: %w", key, err)
	}
	return u.String(), nil
}
