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
	// SHA256 is Play's hash of the bundle it holds; empty unless Play
	// committed the bundle (or already had it).
	SHA256 string
	// Skipped is true when Play already had the versionCode: nothing was sent.
	Skipped bool
	Calls   int
}

// UploadBundle uploads an AAB in its own edit and commits it. It lists the
// app's bundles first and sends nothing when the versionCode is already
// there, so a re-run after a crash does not upload twice.
//
// The ledger records the versionCode before the bytes leave and each commit
// before it is requested. An upload or a commit that fails before Play
// committed the edit (Play refused it, or the edit is deleted, together with
// its bundles) leaves the versionCode free: the next attempt, in this call
// or a later one, uploads the same versionCode again. When a commit's
// outcome is unknown, the edit is probed with edits.delete; if that cannot
// tell, the versionCode is refused with a *VersionCodeReusedError until
// Play lists it (then the upload is Skipped), because Play may hold it. A
// versionCode not above every one Play has, or every one that reached a
// commit, is refused too. Media above Config.UploadChunkSize goes
// resumable, in chunks.
func (c *Client) UploadBundle(ctx context.Context, pkg string, b Bundle) (UploadResult, error) {
	if b.VersionCode <= 0 || b.Content == nil || b.Size <= 0 {
		return UploadResult{}, invalid("bundle versionCode %d, size %d: need a positive versionCode, content and size", b.VersionCode, b.Size)
	}
	o := &op{name: "UploadBundle"}
	defer c.finish(o)
	res := UploadResult{VersionCode: b.VersionCode}
	var sent, sentSHA = int64(0), "" // uploaded into the current edit, not yet committed
	watch := &commitWatch{
		before: func(ctx context.Context) error {
			if sent == 0 {
				return nil
			}
			if err := c.ledger.Committing(ctx, pkg, sent); err != nil {
				return fmt.Errorf("playstore: note commit of versionCode %d of %s: %w", sent, pkg, err)
			}
			return nil
		},
		after: func(ctx context.Context, outcome commitOutcome) error {
			if sent == 0 {
				return nil
			}
			var err error
			switch outcome {
			case commitDone:
				res.SHA256 = sentSHA
				err = c.ledger.Committed(ctx, pkg, sent)
			case commitFailed:
				err = c.ledger.NotCommitted(ctx, pkg, sent)
			default:
				c.log.InfoContext(ctx, "playstore: commit outcome unknown; the versionCode stays reserved", "package", pkg, "versionCode", sent)
			}
			if err != nil {
				return fmt.Errorf("playstore: record commit outcome of versionCode %d of %s: %w", sent, pkg, err)
			}
			return nil
		},
	}
	_, err := c.mutateWatched(ctx, o, pkg, func(ctx context.Context, e *edit) (bool, error) {
		sent, sentSHA = 0, ""
		res.Skipped, res.SHA256 = false, ""
		have, err := e.listBundles(ctx)
		if err != nil {
			return false, err
		}
		var playMax int64
		for _, hb := range have {
			if hb.VersionCode == b.VersionCode {
				// Play holds it: whatever the ledger said, it is committed.
				if err := c.ledger.Committed(ctx, pkg, b.VersionCode); err != nil {
					return false, fmt.Errorf("playstore: record versionCode %d of %s: %w", b.VersionCode, pkg, err)
				}
				res.Skipped, res.SHA256 = true, hb.Sha256
				return false, nil
			}
			playMax = max(playMax, hb.VersionCode)
		}
		if err := c.checkUnused(ctx, pkg, b.VersionCode, playMax); err != nil {
			return false, err
		}
		// Record before the bytes leave: from here on this edit holds it.
		if err := c.ledger.Record(ctx, pkg, b.VersionCode); err != nil {
			return false, fmt.Errorf("playstore: record versionCode %d of %s: %w", b.VersionCode, pkg, err)
		}
		var got *androidpublisher.Bundle
		// Not retried here: the Go client retries resumable chunks itself.
		// A failed upload leaves an edit that is never committed; the caller
		// may upload the same versionCode again.
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
			// Play has now seen that versionCode too (in an edit discarded below).
			if err := c.ledger.Record(ctx, pkg, got.VersionCode); err != nil {
				return false, fmt.Errorf("playstore: record versionCode %d of %s: %w", got.VersionCode, pkg, err)
			}
			return false, invalid("bundle declared versionCode %d but Play read %d from it", b.VersionCode, got.VersionCode)
		}
		sent, sentSHA = got.VersionCode, got.Sha256
		return true, nil
	}, watch)
	res.Calls = o.calls
	return res, err
}

func (c *Client) checkUnused(ctx context.Context, pkg string, vc, playMax int64) error {
	state, err := c.ledger.State(ctx, pkg, vc)
	if err != nil {
		return fmt.Errorf("playstore: read versionCode ledger of %s: %w", pkg, err)
	}
	lmax, err := c.ledger.Max(ctx, pkg)
	if err != nil {
		return fmt.Errorf("playstore: read versionCode ledger of %s: %w", pkg, err)
	}
	cmax, err := c.ledger.MaxCommitted(ctx, pkg)
	if err != nil {
		return fmt.Errorf("playstore: read versionCode ledger of %s: %w", pkg, err)
	}
	next := max(lmax, playMax) + 1
	switch {
	case state == VersionCodeCommitUnknown:
		return &VersionCodeReusedError{Package: pkg, VersionCode: vc, Next: next, Reason: "it was sent to Play in an edit whose commit outcome is unknown, so Play may hold it"}
	case state == VersionCodeCommitted:
		return &VersionCodeReusedError{Package: pkg, VersionCode: vc, Next: next, Reason: "Play committed it before, though it does not list it now"}
	case vc <= playMax:
		return &VersionCodeReusedError{Package: pkg, VersionCode: vc, Next: next, Reason: fmt.Sprintf("Play already has versionCode %d", playMax)}
	case vc <= cmax:
		return &VersionCodeReusedError{Package: pkg, VersionCode: vc, Next: next, Reason: fmt.Sprintf("versionCode %d was already sent to commit; versionCodes only go up", cmax)}
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
