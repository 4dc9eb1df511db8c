package appstoretest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route registers h for pattern. params lists the query parameters the
// operation declares (fields[...] are always allowed); an undeclared
// filter[x] is a 400 PARAMETER_ERROR.INVALID ("'x' is not a valid filter
// type"), anything else a 400 PARAMETER_ERROR.ILLEGAL, as Apple answers for
// ?foo=1.
func (f *Fake) route(pattern string, params []string, h func(w http.ResponseWriter, r *http.Request)) {
	method, _, _ := strings.Cut(pattern, " ")
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		for name := range r.URL.Query() {
			// cursor is absent from the spec but is how Apple's links.next pages.
			if strings.HasPrefix(name, "fields[") || slices.Contains(params, name) || (method == http.MethodGet && name == "cursor") {
				continue
			}
			if f, ok := strings.CutPrefix(name, "filter["); ok && strings.HasSuffix(f, "]") {
				// An unknown filter is an invalid value of the filter
				// family, not an unknown parameter: Apple's own example
				// (ref §2.1, "Pinpointing the Location of Errors").
				writeError(w, http.StatusBadRequest, "PARAMETER_ERROR.INVALID", "A parameter has an invalid value",
					fmt.Sprintf("'%s' is not a valid filter type", strings.TrimSuffix(f, "]")), map[string]any{"parameter": name})
				return
			}
			writeError(w, http.StatusBadRequest, "PARAMETER_ERROR.ILLEGAL", "A parameter is not allowed for this request",
				fmt.Sprintf("'%s' is not a valid parameter for this request", name), map[string]any{"parameter": name})
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		if method != http.MethodGet {
			// Count before the status goes out, so a client that has its
			// answer always sees the counter already moved.
			// Handlers hold f.mu while writing, hence the separate lock.
			rec.onSuccess = func() {
				f.countMu.Lock()
				f.mutations[pattern]++
				f.countMu.Unlock()
			}
		}
		h(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status    int
	onSuccess func()
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		if code >= 200 && code < 300 && s.onSuccess != nil {
			s.onSuccess()
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// notFoundHandler answers unknown paths (404 PATH_ERROR) and known paths
// with the wrong method (405 METHOD_NOT_ALLOWED) as JSON:API errors.
func (f *Fake) notFoundHandler(w http.ResponseWriter, r *http.Request) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := f.mux.Handler(probe); p != "" && p != "/" {
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "The request method is not valid for the resource path.",
				fmt.Sprintf("The request method '%s' is not valid for the resource path '%s'.", r.Method, r.URL.Path), nil)
			return
		}
	}
	writeError(w, http.StatusNotFound, "PATH_ERROR", "The URL path is not valid",
		fmt.Sprintf("The path provided does not match a defined resource type. ('%s')", r.URL.Path), nil)
}

func notFound(w http.ResponseWriter, typ, id string) {
	writeError(w, http.StatusNotFound, "NOT_FOUND", "The specified resource does not exist",
		fmt.Sprintf("There is no resource of type '%s' with id '%s'", typ, id), nil)
}

func conflict(w http.ResponseWriter, code, title, detail, pointer string) {
	var src map[string]any
	if pointer != "" {
		src = map[string]any{"pointer": pointer}
	}
	writeError(w, http.StatusConflict, code, title, detail, src)
}

// idMismatch answers a PATCH whose body id is not the path's id, the same
// way for every resource: 409 ENTITY_ERROR.ID.INVALID. It reports whether
// it answered.
func idMismatch(w http.ResponseWriter, bodyID, pathID string) bool {
	if bodyID == pathID {
		return false
	}
	conflict(w, "ENTITY_ERROR.ID.INVALID", "The provided entity id is invalid",
		fmt.Sprintf("The id '%s' in the request does not match the id '%s' in the path", bodyID, pathID), "/data/id")
	return true
}

const stateErrorTitle = "The request cannot be fulfilled because of the state of another resource."

func unprocessable(w http.ResponseWriter, detail string) {
	writeError(w, http.StatusUnprocessableEntity, "ENTITY_UNPROCESSABLE", "The request entity is not valid.", detail, nil)
}

// decode reads a JSON:API request document into v, strictly: bad JSON is 400
// ENTITY_INVALID; valid JSON of the wrong shape (unknown members, wrong
// type) is 422 ENTITY_UNPROCESSABLE.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
		writeError(w, http.StatusBadRequest, "ENTITY_INVALID", "The request entity is not valid.", "The request body could not be read.", nil)
		return false
	}
	if !json.Valid(raw.Bytes()) {
		writeError(w, http.StatusBadRequest, "ENTITY_INVALID", "The request entity is not valid.", "The request body is not valid JSON.", nil)
		return false
	}
	dec := json.NewDecoder(&raw)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		unprocessable(w, "The request entity does not match the expected shape: "+err.Error())
		return false
	}
	return true
}

