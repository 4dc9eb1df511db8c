package appstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors; an *APIError matches the one for its status with errors.Is.
var (
	ErrNotFound     = errors.New("appstore: not found")
	ErrConflict     = errors.New("appstore: conflict")
	ErrUnauthorized = errors.New("appstore: unauthorized")
	ErrForbidden    = errors.New("appstore: forbidden")
	ErrInvalid      = errors.New("appstore: invalid request")
	ErrUnavailable  = errors.New("appstore: unavailable")
	// ErrRateLimited means the hourly budget is exhausted (or App Store
	// Connect kept answering 429); the caller should wait, not retry now.
	ErrRateLimited = errors.New("appstore: rate limit exhausted")
	// ErrAmbiguous means a lookup that must find one resource found more
	// than one; asking again gives the same answer until a person acts.
	ErrAmbiguous = errors.New("appstore: ambiguous")
)

// APIError is an App Store Connect error response (a JSON:API errors document).
type APIError struct {
	Status int    // HTTP status code
	Method string // request method
	Path   string // request path, without query or host
	Errors []ErrorItem
	// RateLimit is the X-Rate-Limit header of the response, if any.
	RateLimit RateLimit
	// RetryAfter is the Retry-After header in seconds, if the server sent
	// one (Apple does not document it; others honour it when present).
	RetryAfter time.Duration
	// AfterReauth is set on a 401 that came back although the client had
	// just minted a fresh token. Apple's 401s are sometimes transient, so
	// it is Temporary: a later attempt (the job's backoff) may succeed.
	AfterReauth bool
}

// ErrorItem is one entry of the errors array. Status is a string on the wire.
type ErrorItem struct {
	ID     string          `json:"id,omitempty"`
	Status string          `json:"status"`
	Code   string          `json:"code"`
	Title  string          `json:"title"`
	Detail string          `json:"detail,omitempty"`
	Source *ErrorSource    `json:"source,omitempty"`
	Meta   json.RawMessage `json:"meta,omitempty"`
}

// ErrorSource points at the offending part of the request.
type ErrorSource struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "appstore: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	for i, it := range e.Errors {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Errors)-3)
			break
		}
		fmt.Fprintf(&b, "; %s: %s", it.Code, it.Title)
		if it.Detail != "" {
			fmt.Fprintf(&b, " (%s)", it.Detail)
		}
		if it.Source != nil && it.Source.Pointer != "" {
			fmt.Fprintf(&b, " at %s", it.Source.Pointer)
		}
		if it.Source != nil && it.Source.Parameter != "" {
			fmt.Fprintf(&b, " in parameter %s", it.Source.Parameter)
		}
	}
	return b.String()
}

// Is maps the status to the package's sentinel errors.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status >= 500
	}
	return false
}

// HasCode reports whether any error item's code equals prefix or starts with
// prefix followed by a dot. Apple may append levels to codes, so match by
// prefix ("ENTITY_ERROR" matches "ENTITY_ERROR.ATTRIBUTE.REQUIRED").
func (e *APIError) HasCode(prefix string) bool {
	for _, it := range e.Errors {
		if it.Code == prefix || strings.HasPrefix(it.Code, prefix+".") {
			return true
		}
	}
	return false
}

// Temporary reports whether repeating the same request later may succeed.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || (e.Status == http.StatusUnauthorized && e.AfterReauth)
}

// RateLimitError is returned when the client refuses to spend more calls:
// the last response said the hourly budget is (nearly) gone.
type RateLimitError struct {
	RateLimit RateLimit
	Last      *APIError // the 429 that triggered it, if any
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("appstore: hourly rate limit exhausted (%d of %d calls left); not retrying until the window rolls",
		e.RateLimit.Remaining, e.RateLimit.Limit)
}

func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }
func (e *RateLimitError) Unwrap() error {
	if e.Last == nil {
		return nil
	}
	return e.Last
}

// ValidationError is a bad argument caught before any call is made.
type ValidationError struct {
	Field  string
	Value  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("appstore: %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("appstore: %s %q: %s", e.Field, e.Value, e.Reason)
}

func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Temporary reports whether err is worth retrying later as is: 429 or an
// exhausted budget, 5xx, timeouts and transport failures. Validation errors
// and other 4xx answers are permanent: repeating the call cannot succeed
// until something else changes. A job can map true to "snooze/retry" and
// false to "fail and tell a human".
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return false
	}
	var rle *RateLimitError
	if errors.As(err, &rle) {
		return true
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	for _, permanent := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrForbidden, ErrUnauthorized, ErrSubmissionInFlight, ErrAmbiguous} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	// Deadlines, network errors and malformed bodies: the server or the
	// path to it misbehaved; a later attempt may work.
	return !errors.Is(err, context.Canceled)
}
