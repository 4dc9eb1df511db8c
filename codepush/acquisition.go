package codepush

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Acquisition routes, as microsoft/code-push-server serves them.
const (
	PathUpdateCheck       = "/updateCheck"
	PathUpdateCheckV01    = "/v0.1/public/codepush/update_check"
	PathReportDeploy      = "/reportStatus/deploy"
	PathReportDeployV01   = "/v0.1/public/codepush/report_status/deploy"
	PathReportDownload    = "/reportStatus/download"
	PathReportDownloadV01 = "/v0.1/public/codepush/report_status/download"
	// PathPackages prefixes package downloads: PathPackages + blob key.
	PathPackages = "/v0.1/public/codepush/packages/"
)

// RegisterAcquisition mounts the device-facing routes on mux. They need no
// authentication: the deployment key is the device's credential.
func (s *Service) RegisterAcquisition(mux *http.ServeMux) {
	for _, rt := range s.AcquisitionRoutes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
}

// Route is a ServeMux pattern and its handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// AcquisitionRoutes are the device-facing routes one by one, for a server
// that mounts them on its own mux with its own middleware: a request is
// routed once, where AcquisitionHandler would route it a second time.
func (s *Service) AcquisitionRoutes() []Route {
	return []Route{
		{"GET " + PathUpdateCheck, s.handleUpdateCheck(false)},
		{"GET " + PathUpdateCheckV01, s.handleUpdateCheck(true)},
		{"POST " + PathReportDeploy, http.HandlerFunc(s.handleReportDeploy)},
		{"POST " + PathReportDeployV01, http.HandlerFunc(s.handleReportDeploy)},
		{"POST " + PathReportDownload, http.HandlerFunc(s.handleReportDownload)},
		{"POST " + PathReportDownloadV01, http.HandlerFunc(s.handleReportDownload)},
		{"GET " + PathPackages + "{key}", http.HandlerFunc(s.handlePackage)},
	}
}

// AcquisitionHandler returns the acquisition routes as one handler.
func (s *Service) AcquisitionHandler() http.Handler {
	mux := http.NewServeMux()
	s.RegisterAcquisition(mux)
	return mux
}

// ParseUpdateQuery reads an update-check query in either spelling (snake_case
// first, as SDK 4.x sends it). Absent values are empty.
func ParseUpdateQuery(q url.Values) UpdateRequest {
	get := func(snake, camel string) string {
		if v := q.Get(snake); v != "" {
			return v
		}
		return q.Get(camel)
	}
	return UpdateRequest{
		DeploymentKey:  get("deployment_key", "deploymentKey"),
		AppVersion:     get("app_version", "appVersion"),
		PackageHash:    get("package_hash", "packageHash"),
		Label:          q.Get("label"),
		ClientUniqueID: get("client_unique_id", "clientUniqueId"),
		IsCompanion:    strings.EqualFold(get("is_companion", "isCompanion"), "true"),
	}
}

type updateInfoSnake struct {
	DownloadURL            string `json:"download_url"`
	Description            string `json:"description"`
	IsAvailable            bool   `json:"is_available"`
	IsMandatory            bool   `json:"is_mandatory"`
	AppVersion             string `json:"app_version"`
	PackageHash            string `json:"package_hash"`
	Label                  string `json:"label"`
	PackageSize            int64  `json:"package_size"`
	UpdateAppVersion       bool   `json:"update_app_version"`
	ShouldRunBinaryVersion bool   `json:"should_run_binary_version"`
	TargetBinaryRange      string `json:"target_binary_range"`
}

type updateInfoCamel struct {
	DownloadURL            string `json:"downloadURL"`
	Description            string `json:"description"`
	IsAvailable            bool   `json:"isAvailable"`
	IsMandatory            bool   `json:"isMandatory"`
	AppVersion             string `json:"appVersion"`
	PackageHash            string `json:"packageHash"`
	Label                  string `json:"label"`
	PackageSize            int64  `json:"packageSize"`
	UpdateAppVersion       bool   `json:"updateAppVersion"`
	ShouldRunBinaryVersion bool   `json:"shouldRunBinaryVersion"`
	TargetBinaryRange      string `json:"target_binary_range"`
}

func (s *Service) handleUpdateCheck(snake bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := parseUpdateQuery(r.URL.RawQuery)
		info, err := s.CheckUpdate(req)
		if err != nil {
			if !snake {
				err = camelField(err)
			}
			s.writeTextError(w, r, err)
			return
		}
		if info.IsAvailable && info.DownloadURL == "" {
			if err := s.setDownload(r, req, &info); err != nil {
				s.writeTextError(w, r, err)
				return
			}
		}
		writeUpdateCheck(w, snake, toCamel(info))
	}
}

func toCamel(i UpdateInfo) updateInfoCamel {
	return updateInfoCamel{
		DownloadURL: i.DownloadURL, Description: i.Description, IsAvailable: i.IsAvailable,
		IsMandatory: i.IsMandatory, AppVersion: i.AppVersion, PackageHash: i.PackageHash,
		Label: i.Label, PackageSize: i.PackageSize, UpdateAppVersion: i.UpdateAppVersion,
		ShouldRunBinaryVersion: i.ShouldRunBinaryVersion, TargetBinaryRange: i.AppVersion,
	}
}

// camelField renames the parameter in an error for the legacy route.
func camelField(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	switch c.Field {
	case "deployment_key":
		c.Field = "deploymentKey"
	case "app_version":
		c.Field = "appVersion"
	}
	return &c
}

