// Package specvalidate checks App Store Connect traffic against Apple's
// OpenAPI description (testdata/asc-openapi.json, App Store Connect API
// 4.4.1, embedded). Only tests import it, so kin-openapi and the 3.4 MB
// spec never reach a production binary.
package specvalidate

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	if _, err := Router(); err != nil {
		t.Fatalf("OpenAPI spec unavailable: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		in, err := Request(r)
		if err != nil {
			t.Errorf("spec: %v", err)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		resBody := rec.Body.Bytes()
		if in != nil && res.Header.Get(SkipHeader) == "" {
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
