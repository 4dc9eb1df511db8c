// Package playstoretest is a wire-compatible fake of the Google Play Developer
// API (androidpublisher v3), its OAuth2 token endpoint and the Play Developer
// Reporting API, for use with httptest.NewServer.
//
// It enforces the rules Play enforces, with Play's messages and codes where
// they are known (google-play.md): one open edit per user and app, the first
// commit invalidating every other edit, edit expiry on an injectable clock, at
// most one release per status per track, fraction rules per status,
// case-sensitive statuses, the path and body track names matching, no
// release below the live versionCode and no versionCode newly added to a
// track below one active on another track, only drafts on a draft app
// (SetDraftApp), the review flag of edits.commit, changesInReviewBehavior=
// ERROR_IF_IN_REVIEW failing while a release is in review (the edit stays
// usable), inAppUpdatePriority frozen once a release rolled out, the DAILY
// timeline rules of the Reporting API, and bearer tokens it issued itself,
// each good only for the scopes it was granted (403 insufficient scopes
// otherwise) and only from an assertion with iat and at most an hour to exp.
// Failures (5xx, 429, quota 403, a commit that fails after it was applied)
// can be injected per method, the token endpoint (MethodToken) included.
//
// Behaviour Play leaves undocumented is chosen strictly and said so where it
// is implemented:
//   - a track update replaces the whole releases list, so a client that does
//     not write back the releases it did not change loses them;
//   - a fraction must be > 0 ("User fraction must be greater than zero"), an
//     inProgress release without one gets "IN_PROGRESS release must have
//     fraction", and one-per-status applies to every status ("Only one %s
//     release is allowed."): the texts are modelled on the verified ones;
//   - versionCodes not uploaded to the app, a versionCode in two releases,
//     an unknown track or edit, a bad or changed inAppUpdatePriority, a
//     commit refused by ERROR_IF_IN_REVIEW (MsgChangesInReview) and a
//     Reporting timeline point that breaks the DAILY rules get messages
//     the fake invents (codes and reasons follow Play's table);
//   - inAppUpdatePriority is compared with the committed release of the
//     same track that shares a versionCode and is inProgress, halted or
//     completed; a release written without it asks for 0, as proto3 reads
//     an absent int32;
//   - ERROR_IF_IN_REVIEW refuses whenever a committed release of the app is
//     RELEASE_LIFECYCLE_STATE_IN_REVIEW (SetLifecycleState scripts one),
//     whatever changesNotSentForReview says, and leaves the edit usable;
//     any other behaviour (CANCEL_IN_REVIEW_AND_SUBMIT, the default)
//     commits, cancelling that review (ReviewsCancelled counts them);
//   - countryTargeting is accepted on inProgress and halted production
//     releases (Play documents inProgress only; a halt must keep it);
//   - a review-flag refusal at commit leaves the edit usable, unless
//     SetReviewRefusalDeletesEdit says otherwise;
//   - a halted release without a fraction is a fully rolled-out release
//     halted (Play allows it since 2025, except on internal tracks and for
//     the first release of a track); any other halted release needs one;
//   - edits.tracks.get of a track without releases (one that never had
//     one) answers 404 trackEmpty, as Play does; edits.tracks.list still
//     lists it;
//   - edits live DefaultEditTTL (one hour) unless SetEditTTL says otherwise;
//   - Play reads the versionCode from the AAB's manifest; the fake reads it
//     from the header FakeBundle writes;
//   - the Reporting fake serves DAILY rows only, in America/Los_Angeles,
//     filtered by "versionCode = N", and no row on or after FreshUntil.
package playstoretest

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Method names, as in the discovery document's method ids without the
// "androidpublisher." prefix. They name faults, hooks and call counts.
const (
	MethodToken         = "token"
	MethodEditsInsert   = "edits.insert"
	MethodEditsGet      = "edits.get"
	MethodEditsDelete   = "edits.delete"
	MethodEditsValidate = "edits.validate"
	MethodEditsCommit   = "edits.commit"
	MethodTracksList    = "edits.tracks.list"
	MethodTracksGet     = "edits.tracks.get"
	MethodTracksUpdate  = "edits.tracks.update"
	MethodTracksPatch   = "edits.tracks.patch"
	MethodBundlesList   = "edits.bundles.list"
	MethodBundlesUpload = "edits.bundles.upload"
	MethodReleasesList  = "applications.tracks.releases.list"
	// MethodBundlesUploadChunk names only resumable chunks, for faults; they
	// are counted and recorded as MethodBundlesUpload.
	MethodBundlesUploadChunk = "edits.bundles.upload.chunk"
	MethodCrashRateGet       = "vitals.crashrate.get"
	MethodCrashRateQuery     = "vitals.crashrate.query"
	MethodAnrRateGet         = "vitals.anrrate.get"
	MethodAnrRateQuery       = "vitals.anrrate.query"
)

