// Package appstoretest is a wire-compatible App Store Connect fake for tests
// and sandboxes, in the spirit of net/http/httptest: serve a *Fake with
// httptest.NewServer and point appstore.Client.BaseURL at it.
//
// The fake checks what Apple checks (ES256 JWTs against registered keys,
// lifetime, audience; the hourly rate limit with the X-Rate-Limit header;
// state rules such as "another build is in review"), answers with Apple's
// JSON:API shapes and error bodies, moves builds, reviews and phased
// releases through their states on an injectable clock, serves the
// presigned upload URLs of the build-upload flow itself, and can be told to
// fail (5xx bursts, 429, hangs, malformed bodies).
//
// Where Apple's behaviour is not documented the fake makes a choice, marked
// [UNVERIFIED] where it is made: error codes of the TestFlight 422s and of
// "Another build is in review." (STATE_ERROR), the 4,000-character What to
// Test limit, refusing export compliance (409) on a build still processing, totalPauseDuration in days, a paused release resuming when one
// pause has lasted 30 days (pauses are unlimited in number), presigned upload URLs living 7 days and refused with
// 403 after that, and scope entries without a query matching only requests
// without one.
//
// Limits: only the operations the appstore package uses are served (others
// answer 404 PATH_ERROR or 405); include is honoured only for buildUploads
// (build, assetFile) and review submission items (appStoreVersion), other
// include values are accepted but add no included resources; sort is honoured
// for builds only; there are no preReleaseVersion resources; DELETE endpoints
// are not implemented.
package appstoretest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/swapjoy/releasepilot/appstore"
)

// Options configure a Fake. Zero values give Apple-like defaults.
type Options struct {
	// Now is the fake's clock (default time.Now). JWT checks, the rate
	// window, processing delays and phased-release days all use it.
	Now func() time.Time
	// HourlyLimit is the per-key request budget of a rolling hour
	// (default 3600, the limit seen in practice).
	HourlyLimit int
	// ProcessingPolls is how many reads of a PROCESSING build it takes to
	// finish: the Nth read returns the final state (default 1). Builds can
	// override it when seeded.
	ProcessingPolls int
	// ProcessingTime is how long a build stays PROCESSING at least, on the
	// fake's clock (default 0).
	ProcessingTime time.Duration
	// UploadPartSize is the part size of buildUploadFiles reservations
	// (default 5 MiB).
	UploadPartSize int64
	// UploadProcessingPolls is how many reads of a PROCESSING buildUpload it
	// takes to become COMPLETE (default 1).
	UploadProcessingPolls int
	// BetaReviewTime, if set, approves a Beta App Review submission that
	// long after it was made (for sandboxes); zero leaves it to SetBetaReview.
	BetaReviewTime time.Duration
	// AppReviewTime, if set, approves a submitted App Store version that
	// long after submission: MANUAL versions become PENDING_DEVELOPER_RELEASE,
	// AFTER_APPROVAL ones are released. Zero leaves it to SetVersionState.
	AppReviewTime time.Duration
	// DistributionPolls and DistributionTime keep a released version
	// PROCESSING_FOR_DISTRIBUTION (its phased release INACTIVE) for that
	// many reads of the version or its phased release, and at least that
	// long, before it is on sale and the phased release starts. Zero:
	// on sale at once.
	DistributionPolls int
	DistributionTime  time.Duration
	// PublicURL, if set, is the URL clients use to reach the fake (for
	// example "http://localhost:8080/sandbox/appstore" when it is mounted
	// with http.StripPrefix); links and upload URLs are built from it.
	PublicURL string
}

// Fake is an in-memory App Store Connect. It is an http.Handler and is safe
// for concurrent use.
type Fake struct {
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	seq      int
	keys     map[string]apiKey
	calls    map[string][]time.Time // per kid, request times in the window
	faults   []*Fault
	requests int

	countMu   sync.Mutex // guards mutations only
	mutations map[string]int

	apps         map[string]*app
	builds       map[string]*build
	groups       map[string]*betaGroup
	locs         map[string]*localization
	betaSubs     map[string]*betaSub
	uploads      map[string]*upload
	files        map[string]*uploadFile
	versions     map[string]*version
	subs         map[string]*reviewSub
	items        map[string]*reviewItem
	phased       map[string]*phased
	declarations map[string]*declaration
	vlocs        map[string]*versionLoc
	buildOrder   []string
}

type apiKey struct {
	issuer string // "" for individual keys
	pub    *ecdsa.PublicKey
}

