package codepush

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error; it decides the HTTP status.
type Kind string

// Error kinds.
const (
	KindInvalid     Kind = "invalid"      // 400: a bad input, named by Field
	KindForbidden   Kind = "forbidden"    // 403: the caller may not do this
	KindNotFound    Kind = "not_found"    // 404: the app, deployment, release or package does not exist
	KindConflict    Kind = "conflict"     // 409: the request contradicts the current state
	KindTooLarge    Kind = "too_large"    // 413: the upload is over the size limit
	KindRateLimited Kind = "rate_limited" // 429: too many requests from one address
	KindUnavailable Kind = "unavailable"  // 503: something the operation needs does not answer; retry later
)

// Error is the typed error every operation of this package returns for a
// caller mistake. Other errors are internal (storage, I/O).
type Error struct {
	Kind    Kind
	Field   string // the offending field or parameter, when there is one
	Value   string // its value, when it helps
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s %q: %s", e.Kind, e.Field, e.Value, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

// Text is the error as the plain sentence code-push-server answers with and
// the CodePush CLI prints: the message, after the field and value when
// there is one.
func (e *Error) Text() string {
	switch {
	case e.Field != "" && e.Value != "":
		return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Message)
	case e.Field != "":
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Is lets errors.Is(err, &Error{Kind: KindConflict}) match by kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Field == "" && t.Message == ""
}

// Sentinels for errors.Is.
var (
	ErrInvalid  = &Error{Kind: KindInvalid}
	ErrNotFound = &Error{Kind: KindNotFound}
	ErrConflict = &Error{Kind: KindConflict}
)

func invalid(field, value, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Value: value, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Message: fmt.Sprintf(format, args...)}
}

// appNotFound and deploymentNotFound use code-push-server's wording: the
// CLI's release-react adds a hint when a 404 names a "Deployment".
func appNotFound(name string) *Error { return notFound("App %q does not exist.", name) }

func deploymentNotFound(name string) *Error { return notFound("Deployment %q does not exist.", name) }

// KindOf returns the kind of a typed error, or "" for an internal error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// HTTPStatus maps an error to the status the handlers answer with.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case KindInvalid:
		return http.StatusBadRequest
	case KindForbidden:
		return http.StatusForbidden
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindRateLimited:
		return http.StatusTooManyRequests
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