// Status values, case-sensitive as on the wire.
const (
	StatusDraft      = "draft"
	StatusInProgress = "inProgress"
	StatusHalted     = "halted"
	StatusCompleted  = "completed"
)

// LocalizedText is one language's release notes.
type LocalizedText struct {
	Language string `json:"language"`
	Text     string `json:"text"`
}

// Release is a track release as the fake stores it. UserFraction 0 means
// absent.
type Release struct {
	Name                string
	VersionCodes        []int64
	Status              string
	UserFraction        float64
	ReleaseNotes        []LocalizedText
	InAppUpdatePriority int
	CountryTargeting    *CountryTargeting
}

// CountryTargeting limits an inProgress production release to countries.
type CountryTargeting struct {
	Countries          []string `json:"countries,omitempty"`
	IncludeRestOfWorld bool     `json:"includeRestOfWorld,omitempty"`
}

// ReviewMode says how the app's commits go to review.
type ReviewMode int

const (
	// ReviewAutomatic: changes go to review automatically; a commit with
	// changesNotSentForReview=true is refused.
	ReviewAutomatic ReviewMode = iota
	// ReviewNotSentRequired: the last review was rejected; a commit without
	// changesNotSentForReview=true is refused.
	ReviewNotSentRequired
)

// DefaultEditTTL is how long a new edit lives. Play documents no number.
const DefaultEditTTL = time.Hour

// Server is the fake. The zero value is not usable; call New.
type Server struct {
	mu         sync.Mutex
	now        time.Time
	editTTL    time.Duration
	apps       map[string]*app
	accounts   map[string]*rsa.PublicKey
	tokens     map[string]issuedToken
	tokenCount int
	nextID     int
	faults     []*Fault
	hooks      map[string][]func()
	afterHooks map[string][]func()
	calls      map[string]int
	exchanges  []Exchange
	uploads    map[string]*upload
	vitals     map[string]*VitalsSeries // key pkg + "/" + metric set

	perMinute   int       // API requests allowed per clock minute; 0 = unlimited
	quotaWindow time.Time // the minute being counted
	quotaUsed   int
}

// New returns an empty fake whose clock starts at start.
func New(start time.Time) *Server {
	return &Server{
		now:        start,
		editTTL:    DefaultEditTTL,
		apps:       map[string]*app{},
		accounts:   map[string]*rsa.PublicKey{},
		tokens:     map[string]issuedToken{},
		hooks:      map[string][]func(){},
		afterHooks: map[string][]func(){},
		calls:      map[string]int{},
		uploads:    map[string]*upload{},
		vitals:     map[string]*VitalsSeries{},
	}
}

type app struct {
	pkg        string
	review     ReviewMode
	tracks     map[string][]Release
	bundles    map[int64]bundle
	edits      map[string]*edit
	commitSeen int
	lifecycle  map[int64]string // versionCode → releaseLifecycleState
	// refusalDeletes: a review-flag refusal throws the edit away (a
	// third-party report says Play does; unverified).
	refusalDeletes bool
	// draft: the app was never published; only draft releases may be
	// written to its tracks.
	draft bool
	// fullRollouts lists, per track, the versionCodes that were ever
	// committed there as completed (oldest first): a completed release
	// can be halted only if an earlier one can take its place.
	fullRollouts map[string][]int64
	// reviewsCancelled counts commits that cancelled a review in progress
	// (changesInReviewBehavior CANCEL_IN_REVIEW_AND_SUBMIT, the default).
	reviewsCancelled int
}

type bundle struct {
	VersionCode int64  `json:"versionCode"`
	SHA1        string `json:"sha1"`
	SHA256      string `json:"sha256"`
}

type editState int

const (
	editOpen editState = iota
	editDeleted
	editCommitted
)

type edit struct {
	id      string
	user    string
	expires time.Time
	state   editState
	tracks  map[string][]Release
	bundles map[int64]bundle
}

// AddApp registers a package with the empty tracks production, beta, alpha
// and internal (replacing any state it had). Helpers that name an app not
// added yet add it.
func (s *Server) AddApp(pkg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[pkg] = newApp(pkg)
}

func newApp(pkg string) *app {
	return &app{pkg: pkg, tracks: map[string][]Release{
		"production": nil, "beta": nil, "alpha": nil, "internal": nil,
	}, bundles: map[int64]bundle{}, edits: map[string]*edit{}, lifecycle: map[int64]string{}, fullRollouts: map[string][]int64{}}
}

// SetReviewMode sets how the app's commits go to review.
func (s *Server) SetReviewMode(pkg string, m ReviewMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(pkg).review = m
}

