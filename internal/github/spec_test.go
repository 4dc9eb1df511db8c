package github_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"
)

// The operations of GitHub's REST API description that the fake serves for
// deployments, installation tokens and release lookups (a subset of
// github/rest-api-description; source in testdata/README.md at the root).
const specFile = "githubtest/testdata/rest-api-subset.json"

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func specRoutes() (routers.Router, error) {
	specOnce.Do(func() {
		b, err := os.ReadFile(specFile)
		if err != nil {
			specErr = err
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(b)
		if err != nil {
			specErr = err
			return
		}
		doc.Servers = nil
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	return specRouter, specErr
}

// specChecked checks every request the client sends and every answer the
// fake gives for the operations in the description: required fields,
// types, enums, response shapes. An operation outside the subset passes
// through unchecked.
func specChecked(t *testing.T, h http.Handler, prefix string) http.Handler {
	t.Helper()
	rt, err := specRoutes()
	require.NoError(t, err)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		check := r.Clone(r.Context())
		check.URL.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(prefix, "/")), "/")
		check.Body = io.NopCloser(bytes.NewReader(body))
		route, params, ferr := rt.FindRoute(check)
		if ferr != nil {
			h.ServeHTTP(w, r)
			return
		}
		in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && !strings.Contains(r.Header.Get("X-Spec-Skip"), "request") {
			t.Errorf("request %s %s does not match %s: %v\nbody: %s", r.Method, r.URL.Path, route.Operation.OperationID, err, body)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		resBody := rec.Body.Bytes()
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
			Body: io.NopCloser(bytes.NewReader(resBody)), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
		if documented(route, res.StatusCode) {
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("answer %d to %s %s does not match %s: %v\nbody: %s", res.StatusCode, r.Method, r.URL.Path, route.Operation.OperationID, err, resBody)
			}
		}
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(resBody)
	})
}

// documented reports whether the description lists status for the route;
// 401s and rate-limit 403s apply to every operation and are not listed.
func documented(route *routers.Route, status int) bool {
	return route.Operation.Responses.Status(status) != nil
}