// New returns an empty fake.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HourlyLimit <= 0 {
		opts.HourlyLimit = 3600
	}
	if opts.ProcessingPolls <= 0 {
		opts.ProcessingPolls = 1
	}
	if opts.UploadPartSize <= 0 {
		opts.UploadPartSize = 5 << 20
	}
	if opts.UploadProcessingPolls <= 0 {
		opts.UploadProcessingPolls = 1
	}
	f := &Fake{
		opts: opts, keys: map[string]apiKey{}, calls: map[string][]time.Time{}, mutations: map[string]int{},
		apps: map[string]*app{}, builds: map[string]*build{}, groups: map[string]*betaGroup{},
		locs: map[string]*localization{}, betaSubs: map[string]*betaSub{}, uploads: map[string]*upload{},
		files: map[string]*uploadFile{}, versions: map[string]*version{}, subs: map[string]*reviewSub{},
		items: map[string]*reviewItem{}, phased: map[string]*phased{}, declarations: map[string]*declaration{}, vlocs: map[string]*versionLoc{},
	}
	f.routes()
	return f
}

func (f *Fake) now() time.Time { return f.opts.Now() }

func (f *Fake) newID(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s-%04d", prefix, f.seq)
}

// RegisterKey makes the fake accept tokens signed by pub under kid. issuer is
// the team issuer id; empty registers an individual key (sub "user").
func (f *Fake) RegisterKey(kid, issuer string, pub *ecdsa.PublicKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[kid] = apiKey{issuer: issuer, pub: pub}
}

// NewKey generates a P-256 key, registers its public half under kid and
// issuer, and returns the appstore.Key to sign with. It also returns the
// key as .p8 (PKCS#8 PEM) bytes, for tests of key loading.
func (f *Fake) NewKey(kid, issuer string) (appstore.Key, []byte, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return appstore.Key{}, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return appstore.Key{}, nil, err
	}
	f.RegisterKey(kid, issuer, &priv.PublicKey)
	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return appstore.Key{ID: kid, IssuerID: issuer, PrivateKey: priv}, p8, nil
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.opts.PublicURL != "" {
		r = r.WithContext(context.WithValue(r.Context(), publicURLKey{}, strings.TrimRight(f.opts.PublicURL, "/")))
	}
	if strings.HasPrefix(r.URL.Path, uploadPathPrefix) {
		// Presigned part URLs: no JWT, no API rate limit (as on Apple's
		// storage hosts), but faults still apply.
		handled, after := f.applyFault(w, r)
		switch {
		case handled:
		case after != nil:
			f.afterFault(w, after, func(w http.ResponseWriter) { f.handleUploadPart(w, r) })
		default:
			f.handleUploadPart(w, r)
		}
		return
	}
	kid, ok := f.authenticate(w, r)
	if !ok {
		return
	}
	if !f.spendBudget(w, kid) {
		return
	}
	handled, after := f.applyFault(w, r)
	if handled {
		return
	}
	if after != nil {
		f.afterFault(w, after, func(w http.ResponseWriter) { f.serveAPI(w, r) })
		return
	}
	f.serveAPI(w, r)
}

// serveAPI answers an authenticated API request.
func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tickReviews()
	f.mu.Unlock()
	if a := r.Header.Get("Accept"); a != "" && !strings.Contains(a, "application/json") && !strings.Contains(a, "*/*") {
		// Apple answers an unsupported Accept type in plain text, not JSON.
		http.Error(w, "Not Acceptable", http.StatusNotAcceptable)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodDelete && r.ContentLength != 0 &&
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "ENTITY_INVALID", "The request entity is not valid.", "Content-Type must be application/json.", nil)
		return
	}
	f.mux.ServeHTTP(w, r)
}

var notAuthorized = errorItem{
	Status: "401", Code: "NOT_AUTHORIZED",
	Title:  "Authentication credentials are missing or invalid.",
	Detail: "Provide a properly configured and signed bearer token, and make sure that it has not expired. Learn more about Generating Tokens for API Requests https://developer.apple.com/go/?id=api-generating-tokens",
}

// authenticate verifies the bearer token as Apple documents it and answers
// Apple's 401 body (without id, as observed) on any failure.
func (f *Fake) authenticate(w http.ResponseWriter, r *http.Request) (kid string, ok bool) {
	fail := func() (string, bool) {
		f.setRateHeader(w, "")
		writeErrors(w, http.StatusUnauthorized, notAuthorized)
		return "", false
	}
	raw, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || raw == "" {
		return fail()
	}
	now := f.now()
	var claims appstore.Claims
	tok, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		k, _ := t.Header["kid"].(string)
		f.mu.Lock()
		key, known := f.keys[k]
		f.mu.Unlock()
		if !known {
			return nil, fmt.Errorf("unknown kid")
		}
		kid = k
		return key.pub, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	if err != nil || !tok.Valid {
		return fail()
	}
	f.mu.Lock()
	key := f.keys[kid]
	f.mu.Unlock()
	switch {
	case claims.Audience != appstore.Audience,
		claims.IssuedAt == 0, // Apple documents iat as required
		claims.ExpiresAt-claims.IssuedAt > int64(appstore.MaxTokenLifetime/time.Second),
		claims.IssuedAt > now.Unix(),
		claims.ExpiresAt <= now.Unix():
		return fail()
	case key.issuer != "" && claims.Issuer != key.issuer:
		return fail()
	case key.issuer == "" && (claims.Subject != "user" || claims.Issuer != ""):
		return fail()
	case len(claims.Scope) > 0 && !scopeAllows(claims.Scope, r):
		return fail()
	}
	return kid, true
}