// SetDraftApp marks the app as never published (a draft app): Play then
// refuses every release whose status is not draft with "Only releases with
// status draft may be created on draft app."
func (s *Server) SetDraftApp(pkg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(pkg).draft = true
}

// SetQueriesPerMinute limits API requests per minute of the fake's clock, as
// Play's per-minute bucket does; beyond it requests get Play's 403
// rateLimitExceeded until the clock reaches the next minute. 0 lifts the limit.
func (s *Server) SetQueriesPerMinute(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perMinute = n
}

func (s *Server) overQuota() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perMinute <= 0 {
		return false
	}
	if w := s.now.Truncate(time.Minute); !w.Equal(s.quotaWindow) {
		s.quotaWindow, s.quotaUsed = w, 0
	}
	s.quotaUsed++
	return s.quotaUsed > s.perMinute
}

// SetReviewRefusalDeletesEdit makes a review-flag refusal at commit throw the
// edit away, as one third-party report says Play does. By default the edit
// stays usable.
func (s *Server) SetReviewRefusalDeletesEdit(pkg string, deletes bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(pkg).refusalDeletes = deletes
}

// SetEditTTL sets the lifetime of edits inserted from now on.
func (s *Server) SetEditTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.editTTL = d
}

// Advance moves the fake's clock forward.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

// Now is the fake's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// SeedBundles adds committed bundles to the app, as if uploaded long ago.
func (s *Server) SeedBundles(pkg string, versionCodes ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.mustApp(pkg)
	for _, vc := range versionCodes {
		a.bundles[vc] = fakeBundle(vc)
	}
}

// ConsoleUpdate replaces a track's releases as a person in the Play Console
// would: committed at once, and every open API edit of the app is invalidated.
// Bundles the releases name are added when missing. It is also how tests seed
// state.
func (s *Server) ConsoleUpdate(pkg, track string, releases ...Release) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.mustApp(pkg)
	for _, r := range releases {
		for _, vc := range r.VersionCodes {
			if _, ok := a.bundles[vc]; !ok {
				a.bundles[vc] = fakeBundle(vc)
			}
		}
	}
	a.tracks[track] = cloneReleases(releases)
	a.noteFullRollouts(track, releases)
	for _, e := range a.edits {
		if e.state == editOpen {
			e.state = editDeleted
		}
	}
}

// Track returns the committed releases of a track.
func (s *Server) Track(pkg, track string) []Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneReleases(s.mustApp(pkg).tracks[track])
}

// TrackJSON returns the committed track exactly as tracks.get would answer it
// (indented for golden files).
func (s *Server) TrackJSON(pkg, track string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.MarshalIndent(toWireTrack(track, s.mustApp(pkg).tracks[track]), "", "  ")
	return b
}

// Bundles returns the committed versionCodes of the app, ascending.
func (s *Server) Bundles(pkg string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.mustApp(pkg).bundles))
}

// Commits counts the successful commits of an app.
func (s *Server) Commits(pkg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustApp(pkg).commitSeen
}

// ReviewsCancelled counts the app's commits that cancelled a review in
// progress: sent without changesInReviewBehavior=ERROR_IF_IN_REVIEW while a
// release was RELEASE_LIFECYCLE_STATE_IN_REVIEW (SetLifecycleState).
func (s *Server) ReviewsCancelled(pkg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustApp(pkg).reviewsCancelled
}

// OpenEdits counts the app's edits that are neither committed, deleted nor
// expired — a client that cleans up leaves none.
func (s *Server) OpenEdits(pkg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.mustApp(pkg).edits {
		if e.state == editOpen && s.now.Before(e.expires) {
			n++
		}
	}
	return n
}

// Calls returns how many requests of a method the fake has received
// (including those answered with an injected fault).
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// TokensIssued counts access tokens handed out.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCount
}

// Exchange is one API request and the fake's answer, for wire checks. Token
// requests are not recorded: they carry key material.
type Exchange struct {
	Method       string // e.g. MethodTracksUpdate
	HTTPMethod   string
	Path         string
	Query        string
	ContentType  string
	RequestBody  []byte // empty for uploads (media is not recorded)
	Status       int
	ResponseBody []byte
}

// Exchanges returns every recorded exchange in order.
func (s *Server) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exchanges)
}

// Before registers fn to run once, just before the next request of method is
// handled (outside the fake's lock, so fn may call ConsoleUpdate).
func (s *Server) Before(method string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[method] = append(s.hooks[method], fn)
}

// After registers fn to run once, after the next request of method was
// handled (its effect applied) but before the answer leaves — the moment a
// client process may die. fn runs outside the fake's lock.
func (s *Server) After(method string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterHooks[method] = append(s.afterHooks[method], fn)
}

// mustApp returns the app, adding it when a helper names one not yet added
// (helpers never panic). Callers hold s.mu.
func (s *Server) mustApp(pkg string) *app {
	if _, ok := s.apps[pkg]; !ok {
		s.apps[pkg] = newApp(pkg)
	}
	return s.apps[pkg]
}

