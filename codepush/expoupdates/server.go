package expoupdates

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
)

// Routes.
const (
	// PathManifest is the manifest endpoint; {app} is the app's name, the
	// URL configured as updates.url in the app (https://host/expo/manifest/acme).
	PathManifest = "/expo/manifest/{app}"
	// PathAssets prefixes asset downloads: PathAssets + blob key + extension.
	PathAssets = "/expo/assets/"
)

// Signer signs manifests and directives (expo-signature): RSASSA-PKCS1-v1_5
// with SHA-256 over the exact bytes of the part body.
type Signer struct {
	Key   *rsa.PrivateKey
	KeyID string // the keyid of the app's codeSigningMetadata; default "main"

	mu   sync.Mutex
	sigs map[[32]byte][]byte // SHA-256 of the signed bytes -> signature
}

// App is one app served over the Expo Updates protocol.
type App struct {
	// CodePushApps names the CodePush app holding each platform's history
	// ("ios" and "android").
	CodePushApps map[string]string
	Signer       *Signer // optional
}

// Config configures a Server.
type Config struct {
	CodePush *codepush.Service
	Apps     map[string]App // by the name in the manifest URL
	// ChannelHeader selects the deployment (default "expo-channel-name",
	// the header EAS-configured apps send); DefaultChannel is used when it
	// is absent (default "Production").
	ChannelHeader  string
	DefaultChannel string
	Logger         *slog.Logger
}

// Server answers expo-updates clients.
type Server struct {
	cfg       Config
	templates sync.Map // blob key -> *Update
	manifests sync.Map // cache key -> []byte (manifest bodies with stable URLs)
	cached    atomic.Int64
}

// maxCachedManifests bounds the manifest cache (its key includes the
// request's base URL, which clients choose).
const maxCachedManifests = 4096

// NewServer returns a Server.
func NewServer(cfg Config) *Server {
	if cfg.ChannelHeader == "" {
		cfg.ChannelHeader = "expo-channel-name"
	}
	if cfg.DefaultChannel == "" {
		cfg.DefaultChannel = codepush.Production
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg}
}

// Register mounts the manifest and asset routes on mux. Like CodePush's
// acquisition routes they need no authentication.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc(PathManifest, s.handleManifest)
	mux.HandleFunc("GET "+PathAssets+"{file}", s.handleAsset)
}

// Handler returns the routes as one handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, err error, log *slog.Logger, r *http.Request) {
	status, msg := http.StatusInternalServerError, "internal error"
	var he *httpError
	var ce *codepush.Error
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.As(err, &ce):
		status, msg = codepush.HTTPStatus(err), err.Error()
	case codepush.ClientGone(r, err):
		// The device went away: nothing failed here, nobody reads the answer.
		log.DebugContext(r.Context(), "expo: client went away", "path", r.URL.Path, "err", err)
		w.WriteHeader(codepush.StatusClientClosedRequest)
		return
	default:
		log.ErrorContext(r.Context(), "expo: request failed", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=0")
	w.Header().Set("expo-protocol-version", "1")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(b)
}

// request is what a manifest request says.
type request struct {
	protocol       int
	platform       string
	runtimeVersion string
	currentID      string
	embeddedID     string
	clientID       string
	channel        string
	expectSig      bool
	sigKeyID       string
	multipart      bool
}

func (s *Server) parse(r *http.Request) (request, error) {
	var q request
	switch v := r.Header.Get("expo-protocol-version"); v {
	case "", "0":
	case "1":
		q.protocol = 1
	default:
		return q, errorf(http.StatusBadRequest, "expo-protocol-version %q is not 0 or 1", v)
	}
	q.platform = r.Header.Get("expo-platform")
	if q.platform != "ios" && q.platform != "android" {
		return q, errorf(http.StatusBadRequest, "expo-platform %q is not ios or android", q.platform)
	}
	q.runtimeVersion = r.Header.Get("expo-runtime-version")
	if q.runtimeVersion == "" {
		return q, errorf(http.StatusBadRequest, "expo-runtime-version is required")
	}
	q.currentID = strings.ToLower(r.Header.Get("expo-current-update-id"))
	q.embeddedID = strings.ToLower(r.Header.Get("expo-embedded-update-id"))
	q.clientID = r.Header.Get("eas-client-id")
	q.channel = r.Header.Get(s.cfg.ChannelHeader)
	if q.channel == "" {
		q.channel = s.cfg.DefaultChannel
	}
	if v := r.Header.Get("expo-expect-signature"); v != "" {
		params, err := parseSFVDict(v)
		if err != nil {
			return q, errorf(http.StatusBadRequest, "expo-expect-signature: %v", err)
		}
		if alg, ok := params["alg"]; ok && alg != "rsa-v1_5-sha256" {
			return q, errorf(http.StatusBadRequest, "expo-expect-signature: alg %q is not rsa-v1_5-sha256", alg)
		}
		q.expectSig, q.sigKeyID = true, params["keyid"]
	}
	accept := r.Header.Get("Accept")
	switch {
	case accept == "" || acceptsType(accept, "multipart/mixed") || acceptsType(accept, "*/*"):
		q.multipart = true
	case acceptsType(accept, "application/expo+json") || acceptsType(accept, "application/json"):
	default:
		return q, errorf(http.StatusNotAcceptable, "accept %q: this server answers multipart/mixed, application/expo+json or application/json", accept)
	}
	return q, nil
}

