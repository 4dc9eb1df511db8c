// Package crashtest is releasepilot's crash harness: it kills `serve`
// replicas (SIGKILL) at chosen points of real releases and checks that each
// release ends where it must, that every external mutation happened once,
// and that work resumed on a survivor in time. The tests live behind the
// build tag crash (make crash-test); this file is the outside world they
// run against, in a process of its own: the project's fakes of GitHub,
// npm, App Store Connect and Google Play, with a small control API to set
// up repositories, hold requests at chosen points ("pause rules"), and
// read what each fake was asked to change.
package crashtest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// The one app every crash test ships.
const (
	AppName    = "acme"
	Repository = "acme/app"
	BundleID   = "com.acme.app"
	Package    = "com.acme.app"
)

// Info is what a replica's configuration needs to reach the fakes.
type Info struct {
	Control     string `json:"control"`
	GitHub      string `json:"github"`
	NPM         string `json:"npm"`
	ASC         string `json:"asc"`
	Play        string `json:"play"`
	GitHubToken string `json:"github_token"`
	ASCKeyID    string `json:"asc_key_id"`
	ASCIssuer   string `json:"asc_issuer"`
	ASCKey      string `json:"asc_key"` // PKCS#8 PEM
	PlayAccount string `json:"play_account"`
}

// Fakes runs the fakes on loopback listeners.
type Fakes struct {
	GitHub *githubtest.Server
	NPM    *npmtest.Registry
	ASC    *appstoretest.Fake
	Play   *playstoretest.Server
	info   Info
	repo   *githubtest.Repo

	mu        sync.Mutex
	rules     []*rule
	nextRule  int
	mutations []Mutation
	commits   []PlayCommit
	servers   []*http.Server
}

