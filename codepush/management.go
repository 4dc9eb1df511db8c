package codepush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Operations are the changes the management API makes. *Service implements
// them. An embedding service may wrap the Service — embed it and override
// what it needs — to add its own rules (staged rollouts, an audit log,
// deployments it manages) and pass the wrapper in ManagementOptions.
type Operations interface {
	CreateApp(ctx context.Context, name string, noDeployments bool) (App, error)
	RemoveApp(ctx context.Context, name string) error
	AddDeployment(ctx context.Context, app, name, key string) (Deployment, error)
	RenameDeployment(ctx context.Context, app, from, to string) (Deployment, error)
	RemoveDeployment(ctx context.Context, app, name string) error
	ClearHistory(ctx context.Context, app, dep string) error
	Release(ctx context.Context, in ReleaseInput) (Release, error)
	Promote(ctx context.Context, app, from, to string, info PackageInfo) (Release, error)
	Patch(ctx context.Context, app, dep string, info PackageInfo) (Release, bool, error)
	Rollback(ctx context.Context, app, dep, label string) (Release, error)
}

var _ Operations = (*Service)(nil)

// ManagementOptions configure the management API handler.
type ManagementOptions struct {
	// Operations makes the changes; default the Service itself.
	Operations Operations
	// JSONErrors answers errors as {"error":{"code","message",…}} and
	// refuses unknown JSON fields. Off, errors are code-push-server's plain
	// sentences and unknown fields are ignored, as the CodePush CLI needs.
	JSONErrors bool
}

// ManagementHandler returns the management API with code-push-server's
// plain-text errors; see NewManagementHandler.
func (s *Service) ManagementHandler() http.Handler {
	return s.NewManagementHandler(ManagementOptions{})
}

// NewManagementHandler returns the management API as code-push-server
// serves it to code-push-cli 2.x: /apps, /apps/{app}/deployments/{dep},
// release (multipart), patch, promote, rollback, history and metrics, each
// with and without a trailing slash. It does no authentication; the
// embedding service mounts it behind its own, which puts the caller in the
// request context with WithActor, e.g.
//
//	mux.Handle("/v1/codepush/", http.StripPrefix("/v1/codepush", auth(svc.ManagementHandler())))
//
// Access keys, sessions and /account belong to the embedding service.
func (s *Service) NewManagementHandler(opts ManagementOptions) http.Handler {
	if opts.Operations == nil {
		opts.Operations = s
	}
	h := &mgmt{s: s, ops: opts.Operations, json: opts.JSONErrors, mux: http.NewServeMux()}
	route := func(pattern string, f http.HandlerFunc) {
		h.mux.HandleFunc(pattern, f)
		h.mux.HandleFunc(pattern+"/{$}", f) // 2.1.9 sends POST /apps/, GET …/deployments/, POST …/rollback/
	}
	route("GET /apps", h.apps)
	route("POST /apps", h.createApp)
	route("GET /apps/{app}", h.app)
	route("PATCH /apps/{app}", h.renameApp)
	route("DELETE /apps/{app}", h.removeApp)
	route("POST /apps/{app}/transfer/{email}", h.unsupportedAccess)
	route("GET /apps/{app}/collaborators", h.collaborators)
	route("POST /apps/{app}/collaborators/{email}", h.unsupportedAccess)
	route("DELETE /apps/{app}/collaborators/{email}", h.unsupportedAccess)
	route("GET /apps/{app}/deployments", h.deployments)
	route("POST /apps/{app}/deployments", h.addDeployment)
	route("GET /apps/{app}/deployments/{dep}", h.deployment)
	route("PATCH /apps/{app}/deployments/{dep}", h.renameDeployment)
	route("DELETE /apps/{app}/deployments/{dep}", h.removeDeployment)
	route("POST /apps/{app}/deployments/{dep}/release", h.release)
	route("PATCH /apps/{app}/deployments/{dep}/release", h.patch)
	route("POST /apps/{app}/deployments/{dep}/promote/{to}", h.promote)
	route("POST /apps/{app}/deployments/{dep}/rollback", h.rollback) // and "rollback/": no target label
	h.mux.HandleFunc("POST /apps/{app}/deployments/{dep}/rollback/{label}", h.rollback)
	route("GET /apps/{app}/deployments/{dep}/history", h.history)
	route("DELETE /apps/{app}/deployments/{dep}/history", h.clearHistory)
	route("GET /apps/{app}/deployments/{dep}/metrics", h.metrics)
	return h
}

type mgmt struct {
	s    *Service
	ops  Operations
	json bool
	mux  *http.ServeMux
}

func (h *mgmt) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A copy: the mux records its match on the request, and an outer mux
	// must keep seeing its own.
	r = r.WithContext(r.Context())
	h.mux.ServeHTTP(&unmatchedWriter{ResponseWriter: w, r: r, h: h}, r)
}