func cloneReleases(rs []Release) []Release {
	out := make([]Release, len(rs))
	for i, r := range rs {
		r.VersionCodes = slices.Clone(r.VersionCodes)
		r.ReleaseNotes = slices.Clone(r.ReleaseNotes)
		if r.CountryTargeting != nil {
			ct := *r.CountryTargeting
			ct.Countries = slices.Clone(ct.Countries)
			r.CountryTargeting = &ct
		}
		out[i] = r
	}
	return out
}

func cloneTracks(m map[string][]Release) map[string][]Release {
	out := make(map[string][]Release, len(m))
	for k, v := range m {
		out[k] = cloneReleases(v)
	}
	return out
}

// ServeHTTP routes the token endpoint, androidpublisher, uploads and the
// Reporting API, all at the host root.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		s.mu.Lock()
		s.calls[MethodToken]++
		s.mu.Unlock()
		if f := s.takeFault(MethodToken, false); f != nil {
			f.writeOAuth(w)
			return
		}
		s.handleToken(w, r)
		return
	}
	method, route := s.route(r)
	if method == "" {
		writeError(w, notFound("The requested URL "+r.URL.Path+" was not found on this server."))
		return
	}
	s.mu.Lock()
	s.calls[method]++
	hooks := s.hooks[method]
	delete(s.hooks, method)
	s.mu.Unlock()
	for _, h := range hooks {
		h()
	}

	var reqBody []byte
	if method != MethodBundlesUpload {
		reqBody, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	// The answer is held back until the after-hooks ran, so a hook can act
	// "after Play applied it, before the client heard".
	rec := &recorder{ResponseWriter: w, status: 200}
	defer func() {
		s.mu.Lock()
		s.exchanges = append(s.exchanges, Exchange{Method: method, HTTPMethod: r.Method, Path: r.URL.Path,
			Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), RequestBody: reqBody,
			Status: rec.status, ResponseBody: rec.body.Bytes()})
		after := s.afterHooks[method]
		delete(s.afterHooks, method)
		s.mu.Unlock()
		for _, h := range after {
			h()
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}()

	user, scopes, err := s.caller(r)
	if err != nil {
		writeError(rec, newAPIError(401, "global", "unauthorized", "UNAUTHENTICATED", msgUnauthenticated))
		return
	}
	if want, _ := scopeFor(method); !slices.Contains(scopes, want) {
		insufficientScope(rec, method)
		return
	}
	if s.overQuota() {
		writeError(rec, (&Fault{Kind: FaultQuota}).apiError())
		return
	}
	if f := s.takeFault(method, false); f != nil {
		f.write(rec)
		return
	}
	route(rec, r, user)
}

type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

type handler func(w http.ResponseWriter, r *http.Request, user string)

// route maps a request to its discovery method name and handler.
func (s *Server) route(r *http.Request) (string, handler) {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/v1beta1/apps/"); ok {
		return s.routeReporting(r.Method, rest)
	}
	upload := false
	if rest, ok := strings.CutPrefix(p, "/upload/androidpublisher/v3/applications/"); ok {
		p, upload = rest, true
	} else if rest, ok := strings.CutPrefix(p, "/androidpublisher/v3/applications/"); ok {
		p = rest
	} else {
		return "", nil
	}
	seg := strings.Split(p, "/")
	if !upload && len(seg) == 4 && seg[1] == "tracks" && seg[3] == "releases" && r.Method == http.MethodGet {
		return MethodReleasesList, func(w http.ResponseWriter, r *http.Request, u string) { s.listReleases(w, seg[0], seg[2]) }
	}
	if len(seg) < 2 || seg[1] != "edits" {
		return "", nil
	}
	pkg := seg[0]
	if upload {
		if len(seg) == 4 && seg[3] == "bundles" && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
			return MethodBundlesUpload, func(w http.ResponseWriter, r *http.Request, u string) { s.upload(w, r, u, pkg, seg[2]) }
		}
		return "", nil
	}
	switch {
	case len(seg) == 2 && r.Method == http.MethodPost:
		return MethodEditsInsert, func(w http.ResponseWriter, r *http.Request, u string) { s.insert(w, u, pkg) }
	case len(seg) == 3:
		id, verb, _ := strings.Cut(seg[2], ":")
		switch {
		case verb == "commit" && r.Method == http.MethodPost:
			return MethodEditsCommit, func(w http.ResponseWriter, r *http.Request, u string) { s.commit(w, r, u, pkg, id, true) }
		case verb == "validate" && r.Method == http.MethodPost:
			return MethodEditsValidate, func(w http.ResponseWriter, r *http.Request, u string) { s.commit(w, r, u, pkg, id, false) }
		case verb == "" && r.Method == http.MethodGet:
			return MethodEditsGet, func(w http.ResponseWriter, r *http.Request, u string) { s.getEdit(w, u, pkg, id) }
		case verb == "" && r.Method == http.MethodDelete:
			return MethodEditsDelete, func(w http.ResponseWriter, r *http.Request, u string) { s.deleteEdit(w, u, pkg, id) }
		}
	case len(seg) == 4 && seg[3] == "tracks" && r.Method == http.MethodGet:
		return MethodTracksList, func(w http.ResponseWriter, r *http.Request, u string) { s.listTracks(w, u, pkg, seg[2]) }
	case len(seg) == 4 && seg[3] == "bundles" && r.Method == http.MethodGet:
		return MethodBundlesList, func(w http.ResponseWriter, r *http.Request, u string) { s.listBundles(w, u, pkg, seg[2]) }
	case len(seg) == 5 && seg[3] == "tracks":
		switch r.Method {
		case http.MethodGet:
			return MethodTracksGet, func(w http.ResponseWriter, r *http.Request, u string) { s.getTrack(w, u, pkg, seg[2], seg[4]) }
		case http.MethodPut:
			return MethodTracksUpdate, func(w http.ResponseWriter, r *http.Request, u string) { s.putTrack(w, r, u, pkg, seg[2], seg[4]) }
		case http.MethodPatch:
			return MethodTracksPatch, func(w http.ResponseWriter, r *http.Request, u string) { s.putTrack(w, r, u, pkg, seg[2], seg[4]) }
		}
	}
	return "", nil
}

