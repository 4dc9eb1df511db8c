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
	KindInvalid  Kind = "invalid"   // 400: a bad input, named by Field
	KindNotFound Kind = "not_found" // 404: the app, deployment, release or package does not exist
	KindConflict Kind = "conflict"  // 409: the request contradicts the current state
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
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
