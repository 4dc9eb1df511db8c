// Package appstore is a small App Store Connect API client for the calls a
// release service needs: find builds and wait for processing, TestFlight
// distribution (export compliance, What to Test, beta groups, beta review),
// build upload over the REST API, App Store version submission through
// reviewSubmissions, and phased release control.
//
// Every mutating method first reads the remote state and only writes what is
// missing, so a job that crashed and runs again never repeats a mutation.
// No method removes an app from sale.
//
// Methods are single steps, meant to be called from jobs that snooze between
// them: FindBuild until the build appears and its ProcessingState is Done,
// then SetUsesNonExemptEncryption, SetWhatToTest, AddBuildToGroups,
// SubmitForBetaReview and BetaReviewSubmission until approved; for the App
// Store, FindOrCreateAppStoreVersion, AttachBuild, CreatePhasedRelease,
// SubmitForReview, then Pause/Resume/CompletePhasedRelease. Errors match
// ErrNotFound, ErrConflict, ErrInvalid, ErrRateLimited, ErrUnavailable…
// with errors.Is, and Temporary tells a retry from a failure.
//
// The package ships a wire-compatible fake in appstore/appstoretest.
package appstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is App Store Connect's API host.
const DefaultBaseURL = "https://api.appstoreconnect.apple.com"

// Tokens supplies bearer tokens. *TokenSource implements it.
type Tokens interface {
	Token() (string, error)
	// Invalidate drops a cached token after App Store Connect refused it.
	Invalidate()
}

// Client calls App Store Connect. Only Tokens is required; the other fields
// have working zero values. A Client is safe for concurrent use once its
// fields are set.
//
// Reads, PATCHes and relationship links are retried after 429, 5xx, a
// malformed body or an attempt timeout. Creates (POST of a new resource) are
// retried only after 429, which Apple answers before doing anything: after a
// 5xx the create may have happened, so the error is returned and the caller
// runs the method again, which reads first and does not create twice.
type Client struct {
	BaseURL    string       // default DefaultBaseURL
	HTTPClient *http.Client // default http.DefaultClient
	Tokens     Tokens
	Logger     *slog.Logger // nil: no logging

	// MaxRetries bounds retries of one request after 429, 5xx or an attempt
	// timeout (default 4, so at most 5 attempts). Negative disables retries.
	MaxRetries int
	// BaseBackoff is the first retry delay (default 1s); it doubles per retry
	// with full jitter and is capped at MaxBackoff (default 30s).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// AttemptTimeout bounds one HTTP attempt (default 60s). A timed-out
	// attempt of an idempotent request is retried; the caller's context
	// deadline always wins.
	AttemptTimeout time.Duration
	// RateLimitReserve is how many calls of the hourly budget the client
	// keeps for other work: once X-Rate-Limit reports no more than this
	// many remaining, failures are not retried and a 429 becomes a
	// *RateLimitError (default 0). First attempts are always sent: the
	// window rolls, and only the server knows when budget returns.
	RateLimitReserve int
	// Sleep waits between retries (default: a timer honouring ctx).
	// Tests replace it to avoid real waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRequest, if set, is called after every HTTP attempt to App Store
	// Connect (not to presigned upload URLs) with its method, path and
	// status (0 when no response arrived).
	OnRequest func(method, path string, status int)

	calls       atomic.Int64
	uploadParts atomic.Int64
	rateMu      sync.Mutex
	rate        RateLimit
}

// Calls reports the number of HTTP requests sent to App Store Connect,
// retries included (each counts against the hourly budget).
func (c *Client) Calls() int64 { return c.calls.Load() }

// UploadParts reports the number of part uploads sent to presigned URLs.
func (c *Client) UploadParts() int64 { return c.uploadParts.Load() }

// RateLimit is the X-Rate-Limit header: user-hour-lim:3500;user-hour-rem:500;
type RateLimit struct {
	Limit     int // requests per rolling hour for this key
	Remaining int // requests left in the current window
	Known     bool
}

