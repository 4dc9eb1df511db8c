package playstoretest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind is what an injected fault answers.
type FaultKind int

const (
	// FaultInternal answers 500 INTERNAL.
	FaultInternal FaultKind = iota
	// FaultUnavailable answers 503 UNAVAILABLE.
	FaultUnavailable
	// FaultTooManyRequests answers 429 RESOURCE_EXHAUSTED.
	FaultTooManyRequests
	// FaultQuota answers Play's quota error: 403 rateLimitExceeded.
	FaultQuota
	// FaultAfterApply (edits.commit only) applies the commit, then answers
	// 500 as if the connection died on the way back.
	FaultAfterApply
)

// Fault makes the next Times requests of Method fail.
type Fault struct {
	Method string
	Kind   FaultKind
	Times  int
	// RetryAfter, when set, is sent as a Retry-After header (whole seconds).
	RetryAfter time.Duration
}

func (f *Fault) write(w http.ResponseWriter) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
	}
	writeError(w, f.apiError())
}

// writeOAuth answers as the OAuth token endpoint does: a JSON body with
// error and error_description rather than the API error envelope.
func (f *Fault) writeOAuth(w http.ResponseWriter) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
	}
	e := f.apiError()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": strings.ToLower(e.Status), "error_description": e.Message})
}

// Inject queues a fault. Faults for the same method are used in order.
func (s *Server) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := f
	s.faults = append(s.faults, &fc)
}

// takeFault consumes a matching fault. afterApply selects FaultAfterApply,
// which fires only once the commit has been applied.
func (s *Server) takeFault(method string, afterApply bool) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Method != method || (f.Kind == FaultAfterApply) != afterApply {
			continue
		}
		f.Times--
		if f.Times == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}

func (f *Fault) apiError() *apiError {
	switch f.Kind {
	case FaultUnavailable:
		return newAPIError(503, "global", "backendError", "UNAVAILABLE", "The service is currently unavailable.")
	case FaultTooManyRequests:
		return newAPIError(429, "global", "rateLimitExceeded", "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
	case FaultQuota:
		return newAPIError(403, "usageLimits", "rateLimitExceeded", "PERMISSION_DENIED", msgQuota)
	default:
		return newAPIError(500, "global", "backendError", "INTERNAL", "Internal error encountered.")
	}
}
