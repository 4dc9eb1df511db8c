package service

import (
	"context"
	"fmt"

	"github.com/swapjoy/releasepilot/codepush/s3blobs"
	"github.com/swapjoy/releasepilot/internal/config"
)

// s3Storage builds the S3-compatible package storage and reads the bucket
// once, so that a wrong endpoint, bucket or credentials stop the start.
func s3Storage(ctx context.Context, c config.S3) (*s3blobs.Blobs, error) {
	b, err := s3blobs.New(s3blobs.Config{
		Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
		AccessKeyID: c.AccessKeyID.Value(), SecretAccessKey: c.SecretAccessKey.Value(),
		PublicBaseURL: c.PublicBaseURL, PresignTTL: c.PresignTTL.D(),
	})
	if err != nil {
		return nil, fmt.Errorf("codepush.s3.%w", err)
	}
	if err := b.Check(ctx); err != nil {
		return nil, fmt.Errorf("codepush.s3: %w", err)
	}
	return b, nil
}
