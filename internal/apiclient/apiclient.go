// Package apiclient is the client side of releasepilot's /v1 API, used by
// the command line (releasepilot status, halt, resume, …).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls a releasepilot server.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// Error is an error answer from the server.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	ct := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, ct = bytes.NewReader(b), "application/json"
	}
	return c.send(ctx, method, path, query, rd, ct, out)
}

// send makes one request with a body of content type ct and decodes a JSON
// answer into out.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, rd io.Reader, ct string, out any) error {
	base, err := url.Parse(strings.TrimRight(c.BaseURL, "/") + "/")
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return fmt.Errorf("server: %q is not an http(s) URL", c.BaseURL)
	}
	u := base.ResolveReference(&url.URL{Path: strings.TrimPrefix(path, "/"), RawQuery: query.Encode()})
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error.Message == "" {
			e.Error.Message = strings.TrimSpace(string(data))
		}
		return &Error{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Release fetches a release with its lanes as generic JSON.
func (c *Client) Release(ctx context.Context, id string) (map[string]any, error) {
	var out map[string]any
	return out, c.do(ctx, http.MethodGet, "v1/releases/"+url.PathEscape(id), nil, nil, &out)
}

// Releases lists releases of an app ("" for all).
func (c *Client) Releases(ctx context.Context, app string) (map[string]any, error) {
	var out map[string]any
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	return out, c.do(ctx, http.MethodGet, "v1/releases", q, nil, &out)
}

// Command sends a command to a release's lane (platform may be empty when
// the release has one lane) or, with a lane id, to that lane.
func (c *Client) Command(ctx context.Context, id, command, platform, reason string) (map[string]any, error) {
	return c.command(ctx, id, command, platform, reason, false)
}

// DryRun asks what a command would do, changing nothing.
func (c *Client) DryRun(ctx context.Context, id, command, platform, reason string) (map[string]any, error) {
	return c.command(ctx, id, command, platform, reason, true)
}

func (c *Client) command(ctx context.Context, id, command, platform, reason string, dryRun bool) (map[string]any, error) {
	var out map[string]any
	var q url.Values
	if dryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	body := map[string]string{"reason": reason}
	path := "v1/releases/" + url.PathEscape(id) + "/" + url.PathEscape(command)
	if strings.HasPrefix(id, "lane_") {
		path = "v1/lanes/" + url.PathEscape(id) + "/" + url.PathEscape(command)
	} else if platform != "" {
		body["platform"] = platform
	}
	return out, c.do(ctx, http.MethodPost, path, q, body, &out)
}

// AccessKeys lists the access keys (never their secrets).
func (c *Client) AccessKeys(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	return out, c.do(ctx, http.MethodGet, "v1/access-keys", nil, nil, &out)
}

// CreateAccessKey makes an access key; the answer holds its secret, once.
// ttl is a Go duration ("720h"), empty for a key that does not expire.
func (c *Client) CreateAccessKey(ctx context.Context, name, role, ttl string) (map[string]any, error) {
	var out map[string]any
	return out, c.do(ctx, http.MethodPost, "v1/access-keys", nil, map[string]string{"name": name, "role": role, "ttl": ttl}, &out)
}

// RevokeAccessKey deletes an access key.
func (c *Client) RevokeAccessKey(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "v1/access-keys/"+url.PathEscape(name), nil, nil, nil)
}

// OTARelease uploads a hotfix: release is the JSON of the "release" field
// (app, platform, deployment, commit, …) and pkg the bundle zip.
func (c *Client) OTARelease(ctx context.Context, release map[string]any, pkg io.Reader) (map[string]any, error) {
	info, err := json.Marshal(release)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("release", string(info))
		if err == nil {
			var fw io.Writer
			if fw, err = mw.CreateFormFile("package", "CodePush.zip"); err == nil {
				if _, err = io.Copy(fw, pkg); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	var out map[string]any
	return out, c.uploading().send(ctx, http.MethodPost, "v1/ota/releases", nil, pr, mw.FormDataContentType(), &out)
}

// uploading is the client for a release upload: the server fingerprints the
// commit (reading it from GitHub) before it answers, so it may take minutes.
func (c *Client) uploading() *Client {
	cc := *c
	if cc.HTTP == nil {
		cc.HTTP = &http.Client{Timeout: 10 * time.Minute}
	}
	return &cc
}