// reportBody accepts both spellings of every field.
type reportBody struct {
	DeploymentKey          string `json:"deploymentKey"`
	DeploymentKeySnake     string `json:"deployment_key"`
	AppVersion             string `json:"appVersion"`
	AppVersionSnake        string `json:"app_version"`
	ClientUniqueID         string `json:"clientUniqueId"`
	ClientUniqueIDSnake    string `json:"client_unique_id"`
	Label                  string `json:"label"`
	Status                 string `json:"status"`
	PreviousLabel          string `json:"previousLabelOrAppVersion"`
	PreviousLabelSnake     string `json:"previous_label_or_app_version"`
	PreviousDeploymentKey  string `json:"previousDeploymentKey"`
	PreviousDeploymentSnak string `json:"previous_deployment_key"`
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readReport(w http.ResponseWriter, r *http.Request) (reportBody, error) {
	var b reportBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 10<<10))
	if err := dec.Decode(&b); err != nil && !errors.Is(err, io.EOF) {
		return b, invalid("body", "", "the body must be a JSON object of at most 10 KiB: %v", err)
	}
	return b, nil
}

// limitReport takes a token from the client address's bucket, or answers
// 429 (as express-rate-limit does, with Retry-After) and reports false.
func (s *Service) limitReport(w http.ResponseWriter, r *http.Request) bool {
	if s.reports == nil {
		return true
	}
	a, ok := s.clientAddr(r)
	if !ok {
		return true
	}
	if ok, wait := s.reports.allow(a); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		s.writeTextError(w, r, &Error{Kind: KindRateLimited, Message: "Too many requests, please try again later."})
		return false
	}
	return true
}

func (s *Service) handleReportDeploy(w http.ResponseWriter, r *http.Request) {
	if !s.limitReport(w, r) {
		return
	}
	b, err := readReport(w, r)
	if err == nil {
		err = s.ReportDeploy(r.Context(), DeployReport{
			DeploymentKey:             or(b.DeploymentKeySnake, b.DeploymentKey),
			AppVersion:                or(b.AppVersionSnake, b.AppVersion),
			ClientUniqueID:            or(b.ClientUniqueIDSnake, b.ClientUniqueID),
			Label:                     b.Label,
			Status:                    b.Status,
			PreviousLabelOrAppVersion: or(b.PreviousLabelSnake, b.PreviousLabel),
			PreviousDeploymentKey:     or(b.PreviousDeploymentSnak, b.PreviousDeploymentKey),
		})
	}
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	writeText(w, http.StatusOK, "OK")
}

func (s *Service) handleReportDownload(w http.ResponseWriter, r *http.Request) {
	if !s.limitReport(w, r) {
		return
	}
	b, err := readReport(w, r)
	if err == nil {
		err = s.ReportDownload(r.Context(), or(b.DeploymentKeySnake, b.DeploymentKey), or(b.ClientUniqueIDSnake, b.ClientUniqueID), b.Label)
	}
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	writeText(w, http.StatusOK, "OK")
}

func (s *Service) handlePackage(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	rc, err := s.OpenPackage(r.Context(), key)
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // content-addressed
	if sz, ok := rc.(interface{ Size() int64 }); ok {
		// Android compares the bytes received with Content-Length and fails
		// on a chunked answer (reference ota-round2 §E.6).
		if n := sz.Size(); n >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		}
	}
	io.Copy(w, rc) // a corrupt blob fails at EOF; the client's hash check rejects the truncated body
}

type errorBody struct {
	Error struct {
		Code    Kind   `json:"code"`
		Field   string `json:"field,omitempty"`
		Value   string `json:"value,omitempty"`
		Message string `json:"message"`
	} `json:"error"`
}

// StatusClientClosedRequest (nginx's 499) is the status of a request whose
// client went away before it was answered: nothing failed on the server's
// side, and nobody reads the answer.
const StatusClientClosedRequest = 499

// ClientGone reports whether err, an internal error answering r, comes from
// r's client going away (its context cancelled) rather than from a fault
// of the server.
func ClientGone(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(r.Context().Err(), context.Canceled)
}

// writeError answers with the JSON error shape {"error":{"code","message"}}
// (plus field and value when known). An internal error of a request whose
// client went away is no error of ours: it is logged at debug and answered
// with 499.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var b errorBody
	var e *Error
	if errors.As(err, &e) {
		b.Error.Code, b.Error.Field, b.Error.Value, b.Error.Message = e.Kind, e.Field, e.Value, e.Message
	} else if s.clientGone(w, r, err) {
		return
	} else {
		b.Error.Code, b.Error.Message = "internal", "internal error"
		s.cfg.Logger.ErrorContext(r.Context(), "codepush: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, HTTPStatus(err), b)
}

// writeTextError answers as code-push-server does: the status and a plain
// sentence, which the CodePush CLI prints after "[Error]".
func (s *Service) writeTextError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if s.clientGone(w, r, err) {
			return
		}
		s.cfg.Logger.ErrorContext(r.Context(), "codepush: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeText(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeText(w, HTTPStatus(err), e.Text())
}

// clientGone answers 499 to a request whose client went away, logging err
// at debug, and reports whether it did.
func (s *Service) clientGone(w http.ResponseWriter, r *http.Request, err error) bool {
	if !ClientGone(r, err) {
		return false
	}
	s.cfg.Logger.DebugContext(r.Context(), "codepush: client went away", "method", r.Method, "path", r.URL.Path, "err", err)
	w.WriteHeader(StatusClientClosedRequest)
	return true
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// writeText writes a plain-text body the way Express's res.send(string)
// does (text/html), with &, < and > escaped as code-push-server's
// sanitize-html does, so no request data can become markup.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, htmlEscaper.Replace(msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encoding failed"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}
