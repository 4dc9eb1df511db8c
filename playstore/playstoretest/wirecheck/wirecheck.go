// Package wirecheck checks Google Play traffic against Google's discovery
// documents for androidpublisher v3 and the Play Developer Reporting API
// v1beta1 (embedded from testdata; source and revision in the repository's
// testdata/README.md). Tests install it in front of a playstoretest fake with
// Handler, so every request a client sends and every answer the fake gives
// is checked: the method and path against a discovery method, every query
// parameter's name and value against the method's and the API's declared
// parameters, JSON bodies against their schemas (unknown properties, wrong
// JSON types, int64 not sent as a string and values outside an enum are
// errors), and error answers against Google's v1 error envelope. Only tests
// import it.
package wirecheck

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

//go:embed testdata/androidpublisher-v3-discovery.json
var publisherJSON []byte

//go:embed testdata/playdeveloperreporting-v1beta1-discovery.json
var reportingJSON []byte

// Doc is the part of a Google discovery document the checks read.
type Doc struct {
	Name       string                `json:"name"`
	Schemas    map[string]*Schema    `json:"schemas"`
	Resources  map[string]*resource  `json:"resources"`
	Parameters map[string]*Parameter `json:"parameters"`
	methods    []*Method
}

// Schema is a discovery JSON schema.
type Schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Format               string             `json:"format"`
	Enum                 []string           `json:"enum"`
	Properties           map[string]*Schema `json:"properties"`
	Items                *Schema            `json:"items"`
	AdditionalProperties *Schema            `json:"additionalProperties"`
}

// Parameter is a declared query or path parameter.
type Parameter struct {
	Type     string   `json:"type"`
	Format   string   `json:"format"`
	Enum     []string `json:"enum"`
	Location string   `json:"location"`
	Repeated bool     `json:"repeated"`
}

type resource struct {
	Methods   map[string]*Method   `json:"methods"`
	Resources map[string]*resource `json:"resources"`
}

// Method is one discovery method.
type Method struct {
	ID          string                `json:"id"`
	FlatPath    string                `json:"flatPath"`
	Path        string                `json:"path"`
	HTTPMethod  string                `json:"httpMethod"`
	Parameters  map[string]*Parameter `json:"parameters"`
	Request     *Schema               `json:"request"`
	Response    *Schema               `json:"response"`
	MediaUpload *struct {
		Protocols map[string]struct {
			Path string `json:"path"`
		} `json:"protocols"`
	} `json:"mediaUpload"`

	path, upload *regexp.Regexp
}

var (
	once     sync.Once
	docs     []*Doc
	docsErr  error
	paramRE  = regexp.MustCompile(`\\\{(\\\+)?[A-Za-z]+\\\}`)
	uploadQS = []string{"media", "multipart", "resumable"}
)

// Docs returns the two discovery documents, parsed once per test binary:
// androidpublisher first, then playdeveloperreporting.
func Docs() ([]*Doc, error) {
	once.Do(func() {
		for _, raw := range [][]byte{publisherJSON, reportingJSON} {
			var d Doc
			if err := json.Unmarshal(raw, &d); err != nil {
				docsErr = fmt.Errorf("wirecheck: discovery document: %w", err)
				return
			}
			var walk func(rs map[string]*resource)
			walk = func(rs map[string]*resource) {
				for _, r := range rs {
					for _, m := range r.Methods {
						tmpl := m.FlatPath
						if tmpl == "" {
							tmpl = m.Path
						}
						m.path = pathPattern(tmpl)
						if m.MediaUpload != nil {
							m.upload = pathPattern(m.MediaUpload.Protocols["simple"].Path)
						}
						d.methods = append(d.methods, m)
					}
					walk(r.Resources)
				}
			}
			walk(d.Resources)
			// Literal paths before templated ones, so that a fixed segment
			// wins over a parameter that would also match it.
			slices.SortStableFunc(d.methods, func(a, b *Method) int {
				return strings.Count(a.path.String(), "[^/:]+") - strings.Count(b.path.String(), "[^/:]+")
			})
			docs = append(docs, &d)
		}
	})
	return docs, docsErr
}

// pathPattern turns a discovery path template into an anchored regexp;
// a parameter matches one segment without ':' (the custom-verb separator).
func pathPattern(tmpl string) *regexp.Regexp {
	p := regexp.QuoteMeta("/" + strings.TrimPrefix(tmpl, "/"))
	return regexp.MustCompile("^" + paramRE.ReplaceAllString(p, `[^/:]+`) + "$")
}