type linkage struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type toOneReq struct {
	Data *linkage `json:"data"`
}

// checkType answers a wrong data.type with 422 ENTITY_UNPROCESSABLE, the
// documented "valid JSON of the wrong shape" error.
func checkType(w http.ResponseWriter, got, want string) bool {
	if got != want {
		unprocessable(w, fmt.Sprintf("The resource type '%s' is not valid here; expected '%s'.", got, want))
		return false
	}
	return true
}

func requireRel(w http.ResponseWriter, rel *toOneReq, name, typ string) (string, bool) {
	if rel == nil || rel.Data == nil || rel.Data.ID == "" {
		conflict(w, "ENTITY_ERROR.RELATIONSHIP.REQUIRED", "The provided entity is missing a required relationship",
			fmt.Sprintf("You must provide a value for the relationship '%s' with this request", name), "/data/relationships/"+name)
		return "", false
	}
	if rel.Data.Type != typ {
		conflict(w, "ENTITY_ERROR.RELATIONSHIP.INVALID", "The provided entity includes a relationship with an invalid value",
			fmt.Sprintf("'%s' is not a valid type for the relationship '%s'", rel.Data.Type, name), "/data/relationships/"+name)
		return "", false
	}
	return rel.Data.ID, true
}

func relNotFound(w http.ResponseWriter, name, typ, id string) {
	conflict(w, "ENTITY_ERROR.RELATIONSHIP.INVALID", "The provided entity includes a relationship with an invalid value",
		fmt.Sprintf("%s with id '%s' cannot be found", strings.TrimSuffix(typ, "s"), id), "/data/relationships/"+name)
}

type publicURLKey struct{}

