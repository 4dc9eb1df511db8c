package playstore

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/api/androidpublisher/v3"
	"google.golang.org/api/googleapi"
)

// Bundle is an Android App Bundle to upload. VersionCode must be the one in
// the bundle's manifest; the client checks Play's answer against it.
type Bundle struct {
	VersionCode int64
	Content     io.ReaderAt
	Size        int64
}

// UploadResult says what UploadBundle did.
type UploadResult struct {
	VersionCode int64
	SHA256      string
	// Skipped is true when Play already had the versionCode: nothing was sent.
	Skipped bool
	Calls   int
}

// UploadBundle uploads an AAB in its own edit and commits it. It lists the
// app's bundles first and sends nothing when the versionCode is already
// there, so a re-run after a crash does not upload twice. A versionCode the
// ledger has seen but Play does not have (sent in an edit that never
// committed), or one not above every versionCode Play or the ledger knows,
// is refused with a *VersionCodeReusedError: Play may have seen it.
// Media above Config.UploadChunkSize goes resumable, in chunks.
func (c *Client) UploadBundle(ctx context.Context, pkg string, b Bundle) (UploadResult, error) {
	if b.VersionCode <= 0 || b.Content == nil || b.Size <= 0 {
		return UploadResult{}, invalid("bundle versionCode %d, size %d: need a positive versionCode, content and size", b.VersionCode, b.Size)
	}
	o := &op{name: "UploadBundle"}
	defer c.finish(o)
	res := UploadResult{VersionCode: b.VersionCode}
	_, err := c.mutate(ctx, o, pkg, func(ctx context.Context, e *edit) (bool, error) {
		have, err := e.listBundles(ctx)
		if err != nil {
			return false, err
		}
		var playMax int64
		for _, hb := range have {
			if hb.VersionCode == b.VersionCode {
				res.Skipped, res.SHA256 = true, hb.Sha256
				return false, nil
			}
			playMax = max(playMax, hb.VersionCode)
		}
		if err := c.checkUnused(ctx, pkg, b.VersionCode, playMax); err != nil {
			return false, err
		}
		// Record before the bytes leave: from here on Play may have seen it.
		if err := c.ledger.Record(ctx, pkg, b.VersionCode); err != nil {
			return false, fmt.Errorf("playstore: record versionCode %d of %s: %w", b.VersionCode, pkg, err)
		}
		var got *androidpublisher.Bundle
		// Not retried here: the Go client retries resumable chunks itself, and
		// a failed upload burns the versionCode (see above).
		err = c.call(ctx, o, "edits.bundles.upload", false, func() error {
			var err error
			got, err = c.pub.Edits.Bundles.Upload(pkg, e.id).
				Media(io.NewSectionReader(b.Content, 0, b.Size),
					googleapi.ContentType("application/octet-stream"), googleapi.ChunkSize(c.chunk)).
				Context(ctx).Do()
			return err
		})
		if err != nil {
			return true, fmt.Errorf("playstore: upload versionCode %d to %s: %w", b.VersionCode, pkg, err)
		}
		if got.VersionCode != b.VersionCode {
			// Play has now seen that versionCode too.
			if err := c.ledger.Record(ctx, pkg, got.VersionCode); err != nil {
				return false, fmt.Errorf("playstore: record versionCode %d of %s: %w", got.VersionCode, pkg, err)
			}
			return false, invalid("bundle declared versionCode %d but Play read %d from it", b.VersionCode, got.VersionCode)
		}
		res.SHA256 = got.Sha256
		return true, nil
	})
	res.Calls = o.calls
	return res, err
}

func (c *Client) checkUnused(ctx context.Context, pkg string, vc, playMax int64) error {
	seen, err := c.ledger.Seen(ctx, pkg, vc)
	if err != nil {
		return fmt.Errorf("playstore: read versionCode ledger of %s: %w", pkg, err)
	}
	lmax, err := c.ledger.Max(ctx, pkg)
	if err != nil {
		return fmt.Errorf("playstore: read versionCode ledger of %s: %w", pkg, err)
	}
	next := max(lmax, playMax) + 1
	switch {
	case seen:
		return &VersionCodeReusedError{Package: pkg, VersionCode: vc, Next: next, Reason: "it was sent to Play before in an edit that did not commit"}
	case vc <= playMax:
		return &VersionCodeReusedError{Package: pkg, VersionCode: vc, Next: next, Reason: fmt.Sprintf("Play already has versionCode %d", playMax)}
	case vc <= lmax:
		return &VersionCodeReusedError{Package: pkg, VersionCode: vc, Next: next, Reason: fmt.Sprintf("versionCode %d was already sent; versionCodes only go up", lmax)}
	}
	return nil
}

// NextVersionCode returns the lowest versionCode above everything Play has
// and everything the ledger recorded: the one to build the next AAB with.
func (c *Client) NextVersionCode(ctx context.Context, pkg string) (int64, error) {
	o := &op{name: "NextVersionCode"}
	defer c.finish(o)
	var playMax int64
	_, err := c.mutate(ctx, o, pkg, func(ctx context.Context, e *edit) (bool, error) {
		have, err := e.listBundles(ctx)
		for _, b := range have {
			playMax = max(playMax, b.VersionCode)
		}
		return false, err
	})
	if err != nil {
		return 0, err
	}
	lmax, err := c.ledger.Max(ctx, pkg)
	if err != nil {
		return 0, fmt.Errorf("playstore: read versionCode ledger of %s: %w", pkg, err)
	}
	return max(lmax, playMax) + 1, nil
}