// Find returns the discovery method a request is for and its document, or
// nil. Media uploads (the simple path, and resumable chunks sent to it with
// PUT or POST) map to their method.
func Find(method, path string) (*Doc, *Method) {
	ds, err := Docs()
	if err != nil {
		return nil, nil
	}
	for _, d := range ds {
		for _, m := range d.methods {
			if m.upload != nil && m.upload.MatchString(path) && (method == m.HTTPMethod || method == http.MethodPut) {
				return d, m
			}
			if method == m.HTTPMethod && m.path.MatchString(path) {
				return d, m
			}
		}
	}
	return nil, nil
}

// IsUpload reports whether path is a media upload path.
func IsUpload(path string) bool { return strings.HasPrefix(path, "/upload/") }

// CheckRequest checks one request's method, path, query and body (given
// separately, as it was read). It returns every problem found.
func CheckRequest(method string, u string, contentType string, body []byte) []string {
	path, rawQuery, _ := strings.Cut(u, "?")
	at := method + " " + path
	d, m := Find(method, path)
	if m == nil {
		return []string{at + ": no discovery method has this HTTP method and path"}
	}
	var errs []string
	errs = append(errs, checkQuery(d, m, path, rawQuery, at)...)
	upload := IsUpload(path)
	switch {
	case upload:
		// Media, or a multipart/related body whose JSON part is the
		// metadata (empty for bundles); the bytes are not JSON.
	case m.Request != nil:
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): request body is not JSON: %v", at, m.ID, err))
		} else {
			errs = append(errs, d.Check(v, m.Request, at+" ("+m.ID+") request")...)
		}
	case len(bytes.TrimSpace(body)) > 0:
		errs = append(errs, fmt.Sprintf("%s (%s): request body sent to a method that takes none", at, m.ID))
	}
	return errs
}

func checkQuery(d *Doc, m *Method, path, rawQuery, at string) []string {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return []string{fmt.Sprintf("%s (%s): query %q: %v", at, m.ID, rawQuery, err)}
	}
	var errs []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	}) {
		vals := q[name]
		p := m.Parameters[name]
		if p == nil || p.Location != "query" {
			p = d.Parameters[name]
		}
		if p == nil && name == "upload_id" && IsUpload(path) {
			// The resumable session URL Play hands out (Location) names
			// the session; it is not a declared parameter.
			continue
		}
		if p == nil || p.Location != "query" {
			errs = append(errs, fmt.Sprintf("%s (%s): query parameter %q is not declared", at, m.ID, name))
			continue
		}
		if len(vals) > 1 && !p.Repeated {
			errs = append(errs, fmt.Sprintf("%s (%s): query parameter %q given %d times", at, m.ID, name, len(vals)))
		}
		for _, v := range vals {
			if err := checkParam(p, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s (%s): query parameter %s=%q: %v", at, m.ID, name, v, err))
			}
		}
		if name == "uploadType" && IsUpload(path) {
			for _, v := range vals {
				if !slices.Contains(uploadQS, v) {
					errs = append(errs, fmt.Sprintf("%s (%s): uploadType %q is not one of %v", at, m.ID, v, uploadQS))
				}
			}
		}
	}
	return errs
}

func checkParam(p *Parameter, v string) error {
	switch p.Type {
	case "boolean":
		if v != "true" && v != "false" {
			return fmt.Errorf("not a boolean")
		}
	case "integer":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("not an integer")
		}
	case "string":
		if p.Format == "int64" || p.Format == "uint64" {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("not an int64")
			}
		}
	}
	if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
		return fmt.Errorf("not in enum %v", p.Enum)
	}
	return nil
}

// CheckResponse checks an answer to a request of method and path: an error
// status must carry Google's v1 error envelope; a success the method's
// response schema (or nothing, for a method without one).
func CheckResponse(method, path string, status int, body []byte) []string {
	at := fmt.Sprintf("%s %s → %d", method, path, status)
	d, m := Find(method, path)
	if m == nil {
		return nil // the request check reported it
	}
	switch {
	case status >= 400:
		if err := CheckErrorEnvelope(body); err != nil {
			return []string{at + ": error body: " + err.Error()}
		}
	case len(bytes.TrimSpace(body)) == 0:
		if m.Response != nil && !IsUpload(path) && status != http.StatusNoContent {
			return []string{at + ": empty answer, want " + m.Response.Ref}
		}
	case m.Response == nil:
		return []string{at + ": a body for a method that answers none"}
	default:
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return []string{at + ": answer is not JSON"}
		}
		return d.Check(v, m.Response, at+" ("+m.ID+") response")
	}
	return nil
}

