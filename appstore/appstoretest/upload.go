package appstoretest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/appstore"
)

// uploadPathPrefix is where the fake serves the presigned part URLs it hands
// out in uploadOperations.
const uploadPathPrefix = "/presigned-upload/"

// UploadURLLifetime is how long the presigned part URLs of a
// buildUploadFiles reservation are accepted, counted from the reservation on
// the fake's clock. Apple says the URLs expire and to finish within about a
// week of the reservation (reference §3.3); the exact lifetime is
// [UNVERIFIED]. A PUT after it is refused with 403, as an expired presigned
// URL is on storage hosts [UNVERIFIED status].
const UploadURLLifetime = 7 * 24 * time.Hour

func (f *Fake) uploadRoutes() {
	f.route("POST /v1/buildUploads", nil, f.createUpload)
	f.route("GET /v1/buildUploads/{id}", []string{"include"}, f.getUpload)
	f.route("GET /v1/apps/{id}/buildUploads", []string{"filter[cfBundleShortVersionString]", "filter[cfBundleVersion]", "filter[platform]", "filter[state]", "sort", "limit", "include"}, f.listUploads)
	f.route("POST /v1/buildUploadFiles", nil, f.createUploadFile)
	f.route("GET /v1/buildUploadFiles/{id}", nil, f.getUploadFile)
	f.route("PATCH /v1/buildUploadFiles/{id}", nil, f.commitUploadFile)
	f.route("GET /v1/buildUploads/{id}/buildUploadFiles", []string{"limit"}, f.listUploadFiles)
}

func (f *Fake) uploadObj(r *http.Request, u *upload) map[string]any {
	details := func(ds []appstore.StateDetail) []map[string]any {
		out := []map[string]any{}
		for _, d := range ds {
			out = append(out, map[string]any{"code": d.Code, "description": d.Description})
		}
		return out
	}
	a := map[string]any{
		"cfBundleShortVersionString": u.version, "cfBundleVersion": u.number, "platform": string(u.platform),
		"createdDate": ts(u.created),
		"state":       map[string]any{"state": string(u.state), "errors": details(u.errors), "warnings": []any{}, "infos": []any{}},
	}
	if !u.uploaded.IsZero() {
		a["uploadedDate"] = ts(u.uploaded)
	}
	rels := map[string]any{"buildUploadFiles": map[string]any{"links": map[string]any{
		"self":    base(r) + "/v1/buildUploads/" + u.id + "/relationships/buildUploadFiles",
		"related": base(r) + "/v1/buildUploads/" + u.id + "/buildUploadFiles",
	}}}
	rels["build"] = relOne(r, "buildUploads/"+u.id, "build", false, "builds", u.buildID)
	if id := f.assetFileID(u); id != "" {
		rels["assetFile"] = relOne(r, "buildUploads/"+u.id, "assetFile", false, "buildUploadFiles", id)
	}
	return obj(r, "buildUploads", u.id, a, rels)
}

type createUploadAttrs struct {
	CFBundleShortVersionString string `json:"cfBundleShortVersionString"`
	CFBundleVersion            string `json:"cfBundleVersion"`
	Platform                   string `json:"platform"`
}

type createUploadRels struct {
	App *toOneReq `json:"app"`
}

