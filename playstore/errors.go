package playstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"cloud.google.com/go/auth"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
)

// Error kinds. Test with errors.Is; the concrete errors carry details.
var (
	// ErrConflict: another release occupies the track in a way the operation
	// would disturb. Someone must decide; retrying does not help.
	ErrConflict = errors.New("playstore: conflicting release on track")
	// ErrNotFound: the versionCode has no release on the track (or no track).
	ErrNotFound = errors.New("playstore: release not found")
	// ErrInvalid: the request itself is wrong (a field and its value are named).
	ErrInvalid = errors.New("playstore: invalid request")
	// ErrState: the release is in a status the operation cannot start from.
	ErrState = errors.New("playstore: release in wrong state")
	// ErrChangesInReview: the app has changes in review, and an operation
	// that only moves a rollout does not cancel them. Nothing was changed;
	// try again once the review has ended.
	ErrChangesInReview = errors.New("playstore: the app has changes in review")
	// ErrVersionCodeReused: the versionCode may already have been seen by Play
	// (or is below one it has); build again with NextVersionCode.
	ErrVersionCodeReused = errors.New("playstore: versionCode already used")
)

// ReleaseConflictError says which release blocks the operation.
type ReleaseConflictError struct {
	Package, Track string
	VersionCode    int64   // ours
	Other          Release // the release in the way
	Reason         string
}

func (e *ReleaseConflictError) Error() string {
	frac := ""
	if e.Other.UserFraction > 0 {
		frac = fmt.Sprintf(" at %g%%", e.Other.UserFraction*100)
	}
	return fmt.Sprintf("playstore: %s track %q: release %v (status %s%s) is in the way of versionCode %d: %s; it was left untouched",
		e.Package, e.Track, e.Other.VersionCodes, e.Other.Status, frac, e.VersionCode, e.Reason)
}

func (e *ReleaseConflictError) Unwrap() error { return ErrConflict }

// StateError says a release's status does not allow the operation.
type StateError struct {
	Package, Track string
	VersionCode    int64
	Status         Status
	Op             string
	Reason         string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("playstore: %s on %s track %q: versionCode %d is %s: %s", e.Op, e.Package, e.Track, e.VersionCode, e.Status, e.Reason)
}

func (e *StateError) Unwrap() error { return ErrState }

// ChangesInReviewError is Play's refusal of a rollout-only commit
// (changesInReviewBehavior=ERROR_IF_IN_REVIEW) while changes of the app are
// in review. The edit was discarded; nothing changed.
type ChangesInReviewError struct {
	Package string
	Op      string
	Err     error // Play's answer
}

func (e *ChangesInReviewError) Error() string {
	return fmt.Sprintf("playstore: %s on %s: changes of the app are in review and a rollout step does not cancel them; it is tried again once the review has ended (%v)", e.Op, e.Package, e.Err)
}

func (e *ChangesInReviewError) Unwrap() []error { return []error{ErrChangesInReview, e.Err} }

// VersionCodeReusedError refuses to send a versionCode twice.
type VersionCodeReusedError struct {
	Package     string
	VersionCode int64
	Next        int64 // the lowest versionCode that is safe to build with
	Reason      string
}

func (e *VersionCodeReusedError) Error() string {
	return fmt.Sprintf("playstore: %s versionCode %d: %s; build again with versionCode %d or higher", e.Package, e.VersionCode, e.Reason, e.Next)
}

func (e *VersionCodeReusedError) Unwrap() error { return ErrVersionCodeReused }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// IsTemporary reports whether err is a Play or network failure that may pass
// on its own (5xx, 429, quota, a lost connection) after this package's own
// retries were used up. A job may retry the whole operation later; conflicts,
// invalid requests and state errors are permanent.
func IsTemporary(err error) bool {
	return isTransient(err)
}

func apiErr(err error) *googleapi.Error {
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g
	}
	return nil
}

func reasons(g *googleapi.Error) []string {
	var rs []string
	for _, e := range g.Errors {
		rs = append(rs, e.Reason)
	}
	return rs
}

