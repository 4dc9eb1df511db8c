// Package apiclient is the client side of releasepilot's /v1 API, used by
// the command line (releasepilot status, halt, resume, …).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	base, err := url.Parse(strings.TrimRight(c.BaseURL, "/") + "/")
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return fmt.Errorf("server: %q is not an http(s) URL", c.BaseURL)
	}
	u := base.ResolveReference(&url.URL{Path: strings.TrimPrefix(path, "/"), RawQuery: query.Encode()})
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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