// ParseRateLimit parses an X-Rate-Limit header value. Unknown fields are
// ignored; ok is false if neither field was present.
func ParseRateLimit(h string) (rl RateLimit, ok bool) {
	var seenLim, seenRem bool
	for _, part := range strings.Split(h, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(part), ":")
		if !found {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "user-hour-lim":
			rl.Limit, seenLim = n, true
		case "user-hour-rem":
			rl.Remaining, seenRem = n, true
		}
	}
	rl.Known = seenLim && seenRem
	return rl, rl.Known
}

// RateLimit returns the last X-Rate-Limit header seen (Known false before
// the first response).
func (c *Client) RateLimit() RateLimit {
	c.rateMu.Lock()
	defer c.rateMu.Unlock()
	return c.rate
}

func (c *Client) budgetExhausted() (RateLimit, bool) {
	rl := c.RateLimit()
	return rl, rl.Known && rl.Remaining <= c.RateLimitReserve
}

func (c *Client) baseURL() string {
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/")
	}
	return DefaultBaseURL
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) maxRetries() int {
	switch {
	case c.MaxRetries < 0:
		return 0
	case c.MaxRetries == 0:
		return 4
	}
	return c.MaxRetries
}

func (c *Client) maxBackoff() time.Duration {
	if c.MaxBackoff <= 0 {
		return 30 * time.Second
	}
	return c.MaxBackoff
}

func (c *Client) backoff(retry int) time.Duration {
	base, max := c.BaseBackoff, c.maxBackoff()
	if base <= 0 {
		base = time.Second
	}
	d := base << retry
	if d > max || d <= 0 {
		d = max
	}
	// Equal jitter: uniform in [d/2, d], so retries of many jobs spread out
	// but never collapse to zero delay.
	return d/2 + rand.N(d/2+1)
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if c.Logger != nil {
		c.Logger.Log(ctx, level, msg, args...)
	}
}

// request is one logical API call.
type request struct {
	method string
	path   string // starting with /v1/
	query  url.Values
	body   any // marshalled as JSON when non-nil
	// idempotent requests are retried after 5xx and attempt timeouts.
	// Creates (POST of a new resource) are not: the job re-reads state instead.
	idempotent bool
}

// do performs r and decodes a 2xx body into out (if non-nil and the body is
// not empty). It handles auth refresh, rate limits and retries.
func (c *Client) do(ctx context.Context, r request, out any) error {
	if c.Tokens == nil {
		return errors.New("appstore: Client.Tokens is nil")
	}
	var body []byte
	if r.body != nil {
		// What to Test texts often contain & and <; send them as typed.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r.body); err != nil {
			return fmt.Errorf("appstore: encoding %s %s body: %w", r.method, r.path, err)
		}
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	u := c.baseURL() + r.path
	if len(r.query) > 0 {
		u += "?" + encodeQuery(r.query)
	}
	reauthed := false
	var lastErr error
	for attempt := 0; ; attempt++ {
		if rl, gone := c.budgetExhausted(); gone && attempt > 0 {
			// A retry would spend budget the last response said is gone.
			var last *APIError
			errors.As(lastErr, &last)
			return &RateLimitError{RateLimit: rl, Last: last}
		}
		status, retryable, err := c.attempt(ctx, r, u, body, out)
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return fmt.Errorf("appstore: %s %s: %w (last error: %v)", r.method, r.path, ctx.Err(), err)
		}
		if status == http.StatusUnauthorized && !reauthed {
			// Apple's 401s can be transient or mean our cached token went
			// stale (clock jump, revoked); mint a new one once.
			reauthed = true
			c.Tokens.Invalidate()
			c.log(ctx, slog.LevelWarn, "appstore: 401, re-minting token", "method", r.method, "path", r.path)
			attempt--
			continue
		}
		if status == http.StatusUnauthorized {
			// Refused again with a fresh token. Apple's 401s can be
			// transient (ref §1.6): say so, and let the caller's
			// backoff try again later rather than failing for good.
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				apiErr.AfterReauth = true
			}
			return err
		}
		if !retryable || (!r.idempotent && status != http.StatusTooManyRequests) || attempt >= c.maxRetries() {
			return err
		}
		if status == http.StatusTooManyRequests {
			if rl, gone := c.budgetExhausted(); gone {
				var last *APIError
				errors.As(err, &last)
				return &RateLimitError{RateLimit: rl, Last: last}
			}
		}
		d := c.backoff(attempt)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.RetryAfter > d {
			if apiErr.RetryAfter > c.maxBackoff() {
				// Too long to block a worker; the caller can snooze for
				// APIError.RetryAfter instead.
				return err
			}
			d = apiErr.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("appstore: %s %s: giving up, retry in %s would pass the deadline: %w", r.method, r.path, d, err)
		}
		c.log(ctx, slog.LevelInfo, "appstore: retrying", "method", r.method, "path", r.path, "status", status, "after", d)
		if serr := c.sleep(ctx, d); serr != nil {
			return fmt.Errorf("appstore: %s %s: %w (last error: %v)", r.method, r.path, serr, err)
		}
	}
}

