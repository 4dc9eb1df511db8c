package playstoretest

import (
	"encoding/json"
	"net/http"
)

// apiError is Google's legacy v1 error envelope, the shape androidpublisher
// answers over REST: {"error":{"code","message","errors":[…],"status"}}.
type apiError struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Errors  []errorItem `json:"errors"`
	Status  string      `json:"status"`
	// Details are google.rpc detail messages, e.g. an ErrorInfo.
	Details []map[string]any `json:"details,omitempty"`
}

type errorItem struct {
	Message string `json:"message"`
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
}

func newAPIError(code int, domain, reason, status, msg string) *apiError {
	return &apiError{Code: code, Message: msg, Status: status,
		Errors: []errorItem{{Message: msg, Domain: domain, Reason: reason}}}
}

func (e *apiError) Error() string { return e.Message }

func badRequest(msg string) *apiError {
	return newAPIError(400, "global", "badRequest", "INVALID_ARGUMENT", msg)
}

func invalidValue(msg string) *apiError {
	return newAPIError(400, "global", "invalid", "INVALID_ARGUMENT", msg)
}

func notFound(msg string) *apiError {
	return newAPIError(404, "global", "notFound", "NOT_FOUND", msg)
}

func forbidden(msg string) *apiError {
	return newAPIError(403, "global", "forbidden", "PERMISSION_DENIED", msg)
}

// Exact strings Play sends (google-play.md §1.3, §1.5, §2).
const (
	msgEditDeleted        = "This Edit has been deleted."
	msgEditExpired        = "This edit has expired, please create a new Edit."
	msgEditCommitted      = "This edit has already been successfully committed, please create a new Edit."
	msgTrackNamesMismatch = "Track names in request path and request body must match."
	msgFractionNotBelow1  = "User fraction must be lower than one"
	msgNoUpgradePath      = "You cannot rollout this release because it does not allow any existing users to upgrade to the newly added APKs."
	msgVersionCodeUsed    = "APK specifies a version code that has already been used."
	msgDraftAppOnlyDrafts = "Only releases with status draft may be created on draft app."
	msgTrackEmpty         = "Track not found: no APK version codes in the specified track."
	// Invented texts (Play's are not known): the rules are documented.
	msgPriorityFrozen = "Invalid value at 'track_config.releases[%d].in_app_update_priority': in_app_update_priority can not be updated once the release is rolled out (it is %d, the request asks for %d)."
	// MsgChangesInReview is the commit error of changesInReviewBehavior=
	// ERROR_IF_IN_REVIEW while a release of the app is in review.
	MsgChangesInReview = "Edit could not be committed because changes are in review. Set changesInReviewBehavior to CANCEL_IN_REVIEW_AND_SUBMIT to cancel the review and submit everything."
	// MsgChangesNotSentForReviewRequired is the commit error of an app whose
	// last review was rejected.
	MsgChangesNotSentForReviewRequired = "Edit could not be committed due to an error. Changes cannot be sent for review automatically. Please set the query parameter changesNotSentForReview to true. Once committed, the changes in this edit can be sent for review from the Google Play Console UI."
	// MsgChangesNotSentForReviewForbidden is the commit error of an app whose
	// changes go to review automatically.
	MsgChangesNotSentForReviewForbidden = "Changes are sent for review automatically. The query parameter changesNotSentForReview must not be set."
	msgQuota                            = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'androidpublisher.googleapis.com' for consumer 'project_number:000000000000'."
	msgUnauthenticated                  = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
)

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.Code)
	_ = json.NewEncoder(w).Encode(map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}
