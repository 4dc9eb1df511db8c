package appstoretest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// FaultKind is what an injected fault does to a request.
type FaultKind int

const (
	// FaultStatus answers Status (default 500) with an Apple error body.
	FaultStatus FaultKind = iota
	// FaultRateLimit answers 429 RATE_LIMIT_EXCEEDED.
	FaultRateLimit
	// FaultHang never answers: the handler blocks until the request's
	// context is cancelled (client timeout or deadline).
	FaultHang
	// FaultMalformed answers 200 with a body that is not valid JSON.
	FaultMalformed
	// FaultAnswerLost processes the request (a mutation takes effect and
	// is counted) and then answers Status (default 500) instead of the
	// real answer: the "applied, but the answer was lost" case.
	FaultAnswerLost
	// FaultConnectionLost processes the request and then drops the
	// connection without an answer.
	FaultConnectionLost
)

// FaultHeader marks responses produced by an injected fault, so that a spec
// validator can tell deliberate wrong shapes from fake bugs.
const FaultHeader = "X-Appstoretest-Fault"

// Fault is an injected failure. It hits requests whose method (empty: any)
// and path prefix (empty: any) match, Times times (0 means once; negative
// means until cleared). Except for FaultAnswerLost and FaultConnectionLost
// it answers before the request is processed, so a faulted mutation is
// never applied.
type Fault struct {
	Kind       FaultKind
	Status     int
	Method     string
	PathPrefix string
	Times      int
	// RetryAfter, if set, adds a Retry-After header (seconds). Apple does
	// not document one [UNVERIFIED whether it is ever sent].
	RetryAfter time.Duration

	hits int
}

// Inject adds a fault. Faults are consulted in the order added.
func (f *Fake) Inject(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft.Times == 0 {
		ft.Times = 1
	}
	f.faults = append(f.faults, &ft)
}

// ClearFaults removes every pending fault.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// FaultsHit reports how many requests injected faults have answered.
func (f *Fake) FaultsHit() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ft := range f.faults {
		n += ft.hits
	}
	return n
}

// applyFault answers r with a matching fault and reports true, or reports
// false; a FaultAnswerLost or FaultConnectionLost fault is returned as
// after instead, for afterFault once the request was processed.
func (f *Fake) applyFault(w http.ResponseWriter, r *http.Request) (handled bool, after *Fault) {
	f.mu.Lock()
	var hit *Fault
	for _, ft := range f.faults {
		if ft.Times >= 0 && ft.hits >= ft.Times {
			continue
		}
		if ft.Method != "" && ft.Method != r.Method {
			continue
		}
		if ft.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, ft.PathPrefix) {
			continue
		}
		ft.hits++
		hit = ft
		break
	}
	f.mu.Unlock()
	if hit == nil {
		return false, nil
	}
	if hit.Kind == FaultAnswerLost || hit.Kind == FaultConnectionLost {
		return false, hit
	}
	w.Header().Set(FaultHeader, "1")
	if hit.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(hit.RetryAfter/time.Second)))
	}
	switch hit.Kind {
	case FaultRateLimit:
		writeErrors(w, http.StatusTooManyRequests, rateLimitExceeded)
	case FaultHang:
		<-r.Context().Done()
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"data": {"type": "builds", "id": `))
	default:
		st := hit.Status
		if st == 0 {
			st = http.StatusInternalServerError
		}
		writeError(w, st, "INTERNAL_ERROR", "An unexpected error occurred.", "injected by appstoretest", nil)
	}
	return true, nil
}

// afterFault runs serve with the real answer discarded, then answers as
// the fault says: an error status, or a dropped connection.
func (f *Fake) afterFault(w http.ResponseWriter, hit *Fault, serve func(http.ResponseWriter)) {
	serve(httptest.NewRecorder())
	if hit.Kind == FaultConnectionLost {
		panic(http.ErrAbortHandler)
	}
	w.Header().Set(FaultHeader, "1")
	st := hit.Status
	if st == 0 {
		st = http.StatusInternalServerError
	}
	writeError(w, st, "INTERNAL_ERROR", "An unexpected error occurred.", "injected by appstoretest after processing the request", nil)
}