// attempt sends one HTTP request. retryable reports whether the failure is
// of a kind worth repeating (429, 5xx, transport error or attempt timeout).
func (c *Client) attempt(ctx context.Context, r request, u string, body []byte, out any) (status int, retryable bool, err error) {
	tok, err := c.Tokens.Token()
	if err != nil {
		return 0, false, err
	}
	timeout := c.AttemptTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, u, rd)
	if err != nil {
		return 0, false, fmt.Errorf("appstore: building %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.calls.Add(1)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if c.OnRequest != nil {
			c.OnRequest(r.method, r.path, 0)
		}
		// Never wrap *url.Error with the token-bearing request; it only
		// carries the URL, which has no secret.
		return 0, true, fmt.Errorf("appstore: %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if c.OnRequest != nil {
		c.OnRequest(r.method, r.path, resp.StatusCode)
	}
	rl, ok := ParseRateLimit(resp.Header.Get("X-Rate-Limit"))
	// Method and path only: query values are harmless but the Authorization
	// header must never reach a log.
	c.log(ctx, slog.LevelDebug, "appstore: response", "method", r.method, "path", r.path, "status", resp.StatusCode, "rate_remaining", rl.Remaining)
	if ok {
		c.rateMu.Lock()
		c.rate = rl
		c.rateMu.Unlock()
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, true, fmt.Errorf("appstore: %s %s: reading response: %w", r.method, r.path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return resp.StatusCode, false, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			// A malformed success body is treated like a 5xx: the server
			// misbehaved; reads may be retried.
			return resp.StatusCode, true, fmt.Errorf("appstore: %s %s: decoding %d response: %w", r.method, r.path, resp.StatusCode, err)
		}
		return resp.StatusCode, false, nil
	}
	apiErr := &APIError{Status: resp.StatusCode, Method: r.method, Path: r.path, RateLimit: rl}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		apiErr.RetryAfter = time.Duration(secs) * time.Second
	}
	var doc struct {
		Errors []ErrorItem `json:"errors"`
	}
	if json.Unmarshal(data, &doc) == nil {
		apiErr.Errors = doc.Errors
	}
	retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	return resp.StatusCode, retry, apiErr
}

// encodeQuery keeps brackets and commas readable (filter[app]=1,2) as Apple's
// documentation writes them; both forms are accepted by HTTP servers.
func encodeQuery(q url.Values) string {
	s := q.Encode()
	r := strings.NewReplacer("%5B", "[", "%5D", "]", "%2C", ",")
	return r.Replace(s)
}