func (f *Fake) createUpload(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[createUploadAttrs, createUploadRels](w, r, "buildUploads")
	if !ok {
		return
	}
	appID, ok := requireRel(w, req.Relationships.App, "app", "apps")
	if !ok {
		return
	}
	a := req.Attributes
	for name, v := range map[string]string{"cfBundleShortVersionString": a.CFBundleShortVersionString, "cfBundleVersion": a.CFBundleVersion, "platform": a.Platform} {
		if v == "" {
			conflict(w, "ENTITY_ERROR.ATTRIBUTE.REQUIRED", "The provided entity is missing a required attribute",
				fmt.Sprintf("You must provide a value for the attribute '%s' with this request", name), "/data/attributes/"+name)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[appID]; !ok {
		relNotFound(w, "app", "apps", appID)
		return
	}
	for _, b := range f.builds {
		if b.appID == appID && b.version == a.CFBundleShortVersionString && b.number == a.CFBundleVersion && string(b.platform) == a.Platform {
			conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE", "The provided entity includes an attribute with a value that has already been used",
				fmt.Sprintf("The bundle version '%s' has already been used.", a.CFBundleVersion), "/data/attributes/cfBundleVersion")
			return
		}
	}
	u := &upload{id: f.newID("upload"), appID: appID, version: a.CFBundleShortVersionString, number: a.CFBundleVersion,
		platform: appstore.Platform(a.Platform), state: appstore.UploadAwaiting, created: f.now(), pollsLeft: f.opts.UploadProcessingPolls}
	f.uploads[u.id] = u
	writeOne(w, r, http.StatusCreated, f.uploadObj(r, u))
}

// assetFileID is the upload's binary: the committed reservation, else the
// latest one (a client may reserve again after its URLs expired).
func (f *Fake) assetFileID(u *upload) string {
	for _, id := range u.fileIDs {
		if f.files[id].state == "COMPLETE" {
			return id
		}
	}
	if n := len(u.fileIDs); n > 0 {
		return u.fileIDs[n-1]
	}
	return ""
}

// pollUpload advances a PROCESSING upload; on COMPLETE it creates the build.
func (f *Fake) pollUpload(u *upload) {
	if u.state != appstore.UploadProcessing {
		return
	}
	if u.pollsLeft > 0 {
		u.pollsLeft--
	}
	if u.pollsLeft == 0 {
		u.state = appstore.UploadComplete
		u.buildID = f.addBuildLocked(Build{AppID: u.appID, Version: u.version, BuildNumber: u.number, Platform: u.platform, UploadedDate: u.uploaded})
	}
}

func (f *Fake) getUpload(w http.ResponseWriter, r *http.Request) {
	if !checkEnum(w, r.URL.Query(), "include", "build", "assetFile", "assetDescriptionFile", "assetSpiFile") {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[r.PathValue("id")]
	if !ok {
		notFound(w, "buildUploads", r.PathValue("id"))
		return
	}
	f.pollUpload(u)
	var inc []map[string]any
	if includes(r, "build") && u.buildID != "" {
		inc = append(inc, f.buildObj(r, f.builds[u.buildID]))
	}
	if id := f.assetFileID(u); includes(r, "assetFile") && id != "" {
		inc = append(inc, f.fileObj(r, f.files[id]))
	}
	writeOne(w, r, http.StatusOK, f.uploadObj(r, u), inc...)
}

func (f *Fake) listUploads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkLimit(w, r, 200) || !checkEnum(w, q, "filter[platform]", "IOS", "MAC_OS", "TV_OS", "VISION_OS") ||
		!checkEnum(w, q, "sort", "cfBundleVersion", "-cfBundleVersion", "uploadedDate", "-uploadedDate") {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[r.PathValue("id")]; !ok {
		notFound(w, "apps", r.PathValue("id"))
		return
	}
	var out []map[string]any
	for _, id := range sortedKeys(f.uploads) {
		u := f.uploads[id]
		if u.appID == r.PathValue("id") && match(csv(q, "filter[cfBundleShortVersionString]"), u.version) &&
			match(csv(q, "filter[cfBundleVersion]"), u.number) && match(csv(q, "filter[platform]"), string(u.platform)) &&
			match(csv(q, "filter[state]"), string(u.state)) {
			out = append(out, f.uploadObj(r, u))
		}
	}
	writeList(w, r, out)
}

func (f *Fake) fileObj(r *http.Request, fl *uploadFile) map[string]any {
	ops := []map[string]any{}
	if fl.state == "AWAITING_UPLOAD" {
		for i, p := range fl.parts {
			ops = append(ops, map[string]any{
				"method": "PUT", "url": fmt.Sprintf("%s%s%s/%d", base(r), uploadPathPrefix, fl.id, i+1),
				"offset": p.offset, "length": p.length, "partNumber": i + 1,
				"expiration":     ts(fl.expires),
				"requestHeaders": []map[string]any{{"name": "Content-Type", "value": "application/octet-stream"}},
			})
		}
	}
	return obj(r, "buildUploadFiles", fl.id, map[string]any{
		"fileName": fl.name, "fileSize": fl.size, "uti": fl.uti, "assetType": fl.assetType,
		"assetDeliveryState": map[string]any{"state": fl.state, "errors": []any{}, "warnings": []any{}},
		"uploadOperations":   ops,
	}, nil)
}

type createUploadFileAttrs struct {
	AssetType string `json:"assetType"`
	FileName  string `json:"fileName"`
	FileSize  int64  `json:"fileSize"`
	UTI       string `json:"uti"`
}

type createUploadFileRels struct {
	BuildUpload *toOneReq `json:"buildUpload"`
}

func (f *Fake) createUploadFile(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[createUploadFileAttrs, createUploadFileRels](w, r, "buildUploadFiles")
	if !ok {
		return
	}
	uploadID, ok := requireRel(w, req.Relationships.BuildUpload, "buildUpload", "buildUploads")
	if !ok {
		return
	}
	a := req.Attributes
	switch {
	case a.FileName == "" || a.FileSize < 1:
		conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value", "fileName and fileSize >= 1 are required", "/data/attributes/fileSize")
		return
	case a.AssetType != "ASSET" && a.AssetType != "ASSET_DESCRIPTION" && a.AssetType != "ASSET_SPI":
		conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value", "assetType is not valid", "/data/attributes/assetType")
		return
	case !strings.HasPrefix(a.UTI, "com.apple.") && a.UTI != "com.pkware.zip-archive":
		conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value", "uti is not valid", "/data/attributes/uti")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[uploadID]
	if !ok {
		relNotFound(w, "buildUpload", "buildUploads", uploadID)
		return
	}
	if u.state != appstore.UploadAwaiting {
		conflict(w, "STATE_ERROR", stateErrorTitle, "The build upload is not awaiting files.", "")
		return
	}
	fl := &uploadFile{id: f.newID("file"), uploadID: uploadID, name: a.FileName, uti: a.UTI, assetType: a.AssetType,
		size: a.FileSize, state: "AWAITING_UPLOAD", received: map[int][]byte{}, expires: f.now().Add(UploadURLLifetime)}
	for off := int64(0); off < a.FileSize; off += f.opts.UploadPartSize {
		fl.parts = append(fl.parts, filePart{offset: off, length: min(f.opts.UploadPartSize, a.FileSize-off)})
	}
	f.files[fl.id] = fl
	u.fileIDs = append(u.fileIDs, fl.id)
	writeOne(w, r, http.StatusCreated, f.fileObj(r, fl))
}

func (f *Fake) getUploadFile(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[r.PathValue("id")]
	if !ok {
		notFound(w, "buildUploadFiles", r.PathValue("id"))
		return
	}
	writeOne(w, r, http.StatusOK, f.fileObj(r, fl))
}

func (f *Fake) listUploadFiles(w http.ResponseWriter, r *http.Request) {
	if !checkLimit(w, r, 200) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[r.PathValue("id")]
	if !ok {
		notFound(w, "buildUploads", r.PathValue("id"))
		return
	}
	var out []map[string]any
	for _, id := range u.fileIDs {
		out = append(out, f.fileObj(r, f.files[id]))
	}
	writeList(w, r, out)
}

// handleUploadPart serves PUT /presigned-upload/{file}/{part}: the method,
// Content-Type header, exact byte count and expiry of the operation are
// checked.
func (f *Fake) handleUploadPart(w http.ResponseWriter, r *http.Request) {
	fileID, partStr, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, uploadPathPrefix), "/")
	part, err := strconv.Atoi(partStr)
	if r.Method != http.MethodPut || err != nil {
		http.Error(w, "bad upload request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, f.opts.UploadPartSize+1))
	if err != nil {
		http.Error(w, "read failed", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[fileID]
	if !ok || part < 1 || part > len(fl.parts) {
		http.Error(w, "no such upload part", http.StatusNotFound)
		return
	}
	if fl.state != "AWAITING_UPLOAD" {
		http.Error(w, "upload already committed", http.StatusConflict)
		return
	}
	if !f.now().Before(fl.expires) {
		http.Error(w, "Request has expired", http.StatusForbidden)
		return
	}
	if r.Header.Get("Content-Type") != "application/octet-stream" {
		http.Error(w, "missing requested Content-Type header", http.StatusBadRequest)
		return
	}
	if int64(len(body)) != fl.parts[part-1].length {
		http.Error(w, fmt.Sprintf("part %d: got %d bytes, want %d", part, len(body), fl.parts[part-1].length), http.StatusBadRequest)
		return
	}
	fl.received[part-1] = body
	w.Header().Set("ETag", fmt.Sprintf("%q", hex.EncodeToString(md5sum(body))))
	w.WriteHeader(http.StatusOK)
}

func md5sum(b []byte) []byte { s := md5.Sum(b); return s[:] }

type commitUploadFileAttrs struct {
	SourceFileChecksums *struct {
		File *struct {
			Hash      string `json:"hash"`
			Algorithm string `json:"algorithm"`
		} `json:"file"`
		Composite *struct {
			Hash      string `json:"hash"`
			Algorithm string `json:"algorithm"`
		} `json:"composite"`
	} `json:"sourceFileChecksums"`
	Uploaded *bool `json:"uploaded"`
}

func (f *Fake) commitUploadFile(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[commitUploadFileAttrs, struct{}](w, r, "buildUploadFiles")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[r.PathValue("id")]
	if !ok {
		notFound(w, "buildUploadFiles", r.PathValue("id"))
		return
	}
	if req.Attributes.Uploaded == nil || !*req.Attributes.Uploaded {
		writeOne(w, r, http.StatusOK, f.fileObj(r, fl))
		return
	}
	if fl.state != "AWAITING_UPLOAD" {
		writeOne(w, r, http.StatusOK, f.fileObj(r, fl)) // committing twice changes nothing
		return
	}
	var all []byte
	for i := range fl.parts {
		p, ok := fl.received[i]
		if !ok {
			conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("Part %d of %d has not been uploaded.", i+1, len(fl.parts)), "")
			return
		}
		all = append(all, p...)
	}
	if int64(len(all)) != fl.size {
		conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("Received %d bytes, the reservation declared %d.", len(all), fl.size), "")
		return
	}
	if cs := req.Attributes.SourceFileChecksums; cs != nil && cs.File != nil {
		var want string
		switch cs.File.Algorithm {
		case "SHA_256":
			s := sha256.Sum256(all)
			want = hex.EncodeToString(s[:])
		case "MD5":
			want = hex.EncodeToString(md5sum(all))
		default:
			conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value",
				"Unknown checksum algorithm.", "/data/attributes/sourceFileChecksums/file/algorithm")
			return
		}
		if !strings.EqualFold(cs.File.Hash, want) {
			conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value",
				"The file checksum does not match the uploaded bytes.", "/data/attributes/sourceFileChecksums/file/hash")
			return
		}
	}
	fl.state = "COMPLETE"
	u := f.uploads[fl.uploadID]
	u.state, u.uploaded = appstore.UploadProcessing, f.now()
	writeOne(w, r, http.StatusOK, f.fileObj(r, fl))
}