func (s *Server) newID() string {
	s.nextID++
	return strconv.Itoa(1_000_000_000 + s.nextID*7919)
}

// lookupEdit returns an edit usable by user, or Play's error for it. Callers
// hold s.mu.
func (s *Server) lookupEdit(user, pkg, id string) (*app, *edit, *apiError) {
	a, ok := s.apps[pkg]
	if !ok {
		return nil, nil, newAPIError(404, "androidpublisher", "applicationNotFound", "NOT_FOUND", "Package not found: "+pkg+".")
	}
	e, ok := a.edits[id]
	if !ok || e.user != user {
		return nil, nil, newAPIError(404, "androidpublisher", "editNotFound", "NOT_FOUND", "No edit with id "+id+".")
	}
	switch {
	case e.state == editCommitted:
		return nil, nil, newAPIError(400, "androidpublisher", "editAlreadyCommitted", "INVALID_ARGUMENT", msgEditCommitted)
	case e.state == editDeleted:
		return nil, nil, badRequest(msgEditDeleted)
	case !s.now.Before(e.expires):
		return nil, nil, newAPIError(400, "androidpublisher", "editExpired", "INVALID_ARGUMENT", msgEditExpired)
	}
	return a, e, nil
}

func (e *edit) wire() map[string]string {
	return map[string]string{"id": e.id, "expiryTimeSeconds": strconv.FormatInt(e.expires.Unix(), 10)}
}

func (s *Server) insert(w http.ResponseWriter, user, pkg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[pkg]
	if !ok {
		writeError(w, newAPIError(404, "androidpublisher", "applicationNotFound", "NOT_FOUND", "Package not found: "+pkg+"."))
		return
	}
	// One active edit per user and app: a new one invalidates the user's older ones.
	for _, e := range a.edits {
		if e.user == user && e.state == editOpen {
			e.state = editDeleted
		}
	}
	e := &edit{id: s.newID(), user: user, expires: s.now.Add(s.editTTL),
		tracks: cloneTracks(a.tracks), bundles: maps.Clone(a.bundles)}
	a.edits[e.id] = e
	writeJSON(w, e.wire())
}

func (s *Server) getEdit(w http.ResponseWriter, user, pkg, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, aerr := s.lookupEdit(user, pkg, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, e.wire())
}