func hasReason(g *googleapi.Error, want ...string) bool {
	for _, r := range reasons(g) {
		for _, w := range want {
			if r == w {
				return true
			}
		}
	}
	return false
}

func isTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if g := apiErr(err); g != nil {
		switch {
		case g.Code >= 500, g.Code == 429, g.Code == 408:
			return true
		case g.Code == 409 && hasReason(g, "concurrentUpdate"):
			return true
		case g.Code == 403 && hasReason(g, "rateLimitExceeded", "userRateLimitExceeded"):
			return true
		}
		return false
	}
	if code, ok := tokenStatus(err); ok {
		// The token endpoint answered: its 5xx and 429 pass, a refused key
		// or grant (400 invalid_grant, 401) does not.
		return code >= 500 || code == 429 || code == 408
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF") || strings.Contains(msg, "connection refused")
}

// CredentialsRefused reports whether Google's token endpoint refused the
// service account outright (a 4xx other than 408 and 429: a revoked or
// deleted key, a wrong project). Retrying cannot help; a person must fix the
// credentials.
func CredentialsRefused(err error) bool {
	code, ok := tokenStatus(err)
	return ok && code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// tokenStatus is the HTTP status of a failed OAuth token request inside
// err, from either auth library the Go client may use.
func tokenStatus(err error) (int, bool) {
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Response != nil {
		return ae.Response.StatusCode, true
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode, true
	}
	return 0, false
}

// isEditGone: the edit can no longer be used; start from a fresh one.
func isEditGone(err error) bool {
	g := apiErr(err)
	if g == nil || (g.Code != 400 && g.Code != 404 && g.Code != 410) {
		return false
	}
	if hasReason(g, "editDeleted", "editExpired", "editNotFound", "editAlreadyCommitted") {
		return true
	}
	m := strings.ToLower(g.Message)
	return strings.Contains(m, "edit has been deleted") || strings.Contains(m, "edit has expired") ||
		strings.Contains(m, "already been successfully committed")
}

// alreadyCommitted: Play says the edit was committed before.
func alreadyCommitted(err error) bool {
	g := apiErr(err)
	if g == nil || g.Code != 400 {
		return false
	}
	return hasReason(g, "editAlreadyCommitted") || strings.Contains(strings.ToLower(g.Message), "already been successfully committed")
}

// editDeleted: Play says the edit was deleted (by its owner, by a newer edit
// of the same user, or by someone else's commit): it never committed.
func editDeleted(err error) bool {
	g := apiErr(err)
	if g == nil || (g.Code != 400 && g.Code != 410) {
		return false
	}
	return hasReason(g, "editDeleted") || strings.Contains(strings.ToLower(g.Message), "edit has been deleted")
}

func needsNotSentForReview(err error) bool {
	g := apiErr(err)
	return g != nil && g.Code == 400 && strings.Contains(g.Message, "set the query parameter changesNotSentForReview to true")
}

func mustNotSetNotSentForReview(err error) bool {
	g := apiErr(err)
	return g != nil && g.Code == 400 && strings.Contains(g.Message, "changesNotSentForReview must not be set")
}

// trackEmpty: Play's 404 for a track that never had a release ("Track not
// found: no APK version codes in the specified track.", reason trackEmpty).
func trackEmpty(err error) bool {
	g := apiErr(err)
	return g != nil && g.Code == 404 && (hasReason(g, "trackEmpty") || strings.Contains(g.Message, "no APK version codes in the specified track"))
}

// changesInReview: Play refused a commit sent with
// changesInReviewBehavior=ERROR_IF_IN_REVIEW because changes are in review.
// Google documents the behaviour but not the exact text, so any 4xx that
// talks about review and is not one of the changesNotSentForReview answers
// counts.
func changesInReview(err error) bool {
	g := apiErr(err)
	if g == nil || g.Code < 400 || g.Code >= 500 || g.Code == 404 || isEditGone(err) ||
		needsNotSentForReview(err) || mustNotSetNotSentForReview(err) {
		return false
	}
	return strings.Contains(strings.ToLower(g.Message), "in review")
}
