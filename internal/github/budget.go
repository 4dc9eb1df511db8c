package github

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultPollReserve is the share of a credential's hourly budget that
// polls (a lane waiting for its release asset) leave for everything else:
// planning, tag checks, deployment statuses.
const DefaultPollReserve = 0.25

// RateLimitedError is a call releasepilot did not make, or GitHub refused,
// because a credential's budget is spent or GitHub asked to wait. It
// matches ErrRateLimited. It never names the token.
type RateLimitedError struct {
	// Credential names the budget: "token", "installation 123",
	// "anonymous".
	Credential string
	Until      time.Time
	Reason     string
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("github: %s: not calling GitHub until %s: %s", e.Credential, e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// Is matches ErrRateLimited.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// budget is what GitHub last said of one credential's hourly budget.
type budget struct {
	known     bool
	limit     int
	remaining int
	reset     time.Time
	// blockedUntil is a wait GitHub asked for (Retry-After, a spent
	// budget, a secondary limit).
	blockedUntil time.Time
	blockReason  string
}

// budgets track every credential's budget from the headers of its
// responses, so releasepilot stops calling before GitHub refuses, keeps a
// reserve that polls cannot spend, and waits as long as GitHub asks.
type budgets struct {
	mu      sync.Mutex
	m       map[string]*budget
	reserve float64
	now     func() time.Time
}

func (b *budgets) get(key string) *budget {
	if b.m == nil {
		b.m = map[string]*budget{}
	}
	bu := b.m[key]
	if bu == nil {
		bu = &budget{}
		b.m[key] = bu
	}
	return bu
}

type pollKey struct{}

// asPoll marks calls made by polling: they only spend what is above the
// reserve.
func asPoll(ctx context.Context) context.Context { return context.WithValue(ctx, pollKey{}, true) }

func isPoll(ctx context.Context) bool { v, _ := ctx.Value(pollKey{}).(bool); return v }

// admit decides whether a call may go out now.
func (b *budgets) admit(key, label string, poll bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	bu := b.get(key)
	if now.Before(bu.blockedUntil) {
		return &RateLimitedError{Credential: label, Until: bu.blockedUntil, Reason: bu.blockReason}
	}
	if !bu.known || !now.Before(bu.reset) {
		return nil // nothing known, or a new hour began
	}
	if bu.remaining <= 0 {
		return &RateLimitedError{Credential: label, Until: bu.reset, Reason: fmt.Sprintf("the hourly budget of %d requests is spent", bu.limit)}
	}
	if poll && float64(bu.remaining) <= b.reserve*float64(bu.limit) {
		return &RateLimitedError{Credential: label, Until: bu.reset, Reason: fmt.Sprintf(
			"%d of %d requests left this hour; polls leave the last %.0f%% to releases", bu.remaining, bu.limit, b.reserve*100)}
	}
	return nil
}

// observe records a response's rate-limit headers. A response that is a
// rate-limit refusal (403 or 429 saying so) becomes a *RateLimitedError
// with the wait GitHub asks for: Retry-After when given, else the reset
// of a spent budget, else a minute (GitHub's documented rule).
func (b *budgets) observe(key, label string, resp *http.Response) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	bu := b.get(key)
	h := resp.Header
	if res := h.Get("X-RateLimit-Resource"); res == "" || res == "core" {
		limit, e1 := strconv.Atoi(h.Get("X-RateLimit-Limit"))
		remaining, e2 := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
		reset, e3 := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
		if e1 == nil && e2 == nil && e3 == nil && limit > 0 {
			bu.known, bu.limit, bu.remaining, bu.reset = true, limit, remaining, time.Unix(reset, 0)
		}
	}
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return nil
	}
	var wait time.Time
	reason := ""
	if ra := h.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs >= 0 {
			wait, reason = now.Add(time.Duration(secs)*time.Second), fmt.Sprintf("GitHub asked to retry after %d s", secs)
		}
	}
	if wait.IsZero() && h.Get("X-RateLimit-Remaining") == "0" {
		wait, reason = bu.reset, "the hourly budget is spent"
	}
	if wait.IsZero() {
		// A 403 may be a plain permission refusal: only a body that says
		// "rate limit" is one.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if !strings.Contains(strings.ToLower(string(body)), "rate limit") {
			return nil
		}
		wait, reason = now.Add(time.Minute), "GitHub's secondary rate limit"
	}
	if wait.After(bu.blockedUntil) {
		bu.blockedUntil, bu.blockReason = wait, reason
	}
	return &RateLimitedError{Credential: label, Until: wait, Reason: reason}
}