// acceptsType reports whether an Accept header lists typ with q > 0.
func acceptsType(accept, typ string) bool {
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		if !strings.EqualFold(strings.TrimSpace(fields[0]), typ) {
			continue
		}
		for _, p := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "q" {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f <= 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}

// decision is what a manifest request gets.
type decision struct {
	release    *codepush.Release // the update to serve, or nil
	deployment string            // its deployment key
	directive  string            // noUpdateAvailable, rollBackToEmbedded, or "" with release
	commitTime time.Time         // of rollBackToEmbedded
}

// UpdateID is the update id of a history entry: a UUID derived from the
// deployment, label and content, so that every replica computes the same,
// and a promoted or rolled-back copy is a new update (with its own
// createdAt) that clients take.
func UpdateID(deploymentKey, label, packageHash string) string {
	sum := sha256.Sum256([]byte("releasepilot-expo-update\x00" + deploymentKey + "\x00" + label + "\x00" + packageHash))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5 (name-based, SHA)
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// decide picks the newest enabled update for the runtime version that the
// client's rollout bucket (eas-client-id, hashed as CodePush rollouts are)
// includes; when every update of the runtime version was disabled or rolled
// back, a client running one of them rolls back to its embedded update.
func decide(key string, h []codepush.Release, q request) decision {
	var (
		any    bool
		newest time.Time
	)
	for i := len(h) - 1; i >= 0; i-- {
		e := &h[i]
		if e.AppVersion != q.runtimeVersion {
			continue
		}
		if !any || e.UploadTime.After(newest) {
			newest = e.UploadTime
		}
		any = true
		if e.Disabled {
			continue
		}
		if codepush.UnfinishedRollout(e.Rollout) && (q.clientID == "" || !codepush.InRollout(strings.ToLower(q.clientID), e.Rollout, e.Label)) {
			continue
		}
		if UpdateID(key, e.Label, e.PackageHash) == q.currentID {
			return decision{directive: "noUpdateAvailable"}
		}
		return decision{release: e, deployment: key}
	}
	if !any || q.currentID == "" || q.currentID == q.embeddedID {
		return decision{directive: "noUpdateAvailable"}
	}
	// Every update of this runtime version is disabled: the client runs
	// one that was withdrawn. The directive is newer than all of them, or
	// the client would keep the update it runs.
	return decision{directive: "rollBackToEmbedded", commitTime: newest.Add(time.Millisecond)}
}

func (s *Server) handleManifest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed", r.Method), s.cfg.Logger, r)
		return
	}
	if err := s.manifest(w, r); err != nil {
		writeError(w, err, s.cfg.Logger, r)
	}
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) error {
	app, ok := s.cfg.Apps[r.PathValue("app")]
	if !ok {
		return errorf(http.StatusNotFound, "no Expo app %q", r.PathValue("app"))
	}
	q, err := s.parse(r)
	if err != nil {
		return err
	}
	if q.expectSig && app.Signer == nil {
		return errorf(http.StatusBadRequest, "code signing requested but no key is configured for this app")
	}
	cpApp, ok := app.CodePushApps[q.platform]
	if !ok {
		return errorf(http.StatusNotFound, "the app is not served on %s", q.platform)
	}
	key, h, ok := s.cfg.CodePush.Served(cpApp, q.channel)
	if !ok {
		return errorf(http.StatusNotFound, "no channel %q", q.channel)
	}
	d := decide(key, h, q)
	hdr := w.Header()
	hdr.Set("expo-protocol-version", strconv.Itoa(q.protocol))
	hdr.Set("expo-sfv-version", "0")
	hdr.Set("Cache-Control", "private, max-age=0")
	hdr.Add("Vary", "Accept, expo-platform, expo-runtime-version, expo-current-update-id, expo-embedded-update-id, eas-client-id, expo-expect-signature, "+s.cfg.ChannelHeader)

	var body []byte
	if d.release != nil {
		if body, err = s.manifestBody(r, d.deployment, d.release); err != nil {
			return err
		}
	}
	signer := app.Signer
	sign := func(b []byte) (string, error) {
		if !q.expectSig {
			return "", nil
		}
		return signer.signature(b, q.sigKeyID)
	}

	if !q.multipart {
		switch {
		case d.release != nil:
			sig, err := sign(body)
			if err != nil {
				return err
			}
			if sig != "" {
				hdr.Set("expo-signature", sig)
			}
			hdr.Set("Content-Type", "application/expo+json")
			hdr.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body)
		case d.directive == "noUpdateAvailable":
			hdr.Set("expo-protocol-version", "1") // Android needs it on a 204
			w.WriteHeader(http.StatusNoContent)
		default:
			return errorf(http.StatusNotAcceptable, "the answer is a %s directive, which only multipart/mixed can carry", d.directive)
		}
		return nil
	}

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part := func(name string, b []byte) error {
		ph := textproto.MIMEHeader{}
		ph.Set("Content-Disposition", `inline; name="`+name+`"`)
		ph.Set("Content-Type", "application/json; charset=utf-8")
		if name != "extensions" {
			sig, err := sign(b)
			if err != nil {
				return err
			}
			if sig != "" {
				ph.Set("expo-signature", sig)
			}
		}
		pw, err := mw.CreatePart(ph)
		if err == nil {
			_, err = pw.Write(b)
		}
		return err
	}
	switch {
	case d.release != nil:
		if err := part("manifest", body); err != nil {
			return err
		}
		if err := part("extensions", []byte(`{"assetRequestHeaders":{}}`)); err != nil {
			return err
		}
	case q.protocol >= 1:
		dir := map[string]any{"type": d.directive}
		if d.directive == "rollBackToEmbedded" {
			dir["parameters"] = map[string]string{"commitTime": formatTime(d.commitTime)}
		}
		b, _ := json.Marshal(dir)
		if err := part("directive", b); err != nil {
			return err
		}
	default:
		// Protocol 0 has no directives: an empty multipart body is "no update".
	}
	if err := mw.Close(); err != nil {
		return err
	}
	hdr.Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// manifestBody serialises the manifest of a history entry once; the bytes
