package appstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
)

// BuildUploadState is the state of a buildUploads resource.
type BuildUploadState string

const (
	UploadAwaiting   BuildUploadState = "AWAITING_UPLOAD"
	UploadProcessing BuildUploadState = "PROCESSING"
	UploadFailed     BuildUploadState = "FAILED"
	UploadComplete   BuildUploadState = "COMPLETE"
)

// StateDetail is an import error, warning or info of a build upload.
type StateDetail struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// BuildUpload is one upload of a binary through the REST API (API 4.1+).
type BuildUpload struct {
	ID          string
	Version     string // cfBundleShortVersionString
	BuildNumber string // cfBundleVersion
	Platform    Platform
	State       BuildUploadState
	Errors      []StateDetail
	Warnings    []StateDetail
	// BuildID is set once App Store Connect has created the build.
	BuildID string
}

type buildUploadAttrs struct {
	CFBundleShortVersionString string   `json:"cfBundleShortVersionString"`
	CFBundleVersion            string   `json:"cfBundleVersion"`
	Platform                   Platform `json:"platform"`
	State                      *struct {
		State    BuildUploadState `json:"state"`
		Errors   []StateDetail    `json:"errors"`
		Warnings []StateDetail    `json:"warnings"`
	} `json:"state,omitempty"`
}

type buildUploadRels struct {
	App toOne `json:"app"`
}

func buildUploadFrom(r resource[buildUploadAttrs]) *BuildUpload {
	u := &BuildUpload{ID: r.ID, Version: r.Attributes.CFBundleShortVersionString, BuildNumber: r.Attributes.CFBundleVersion,
		Platform: r.Attributes.Platform, BuildID: r.Relationships["build"].id()}
	if s := r.Attributes.State; s != nil {
		u.State, u.Errors, u.Warnings = s.State, s.Errors, s.Warnings
	}
	return u
}

// BuildUpload reads an upload; poll it until State is COMPLETE or FAILED.
func (c *Client) BuildUpload(ctx context.Context, uploadID string) (*BuildUpload, error) {
	if err := requireID("uploadID", uploadID); err != nil {
		return nil, err
	}
	r, err := getOne[buildUploadAttrs](ctx, c, "/v1/buildUploads/"+uploadID, url.Values{"include": {"build"}})
	if err != nil {
		return nil, err
	}
	return buildUploadFrom(r), nil
}

// UploadRequest describes a binary to upload.
type UploadRequest struct {
	AppID       string
	Version     string // CFBundleShortVersionString, e.g. "1.2.3"
	BuildNumber string // CFBundleVersion, e.g. "45"
	Platform    Platform
	FileName    string // e.g. "App.ipa"
	File        io.ReaderAt
	Size        int64
	UTI         string // default "com.apple.ipa"
}

