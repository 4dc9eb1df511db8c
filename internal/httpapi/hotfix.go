package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/hotfix"
	"github.com/swapjoy/releasepilot/internal/release"
)

// Hotfixer releases a bundle by hand; *hotfix.Releaser is one.
type Hotfixer interface {
	Hotfix(ctx context.Context, in hotfix.Input) (codepush.Release, error)
}

// HotfixAPI is POST /v1/ota/releases: an OTA release made by hand (what
// "releasepilot ota release" sends), under the rules of a tagged one. The
// body is multipart/form-data: a "release" JSON field and a "package" file
// (a zip whose root is CodePush/, as the CLI builds it).
type HotfixAPI struct {
	Hotfix Hotfixer
	// MaxPackageSize bounds the upload; default 200 MiB.
	MaxPackageSize int64
	Log            *slog.Logger
}

// hotfixRequest is the "release" field.
type hotfixRequest struct {
	App          string `json:"app"`
	Platform     string `json:"platform"`
	Deployment   string `json:"deployment"`
	Commit       string `json:"commit"`
	TargetBinary string `json:"target_binary"`
	Description  string `json:"description"`
	Mandatory    bool   `json:"mandatory"`
	Rollout      int    `json:"rollout"`
}

// hotfixFields maps the CodePush names of the fields a refusal may name to
// the "release" field's names.
var hotfixFields = map[string]string{"appVersion": "target_binary", "isMandatory": "mandatory"}

func (h *HotfixAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	max := h.MaxPackageSize
	if max <= 0 {
		max = 200 << 20
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Content-Type: %q: send multipart/form-data with a \"release\" JSON field and a \"package\" file", r.Header.Get("Content-Type")))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, max+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid", "body: "+err.Error())
		return
	}
	var req *hotfixRequest
	var pkg *os.File
	defer func() {
		if pkg != nil {
			pkg.Close()
			os.Remove(pkg.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("package: larger than %d bytes", max))
			return
		}
		if err != nil {
			WriteError(w, http.StatusBadRequest, "invalid", "body: "+err.Error())
			return
		}
		switch part.FormName() {
		case "release":
			req = &hotfixRequest{}
			dec := json.NewDecoder(io.LimitReader(part, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(req); err != nil {
				WriteError(w, http.StatusBadRequest, "invalid", "release: not the expected JSON object: "+err.Error())
				return
			}
		case "package":
			if pkg != nil {
				WriteError(w, http.StatusBadRequest, "invalid", "package: only one file may be uploaded")
				return
			}
			if pkg, err = os.CreateTemp("", "releasepilot-hotfix-*"); err != nil {
				h.log().Error("hotfix upload", "err", err)
				WriteError(w, http.StatusInternalServerError, "internal", "internal error")
				return
			}
			n, err := io.Copy(pkg, io.LimitReader(part, max+1))
			switch {
			case errors.As(err, &mbe) || n > max:
				WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("package: larger than %d bytes", max))
				return
			case err != nil:
				WriteError(w, http.StatusBadRequest, "invalid", "package: "+err.Error())
				return
			}
		}
	}
	if req == nil {
		WriteError(w, http.StatusBadRequest, "invalid", "release: missing (a JSON field with app, platform, commit…)")
		return
	}
	if pkg == nil {
		WriteError(w, http.StatusBadRequest, "invalid", "package: missing (the bundle zip)")
		return
	}
	p, err := release.ParsePlatform(req.Platform)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid", "platform: "+err.Error())
		return
	}
	ctx := codepush.WithActor(r.Context(), codepush.Actor{Name: Actor(r.Context())})
	rel, err := h.Hotfix.Hotfix(ctx, hotfix.Input{App: req.App, Platform: p, Deployment: req.Deployment, Commit: req.Commit,
		TargetRange: req.TargetBinary, Description: req.Description, Mandatory: req.Mandatory, Rollout: req.Rollout, Package: pkg})
	if err != nil {
		var ce *codepush.Error
		if errors.As(err, &ce) {
			msg := ce.Message
			if ce.Field != "" {
				// Name the field as this API's caller sent it.
				field := ce.Field
				if f, ok := hotfixFields[field]; ok {
					field = f
				}
				msg = field + ": " + msg
				if ce.Value != "" {
					msg = fmt.Sprintf("%s: %q: %s", field, ce.Value, ce.Message)
				}
			}
			WriteError(w, codepush.HTTPStatus(err), string(ce.Kind), msg)
			return
		}
		h.log().Error("hotfix", "err", err)
		WriteError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	dep := req.Deployment
	if dep == "" {
		dep = codepush.Staging
	}
	rollout := rel.Rollout
	if rollout == 0 {
		rollout = 100
	}
	WriteJSON(w, http.StatusCreated, map[string]any{"app": req.App, "platform": string(p), "deployment": dep, "label": rel.Label,
		"target_binary": rel.AppVersion, "commit": rel.Commit, "rollout": rollout, "mandatory": rel.Mandatory,
		"package_hash": rel.PackageHash, "size": rel.Size, "released_by": rel.ReleasedBy})
}

func (h *HotfixAPI) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