// are what is signed and sent.
func (s *Server) manifestBody(r *http.Request, deploymentKey string, e *codepush.Release) ([]byte, error) {
	base := s.cfg.CodePush.BaseURL(r)
	_, presigned := s.cfg.CodePush.Blobs().(codepush.BlobURLer)
	ck := deploymentKey + "\x00" + e.Label + "\x00" + e.BlobKey + "\x00" + base
	if !presigned {
		if b, ok := s.manifests.Load(ck); ok {
			return b.([]byte), nil
		}
	}
	u, err := s.template(r.Context(), e.BlobKey)
	if err != nil {
		return nil, err
	}
	url := func(a Asset) (string, error) {
		if bu, ok := s.cfg.CodePush.Blobs().(codepush.BlobURLer); ok {
			return bu.BlobURL(r.Context(), a.BlobKey, a.ContentType)
		}
		return base + PathAssets + a.BlobKey + a.FileExtension, nil
	}
	type asset struct {
		Hash          string `json:"hash"`
		Key           string `json:"key"`
		ContentType   string `json:"contentType"`
		FileExtension string `json:"fileExtension"`
		URL           string `json:"url"`
	}
	conv := func(a Asset) (asset, error) {
		u, err := url(a)
		return asset{Hash: a.Hash, Key: a.Key, ContentType: a.ContentType, FileExtension: a.FileExtension, URL: u}, err
	}
	launch, err := conv(u.LaunchAsset)
	if err != nil {
		return nil, err
	}
	assets := make([]asset, 0, len(u.Assets))
	for _, a := range u.Assets {
		c, err := conv(a)
		if err != nil {
			return nil, err
		}
		assets = append(assets, c)
	}
	m := struct {
		ID             string         `json:"id"`
		CreatedAt      string         `json:"createdAt"`
		RuntimeVersion string         `json:"runtimeVersion"`
		LaunchAsset    asset          `json:"launchAsset"`
		Assets         []asset        `json:"assets"`
		Metadata       map[string]any `json:"metadata"`
		Extra          map[string]any `json:"extra"`
	}{UpdateID(deploymentKey, e.Label, e.PackageHash), formatTime(e.UploadTime), e.AppVersion, launch, assets, u.Metadata, u.Extra}
	if m.Metadata == nil {
		m.Metadata = map[string]any{}
	}
	if m.Extra == nil {
		m.Extra = map[string]any{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	b := bytes.TrimRight(buf.Bytes(), "\n")
	if !presigned && s.cached.Load() < maxCachedManifests {
		if _, loaded := s.manifests.LoadOrStore(ck, b); !loaded {
			s.cached.Add(1)
		}
	}
	return b, nil
}

// template reads (once) the stored update of a blob.
func (s *Server) template(ctx context.Context, key string) (*Update, error) {
	if u, ok := s.templates.Load(key); ok {
		return u.(*Update), nil
	}
	rc, err := s.cfg.CodePush.Blobs().Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return nil, err
	}
	u, err := DecodeUpdate(b)
	if err != nil {
		return nil, fmt.Errorf("release blob %s: %w", key, err)
	}
	s.templates.Store(key, &u)
	return &u, nil
}

// signature is the expo-signature value over b. RSASSA-PKCS1-v1_5 is
// deterministic, so a signature computed once for the same bytes is the
// same signature: it is kept (bounded) instead of paying an RSA operation
// per manifest request.
func (sg *Signer) signature(b []byte, keyID string) (string, error) {
	sum := sha256.Sum256(b)
	sig, ok := sg.cached(sum)
	if !ok {
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, sg.Key, crypto.SHA256, sum[:]); err != nil {
			return "", err
		}
		sg.keep(sum, sig)
	}
	if keyID == "" {
		keyID = sg.KeyID
	}
	if keyID == "" {
		keyID = "main"
	}
	return `sig="` + base64.StdEncoding.EncodeToString(sig) + `", keyid="` + keyID + `", alg="rsa-v1_5-sha256"`, nil
}

