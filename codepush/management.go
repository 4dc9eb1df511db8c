package codepush

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
)

// ManagementHandler returns the management API, shaped like
// code-push-server's: /apps, /apps/{app}/deployments/{dep}/release, promote,
// rollback, history and metrics. It does no authentication; the embedding
// service mounts it behind its own middleware, which should put the caller in
// the request context with WithActor, e.g.
//
//	mux.Handle("/v1/codepush/", http.StripPrefix("/v1/codepush", auth(svc.ManagementHandler())))
func (s *Service) ManagementHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /apps", s.mgmtApps)
	mux.HandleFunc("POST /apps", s.mgmtCreateApp)
	mux.HandleFunc("GET /apps/{app}", s.mgmtApp)
	mux.HandleFunc("GET /apps/{app}/deployments", s.mgmtDeployments)
	mux.HandleFunc("POST /apps/{app}/deployments", s.mgmtAddDeployment)
	mux.HandleFunc("POST /apps/{app}/deployments/{dep}/release", s.mgmtRelease)
	mux.HandleFunc("PATCH /apps/{app}/deployments/{dep}/release", s.mgmtPatch)
	mux.HandleFunc("POST /apps/{app}/deployments/{dep}/promote/{to}", s.mgmtPromote)
	mux.HandleFunc("POST /apps/{app}/deployments/{dep}/rollback", s.mgmtRollback)
	mux.HandleFunc("POST /apps/{app}/deployments/{dep}/rollback/{label}", s.mgmtRollback)
	mux.HandleFunc("GET /apps/{app}/deployments/{dep}/history", s.mgmtHistory)
	mux.HandleFunc("GET /apps/{app}/deployments/{dep}/metrics", s.mgmtMetrics)
	return mux
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

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return invalid("body", "", "invalid JSON: %v", err)
	}
	return nil
}

func (s *Service) mgmtApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.Apps(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if apps == nil {
		apps = []App{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": apps})
}

func (s *Service) mgmtApp(w http.ResponseWriter, r *http.Request) {
	a, err := s.App(r.Context(), r.PathValue("app"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"app": a})
}

func (s *Service) mgmtCreateApp(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name                         string `json:"name"`
		ManuallyProvisionDeployments bool   `json:"manuallyProvisionDeployments"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.CreateApp(r.Context(), body.Name, body.ManuallyProvisionDeployments)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/apps/"+a.Name)
	writeJSON(w, http.StatusCreated, map[string]any{"app": a})
}

func (s *Service) mgmtDeployments(w http.ResponseWriter, r *http.Request) {
	a, err := s.App(r.Context(), r.PathValue("app"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type dep struct {
		Deployment
		Package *restPackage `json:"package"`
	}
	out := []dep{}
	for _, d := range a.Deployments {
		h, err := s.History(r.Context(), a.Name, d.Name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		e := dep{Deployment: d}
		if len(h) > 0 {
			p := s.rest(r, h[len(h)-1])
			e.Package = &p
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployments": out})
}

func (s *Service) mgmtAddDeployment(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.AddDeployment(r.Context(), r.PathValue("app"), body.Name, body.Key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"deployment": d})
}

// releaseInfo is the packageInfo form field of a release upload; commit is
// our addition, passed to the Gate.
type releaseInfo struct {
	AppVersion  string `json:"appVersion"`
	Description string `json:"description"`
	IsDisabled  bool   `json:"isDisabled"`
	IsMandatory bool   `json:"isMandatory"`
	Rollout     *int   `json:"rollout"`
	Commit      string `json:"commit"`
}

func (s *Service) mgmtRelease(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		s.writeError(w, r, invalid("Content-Type", r.Header.Get("Content-Type"), "a release is a multipart/form-data upload with fields package and packageInfo"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxPackageSize+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		s.writeError(w, r, invalid("body", "", "invalid multipart body: %v", err))
		return
	}
	// The CLI and curl examples send the file before packageInfo, so the
	// package is spooled first and released once both fields are read.
	var info *releaseInfo
	var tmp *os.File
	var size int64
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
			s.writeError(w, r, invalid("body", "", "invalid multipart body: %v", err))
			return
		}
		switch part.FormName() {
		case "packageInfo":
			b, _ := io.ReadAll(io.LimitReader(part, 64<<10))
			info = &releaseInfo{}
			if err := json.Unmarshal(b, info); err != nil {
				s.writeError(w, r, invalid("packageInfo", string(b), "must be a JSON object: %v", err))
				return
			}
		case "package":
			if tmp != nil {
				s.writeError(w, r, invalid("package", "", "only one package file may be uploaded"))
				return
			}
			if tmp, size, err = s.spool(part); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
	}
	if info == nil {
		s.writeError(w, r, invalid("packageInfo", "", "the packageInfo field (JSON with at least appVersion) is required"))
		return
	}
	in := ReleaseInput{
		App: r.PathValue("app"), Deployment: r.PathValue("dep"),
		AppVersion: info.AppVersion, Description: info.Description,
		Mandatory: info.IsMandatory, Disabled: info.IsDisabled, Commit: info.Commit,
	}
	if info.Rollout != nil {
		in.Rollout = *info.Rollout
		if in.Rollout == 0 {
			in.Rollout = -1 // an explicit 0 is invalid, not "everyone"
		}
	}
	if err := s.validateRelease(&in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if tmp == nil {
		s.writeError(w, r, invalid("package", "", "a package file field is required"))
		return
	}
	rel, err := s.releaseSpooled(r.Context(), in, tmp, size)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/apps/"+in.App+"/deployments/"+in.Deployment)
	writeJSON(w, http.StatusCreated, map[string]any{"package": s.rest(r, rel)})
}

func (s *Service) mgmtPatch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PackageInfo PackageInfo `json:"packageInfo"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	rel, changed, err := s.Patch(r.Context(), r.PathValue("app"), r.PathValue("dep"), body.PackageInfo)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !changed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"package": s.rest(r, rel)})
}

func (s *Service) mgmtPromote(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PackageInfo PackageInfo `json:"packageInfo"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	rel, err := s.Promote(r.Context(), r.PathValue("app"), r.PathValue("dep"), r.PathValue("to"), body.PackageInfo)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"package": s.rest(r, rel)})
}

func (s *Service) mgmtRollback(w http.ResponseWriter, r *http.Request) {
	rel, err := s.Rollback(r.Context(), r.PathValue("app"), r.PathValue("dep"), r.PathValue("label"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"package": s.rest(r, rel)})
}

func (s *Service) mgmtHistory(w http.ResponseWriter, r *http.Request) {
	h, err := s.History(r.Context(), r.PathValue("app"), r.PathValue("dep"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]restPackage, len(h))
	for i, p := range h {
		out[i] = s.rest(r, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"history": out})
}

var labelKeyRE = regexp.MustCompile(`^v\d+$`)

func (s *Service) mgmtMetrics(w http.ResponseWriter, r *http.Request) {
	m, err := s.Metrics(r.Context(), r.PathValue("app"), r.PathValue("dep"))
	if err != nil {
		s.writeError(w, r, err)
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