// scopeAllows reports whether one scope entry ("GET /v1/apps?filter[platform]=IOS")
// matches the request. Query order does not matter and limit, cursor and sort
// are ignored, as Apple documents. An entry without a query matches only
// requests without other parameters [UNVERIFIED].
func scopeAllows(scope []string, r *http.Request) bool {
	strip := func(q url.Values) url.Values {
		for _, k := range []string{"limit", "cursor", "sort"} {
			q.Del(k)
		}
		return q
	}
	have := strip(r.URL.Query())
	for _, entry := range scope {
		method, target, ok := strings.Cut(entry, " ")
		if !ok || method != r.Method {
			continue
		}
		path, query, _ := strings.Cut(target, "?")
		if path != r.URL.Path {
			continue
		}
		want, err := url.ParseQuery(query)
		if err != nil {
			continue
		}
		if reflect.DeepEqual(strip(want), have) {
			return true
		}
	}
	return false
}

// spendBudget applies the rolling-hour limit of kid and sets X-Rate-Limit.
func (f *Fake) spendBudget(w http.ResponseWriter, kid string) bool {
	f.mu.Lock()
	now := f.now()
	window := f.calls[kid][:0]
	for _, t := range f.calls[kid] {
		if now.Sub(t) < time.Hour {
			window = append(window, t)
		}
	}
	allowed := len(window) < f.opts.HourlyLimit
	if allowed {
		window = append(window, now)
	}
	f.calls[kid] = window
	f.requests++
	rem := f.opts.HourlyLimit - len(window)
	f.mu.Unlock()
	w.Header().Set("X-Rate-Limit", fmt.Sprintf("user-hour-lim:%d;user-hour-rem:%d;", f.opts.HourlyLimit, rem))
	if !allowed {
		writeErrors(w, http.StatusTooManyRequests, rateLimitExceeded)
	}
	return allowed
}

var rateLimitExceeded = errorItem{
	Status: "429", Code: "RATE_LIMIT_EXCEEDED",
	Title:  "The request rate limit has been reached.",
	Detail: "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
}

func (f *Fake) setRateHeader(w http.ResponseWriter, kid string) {
	f.mu.Lock()
	n := 0
	if kid != "" {
		n = len(f.calls[kid])
	}
	f.mu.Unlock()
	w.Header().Set("X-Rate-Limit", fmt.Sprintf("user-hour-lim:%d;user-hour-rem:%d;", f.opts.HourlyLimit, f.opts.HourlyLimit-n))
}

// SetRemaining fills kid's rolling window so that exactly rem requests are
// left this hour (for budget tests).
func (f *Fake) SetRemaining(kid string, rem int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := max(f.opts.HourlyLimit-rem, 0)
	now := f.now()
	w := make([]time.Time, n)
	for i := range w {
		w[i] = now
	}
	f.calls[kid] = w
}

// Requests reports how many authenticated API requests the fake received
// (including ones refused with 429).
func (f *Fake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// Mutations reports how many successful mutating requests of kind were
// served; kind is the route, e.g. "POST /v1/betaAppReviewSubmissions" or
// "PATCH /v1/builds/{id}".
func (f *Fake) Mutations(kind string) int {
	f.countMu.Lock()
	defer f.countMu.Unlock()
	return f.mutations[kind]
}

// MutationCounts returns a copy of all mutation counters.
func (f *Fake) MutationCounts() map[string]int {
	f.countMu.Lock()
	defer f.countMu.Unlock()
	out := make(map[string]int, len(f.mutations))
	for k, v := range f.mutations {
		out[k] = v
	}
	return out
}

// errorItem is Apple's ResponseError.
type errorItem struct {
	ID     string          `json:"id,omitempty"`
	Status string          `json:"status"`
	Code   string          `json:"code"`
	Title  string          `json:"title"`
	Detail string          `json:"detail,omitempty"`
	Source map[string]any  `json:"source,omitempty"`
	Meta   json.RawMessage `json:"meta,omitempty"`
}

func writeErrors(w http.ResponseWriter, status int, items ...errorItem) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": items})
}

// writeError writes one error with an id, as Apple does for all but 401.
// source is {"pointer": …} or {"parameter": …} or nil.
func writeError(w http.ResponseWriter, status int, code, title, detail string, source map[string]any) {
	writeErrors(w, status, errorItem{ID: randomUUID(), Status: fmt.Sprint(status), Code: code, Title: title, Detail: detail, Source: source})
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
