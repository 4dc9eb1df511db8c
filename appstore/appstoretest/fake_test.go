package appstoretest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/appstore/appstoretest/specvalidate"
)

type bundle struct {
	fake  *appstoretest.Fake
	srv   *httptest.Server
	token string
	appID string
	now   time.Time
}

func setup(t *testing.T, opts appstoretest.Options) *bundle {
	t.Helper()
	b := &bundle{now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	opts.Now = func() time.Time { return b.now }
	b.fake = appstoretest.New(opts)
	key, _, err := b.fake.NewKey("KID1", "issuer-1")
	require.NoError(t, err)
	b.token, err = (&appstore.TokenSource{Key: key, Now: opts.Now}).Token()
	require.NoError(t, err)
	b.appID = b.fake.AddApp(appstoretest.App{BundleID: "com.example.app"})
	b.fake.CompleteBetaAppInfo(b.appID)
	// Tests here send wrong requests on purpose; every answer is checked.
	b.srv = httptest.NewServer(specvalidate.Responses(t, b.fake))
	t.Cleanup(b.srv.Close)
	return b
}

// retoken mints a fresh token after the test moved the clock.
func (b *bundle) retoken(t *testing.T, kid string) {
	key, _, err := b.fake.NewKey(kid, "issuer-1")
	require.NoError(t, err)
	b.token, err = (&appstore.TokenSource{Key: key, Now: func() time.Time { return b.now }}).Token()
	require.NoError(t, err)
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) errorCode(t *testing.T) string {
	t.Helper()
	var doc struct {
		Errors []struct {
			Status string `json:"status"`
			Code   string `json:"code"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc), string(r.body))
	require.Len(t, doc.Errors, 1)
	return doc.Errors[0].Status + " " + doc.Errors[0].Code
}

// do sends a request and, when the operation exists in the spec, checks the
// fake's answer against it, errors included.
func (b *bundle) do(t *testing.T, method, path, contentType, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	vreq := httptest.NewRequest(method, path, strings.NewReader(body))
	vreq.Header = req.Header.Clone()
	in, _ := specvalidate.Request(vreq)
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Regexp(t, `^user-hour-lim:\d+;user-hour-rem:\d+;$`, resp.Header.Get("X-Rate-Limit"), "X-Rate-Limit on every response")
	// Apple's status table documents 415, but no operation in the spec
	// declares it, so that one answer cannot be checked against the spec.
	if in != nil && resp.Header.Get(appstoretest.FaultHeader) == "" && resp.StatusCode != http.StatusUnsupportedMediaType {
		require.NoError(t, specvalidate.Response(in, resp.StatusCode, resp.Header, data))
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

func TestWireErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.0", BuildNumber: "1"})
	cases := []struct {
		name, method, path, ctype, body string
		want                            string
	}{
		{"unknown path", "GET", "/v1/bananas", "", "", "404 PATH_ERROR"},
		{"unknown id", "GET", "/v1/builds/nope", "", "", "404 NOT_FOUND"},
		{"wrong method", "DELETE", "/v1/builds/" + buildID, "", "", "405 METHOD_NOT_ALLOWED"},
		{"unknown parameter", "GET", "/v1/apps?foo=1", "", "", "400 PARAMETER_ERROR.ILLEGAL"},
		{"unknown filter", "GET", "/v1/builds?filter[emaill]=a", "", "", "400 PARAMETER_ERROR.INVALID"},
		{"bad enum", "GET", "/v1/builds?filter[processingState]=DONE", "", "", "400 PARAMETER_ERROR.INVALID"},
		{"limit too big", "GET", "/v1/builds?limit=201", "", "", "400 PARAMETER_ERROR.INVALID"},
		{"required filter", "GET", "/v1/betaAppReviewSubmissions", "", "", "400 PARAMETER_ERROR.REQUIRED"},
		{"required filter app", "GET", "/v1/reviewSubmissions", "", "", "400 PARAMETER_ERROR.REQUIRED"},
		{"not json", "PATCH", "/v1/builds/" + buildID, "application/json", `{"data":`, "400 ENTITY_INVALID"},
		{"wrong shape", "PATCH", "/v1/builds/" + buildID, "application/json", `{"data":{"type":"builds","id":"` + buildID + `","attributes":{"usesNonExemptEncryptoin":false}}}`, "422 ENTITY_UNPROCESSABLE"},
		{"wrong type", "PATCH", "/v1/builds/" + buildID, "application/json", `{"data":{"type":"apps","id":"` + buildID + `","attributes":{}}}`, "422 ENTITY_UNPROCESSABLE"},
		{"content type", "PATCH", "/v1/builds/" + buildID, "text/plain", `{}`, "415 ENTITY_INVALID"},
		{"missing relationship", "POST", "/v1/betaAppReviewSubmissions", "application/json", `{"data":{"type":"betaAppReviewSubmissions","relationships":{}}}`, "409 ENTITY_ERROR.RELATIONSHIP.REQUIRED"},
		{"unknown app", "POST", "/v1/reviewSubmissions", "application/json", `{"data":{"type":"reviewSubmissions","relationships":{"app":{"data":{"type":"apps","id":"999"}}}}}`, "409 ENTITY_ERROR.RELATIONSHIP.INVALID"},
		{"encryption while processing", "PATCH", "/v1/builds/" + buildID, "application/json", `{"data":{"type":"builds","id":"` + buildID + `","attributes":{"usesNonExemptEncryption":false}}}`, "409 ENTITY_ERROR.ATTRIBUTE.INVALID"},
		{"groups while processing", "POST", "/v1/builds/" + buildID + "/relationships/betaGroups", "application/json", `{"data":[{"type":"betaGroups","id":"` + b.fake.AddBetaGroup(b.appID, "T", true) + `"}]}`, "422 ENTITY_UNPROCESSABLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(t, tc.method, tc.path, tc.ctype, tc.body)
			require.Equal(t, tc.want, r.errorCode(t), string(r.body))
			require.Equal(t, tc.want[:3], fmt.Sprint(r.status))
		})
	}
	require.Empty(t, b.fake.MutationCounts(), "no failed request counts as a mutation")
}

func TestCreatedHasLocationAndLinks(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.0", BuildNumber: "1", State: appstore.ProcessingStateValid})
	r := b.do(t, "POST", "/v1/betaBuildLocalizations", "application/json",
		`{"data":{"type":"betaBuildLocalizations","attributes":{"locale":"en-US","whatsNew":"hi"},"relationships":{"build":{"data":{"type":"builds","id":"`+buildID+`"}}}}}`)
	require.Equal(t, 201, r.status, string(r.body))
	var doc struct {
		Data struct {
			ID    string            `json:"id"`
			Links map[string]string `json:"links"`
		} `json:"data"`
		Links map[string]string `json:"links"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc))
	require.Equal(t, b.srv.URL+"/v1/betaBuildLocalizations/"+doc.Data.ID, r.header.Get("Location"))
	require.Equal(t, r.header.Get("Location"), doc.Data.Links["self"])
	require.NotEmpty(t, doc.Links["self"])
	require.Equal(t, 1, b.fake.Mutations("POST /v1/betaBuildLocalizations"))

	dup := b.do(t, "POST", "/v1/betaBuildLocalizations", "application/json",
		`{"data":{"type":"betaBuildLocalizations","attributes":{"locale":"en-US"},"relationships":{"build":{"data":{"type":"builds","id":"`+buildID+`"}}}}}`)
	require.Equal(t, "409 ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE", dup.errorCode(t))
}

func TestRateLimitAndFaultInjection(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{HourlyLimit: 2})
	require.Equal(t, 200, b.do(t, "GET", "/v1/apps", "", "").status)
	r := b.do(t, "GET", "/v1/apps", "", "")
	require.Equal(t, "user-hour-lim:2;user-hour-rem:0;", r.header.Get("X-Rate-Limit"))
	r = b.do(t, "GET", "/v1/apps", "", "")
	require.Equal(t, "429 RATE_LIMIT_EXCEEDED", r.errorCode(t))
	b.now = b.now.Add(time.Hour)
	b.retoken(t, "KID2")

	b.fake.Inject(appstoretest.Fault{Status: 502, PathPrefix: "/v1/builds", Times: 1})
	require.Equal(t, 200, b.do(t, "GET", "/v1/apps", "", "").status, "faults are per path")
	require.Equal(t, 502, b.do(t, "GET", "/v1/builds", "", "").status)
	require.Equal(t, 1, b.fake.FaultsHit())
	b.retoken(t, "KID3") // a fresh key, a fresh hourly budget
	b.fake.Inject(appstoretest.Fault{Kind: appstoretest.FaultMalformed})
	r = b.do(t, "GET", "/v1/apps", "", "")
	require.False(t, json.Valid(r.body))
}

func TestUploadPartsAreChecked(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{UploadPartSize: 4})
	r := b.do(t, "POST", "/v1/buildUploads", "application/json",
		`{"data":{"type":"buildUploads","attributes":{"cfBundleShortVersionString":"1.0","cfBundleVersion":"9","platform":"IOS"},"relationships":{"app":{"data":{"type":"apps","id":"`+b.appID+`"}}}}}`)
	require.Equal(t, 201, r.status, string(r.body))
	var up struct{ Data struct{ ID string } }
	require.NoError(t, json.Unmarshal(r.body, &up))
	r = b.do(t, "POST", "/v1/buildUploadFiles", "application/json",
		`{"data":{"type":"buildUploadFiles","attributes":{"fileName":"a.ipa","fileSize":6,"uti":"com.apple.ipa","assetType":"ASSET"},"relationships":{"buildUpload":{"data":{"type":"buildUploads","id":"`+up.Data.ID+`"}}}}}`)
	require.Equal(t, 201, r.status, string(r.body))
	var file struct {
		Data struct {
			ID         string
			Attributes struct {
				UploadOperations []appstore.UploadOperation
			}
		}
	}
	require.NoError(t, json.Unmarshal(r.body, &file))
	ops := file.Data.Attributes.UploadOperations
	require.Len(t, ops, 2)
	require.Equal(t, []int64{0, 4}, []int64{ops[0].Offset, ops[1].Offset})
	require.Equal(t, []int64{4, 2}, []int64{ops[0].Length, ops[1].Length})

	put := func(op appstore.UploadOperation, body string, ctype string) int {
		req, err := http.NewRequest(op.Method, op.URL, bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ctype)
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 400, put(ops[0], "abc", "application/octet-stream"), "short part")
	require.Equal(t, 400, put(ops[0], "abcd", "text/plain"), "requestHeaders must be honoured")
	require.Equal(t, 200, put(ops[0], "abcd", "application/octet-stream"))
	commit := `{"data":{"type":"buildUploadFiles","id":"` + file.Data.ID + `","attributes":{"uploaded":true}}}`
	r = b.do(t, "PATCH", "/v1/buildUploadFiles/"+file.Data.ID, "application/json", commit)
	require.Equal(t, "409 STATE_ERROR", r.errorCode(t), "part 2 missing")
	require.Equal(t, 200, put(ops[1], "ef", "application/octet-stream"))
	r = b.do(t, "PATCH", "/v1/buildUploadFiles/"+file.Data.ID, "application/json", commit)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, "abcdef", string(b.fake.UploadedBytes(file.Data.ID)))
}

