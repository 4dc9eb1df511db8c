// Package specvalidate checks App Store Connect traffic against Apple's
// OpenAPI description (testdata/asc-openapi.json, App Store Connect API
// 4.4.1, embedded). Only tests import it, so kin-openapi and the 3.4 MB
// spec never reach a production binary.
//
// The check is strict: Apple's schemas leave additionalProperties open, so
// a misspelled attribute or relationship would pass a plain validator.
// Here every schema that declares properties is closed at load time, and a
// query parameter the operation does not declare is an error, so a typo in
// a client or in the fake fails the test that sends it.
package specvalidate

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// spec is Apple's OpenAPI description, copied into the module so that the
// tests stand alone (source and version: testdata/README.md at the root).
//
//go:embed testdata/asc-openapi.json
var spec []byte

var (
	once    sync.Once
	router  routers.Router
	loadErr error
)

// Router loads the spec once per test binary (it is 3.4 MB) and returns a
// router over it that matches any host.
func Router() (routers.Router, error) {
	once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(spec)
		if err != nil {
			loadErr = fmt.Errorf("specvalidate: loading asc-openapi.json: %w", err)
			return
		}
		doc.Servers = nil // match requests to any host (httptest servers)
		closeSchemas(doc)
		router, loadErr = gorillamux.NewRouter(doc)
	})
	return router, loadErr
}

// SkipHeader on a response means "deliberately malformed, do not check"
// (appstoretest sets it on injected faults).
const SkipHeader = "X-Appstoretest-Fault"

// Request checks one request (its body must be re-readable; it is restored).
// The returned input is needed to check the response.
func Request(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	rt, err := Router()
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := rt.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: no such operation: %w", r.Method, r.URL.Path, err)
	}
	if err := checkQueryNames(r, route); err != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		return nil, fmt.Errorf("request %s %s (%s): %w", r.Method, r.URL.RequestURI(), route.Operation.OperationID, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	err = openapi3filter.ValidateRequest(context.Background(), in)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return in, fmt.Errorf("request %s %s does not match %s: %w\nbody: %s", r.Method, r.URL.RequestURI(), route.Operation.OperationID, err, body)
	}
	return in, nil
}

// Response checks a response to a request that Request accepted or
// rejected (in must be non-nil).
func Response(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("response %d to %s %s does not match %s: %w\nbody: %s", status, in.Request.Method, in.Request.URL.RequestURI(), in.Route.Operation.OperationID, err, body)
	}
	return nil
}

// Handler wraps next (an App Store Connect fake) and reports through t every
// request whose path, method, query or body is not allowed by the spec, and
// every response whose status or body the operation does not declare.
// Paths outside /v1/ (presigned upload URLs) pass unchecked.
func Handler(t testing.TB, next http.Handler) http.Handler {
	t.Helper()
	return wrap(t, next, true)
}

// Responses is Handler for tests that send deliberately wrong requests to
// see the fake refuse them: only the fake's answers are checked (for a
// request to an operation the spec has).
func Responses(t testing.TB, next http.Handler) http.Handler {
	t.Helper()
	return wrap(t, next, false)
}

func wrap(t testing.TB, next http.Handler, requests bool) http.Handler {
	t.Helper()
	if _, err := Router(); err != nil {
		t.Fatalf("OpenAPI spec unavailable: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		in, err := Request(r)
		if err != nil && requests {
			t.Errorf("spec: %v", err)
		}
		if in == nil && !requests {
			// Unknown operation or query parameter: the route is enough
			// to check the answer against.
			in = routeOnly(r)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		resBody := rec.Body.Bytes()
		// 406 (plain text) and 415 are in Apple's status-code table for
		// every operation, but no operation of the spec declares them.
		generic := res.StatusCode == http.StatusNotAcceptable || res.StatusCode == http.StatusUnsupportedMediaType
		if in != nil && res.Header.Get(SkipHeader) == "" && !generic {
			if err := Response(in, res.StatusCode, res.Header, resBody); err != nil {
				t.Errorf("spec: %v", err)
			}
		}
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		w.Write(resBody)
	})
}

// routeOnly is the validation input of a request the spec has an
// operation for, without checking the request itself (nil if none).
func routeOnly(r *http.Request) *openapi3filter.RequestValidationInput {
	rt, err := Router()
	if err != nil {
		return nil
	}
	route, params, err := rt.FindRoute(r)
	if err != nil {
		return nil
	}
	return &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
}

// closeSchemas forbids, in every schema that declares properties and says
// nothing about others, any property it does not declare. Apple's spec
// leaves them open; Apple's servers refuse unknown attributes (422
// ENTITY_UNPROCESSABLE) and never send undeclared ones in the documented
// shapes, so both directions are checked closed.
func closeSchemas(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(sr *openapi3.SchemaRef)
	walk = func(sr *openapi3.SchemaRef) {
		if sr == nil || sr.Value == nil || seen[sr.Value] {
			return
		}
		s := sr.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			s.AdditionalProperties = openapi3.AdditionalProperties{Has: openapi3.Ptr(false)}
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		walk(s.Not)
		for _, l := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
			for _, x := range l {
				walk(x)
			}
		}
	}
	for _, sr := range doc.Components.Schemas {
		walk(sr)
	}
	content := func(c openapi3.Content) {
		for _, mt := range c {
			walk(mt.Schema)
		}
	}
	for _, pi := range doc.Paths.Map() {
		for _, op := range pi.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil {
					walk(p.Value.Schema)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				content(op.RequestBody.Value.Content)
			}
			for _, rr := range op.Responses.Map() {
				if rr.Value != nil {
					content(rr.Value.Content)
				}
			}
		}
	}
}

// checkQueryNames refuses a query parameter the operation does not
// declare, as Apple does (400 PARAMETER_ERROR.ILLEGAL). cursor is allowed
// on GETs: the spec omits it, but it is how Apple's links.next pages.
func checkQueryNames(r *http.Request, route *routers.Route) error {
	declared := map[string]bool{}
	for _, ps := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				declared[p.Value.Name] = true
			}
		}
	}
	var unknown []string
	for name := range r.URL.Query() {
		if declared[name] || (name == "cursor" && r.Method == http.MethodGet) {
			continue
		}
		unknown = append(unknown, strconv.Quote(name))
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("query parameters not declared by the operation: %s", strings.Join(unknown, ", "))
	}
	return nil
}