// UploadOperation is one part to send to a presigned URL.
type UploadOperation struct {
	Method         string `json:"method"`
	URL            string `json:"url"`
	Length         int64  `json:"length"`
	Offset         int64  `json:"offset"`
	PartNumber     int64  `json:"partNumber,omitempty"`
	RequestHeaders []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"requestHeaders,omitempty"`
}

type buildUploadFileAttrs struct {
	FileName           string            `json:"fileName,omitempty"`
	FileSize           int64             `json:"fileSize,omitempty"`
	UTI                string            `json:"uti,omitempty"`
	AssetType          string            `json:"assetType,omitempty"`
	UploadOperations   []UploadOperation `json:"uploadOperations,omitempty"`
	AssetDeliveryState *struct {
		State string `json:"state"`
	} `json:"assetDeliveryState,omitempty"`
}

type buildUploadFileRels struct {
	BuildUpload toOne `json:"buildUpload"`
}

type checksum struct {
	Hash      string `json:"hash"`
	Algorithm string `json:"algorithm"`
}

type buildUploadFileCommitAttrs struct {
	SourceFileChecksums struct {
		File checksum `json:"file"`
	} `json:"sourceFileChecksums"`
	Uploaded bool `json:"uploaded"`
}

// UploadBuild uploads a binary: create the buildUploads record, reserve the
// file, send every part to its presigned URL, and commit with a SHA-256
// checksum. It returns the upload right after the commit; poll BuildUpload
// for COMPLETE, then find the build.
//
// It first lists the app's uploads for the same version and build number:
// one that is PROCESSING or COMPLETE is returned as is (never a second
// upload), and one still AWAITING_UPLOAD is resumed, with its reservation
// if it has one; if the storage host refuses that reservation's URLs
// (expired), the file is reserved once more.
func (c *Client) UploadBuild(ctx context.Context, req UploadRequest) (*BuildUpload, error) {
	switch {
	case requireID("AppID", req.AppID) != nil:
		return nil, requireID("AppID", req.AppID)
	case req.Version == "":
		return nil, &ValidationError{Field: "Version", Reason: "must not be empty"}
	case req.BuildNumber == "":
		return nil, &ValidationError{Field: "BuildNumber", Reason: "must not be empty"}
	case req.FileName == "":
		return nil, &ValidationError{Field: "FileName", Reason: "must not be empty"}
	case req.File == nil || req.Size < 1:
		return nil, &ValidationError{Field: "File", Reason: "must be a non-empty reader with Size >= 1"}
	}
	if req.Platform == "" {
		req.Platform = PlatformIOS
	}
	if req.UTI == "" {
		req.UTI = "com.apple.ipa"
	}
	q := url.Values{
		"filter[cfBundleShortVersionString]": {req.Version},
		"filter[cfBundleVersion]":            {req.BuildNumber},
		"filter[platform]":                   {string(req.Platform)},
		"sort":                               {"-uploadedDate"},
	}
	existing, err := getAll[buildUploadAttrs](ctx, c, "/v1/apps/"+req.AppID+"/buildUploads", q)
	if err != nil {
		return nil, err
	}
	var upload *BuildUpload
	for _, r := range existing {
		u := buildUploadFrom(r)
		switch u.State {
		case UploadProcessing, UploadComplete:
			return u, nil
		case UploadAwaiting:
			upload = u
		}
	}
	if upload == nil {
		body := document[createData[buildUploadAttrs, buildUploadRels]]{Data: createData[buildUploadAttrs, buildUploadRels]{
			Type:          "buildUploads",
			Attributes:    &buildUploadAttrs{CFBundleShortVersionString: req.Version, CFBundleVersion: req.BuildNumber, Platform: req.Platform},
			Relationships: buildUploadRels{App: one("apps", req.AppID)},
		}}
		var doc single[buildUploadAttrs]
		if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/buildUploads", body: body}, &doc); err != nil {
			return nil, err
		}
		upload = buildUploadFrom(doc.Data)
	}

	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(req.File, 0, req.Size)); err != nil {
		return nil, fmt.Errorf("appstore: reading %s: %w", req.FileName, err)
	}
	file, reused, err := c.reserveFile(ctx, upload.ID, req, false)
	if err != nil {
		return nil, err
	}
	err = c.sendParts(ctx, req, file)
	var refused *partRefusedError
	if reused && errors.As(err, &refused) {
		// A reservation left by an earlier run can outlive its presigned
		// URLs (they expire, about a week after the reservation); the
		// storage host then refuses every part. Reserve the file again,
		// once, and send it to the new URLs.
		c.log(ctx, slog.LevelWarn, "appstore: upload URLs of an earlier reservation refused, reserving again",
			"upload", upload.ID, "file", file.ID, "status", refused.status)
		if file, _, err = c.reserveFile(ctx, upload.ID, req, true); err != nil {
			return nil, err
		}
		err = c.sendParts(ctx, req, file)
	}
	if err != nil {
		return nil, err
	}
	var commit buildUploadFileCommitAttrs
	commit.Uploaded = true
	commit.SourceFileChecksums.File = checksum{Hash: hex.EncodeToString(sum.Sum(nil)), Algorithm: "SHA_256"}
	body := document[updateData[buildUploadFileCommitAttrs]]{Data: updateData[buildUploadFileCommitAttrs]{Type: "buildUploadFiles", ID: file.ID, Attributes: commit}}
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/buildUploadFiles/" + file.ID, body: body, idempotent: true}, nil); err != nil {
		return nil, err
	}
	return c.BuildUpload(ctx, upload.ID)
}

// sendParts sends every part of a reservation to its presigned URL.
func (c *Client) sendParts(ctx context.Context, req UploadRequest, file resource[buildUploadFileAttrs]) error {
	for i, op := range file.Attributes.UploadOperations {
		if err := c.uploadPart(ctx, req, op); err != nil {
			return fmt.Errorf("appstore: upload part %d of %s: %w", i+1, req.FileName, err)
		}
	}
	return nil
}

// reserveFile reuses the newest reservation of the same file that is still
// awaiting its bytes (reused true), or makes a new one; fresh skips reuse.
func (c *Client) reserveFile(ctx context.Context, uploadID string, req UploadRequest, fresh bool) (file resource[buildUploadFileAttrs], reused bool, err error) {
	if !fresh {
		files, err := getAll[buildUploadFileAttrs](ctx, c, "/v1/buildUploads/"+uploadID+"/buildUploadFiles", nil)
		if err != nil {
			return resource[buildUploadFileAttrs]{}, false, err
		}
		for i := len(files) - 1; i >= 0; i-- {
			f, a := files[i], files[i].Attributes
			if a.FileName == req.FileName && a.FileSize == req.Size && a.AssetDeliveryState != nil &&
				a.AssetDeliveryState.State == "AWAITING_UPLOAD" && len(a.UploadOperations) > 0 {
				return f, true, nil
			}
		}
	}
	body := document[createData[buildUploadFileAttrs, buildUploadFileRels]]{Data: createData[buildUploadFileAttrs, buildUploadFileRels]{
		Type:          "buildUploadFiles",
		Attributes:    &buildUploadFileAttrs{FileName: req.FileName, FileSize: req.Size, UTI: req.UTI, AssetType: "ASSET"},
		Relationships: buildUploadFileRels{BuildUpload: one("buildUploads", uploadID)},
	}}
	var doc single[buildUploadFileAttrs]
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/buildUploadFiles", body: body}, &doc); err != nil {
		return resource[buildUploadFileAttrs]{}, false, err
	}
	if len(doc.Data.Attributes.UploadOperations) == 0 {
		return resource[buildUploadFileAttrs]{}, false, fmt.Errorf("appstore: reservation %s has no uploadOperations", doc.Data.ID)
	}
	return doc.Data, false, nil
}

// partRefusedError is a part the storage host answered with a 4xx other
// than 429: repeating it to the same URL cannot succeed.
type partRefusedError struct {
	part   int64
	status int
}

func (e *partRefusedError) Error() string { return fmt.Sprintf("part %d: HTTP %d", e.part, e.status) }

// uploadPart sends one part. Presigned URLs carry their own authorisation,
// so no bearer token is sent, and the URL is never logged or put in errors.
func (c *Client) uploadPart(ctx context.Context, req UploadRequest, op UploadOperation) error {
	if op.Offset < 0 || op.Length < 1 || op.Offset+op.Length > req.Size {
		return fmt.Errorf("operation range [%d,+%d) is outside the %d-byte file", op.Offset, op.Length, req.Size)
	}
	method := op.Method
	if method == "" {
		method = http.MethodPut
	}
	var lastErr error
	for attempt := 0; attempt <= c.maxRetries(); attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, c.backoff(attempt-1)); err != nil {
				return err
			}
		}
		hr, err := http.NewRequestWithContext(ctx, method, op.URL, io.NewSectionReader(req.File, op.Offset, op.Length))
		if err != nil {
			return fmt.Errorf("bad upload operation (method %q)", method)
		}
		hr.ContentLength = op.Length
		for _, h := range op.RequestHeaders {
			hr.Header.Set(h.Name, h.Value)
		}
		c.uploadParts.Add(1)
		resp, err := c.httpClient().Do(hr)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = fmt.Errorf("sending part %d failed", op.PartNumber) // no URL: it is a credential
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return nil
		}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
			return &partRefusedError{part: op.PartNumber, status: resp.StatusCode}
		}
		lastErr = fmt.Errorf("part %d: HTTP %d", op.PartNumber, resp.StatusCode)
	}
	return lastErr
}