func TestNotAcceptableIsPlainText(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	req, err := http.NewRequest("GET", b.srv.URL+"/v1/apps", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Accept", "application/xml")
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotAcceptable, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"))
}

func TestMountedUnderPrefix(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	fake := appstoretest.New(appstoretest.Options{PublicURL: srv.URL + "/sandbox/asc/", UploadPartSize: 4})
	mux.Handle("/sandbox/asc/", http.StripPrefix("/sandbox/asc", specvalidate.Handler(t, fake)))
	key, _, err := fake.NewKey("K", "iss")
	require.NoError(t, err)
	appID := fake.AddApp(appstoretest.App{BundleID: "com.example"})
	client := &appstore.Client{BaseURL: srv.URL + "/sandbox/asc", Tokens: appstore.NewTokenSource(key)}
	data := []byte("0123456789")
	up, err := client.UploadBuild(t.Context(), appstore.UploadRequest{AppID: appID, Version: "1.0", BuildNumber: "1", FileName: "a.ipa", File: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err, "upload URLs carry the prefix")
	require.NotEmpty(t, up.ID)
	require.EqualValues(t, 3, client.UploadParts())
}

// TestUploadURLsExpire: a reservation's presigned URLs carry the expiration
// set when the file was reserved (reading the file again does not renew
// it), and a part sent after it is refused (ref §3.3: the URLs expire).
func TestUploadURLsExpire(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{UploadPartSize: 4})
	r := b.do(t, "POST", "/v1/buildUploads", "application/json",
		`{"data":{"type":"buildUploads","attributes":{"cfBundleShortVersionString":"1.0","cfBundleVersion":"9","platform":"IOS"},"relationships":{"app":{"data":{"type":"apps","id":"`+b.appID+`"}}}}}`)
	require.Equal(t, 201, r.status, string(r.body))
	var up struct{ Data struct{ ID string } }
	require.NoError(t, json.Unmarshal(r.body, &up))
	r = b.do(t, "POST", "/v1/buildUploadFiles", "application/json",
		`{"data":{"type":"buildUploadFiles","attributes":{"fileName":"a.ipa","fileSize":6,"uti":"com.apple.ipa","assetType":"ASSET"},"relationships":{"buildUpload":{"data":{"type":"buildUploads","id":"`+up.Data.ID+`"}}}}}`)
	require.Equal(t, 201, r.status, string(r.body))
	type fileDoc struct {
		Data struct {
			ID         string
			Attributes struct {
				UploadOperations []struct {
					appstore.UploadOperation
					Expiration time.Time `json:"expiration"`
				}
			}
		}
	}
	var file fileDoc
	require.NoError(t, json.Unmarshal(r.body, &file))
	ops := file.Data.Attributes.UploadOperations
	require.Len(t, ops, 2)
	reserved := b.now
	for _, op := range ops {
		require.Equal(t, reserved.Add(appstoretest.UploadURLLifetime), op.Expiration)
	}
	put := func(op appstore.UploadOperation, body string) int {
		req, err := http.NewRequest(op.Method, op.URL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	b.now = reserved.Add(appstoretest.UploadURLLifetime - time.Second)
	require.Equal(t, 200, put(ops[0].UploadOperation, "abcd"), "still valid just before the expiration")

	b.now = reserved.Add(appstoretest.UploadURLLifetime)
	b.retoken(t, "KID2")
	r = b.do(t, "GET", "/v1/buildUploadFiles/"+file.Data.ID, "", "")
	require.Equal(t, 200, r.status, string(r.body))
	var again fileDoc
	require.NoError(t, json.Unmarshal(r.body, &again))
	require.Len(t, again.Data.Attributes.UploadOperations, 2)
	require.Equal(t, reserved.Add(appstoretest.UploadURLLifetime), again.Data.Attributes.UploadOperations[1].Expiration, "a read does not renew the URLs")
	require.Equal(t, http.StatusForbidden, put(ops[1].UploadOperation, "ef"), "expired")
	require.Equal(t, "abcd", string(b.fake.UploadedBytes(file.Data.ID)), "the refused part was not stored")
}

// TestUnknownFilterIsInvalid: Apple's documented answer to an unknown
// filter (ref §2.1, "Pinpointing the Location of Errors"), field by field.
func TestUnknownFilterIsInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	r := b.do(t, "GET", "/v1/apps?filter[emaill]=a@example.com", "", "")
	require.Equal(t, http.StatusBadRequest, r.status)
	var doc struct {
		Errors []map[string]any `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc), string(r.body))
	require.Len(t, doc.Errors, 1)
	e := doc.Errors[0]
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, e["id"])
	delete(e, "id")
	require.Equal(t, map[string]any{
		"status": "400", "code": "PARAMETER_ERROR.INVALID",
		"title": "A parameter has an invalid value", "detail": "'emaill' is not a valid filter type",
		"source": map[string]any{"parameter": "filter[emaill]"},
	}, e)

	r = b.do(t, "GET", "/v1/apps?emaill=a@example.com", "", "")
	require.Equal(t, "400 PARAMETER_ERROR.ILLEGAL", r.errorCode(t), "a parameter outside the filter family stays ILLEGAL")
}