// CheckErrorEnvelope pins Google's v1 error body, which discovery does not
// describe: {"error":{"code","message","errors":[{message,domain,reason}],
// "status"[,"details"]}}.
func CheckErrorEnvelope(body []byte) error {
	var env struct {
		Error *struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
			Status  *string `json:"status"`
			Errors  []struct {
				Message string `json:"message"`
				Domain  string `json:"domain"`
				Reason  string `json:"reason"`
			} `json:"errors"`
			Details []map[string]any `json:"details"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return err
	}
	if e := env.Error; e == nil || e.Code == nil || e.Message == nil || e.Status == nil || len(e.Errors) == 0 || e.Errors[0].Reason == "" {
		return fmt.Errorf("incomplete error envelope: %s", body)
	}
	return nil
}

// Check validates a decoded JSON value against a discovery schema.
func (d *Doc) Check(v any, s *Schema, at string) []string {
	if s.Ref != "" {
		ref, ok := d.Schemas[s.Ref]
		if !ok {
			return []string{at + ": unknown $ref " + s.Ref}
		}
		s = ref
	}
	bad := func(f string, args ...any) []string { return []string{at + ": " + fmt.Sprintf(f, args...)} }
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return bad("want object, got %T", v)
		}
		var errs []string
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}) {
			ps, ok := s.Properties[k]
			if !ok {
				ps = s.AdditionalProperties
			}
			if ps == nil {
				errs = append(errs, at+": unknown property "+strconv.Quote(k))
				continue
			}
			errs = append(errs, d.Check(m[k], ps, at+"."+k)...)
		}
		return errs
	case "array":
		a, ok := v.([]any)
		if !ok {
			return bad("want array, got %T", v)
		}
		var errs []string
		for i, x := range a {
			errs = append(errs, d.Check(x, s.Items, fmt.Sprintf("%s[%d]", at, i))...)
		}
		return errs
	case "string":
		str, ok := v.(string)
		if !ok {
			return bad("want string (format %q), got %T %v", s.Format, v, v)
		}
		if s.Format == "int64" || s.Format == "uint64" {
			if _, err := strconv.ParseInt(str, 10, 64); err != nil {
				return bad("int64 string %q", str)
			}
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			return bad("%q not in enum %v", str, s.Enum)
		}
	case "integer":
		n, ok := v.(float64)
		if !ok || n != math.Trunc(n) {
			return bad("want integer (format %q), got %T %v", s.Format, v, v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return bad("want number, got %T %v", v, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("want boolean, got %T", v)
		}
	case "any", "":
	default:
		return bad("schema type %q not handled", s.Type)
	}
	return nil
}

// Handler wraps next (a playstoretest fake) and reports through t every
// request and every answer that does not match the discovery documents.
// The OAuth token endpoint (/token) is not part of them and passes
// unchecked.
func Handler(t testing.TB, next http.Handler) http.Handler {
	t.Helper()
	return wrap(t, next, true)
}

// Responses is Handler for tests that send deliberately wrong requests to
// see the fake refuse them: only the fake's answers are checked.
func Responses(t testing.TB, next http.Handler) http.Handler {
	t.Helper()
	return wrap(t, next, false)
}

func wrap(t testing.TB, next http.Handler, requests bool) http.Handler {
	t.Helper()
	if _, err := Docs(); err != nil {
		t.Fatalf("%v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			next.ServeHTTP(w, r)
			return
		}
		var body []byte
		if !IsUpload(r.URL.Path) {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if requests {
			for _, e := range CheckRequest(r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), body) {
				t.Errorf("discovery: %s", e)
			}
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		resBody := rec.Body.Bytes()
		status := res.StatusCode
		if o := res.Header.Get("X-Http-Status-Code-Override"); o != "" {
			status, _ = strconv.Atoi(o) // an acknowledged resumable chunk
		}
		if status != http.StatusPermanentRedirect {
			for _, e := range CheckResponse(r.Method, r.URL.Path, status, resBody) {
				t.Errorf("discovery: %s", e)
			}
		}
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(resBody)
	})
}