func (s *Server) deleteEdit(w http.ResponseWriter, user, pkg, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, aerr := s.lookupEdit(user, pkg, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	e.state = editDeleted
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) commit(w http.ResponseWriter, r *http.Request, user, pkg, id string, commit bool) {
	q := r.URL.Query()
	s.mu.Lock()
	a, e, aerr := s.lookupEdit(user, pkg, id)
	if aerr != nil {
		s.mu.Unlock()
		writeError(w, aerr)
		return
	}
	if aerr := validateCommit(a, e); aerr != nil {
		s.mu.Unlock()
		writeError(w, aerr)
		return
	}
	if !commit {
		s.mu.Unlock()
		writeJSON(w, e.wire())
		return
	}
	if b := q.Get("changesInReviewBehavior"); b != "" && !slices.Contains([]string{"CHANGES_IN_REVIEW_BEHAVIOR_TYPE_UNSPECIFIED", "CANCEL_IN_REVIEW_AND_SUBMIT", "ERROR_IF_IN_REVIEW"}, b) {
		s.mu.Unlock()
		writeError(w, invalidValue(fmt.Sprintf("Invalid value at 'changes_in_review_behavior' (TYPE_ENUM), %q", b)))
		return
	}
	notSent := q.Get("changesNotSentForReview") == "true"
	if refused := (a.review == ReviewNotSentRequired && !notSent) || (a.review == ReviewAutomatic && notSent); refused {
		if a.refusalDeletes {
			e.state = editDeleted
		}
		s.mu.Unlock()
		if notSent {
			writeError(w, badRequest(MsgChangesNotSentForReviewForbidden))
		} else {
			writeError(w, badRequest(MsgChangesNotSentForReviewRequired))
		}
		return
	}
	if q.Get("changesInReviewBehavior") == "ERROR_IF_IN_REVIEW" && a.inReview() {
		// Play fails the commit without invalidating the edit (§1.3).
		s.mu.Unlock()
		writeError(w, badRequest(MsgChangesInReview))
		return
	}
	if a.inReview() {
		// CANCEL_IN_REVIEW_AND_SUBMIT (the default): the review in
		// progress is cancelled and everything goes to review again.
		a.reviewsCancelled++
	}
	a.noteLifecycle(e.tracks, notSent)
	for name, rels := range e.tracks {
		a.noteFullRollouts(name, rels)
	}
	a.tracks = e.tracks
	a.bundles = e.bundles
	e.tracks, e.bundles = nil, nil
	e.state = editCommitted
	a.commitSeen++
	// The first commit invalidates every other edit of the app.
	for _, o := range a.edits {
		if o.state == editOpen {
			o.state = editDeleted
		}
	}
	wire := e.wire()
	s.mu.Unlock()
	if f := s.takeFault(MethodEditsCommit, true); f != nil {
		f.write(w)
		return
	}
	writeJSON(w, wire)
}

// validateCommit holds the rules Play checks across tracks at validate and
// commit time: a served release must not be below the track's live
// completed release, and versionCodes newly added to a track must not be
// below one active (completed or in progress) on another track, or no
// existing user could upgrade to them (google-play.md §2.6).
func validateCommit(a *app, e *edit) *apiError {
	top := func(vcs []int64) int64 { return slices.Max(append([]int64{0}, vcs...)) }
	served := func(r Release) bool { return r.Status == StatusInProgress || r.Status == StatusCompleted }
	for _, name := range slices.Sorted(maps.Keys(e.tracks)) {
		rels := e.tracks[name]
		var live int64
		onTrack := map[int64]bool{} // versionCodes already served on this track
		for _, r := range a.tracks[name] {
			if r.Status == StatusCompleted {
				live = max(live, top(r.VersionCodes))
			}
			if served(r) || r.Status == StatusHalted {
				for _, vc := range r.VersionCodes {
					onTrack[vc] = true
				}
			}
		}
		var elsewhere int64
		for other, orels := range e.tracks {
			if other == name {
				continue
			}
			for _, r := range orels {
				if served(r) {
					elsewhere = max(elsewhere, top(r.VersionCodes))
				}
			}
		}
		for _, r := range rels {
			if !served(r) {
				continue
			}
			if top(r.VersionCodes) < live {
				return forbidden(msgNoUpgradePath)
			}
			added := slices.ContainsFunc(r.VersionCodes, func(vc int64) bool { return !onTrack[vc] })
			if added && top(r.VersionCodes) < elsewhere {
				return forbidden(msgNoUpgradePath)
			}
		}
	}
	return nil
}

func (s *Server) listTracks(w http.ResponseWriter, user, pkg, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, aerr := s.lookupEdit(user, pkg, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var tracks []wireTrack
	for _, name := range slices.Sorted(maps.Keys(e.tracks)) {
		tracks = append(tracks, toWireTrack(name, e.tracks[name]))
	}
	writeJSON(w, map[string]any{"kind": "androidpublisher#tracksListResponse", "tracks": tracks})
}

func (s *Server) getTrack(w http.ResponseWriter, user, pkg, id, track string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, aerr := s.lookupEdit(user, pkg, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	rels, ok := e.tracks[track]
	if !ok {
		writeError(w, notFound("Track not found: "+track+"."))
		return
	}
	if len(rels) == 0 {
		// A track that never had a release: Play answers 404 trackEmpty
		// rather than a track without releases (google-play.md §2.5).
		writeError(w, newAPIError(404, "androidpublisher", "trackEmpty", "NOT_FOUND", msgTrackEmpty))
		return
	}
	writeJSON(w, toWireTrack(track, rels))
}

func (s *Server) putTrack(w http.ResponseWriter, r *http.Request, user, pkg, id, track string) {
	body, _ := io.ReadAll(r.Body)
	rels, aerr := parseTrack(track, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e, lerr := s.lookupEdit(user, pkg, id)
	if lerr != nil {
		writeError(w, lerr)
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if a.draft {
		for _, rel := range rels {
			if rel.Status != StatusDraft {
				writeError(w, badRequest(msgDraftAppOnlyDrafts))
				return
			}
		}
	}
	if _, ok := e.tracks[track]; !ok {
		writeError(w, notFound("Track not found: "+track+"."))
		return
	}
	for _, rel := range rels {
		for _, vc := range rel.VersionCodes {
			if _, ok := e.bundles[vc]; !ok {
				writeError(w, badRequest(fmt.Sprintf("Version code %d is not in this app. Upload it first.", vc)))
				return
			}
		}
	}
	if aerr := frozenPriority(a.tracks[track], rels); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := a.checkHaltedWithoutFraction(track, rels); aerr != nil {
		writeError(w, aerr)
		return
	}
	// A PUT replaces the whole releases list: releases the caller left out
	// are gone. Play documents only "the desired changes"; strict is safer.
	e.tracks[track] = rels
	writeJSON(w, toWireTrack(track, rels))
}

// frozenPriority refuses a release that changes the inAppUpdatePriority of
// a release already rolled out on the track: committed as inProgress,
// halted or completed (discovery: "in_app_update_priority can not be
// updated once the release is rolled out"). The field is a proto3 int32, so
// a release written without it asks for 0: a client that rebuilds a
// rolled-out release instead of writing back what it read is refused.
func frozenPriority(committed, rels []Release) *apiError {
	for i, r := range rels {
		for _, c := range committed {
			if c.Status == StatusDraft || !slices.ContainsFunc(r.VersionCodes, func(vc int64) bool { return slices.Contains(c.VersionCodes, vc) }) {
				continue
			}
			if r.InAppUpdatePriority != c.InAppUpdatePriority {
				return badRequest(fmt.Sprintf(msgPriorityFrozen, i, c.InAppUpdatePriority, r.InAppUpdatePriority))
			}
		}
	}
	return nil
}

// The wire shapes: versionCodes as strings, userFraction as a number.
type wireTrack struct {
	Track    string        `json:"track"`
	Releases []wireRelease `json:"releases,omitempty"`
}

type wireRelease struct {
	Name                string            `json:"name,omitempty"`
	VersionCodes        []string          `json:"versionCodes,omitempty"`
	ReleaseNotes        []LocalizedText   `json:"releaseNotes,omitempty"`
	Status              string            `json:"status,omitempty"`
	UserFraction        float64           `json:"userFraction,omitempty"`
	InAppUpdatePriority int               `json:"inAppUpdatePriority,omitempty"`
	CountryTargeting    *CountryTargeting `json:"countryTargeting,omitempty"`
}

func toWireTrack(name string, rels []Release) wireTrack {
	t := wireTrack{Track: name}
	for _, r := range rels {
		wr := wireRelease{Name: r.Name, ReleaseNotes: r.ReleaseNotes, Status: r.Status,
			UserFraction: r.UserFraction, InAppUpdatePriority: r.InAppUpdatePriority, CountryTargeting: r.CountryTargeting}
		for _, vc := range r.VersionCodes {
			wr.VersionCodes = append(wr.VersionCodes, strconv.FormatInt(vc, 10))
		}
		t.Releases = append(t.Releases, wr)
	}
	return t
}

// parseTrack decodes and validates a Track body the way Play does.
func parseTrack(path string, body []byte) ([]Release, *apiError) {
	var in struct {
		Track    string `json:"track"`
		Releases []struct {
			Name                string            `json:"name"`
			VersionCodes        []json.RawMessage `json:"versionCodes"`
			ReleaseNotes        []LocalizedText   `json:"releaseNotes"`
			Status              *string           `json:"status"`
			UserFraction        *float64          `json:"userFraction"`
			InAppUpdatePriority *int              `json:"inAppUpdatePriority"`
			CountryTargeting    *CountryTargeting `json:"countryTargeting"`
		} `json:"releases"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, badRequest("Invalid JSON payload received. " + err.Error())
	}
	if in.Track != path {
		return nil, badRequest(msgTrackNamesMismatch)
	}
	seen := map[string]bool{}
	usedVC := map[int64]bool{}
	var out []Release
	for i, r := range in.Releases {
		status := ""
		if r.Status != nil {
			status = *r.Status
		}
		switch status {
		case StatusDraft, StatusInProgress, StatusHalted, StatusCompleted:
		case "":
			return nil, invalidValue(fmt.Sprintf("Invalid value at 'track_config.releases[%d].status' (type.googleapis.com/google.play.publishingapi.v3.Release.Status), \"\"", i))
		default:
			return nil, invalidValue(fmt.Sprintf("Invalid value at 'track_config.releases[%d].status' (TYPE_ENUM), %q", i, status))
		}
		upper := map[string]string{StatusDraft: "DRAFT", StatusInProgress: "IN_PROGRESS", StatusHalted: "HALTED", StatusCompleted: "COMPLETED"}[status]
		hasFraction := r.UserFraction != nil
		switch {
		case status == StatusInProgress && !hasFraction:
			return nil, badRequest(upper + " release must have fraction")
		case (status == StatusDraft || status == StatusCompleted) && hasFraction:
			return nil, badRequest(upper + " release must not have fraction")
		case hasFraction && *r.UserFraction >= 1:
			return nil, badRequest(msgFractionNotBelow1)
		case hasFraction && *r.UserFraction <= 0:
			return nil, badRequest("User fraction must be greater than zero")
		}
		if seen[status] {
			return nil, badRequest(fmt.Sprintf("Only one %s release is allowed.", status))
		}
		seen[status] = true
		if r.InAppUpdatePriority != nil && (*r.InAppUpdatePriority < 0 || *r.InAppUpdatePriority > 5) {
			return nil, badRequest(fmt.Sprintf("Invalid value at 'track_config.releases[%d].in_app_update_priority': must be between 0 and 5", i))
		}
		if r.CountryTargeting != nil && (path != "production" || (status != StatusInProgress && status != StatusHalted)) {
			// Play: only for inProgress releases on production (halted ones
			// keep theirs here, so a halt can be resumed).
			return nil, badRequest(fmt.Sprintf("Country targeting at 'track_config.releases[%d]' is only allowed for an in-progress release on the production track.", i))
		}
		rel := Release{Name: r.Name, Status: status, ReleaseNotes: r.ReleaseNotes, CountryTargeting: r.CountryTargeting}
		if hasFraction {
			rel.UserFraction = *r.UserFraction
		}
		if r.InAppUpdatePriority != nil {
			rel.InAppUpdatePriority = *r.InAppUpdatePriority
		}
		if len(r.VersionCodes) == 0 && status != StatusDraft {
			return nil, badRequest(fmt.Sprintf("Release at 'track_config.releases[%d]' must have at least one version code.", i))
		}
		for _, raw := range r.VersionCodes {
			// Proto JSON takes int64 as a string or a number; the Go client sends strings.
			txt := strings.Trim(string(raw), `"`)
			vc, err := strconv.ParseInt(txt, 10, 64)
			if err != nil {
				return nil, invalidValue(fmt.Sprintf("Invalid value at 'track_config.releases[%d].version_codes' (TYPE_INT64), %s", i, raw))
			}
			if usedVC[vc] {
				return nil, badRequest(fmt.Sprintf("Version code %d appears in more than one release.", vc))
			}
			usedVC[vc] = true
			rel.VersionCodes = append(rel.VersionCodes, vc)
		}
		out = append(out, rel)
	}
	return out, nil
}

// noteFullRollouts records the completed releases of a track. Callers hold
// s.mu.
func (a *app) noteFullRollouts(track string, rels []Release) {
	for _, r := range rels {
		if r.Status != StatusCompleted {
			continue
		}
		for _, vc := range r.VersionCodes {
			if !slices.Contains(a.fullRollouts[track], vc) {
				a.fullRollouts[track] = append(a.fullRollouts[track], vc)
			}
		}
	}
}

// checkHaltedWithoutFraction holds Play's rules for halting a fully
// rolled-out release (support.google.com/googleplay/android-developer/
// answer/16285429): a halted release without a fraction must be one the
// track serves completed (or already halted that way); not on an internal
// testing track; and not the first release of the track, since a previous
// fully rolled-out release takes its place. Any other halted release needs
// its fraction. The texts are the fake's own. Callers hold s.mu.
func (a *app) checkHaltedWithoutFraction(track string, rels []Release) *apiError {
	for _, r := range rels {
		if r.Status != StatusHalted || r.UserFraction != 0 {
			continue
		}
		full := slices.ContainsFunc(a.tracks[track], func(c Release) bool {
			return (c.Status == StatusCompleted || (c.Status == StatusHalted && c.UserFraction == 0)) &&
				slices.Equal(c.VersionCodes, r.VersionCodes)
		})
		switch {
		case !full:
			return badRequest("HALTED release must have fraction")
		case track == "internal" || track == "qa":
			return badRequest("A fully rolled-out release cannot be halted on an internal testing track.")
		case !slices.ContainsFunc(a.fullRollouts[track], func(vc int64) bool { return !slices.Contains(r.VersionCodes, vc) }):
			return badRequest("The first release on a track cannot be halted: there is no previous fully rolled-out release to take its place.")
		}
	}
	return nil
}