// Mutation is one request to change something, as a fake answered it.
type Mutation struct {
	Fake   string    `json:"fake"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
	At     time.Time `json:"at"`
}

// PlayCommit is the state of the app's tracks after a commit Play applied.
type PlayCommit struct {
	At         time.Time     `json:"at"`
	Production []PlayRelease `json:"production"`
	Internal   []PlayRelease `json:"internal"`
}

// PlayRelease is one release on a Play track.
type PlayRelease struct {
	VersionCodes []int64 `json:"version_codes"`
	Status       string  `json:"status"`
	Fraction     float64 `json:"fraction,omitempty"`
}

func (r PlayRelease) String() string {
	if r.Fraction > 0 {
		return fmt.Sprintf("%v %s %g", r.VersionCodes, r.Status, r.Fraction)
	}
	return fmt.Sprintf("%v %s", r.VersionCodes, r.Status)
}

// Rule holds one request (or failpoint) of a fake. Before: the fake has not
// seen it yet, and if its client is gone when the rule is released the
// request is dropped, as one that never arrived. After: the fake applied it
// and its answer is held back, the moment a client may die unaware.
type Rule struct {
	Fake   string `json:"fake"`             // github, npm, asc, play, or hook (a failpoint)
	Method string `json:"method,omitempty"` // HTTP method; for a hook, the failpoint's name
	Path   string `json:"path,omitempty"`   // regular expression on the URL path
	Body   string `json:"body,omitempty"`   // substring the request body must contain
	Phase  string `json:"phase,omitempty"`  // before (default) or after
	// Skip lets that many matching requests through first.
	Skip int `json:"skip,omitempty"`
	// Track (Play, phase after): hold only when the production track then
	// contains this substring (of its indented JSON, as Play returns it:
	// `"userFraction": 0.25`).
	Track string `json:"track,omitempty"`
}

type rule struct {
	Rule
	id      int
	path    *regexp.Regexp
	seen    int
	fired   bool
	hit     chan struct{}
	release chan struct{}
	pid     int
	at      time.Time
}

// Start starts every fake and the control API, each on its own loopback
// port, with the app seeded: on App Store Connect (version 0.9.0 on sale, an
// internal group QA) and on Play (1.0.0 (1) completed on production).
func Start() (*Fakes, error) {
	f := &Fakes{GitHub: githubtest.New(), NPM: npmtest.New(), Play: playstoretest.New(time.Now())}
	f.GitHub.Token = "gh-crash-token-0123456789"
	f.NPM.AddNative("react-native", "0.81.0")
	f.NPM.AddJS("lodash", "4.17.21")
	f.NPM.AddJS("lodash", "4.17.22")
	f.repo = f.GitHub.Repo(Repository)

	listen := func() (net.Listener, string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		return ln, "http://" + ln.Addr().String(), nil
	}
	lns := map[string]net.Listener{}
	for _, name := range []string{"control", "github", "npm", "asc", "play"} {
		ln, url, err := listen()
		if err != nil {
			f.Close()
			return nil, err
		}
		lns[name] = ln
		switch name {
		case "control":
			f.info.Control = url
		case "github":
			f.info.GitHub = url
		case "npm":
			f.info.NPM = url
		case "asc":
			f.info.ASC = url
		case "play":
			f.info.Play = url
		}
	}
	f.NPM.BaseURL = f.info.NPM
	f.ASC = appstoretest.New(appstoretest.Options{
		PublicURL:             f.info.ASC,
		ProcessingPolls:       2,
		UploadProcessingPolls: 2,
		UploadPartSize:        256, // several parts (a fake IPA is about 1 KB), so an upload can die in the middle
		AppReviewTime:         2 * time.Second,
		BetaReviewTime:        2 * time.Second,
		DistributionPolls:     1,
	})
	appID := f.ASC.AddApp(appstoretest.App{BundleID: BundleID, Name: AppName, SKU: AppName})
	f.ASC.AddAppStoreVersion(appID, appstore.PlatformIOS, "0.9.0", appstore.VersionReadyForDistribution)
	f.ASC.AddBetaGroup(appID, "QA", true)
	key, p8, err := f.ASC.NewKey("CRASH00001", "69a6de70-0000-47e3-e053-5b8c7c11a4d1")
	if err != nil {
		f.Close()
		return nil, err
	}
	f.info.ASCKeyID, f.info.ASCIssuer, f.info.ASCKey = key.ID, key.IssuerID, string(p8)
	f.Play.AddApp(Package)
	f.Play.ConsoleUpdate(Package, playstore.TrackProduction,
		playstoretest.Release{Name: "1.0.0 (1)", VersionCodes: []int64{1}, Status: playstoretest.StatusCompleted})
	sa, err := f.Play.ServiceAccountJSON(f.info.Play, "releasepilot@crash.iam.gserviceaccount.com")
	if err != nil {
		f.Close()
		return nil, err
	}
	f.info.PlayAccount, f.info.GitHubToken = string(sa), f.GitHub.Token

	handlers := map[string]http.Handler{
		"control": f.controlHandler(),
		"github":  f.site("github", f.GitHub),
		"npm":     f.site("npm", f.NPM),
		"asc":     f.site("asc", f.ASC),
		"play":    f.site("play", f.Play),
	}
	for name, ln := range lns {
		srv := &http.Server{Handler: handlers[name], ReadHeaderTimeout: 10 * time.Second}
		f.servers = append(f.servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	return f, nil
}

// Info says where the fakes are and how to authenticate.
func (f *Fakes) Info() Info { return f.info }

// Close stops every listener.
func (f *Fakes) Close() {
	for _, s := range f.servers {
		_ = s.Close()
	}
}

// site wraps a fake: it holds requests that match a rule, logs every
// request that changes something, and notes Play's tracks after each
// commit.
func (f *Fakes) site(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if ru := f.match(name, "before", r, body, ""); ru != nil {
			f.hold(r.Context(), ru, 0)
			// A client killed while held is released right after its kill,
			// and the server learns of the closed connection a moment
			// later: wait that moment, so a dead client's request never
			// goes through (seen once: the upload reached Play twice).
			select {
			case <-r.Context().Done():
			case <-time.After(250 * time.Millisecond):
			}
			if r.Context().Err() != nil {
				return // the client died waiting: the request never arrived
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		mutates := r.Method != http.MethodGet && r.Method != http.MethodHead
		track := ""
		if name == "play" && rec.Code == http.StatusOK && strings.HasSuffix(r.URL.Path, ":commit") {
			track = string(f.Play.TrackJSON(Package, playstore.TrackProduction))
			f.noteCommit()
		}
		if mutates {
			f.mu.Lock()
			f.mutations = append(f.mutations, Mutation{Fake: name, Method: r.Method, Path: r.URL.Path, Status: rec.Code, At: time.Now()})
			f.mu.Unlock()
		}
		if ru := f.match(name, "after", r, body, track); ru != nil {
			f.hold(r.Context(), ru, 0)
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func (f *Fakes) noteCommit() {
	conv := func(track string) []PlayRelease {
		var out []PlayRelease
		for _, r := range f.Play.Track(Package, track) {
			out = append(out, PlayRelease{VersionCodes: r.VersionCodes, Status: r.Status, Fraction: r.UserFraction})
		}
		return out
	}
	c := PlayCommit{At: time.Now(), Production: conv(playstore.TrackProduction), Internal: conv(playstore.TrackInternal)}
	f.mu.Lock()
	f.commits = append(f.commits, c)
	f.mu.Unlock()
}

// match finds the first armed rule for a request in phase and consumes it.
func (f *Fakes) match(fake, phase string, r *http.Request, body []byte, track string) *rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ru := range f.rules {
		p := ru.Phase
		if p == "" {
			p = "before"
		}
		if ru.fired || ru.Fake != fake || p != phase {
			continue
		}
		if ru.Method != "" && ru.Method != r.Method {
			continue
		}
		if ru.path != nil && !ru.path.MatchString(r.URL.Path) {
			continue
		}
		if ru.Body != "" && !bytes.Contains(body, []byte(ru.Body)) {
			continue
		}
		if ru.Track != "" && !strings.Contains(track, ru.Track) {
			continue
		}
		if ru.seen < ru.Skip {
			ru.seen++
			continue
		}
		ru.fired = true
		return ru
	}
	return nil
}

// hold marks the rule hit and waits for its release (or for the client to
// go away).
func (f *Fakes) hold(ctx context.Context, ru *rule, pid int) {
	f.mu.Lock()
	ru.pid, ru.at = pid, time.Now()
	close(ru.hit)
	f.mu.Unlock()
	select {
	case <-ru.release:
	case <-ctx.Done():
	}
}

// AddRule arms a rule and returns its id.
func (f *Fakes) AddRule(r Rule) (int, error) {
	ru := &rule{Rule: r, hit: make(chan struct{}), release: make(chan struct{})}
	if r.Path != "" {
		re, err := regexp.Compile(r.Path)
		if err != nil {
			return 0, fmt.Errorf("path: %w", err)
		}
		ru.path = re
	}
	if r.Phase != "" && r.Phase != "before" && r.Phase != "after" {
		return 0, fmt.Errorf("phase: %q is not before or after", r.Phase)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextRule++
	ru.id = f.nextRule
	f.rules = append(f.rules, ru)
	return ru.id, nil
}

func (f *Fakes) rule(id int) *rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ru := range f.rules {
		if ru.id == id {
			return ru
		}
	}
	return nil
}

// Release lets a held request go (a no-op when it was released before).
func (f *Fakes) Release(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ru := range f.rules {
		if ru.id == id {
			select {
			case <-ru.release:
			default:
				close(ru.release)
			}
		}
	}
}

// RepoRelease describes one tag of the app's repository: the commit's files
// (a small bare React Native app at Version/Build, whose JS is App and whose
// lodash is Lodash) and the assets of its GitHub release.
type RepoRelease struct {
	Tag     string `json:"tag"`
	Version string `json:"version"`
	Build   string `json:"build"`
	App     string `json:"app"`
	Lodash  string `json:"lodash"`
	Parent  string `json:"parent,omitempty"`
	// VersionCode, when set, attaches app-<tag>.aab declaring it; IPA
	// attaches app-<tag>.ipa at Version (Build); Bundles attaches
	// bundle-ios.zip and bundle-android.zip.
	VersionCode int64 `json:"version_code,omitempty"`
	IPA         bool  `json:"ipa,omitempty"`
	Bundles     bool  `json:"bundles,omitempty"`
}

// AddRelease commits the files, tags the commit and publishes its release;
// it returns the commit.
func (f *Fakes) AddRelease(r RepoRelease) (string, error) {
	if r.Tag == "" || r.Version == "" || r.Build == "" {
		return "", errors.New("tag, version and build are required")
	}
	if r.Lodash == "" {
		r.Lodash = "4.17.21"
	}
	var parents []string
	if r.Parent != "" {
		parents = append(parents, r.Parent)
	}
	commit := f.repo.Commit("release "+r.Tag, AppFiles(r.Version, r.Build, r.Lodash, r.App), parents...)
	f.repo.LightweightTag(r.Tag, commit)
	assets := map[string][]byte{}
	if r.VersionCode > 0 {
		aab, err := BundleWithVersionCode(r.VersionCode)
		if err != nil {
			return "", err
		}
		assets["app-"+r.Tag+".aab"] = aab
	}
	if r.IPA {
		ipa, err := appstoretest.FakeIPA(BundleID, r.Version, r.Build, 64<<10)
		if err != nil {
			return "", err
		}
		assets["app-"+r.Tag+".ipa"] = ipa
	}
	if r.Bundles {
		for _, p := range []string{"ios", "android"} {
			z, err := githubtest.Zip("index."+p+".bundle", "__d(function(){/* "+r.App+" */});\n")
			if err != nil {
				return "", err
			}
			assets["bundle-"+p+".zip"] = z
		}
	}
	f.repo.Release(r.Tag, assets)
	return commit, nil
}

// AppFiles is a small bare React Native app at a version.
func AppFiles(version, build, lodash, app string) githubtest.Files {
	return githubtest.RNApp{Name: "crash-app", IOSProject: "Crash", Version: version, Build: build, Lodash: lodash,
		Source: "export default () => '" + app + "'\n"}.Files()
}

// BundleWithVersionCode is an Android App Bundle that both sides read the
// same versionCode from: the Play fake from its header
// (playstoretest.FakeBundle), releasepilot from the bundle's protocol
// buffer manifest, as bundletool writes it, in the zip that follows (a zip
// reader finds its directory from the end).
func BundleWithVersionCode(vc int64) ([]byte, error) {
	field := func(num int, v []byte) []byte {
		out := binary.AppendUvarint(nil, uint64(num)<<3|2)
		out = binary.AppendUvarint(out, uint64(len(v)))
		return append(out, v...)
	}
	const ns = "http://schemas.android.com/apk/res/android"
	var attr []byte
	attr = append(attr, field(1, []byte(ns))...)
	attr = append(attr, field(2, []byte("versionCode"))...)
	attr = append(attr, field(3, []byte(strconv.FormatInt(vc, 10)))...)
	var elem []byte
	elem = append(elem, field(3, []byte("manifest"))...)
	elem = append(elem, field(4, attr)...)
	manifest := field(1, elem)

	var buf bytes.Buffer
	buf.Write(playstoretest.FakeBundle(vc, 0))
	zw := zip.NewWriter(&buf)
	zw.SetOffset(int64(buf.Len()))
	for name, data := range map[string][]byte{"base/manifest/AndroidManifest.xml": manifest, "base/dex/classes.dex": bytes.Repeat([]byte{0xde}, 48<<10)} {
		w, err := zw.Create(name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Mutations returns the logged requests that change something.
func (f *Fakes) Mutations() []Mutation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Mutation(nil), f.mutations...)
}

// PlayCommits returns the app's tracks after each commit Play applied.
func (f *Fakes) PlayCommits() []PlayCommit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PlayCommit(nil), f.commits...)
}

// ASCVersion is an App Store version and its phased release.
type ASCVersion struct {
	State       string `json:"state"`
	Phased      string `json:"phased,omitempty"`
	PhasedDay   int    `json:"phased_day,omitempty"`
	ReleaseType string `json:"release_type,omitempty"`
}

func (f *Fakes) controlHandler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, code int, err error) { http.Error(w, err.Error(), code) }
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) { reply(w, f.info) })
	mux.HandleFunc("POST /rules", func(w http.ResponseWriter, r *http.Request) {
		var ru Rule
		if err := json.NewDecoder(r.Body).Decode(&ru); err != nil {
			fail(w, 400, err)
			return
		}
		id, err := f.AddRule(ru)
		if err != nil {
			fail(w, 400, err)
			return
		}
		reply(w, map[string]int{"id": id})
	})
	// GET /rules/{id}/hit?wait=60s waits until the rule held something.
	mux.HandleFunc("GET /rules/{id}/hit", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		ru := f.rule(id)
		if ru == nil {
			fail(w, 404, fmt.Errorf("no rule %d", id))
			return
		}
		wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
		if err != nil {
			wait = time.Minute
		}
		select {
		case <-ru.hit:
			f.mu.Lock()
			out := map[string]any{"pid": ru.pid, "at": ru.at}
			f.mu.Unlock()
			reply(w, out)
		case <-time.After(wait):
			fail(w, http.StatusGatewayTimeout, fmt.Errorf("rule %d held nothing within %s", id, wait))
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /rules/{id}/release", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		f.Release(id)
		reply(w, map[string]bool{"released": true})
	})
	// POST /hit is where failpoints report (internal/failpoint).
	mux.HandleFunc("POST /hit", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			fail(w, 400, err)
			return
		}
		req := &http.Request{Method: in.Name, URL: r.URL}
		if ru := f.match("hook", "before", req, nil, ""); ru != nil {
			f.hold(r.Context(), ru, in.PID)
		}
		reply(w, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /releases", func(w http.ResponseWriter, r *http.Request) {
		var in RepoRelease
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			fail(w, 400, err)
			return
		}
		commit, err := f.AddRelease(in)
		if err != nil {
			fail(w, 400, err)
			return
		}
		reply(w, map[string]string{"commit": commit})
	})
	mux.HandleFunc("GET /mutations", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Mutations()) })
	mux.HandleFunc("GET /play/commits", func(w http.ResponseWriter, r *http.Request) { reply(w, f.PlayCommits()) })
	mux.HandleFunc("GET /play/bundles", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Play.Bundles(Package)) })
	mux.HandleFunc("GET /asc/mutations", func(w http.ResponseWriter, r *http.Request) { reply(w, f.ASC.MutationCounts()) })
	mux.HandleFunc("GET /asc/versions/{id}", func(w http.ResponseWriter, r *http.Request) {
		state, _, ok := f.ASC.Version(r.PathValue("id"))
		if !ok {
			fail(w, 404, fmt.Errorf("no version %s", r.PathValue("id")))
			return
		}
		v := ASCVersion{State: string(state), ReleaseType: string(f.ASC.ReleaseType(r.PathValue("id")))}
		if pr, ok := f.ASC.PhasedRelease(r.PathValue("id")); ok {
			v.Phased, v.PhasedDay = string(pr.State), pr.CurrentDayNumber
		}
		reply(w, v)
	})
	return mux
}