// base is the URL the client reached the fake at: Options.PublicURL when
// set (a fake mounted under a prefix), else scheme and Host of the request.
func base(r *http.Request) string {
	if u, _ := r.Context().Value(publicURLKey{}).(string); u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func selfURL(r *http.Request) string { return base(r) + r.URL.RequestURI() }

// obj builds a resource object with links.self.
func obj(r *http.Request, typ, id string, attrs map[string]any, rels map[string]any) map[string]any {
	o := map[string]any{"type": typ, "id": id, "links": map[string]any{"self": base(r) + "/v1/" + typ + "/" + id}}
	if attrs != nil {
		o["attributes"] = attrs
	}
	if len(rels) > 0 {
		o["relationships"] = rels
	}
	return o
}

// relOne renders a to-one relationship of resource owner (e.g. "builds/b1")
// the way Apple does: links when the spec declares them, and linkage data
// only when the request asked for the relationship with include=<name>.
func relOne(r *http.Request, owner, name string, links bool, typ, id string) map[string]any {
	m := map[string]any{}
	if links {
		m["links"] = map[string]any{
			"self":    base(r) + "/v1/" + owner + "/relationships/" + name,
			"related": base(r) + "/v1/" + owner + "/" + name,
		}
	}
	if id != "" && includes(r, name) {
		m["data"] = map[string]any{"type": typ, "id": id}
	}
	return m
}

// includes reports whether the request's include parameter names rel.
func includes(r *http.Request, rel string) bool {
	return slices.Contains(csv(r.URL.Query(), "include"), rel)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeOne(w http.ResponseWriter, r *http.Request, status int, o map[string]any, included ...map[string]any) {
	if status == http.StatusCreated {
		w.Header().Set("Location", o["links"].(map[string]any)["self"].(string))
	}
	doc := map[string]any{"data": o, "links": map[string]any{"self": selfURL(r)}}
	if len(included) > 0 {
		doc["included"] = included
	}
	writeJSON(w, status, doc)
}

// writeList pages the collection by limit. Like Apple, it hands out the
// next page as links.next with an opaque cursor parameter.
func writeList(w http.ResponseWriter, r *http.Request, items []map[string]any, included ...func(page []map[string]any) []map[string]any) {
	q := r.URL.Query()
	limit := 50
	if l := q.Get("limit"); l != "" {
		limit, _ = strconv.Atoi(l)
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err == nil {
			offset, err = strconv.Atoi(strings.TrimPrefix(string(raw), "off:"))
		}
		if err != nil || offset < 0 || offset > len(items) {
			writeError(w, http.StatusBadRequest, "PARAMETER_ERROR.INVALID", "A parameter has an invalid value",
				fmt.Sprintf("'%s' is not a valid cursor for this request", c), map[string]any{"parameter": "cursor"})
			return
		}
	}
	total := len(items)
	page := items[offset:min(offset+limit, total)]
	if page == nil {
		page = []map[string]any{}
	}
	links := map[string]any{"self": selfURL(r)}
	paging := map[string]any{"total": total, "limit": limit}
	if offset+limit < total {
		cursor := base64.RawURLEncoding.EncodeToString([]byte("off:" + strconv.Itoa(offset+limit)))
		q.Set("cursor", cursor)
		u := *r.URL
		u.RawQuery = q.Encode()
		links["next"] = base(r) + u.RequestURI()
		paging["nextCursor"] = cursor
	}
	doc := map[string]any{"data": page, "links": links, "meta": map[string]any{"paging": paging}}
	for _, inc := range included {
		if objs := inc(page); len(objs) > 0 {
			doc["included"] = objs
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// checkLimit validates limit against the operation's maximum.
func checkLimit(w http.ResponseWriter, r *http.Request, maxLimit int) bool {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return true
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > maxLimit {
		writeError(w, http.StatusBadRequest, "PARAMETER_ERROR.INVALID", "A parameter has an invalid value",
			fmt.Sprintf("'%s' is not a valid value for 'limit'; it must be between 1 and %d", l, maxLimit), map[string]any{"parameter": "limit"})
		return false
	}
	return true
}

// csv returns the comma-separated values of a filter, nil if absent.
func csv(q url.Values, name string) []string {
	v := q.Get(name)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// checkEnum answers 400 PARAMETER_ERROR.INVALID for a value outside allowed.
func checkEnum(w http.ResponseWriter, q url.Values, name string, allowed ...string) bool {
	for _, v := range csv(q, name) {
		if !slices.Contains(allowed, v) {
			writeError(w, http.StatusBadRequest, "PARAMETER_ERROR.INVALID", "A parameter has an invalid value",
				fmt.Sprintf("'%s' is not a valid value for '%s'", v, name), map[string]any{"parameter": name})
			return false
		}
	}
	return true
}

func requireParam(w http.ResponseWriter, q url.Values, name string) bool {
	if q.Get(name) == "" {
		writeError(w, http.StatusBadRequest, "PARAMETER_ERROR.REQUIRED", "A required parameter is missing",
			fmt.Sprintf("The parameter '%s' is required", name), map[string]any{"parameter": name})
		return false
	}
	return true
}

func match(filter []string, v string) bool { return filter == nil || slices.Contains(filter, v) }

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// resourceData is the one resource of a JSON:API request document: A are
// its attributes, R its relationships (struct{} when the request has none).
type resourceData[A, R any] struct {
	Type          string `json:"type"`
	ID            string `json:"id"`
	Attributes    A      `json:"attributes"`
	Relationships R      `json:"relationships"`
}

// decodeResource reads a request document holding one resource of type
// typ, strictly (see decode): a missing data or a wrong type is 422
// ENTITY_UNPROCESSABLE, and a PATCH of /…/{id} whose body names another id
// is 409 ENTITY_ERROR.ID.INVALID. It answers the error itself and reports
// whether the handler goes on. Every handler of a one-resource request uses
// it, so all of them refuse the same mistakes the same way.
func decodeResource[A, R any](w http.ResponseWriter, r *http.Request, typ string) (resourceData[A, R], bool) {
	var doc struct {
		Data *resourceData[A, R] `json:"data"`
	}
	if !decode(w, r, &doc) {
		return resourceData[A, R]{}, false
	}
	if doc.Data == nil {
		unprocessable(w, "The request entity has no data.")
		return resourceData[A, R]{}, false
	}
	if !checkType(w, doc.Data.Type, typ) {
		return resourceData[A, R]{}, false
	}
	if r.Method == http.MethodPatch && r.PathValue("id") != "" && idMismatch(w, doc.Data.ID, r.PathValue("id")) {
		return resourceData[A, R]{}, false
	}
	return *doc.Data, true
}
