package playstoretest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
)

// bundleMagic starts every fake AAB. Play reads the versionCode from the
// bundle's manifest; the fake reads it from this header.
const bundleMagic = "PK\x03\x04FAKEAAB versionCode="

// FakeBundle returns the bytes of a fake AAB with the given versionCode,
// padded to at least size bytes.
func FakeBundle(versionCode int64, size int) []byte {
	b := []byte(bundleMagic + strconv.FormatInt(versionCode, 10) + "\n")
	for len(b) < size {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

func fakeBundle(vc int64) bundle {
	return bundleOf(FakeBundle(vc, 0), vc)
}

func bundleOf(data []byte, vc int64) bundle {
	s1 := sha1.Sum(data)
	s2 := sha256.Sum256(data)
	return bundle{VersionCode: vc, SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s2[:])}
}

func versionCodeOf(data []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(bundleMagic))
	if !ok {
		return 0, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	vc, err := strconv.ParseInt(string(line), 10, 64)
	return vc, err == nil
}

type upload struct {
	user, pkg, edit string
	data            []byte
}

const octetStream = "application/octet-stream"

// upload serves uploadType=media, multipart and resumable (session start and
// chunks by POST or PUT, with and without the no-308 convention).
func (s *Server) upload(w http.ResponseWriter, r *http.Request, user, pkg, id string) {
	q := r.URL.Query()
	s.mu.Lock()
	_, _, aerr := s.lookupEdit(user, pkg, id)
	s.mu.Unlock()
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	switch q.Get("uploadType") {
	case "media":
		if ct := r.Header.Get("Content-Type"); ct != octetStream {
			writeError(w, badRequest("Media type '"+ct+"' is not supported. Valid media types: [application/octet-stream]"))
			return
		}
		data, _ := io.ReadAll(r.Body)
		s.finishUpload(w, user, pkg, id, data)
	case "multipart":
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/related" {
			writeError(w, badRequest("Invalid multipart request: Content-Type must be multipart/related."))
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		meta, err := mr.NextPart()
		if err != nil || !strings.HasPrefix(meta.Header.Get("Content-Type"), "application/json") {
			writeError(w, badRequest("Invalid multipart request: the first part must be application/json metadata."))
			return
		}
		media, err := mr.NextPart()
		if err != nil {
			writeError(w, badRequest("Invalid multipart request: missing media part."))
			return
		}
		if ct := media.Header.Get("Content-Type"); ct != octetStream {
			writeError(w, badRequest("Media type '"+ct+"' is not supported. Valid media types: [application/octet-stream]"))
			return
		}
		data, _ := io.ReadAll(media)
		s.finishUpload(w, user, pkg, id, data)
	case "resumable":
		if uid := q.Get("upload_id"); uid != "" {
			s.uploadChunk(w, r, user, pkg, id, uid)
			return
		}
		if ct := r.Header.Get("X-Upload-Content-Type"); ct != "" && ct != octetStream {
			writeError(w, badRequest("Media type '"+ct+"' is not supported. Valid media types: [application/octet-stream]"))
			return
		}
		s.mu.Lock()
		uid := "up-" + s.newID()
		s.uploads[uid] = &upload{user: user, pkg: pkg, edit: id}
		s.mu.Unlock()
		w.Header().Set("Location", fmt.Sprintf("http://%s%s?uploadType=resumable&upload_id=%s", r.Host, r.URL.Path, uid))
		w.WriteHeader(http.StatusOK)
	default:
		writeError(w, badRequest("Invalid upload type "+strconv.Quote(q.Get("uploadType"))+"."))
	}
}

func (s *Server) uploadChunk(w http.ResponseWriter, r *http.Request, user, pkg, id, uid string) {
	s.mu.Lock()
	up, ok := s.uploads[uid]
	s.mu.Unlock()
	if !ok || up.user != user || up.pkg != pkg || up.edit != id {
		writeError(w, notFound("No upload session "+uid+"."))
		return
	}
	chunk, _ := io.ReadAll(r.Body)
	if f := s.takeFault(MethodBundlesUploadChunk, false); f != nil {
		f.write(w) // the chunk is lost; the client resends it
		return
	}
	// Content-Range: "bytes a-b/*", "bytes a-b/total" or "bytes */total".
	cr, ok := strings.CutPrefix(r.Header.Get("Content-Range"), "bytes ")
	if !ok {
		writeError(w, badRequest("Missing Content-Range."))
		return
	}
	rng, totalStr, _ := strings.Cut(cr, "/")
	total := int64(-1)
	if totalStr != "*" {
		t, err := strconv.ParseInt(totalStr, 10, 64)
		if err != nil {
			writeError(w, badRequest("Bad Content-Range."))
			return
		}
		total = t
	}
	s.mu.Lock()
	if rng != "*" {
		a, b, _ := strings.Cut(rng, "-")
		start, err1 := strconv.ParseInt(a, 10, 64)
		end, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil || end-start+1 != int64(len(chunk)) || start > int64(len(up.data)) {
			s.mu.Unlock()
			writeError(w, badRequest("Bad Content-Range."))
			return
		}
		up.data = append(up.data[:start], chunk...)
	}
	have := int64(len(up.data))
	s.mu.Unlock()
	if total >= 0 && have == total {
		s.mu.Lock()
		delete(s.uploads, uid)
		s.mu.Unlock()
		s.finishUpload(w, user, pkg, id, up.data)
		return
	}
	if have > 0 {
		w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", have-1))
	}
	if r.Header.Get("X-GUploader-No-308") == "yes" {
		w.Header().Set("X-Http-Status-Code-Override", "308")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusPermanentRedirect)
}

func (s *Server) finishUpload(w http.ResponseWriter, user, pkg, id string, data []byte) {
	vc, ok := versionCodeOf(data)
	if !ok {
		writeError(w, badRequest("The Android App Bundle is invalid: no versionCode could be read."))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, aerr := s.lookupEdit(user, pkg, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if _, used := e.bundles[vc]; used {
		writeError(w, forbidden(msgVersionCodeUsed))
		return
	}
	b := bundleOf(data, vc)
	e.bundles[vc] = b
	writeJSON(w, b)
}

func (s *Server) listBundles(w http.ResponseWriter, user, pkg, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, aerr := s.lookupEdit(user, pkg, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var out []bundle
	for _, vc := range sortedKeys(e.bundles) {
		out = append(out, e.bundles[vc])
	}
	writeJSON(w, map[string]any{"kind": "androidpublisher#bundlesListResponse", "bundles": out})
}