// unmatchedWriter answers the mux's own 404 and 405 (no route matched) in
// the handler's error format.
type unmatchedWriter struct {
	http.ResponseWriter
	r          *http.Request
	h          *mgmt
	suppressed bool
}

func (w *unmatchedWriter) WriteHeader(code int) {
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.suppressed = true
		w.Header().Del("X-Content-Type-Options")
		kind, msg := Kind("not_found"), fmt.Sprintf("Cannot %s %s", w.r.Method, w.r.URL.Path)
		if code == http.StatusMethodNotAllowed {
			kind, msg = "method_not_allowed", fmt.Sprintf("%s is not allowed on %s (allowed: %s)", w.r.Method, w.r.URL.Path, w.Header().Get("Allow"))
		}
		if w.h.json {
			var b errorBody
			b.Error.Code, b.Error.Message = kind, msg
			writeJSON(w.ResponseWriter, code, b)
		} else {
			writeText(w.ResponseWriter, code, msg)
		}
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *unmatchedWriter) Write(b []byte) (int, error) {
	if w.suppressed {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *unmatchedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (h *mgmt) fail(w http.ResponseWriter, r *http.Request, err error) {
	if h.json {
		h.s.writeError(w, r, err)
		return
	}
	h.s.writeTextError(w, r, err)
}

// decode reads a JSON body; an empty body leaves v as it is.
func (h *mgmt) decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if h.json {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return invalid("body", "", "invalid JSON: %v", err)
	}
	return nil
}

// partReader keeps the error of reading an upload apart from the errors of
// spooling it to disk.
type partReader struct {
	r   io.Reader
	err error
}

func (p *partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF {
		p.err = err
	}
	return n, err
}

// restPackage is code-push-server's REST Package shape.
type restPackage struct {
	Label              string `json:"label"`
	AppVersion         string `json:"appVersion"`
	Description        string `json:"description"`
	IsDisabled         bool   `json:"isDisabled"`
	IsMandatory        bool   `json:"isMandatory"`
	Rollout            int    `json:"rollout"`
	PackageHash        string `json:"packageHash"`
	BlobURL            string `json:"blobUrl"`
	Size               int64  `json:"size"`
	UploadTime         int64  `json:"uploadTime"`
	ReleaseMethod      string `json:"releaseMethod"`
	OriginalLabel      string `json:"originalLabel,omitempty"`
	OriginalDeployment string `json:"originalDeployment,omitempty"`
	ReleasedBy         string `json:"releasedBy,omitempty"`
	Commit             string `json:"commit,omitempty"`
}

func (s *Service) rest(r *http.Request, p Release) restPackage {
	url := p.BlobURL
	if url == "" {
		url = s.baseURL(r) + PathPackages + p.BlobKey
	}
	ro := p.Rollout
	if ro == 0 {
		ro = 100
	}
	return restPackage{
		Label: p.Label, AppVersion: p.AppVersion, Description: p.Description,
		IsDisabled: p.Disabled, IsMandatory: p.Mandatory, Rollout: ro,
		PackageHash: p.PackageHash, BlobURL: url, Size: p.Size, UploadTime: p.UploadTime.UnixMilli(),
		ReleaseMethod: string(p.Method), OriginalLabel: p.OriginalLabel,
		OriginalDeployment: p.OriginalDeployment, ReleasedBy: p.ReleasedBy, Commit: p.Commit,
	}
}

// collaborator is code-push-server's CollaboratorProperties. releasepilot
// has one account per credential, so the caller is the app's owner.
type collaborator struct {
	IsCurrentAccount bool   `json:"isCurrentAccount"`
	Permission       string `json:"permission"`
}

// restApp is code-push-server's REST App: deployments are names.
type restApp struct {
	Name          string                  `json:"name"`
	Collaborators map[string]collaborator `json:"collaborators"`
	Deployments   []string                `json:"deployments"`
}

func accountName(ctx context.Context) string {
	if n := ActorFrom(ctx).Name; n != "" {
		return n
	}
	return "releasepilot"
}

func collaborators(ctx context.Context) map[string]collaborator {
	return map[string]collaborator{accountName(ctx): {IsCurrentAccount: true, Permission: "Owner"}}
}

func toRestApp(ctx context.Context, a App) restApp {
	names := make([]string, 0, len(a.Deployments))
	for _, d := range a.Deployments {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	return restApp{Name: a.Name, Collaborators: collaborators(ctx), Deployments: names}
}

func (h *mgmt) apps(w http.ResponseWriter, r *http.Request) {
	apps, err := h.s.Apps(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]restApp, 0, len(apps))
	for _, a := range apps {
		out = append(out, toRestApp(r.Context(), a))
	}
	slices.SortFunc(out, func(a, b restApp) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, map[string]any{"apps": out})
}

func (h *mgmt) app(w http.ResponseWriter, r *http.Request) {
	a, err := h.s.App(r.Context(), r.PathValue("app"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"app": toRestApp(r.Context(), a)})
}

func location(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/" + strings.Join(parts, "/")
}

func (h *mgmt) createApp(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name                         string `json:"name"`
		OS                           string `json:"os"`       // sent by code-push-cli 2.x; not stored
		Platform                     string `json:"platform"` // likewise
		ManuallyProvisionDeployments bool   `json:"manuallyProvisionDeployments"`
	}
	if err := h.decode(r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	a, err := h.ops.CreateApp(r.Context(), body.Name, body.ManuallyProvisionDeployments)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", location("apps", a.Name))
	writeJSON(w, http.StatusCreated, map[string]any{"app": toRestApp(r.Context(), a)})
}

func (h *mgmt) renameApp(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := h.decode(r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	a, err := h.s.App(r.Context(), r.PathValue("app"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Name != "" && body.Name != a.Name {
		h.fail(w, r, invalid("name", body.Name, "apps cannot be renamed on this server; add an app with the new name instead"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"app": toRestApp(r.Context(), a)})
}

func (h *mgmt) removeApp(w http.ResponseWriter, r *http.Request) {
	if err := h.ops.RemoveApp(r.Context(), r.PathValue("app")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *mgmt) collaborators(w http.ResponseWriter, r *http.Request) {
	if _, err := h.s.App(r.Context(), r.PathValue("app")); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"collaborators": collaborators(r.Context())})
}

func (h *mgmt) unsupportedAccess(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, invalid("email", r.PathValue("email"), "this server has no collaborators or app transfers: access is given with access keys and their roles"))
}

// restDeployment is code-push-server's REST Deployment.
type restDeployment struct {
	Name    string       `json:"name"`
	Key     string       `json:"key"`
	Package *restPackage `json:"package"`
}

func (h *mgmt) restDeployment(r *http.Request, app string, d Deployment) (restDeployment, error) {
	hist, err := h.s.History(r.Context(), app, d.Name)
	if err != nil {
		return restDeployment{}, err
	}
	out := restDeployment{Name: d.Name, Key: d.Key}
	if len(hist) > 0 {
		p := h.s.rest(r, hist[len(hist)-1])
		out.Package = &p
	}
	return out, nil
}

func (h *mgmt) deployments(w http.ResponseWriter, r *http.Request) {
	a, err := h.s.App(r.Context(), r.PathValue("app"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := []restDeployment{}
	for _, d := range a.Deployments {
		rd, err := h.restDeployment(r, a.Name, d)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out = append(out, rd)
	}
	slices.SortFunc(out, func(a, b restDeployment) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, map[string]any{"deployments": out})
}

func (h *mgmt) deployment(w http.ResponseWriter, r *http.Request) {
	a, err := h.s.App(r.Context(), r.PathValue("app"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(a.Deployments, func(d Deployment) bool { return d.Name == r.PathValue("dep") })
	if i < 0 {
		h.fail(w, r, deploymentNotFound(r.PathValue("dep")))
		return
	}
	rd, err := h.restDeployment(r, a.Name, a.Deployments[i])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployment": rd})
}

func (h *mgmt) addDeployment(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	}
	if err := h.decode(r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.ops.AddDeployment(r.Context(), r.PathValue("app"), body.Name, body.Key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", location("apps", r.PathValue("app"), "deployments", d.Name))
	writeJSON(w, http.StatusCreated, map[string]any{"deployment": d})
}

func (h *mgmt) renameDeployment(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := h.decode(r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	name := body.Name
	if name == "" {
		name = r.PathValue("dep")
	}
	d, err := h.ops.RenameDeployment(r.Context(), r.PathValue("app"), r.PathValue("dep"), name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployment": d})
}

func (h *mgmt) removeDeployment(w http.ResponseWriter, r *http.Request) {
	if err := h.ops.RemoveDeployment(r.Context(), r.PathValue("app"), r.PathValue("dep")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// releaseInfo is the packageInfo form field of a release upload; commit is
// releasepilot's addition, passed to the Gate.
type releaseInfo struct {
	AppVersion  string `json:"appVersion"`
	Description string `json:"description"`
	IsDisabled  bool   `json:"isDisabled"`
	IsMandatory bool   `json:"isMandatory"`
	Rollout     *int   `json:"rollout"`
	Commit      string `json:"commit"`
}

func (h *mgmt) release(w http.ResponseWriter, r *http.Request) {
	s := h.s
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		h.fail(w, r, invalid("Content-Type", r.Header.Get("Content-Type"), "a release is a multipart/form-data upload with the fields package and packageInfo"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxPackageSize+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		h.fail(w, r, invalid("body", "", "invalid multipart body: %v", err))
		return
	}
	// The CLI and curl send the file before packageInfo, so the package is
	// spooled first and released once both fields are read.
	var info *releaseInfo
	var tmp *os.File
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = s.checkSize(s.cfg.MaxPackageSize + 1)
			} else {
				err = invalid("body", "", "invalid multipart body: %v", err)
			}
			h.fail(w, r, err)
			return
		}
		switch part.FormName() {
		case "packageInfo":
			b, _ := io.ReadAll(io.LimitReader(part, 64<<10))
			info = &releaseInfo{}
			if err := json.Unmarshal(b, info); err != nil {
				h.fail(w, r, invalid("packageInfo", string(b), "must be a JSON object with at least appVersion: %v", err))
				return
			}
		case "package":
			if tmp != nil {
				h.fail(w, r, invalid("package", "", "only one package file may be uploaded"))
				return
			}
			src := &partReader{r: part}
			if tmp, _, err = s.spool(src); err != nil {
				var mbe *http.MaxBytesError
				switch {
				case errors.As(err, &mbe):
					err = s.checkSize(s.cfg.MaxPackageSize + 1)
				case src.err != nil && !ClientGone(r, src.err):
					// The body ended (or broke) inside the package: the
					// upload's fault, not the server's.
					err = invalid("package", "", "the upload ended before the package did: %v", src.err)
				}
				h.fail(w, r, err)
				return
			}
		}
	}
	if tmp == nil {
		h.fail(w, r, invalid("package", "", "A deployment package must include a file."))
		return
	}
	if info == nil {
		h.fail(w, r, invalid("packageInfo", "", "the packageInfo field (JSON with at least appVersion) is required"))
		return
	}
	in := ReleaseInput{
		App: r.PathValue("app"), Deployment: r.PathValue("dep"),
		AppVersion: info.AppVersion, Description: info.Description,
		Mandatory: info.IsMandatory, Disabled: info.IsDisabled, Commit: info.Commit,
		Package: tmp,
	}
	if info.Rollout != nil {
		in.Rollout = *info.Rollout
		if in.Rollout == 0 {
			in.Rollout = -1 // an explicit 0 is invalid, not "everyone"
		}
	}
	rel, err := h.ops.Release(r.Context(), in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", location("apps", in.App, "deployments", in.Deployment))
	writeJSON(w, http.StatusCreated, map[string]any{"package": s.rest(r, rel)})
}

func (h *mgmt) packageInfo(r *http.Request) (PackageInfo, error) {
	var body struct {
		PackageInfo PackageInfo `json:"packageInfo"`
	}
	err := h.decode(r, &body)
	return body.PackageInfo, err
}

func (h *mgmt) patch(w http.ResponseWriter, r *http.Request) {
	info, err := h.packageInfo(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rel, changed, err := h.ops.Patch(r.Context(), r.PathValue("app"), r.PathValue("dep"), info)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !changed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"package": h.s.rest(r, rel)})
}

func (h *mgmt) promote(w http.ResponseWriter, r *http.Request) {
	info, err := h.packageInfo(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rel, err := h.ops.Promote(r.Context(), r.PathValue("app"), r.PathValue("dep"), r.PathValue("to"), info)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", location("apps", r.PathValue("app"), "deployments", r.PathValue("to")))
	writeJSON(w, http.StatusCreated, map[string]any{"package": h.s.rest(r, rel)})
}

func (h *mgmt) rollback(w http.ResponseWriter, r *http.Request) {
	rel, err := h.ops.Rollback(r.Context(), r.PathValue("app"), r.PathValue("dep"), r.PathValue("label"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", location("apps", r.PathValue("app"), "deployments", r.PathValue("dep")))
	writeJSON(w, http.StatusCreated, map[string]any{"package": h.s.rest(r, rel)})
}

func (h *mgmt) history(w http.ResponseWriter, r *http.Request) {
	hist, err := h.s.History(r.Context(), r.PathValue("app"), r.PathValue("dep"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]restPackage, len(hist))
	for i, p := range hist {
		out[i] = h.s.rest(r, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"history": out})
}

func (h *mgmt) clearHistory(w http.ResponseWriter, r *http.Request) {
	if err := h.ops.ClearHistory(r.Context(), r.PathValue("app"), r.PathValue("dep")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var labelKeyRE = regexp.MustCompile(`^v\d+$`)

func (h *mgmt) metrics(w http.ResponseWriter, r *http.Request) {
	m, err := h.s.Metrics(r.Context(), r.PathValue("app"), r.PathValue("dep"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{}
	for k, c := range m {
		if labelKeyRE.MatchString(k) {
			out[k] = map[string]int64{"active": c.Active, "downloaded": c.Downloaded, "failed": c.Failed, "installed": c.Installed}
		} else {
			out[k] = map[string]int64{"active": c.Active}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"metrics": out})
}