// maxCachedSignatures bounds a Signer's cache of signatures.
const maxCachedSignatures = 4096

func (sg *Signer) cached(sum [32]byte) ([]byte, bool) {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	sig, ok := sg.sigs[sum]
	return sig, ok
}

func (sg *Signer) keep(sum [32]byte, sig []byte) {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.sigs == nil || len(sg.sigs) >= maxCachedSignatures {
		sg.sigs = map[[32]byte][]byte{} // start over rather than grow
	}
	sg.sigs[sum] = sig
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	key, ext, _ := strings.Cut(file, ".")
	if ext != "" {
		ext = "." + ext
	}
	rc, err := s.cfg.CodePush.Blobs().Open(r.Context(), key)
	if err != nil {
		writeError(w, err, s.cfg.Logger, r)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", ContentType(ext))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if sz, ok := rc.(interface{ Size() int64 }); ok && sz.Size() >= 0 {
		h.Set("Content-Length", strconv.FormatInt(sz.Size(), 10))
	}
	io.Copy(w, rc) // a corrupt blob fails at EOF; the client's hash check rejects it
}

// parseSFVDict reads a structured-field dictionary of tokens and strings
// (RFC 8941 §3.2), enough for expo-expect-signature: sig, keyid="main",
// alg="rsa-v1_5-sha256". A bare key is true.
func parseSFVDict(v string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	skip := func() {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
	}
	for {
		skip()
		start := i
		for i < len(v) && (v[i] >= 'a' && v[i] <= 'z' || v[i] >= '0' && v[i] <= '9' || v[i] == '_' || v[i] == '-' || v[i] == '.' || v[i] == '*') {
			i++
		}
		if i == start {
			return nil, fmt.Errorf("expected a key at offset %d", i)
		}
		k := v[start:i]
		val := "?1"
		if i < len(v) && v[i] == '=' {
			i++
			if i < len(v) && v[i] == '"' {
				i++
				var sb strings.Builder
				for {
					if i >= len(v) {
						return nil, errors.New("unterminated string")
					}
					c := v[i]
					i++
					if c == '\\' && i < len(v) {
						sb.WriteByte(v[i])
						i++
						continue
					}
					if c == '"' {
						break
					}
					sb.WriteByte(c)
				}
				val = sb.String()
			} else {
				start := i
				for i < len(v) && v[i] != ',' && v[i] != ';' && v[i] != ' ' {
					i++
				}
				val = v[start:i]
			}
		}
		for i < len(v) && v[i] == ';' { // parameters are ignored
			for i < len(v) && v[i] != ',' {
				i++
			}
		}
		out[k] = val
		skip()
		if i >= len(v) {
			return out, nil
		}
		if v[i] != ',' {
			return nil, fmt.Errorf("unexpected %q at offset %d", v[i], i)
		}
		i++
	}
}
