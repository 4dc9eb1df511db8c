package playstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// discoveryDoc is the part of a Google discovery document the checker reads.
type discoveryDoc struct {
	Schemas   map[string]*jsonSchema `json:"schemas"`
	Resources map[string]*resource   `json:"resources"`
	methods   map[string]*discMethod
}

type jsonSchema struct {
	Ref                  string                 `json:"$ref"`
	Type                 string                 `json:"type"`
	Format               string                 `json:"format"`
	Enum                 []string               `json:"enum"`
	Properties           map[string]*jsonSchema `json:"properties"`
	Items                *jsonSchema            `json:"items"`
	AdditionalProperties *jsonSchema            `json:"additionalProperties"`
}

type resource struct {
	Methods   map[string]*discMethod `json:"methods"`
	Resources map[string]*resource   `json:"resources"`
}

type discMethod struct {
	ID          string      `json:"id"`
	FlatPath    string      `json:"flatPath"`
	Path        string      `json:"path"`
	HTTPMethod  string      `json:"httpMethod"`
	Request     *jsonSchema `json:"request"`
	Response    *jsonSchema `json:"response"`
	MediaUpload *struct {
		Protocols map[string]struct {
			Path string `json:"path"`
		} `json:"protocols"`
	} `json:"mediaUpload"`
}

func loadDiscovery(t *testing.T, name string) *discoveryDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var d discoveryDoc
	require.NoError(t, json.Unmarshal(b, &d))
	d.methods = map[string]*discMethod{}
	var walk func(r map[string]*resource)
	walk = func(rs map[string]*resource) {
		for _, r := range rs {
			for _, m := range r.Methods {
				d.methods[m.ID] = m
			}
			walk(r.Resources)
		}
	}
	walk(d.Resources)
	require.NotEmpty(t, d.methods)
	return &d
}

// check validates a decoded JSON value against a discovery schema. Unknown
// properties, wrong JSON types, int64 not sent as a string, int32 not sent as
// an integer and values outside an enum are errors.
func (d *discoveryDoc) check(v any, s *jsonSchema, at string) []string {
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
			errs = append(errs, d.check(m[k], ps, at+"."+k)...)
		}
		return errs
	case "array":
		a, ok := v.([]any)
		if !ok {
			return bad("want array, got %T", v)
		}
		var errs []string
		for i, x := range a {
			errs = append(errs, d.check(x, s.Items, fmt.Sprintf("%s[%d]", at, i))...)
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

// pathPattern turns a discovery path template into a regexp.
func pathPattern(tmpl string) *regexp.Regexp {
	p := regexp.QuoteMeta("/" + strings.TrimPrefix(tmpl, "/"))
	p = regexp.MustCompile(`\\\{\\\+?[A-Za-z]+\\\}`).ReplaceAllString(p, `[^/]+`)
	p = regexp.MustCompile(`\\\{[A-Za-z]+\\\}`).ReplaceAllString(p, `[^/]+`)
	return regexp.MustCompile("^" + p + "$")
}

// checkErrorEnvelope pins Google's v1 error body, which is not in discovery.
func checkErrorEnvelope(body []byte) error {
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

// TestWireConformsToDiscovery runs a rollout, uploads both ways, vitals and
// failures through the real Go client, then checks every request the client
// sent and every answer the fake gave against the discovery documents.
func TestWireConformsToDiscovery(t *testing.T) {
	t.Parallel()
	pub := loadDiscovery(t, "androidpublisher-v3-discovery.json")
	rep := loadDiscovery(t, "playdeveloperreporting-v1beta1-discovery.json")

	tb := setup(t)
	ctx := context.Background()
	upload(t, tb, 42, 600<<10) // resumable
	upload(t, tb, 43, 1000)    // multipart
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodTracksGet, Kind: playstoretest.FaultQuota})
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsCommit, Kind: playstoretest.FaultAfterApply})
	_, err := tb.client.PutRelease(ctx, pkg, "production", playstore.Release{Name: "1.4.2", VersionCodes: []int64{42}, Status: "inProgress", UserFraction: 0.1,
		ReleaseNotes: []playstore.ReleaseNote{{Language: "en-US", Text: "x"}}, InAppUpdatePriority: 2})
	require.NoError(t, err)
	for _, step := range []func() error{
		func() error { _, err := tb.client.SetFraction(ctx, pkg, "production", 42, 0.25); return err },
		func() error { _, err := tb.client.Halt(ctx, pkg, "production", 42); return err },
		func() error { _, err := tb.client.Resume(ctx, pkg, "production", 42, 0.5); return err },
		func() error { _, err := tb.client.Complete(ctx, pkg, "production", 42); return err },
		func() error {
			_, err := tb.client.Promote(ctx, pkg, "production", "beta", 42, playstore.StatusCompleted, 0)
			return err
		},
	} {
		require.NoError(t, step())
	}
	tb.fake.SetReviewMode(pkg, playstoretest.ReviewNotSentRequired)
	_, err = tb.client.PutRelease(ctx, pkg, "internal", playstore.Release{VersionCodes: []int64{43}, Status: "draft"})
	require.NoError(t, err)
	_, err = tb.client.ReleaseSummaries(ctx, pkg, "production")
	require.NoError(t, err)
	scriptVitals(tb.fake)
	_, err = tb.client.Vitals(ctx, pkg, 42, time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)

	seen := map[string]bool{}
	var errs []string
	for i, x := range tb.fake.Exchanges() {
		at := fmt.Sprintf("#%d %s %s", i, x.HTTPMethod, x.Path)
		doc, id := pub, "androidpublisher."+x.Method
		if strings.HasPrefix(x.Method, "vitals.") {
			doc, id = rep, "playdeveloperreporting."+x.Method
		}
		m, ok := doc.methods[id]
		if !ok {
			errs = append(errs, at+": no discovery method "+id)
			continue
		}
		seen[x.Method] = true
		if x.HTTPMethod != m.HTTPMethod && !(x.Method == playstoretest.MethodBundlesUpload && x.HTTPMethod == "PUT") {
			errs = append(errs, fmt.Sprintf("%s: HTTP method, discovery says %s", at, m.HTTPMethod))
		}
		tmpl := m.FlatPath
		if tmpl == "" {
			tmpl = m.Path
		}
		if x.Method == playstoretest.MethodBundlesUpload {
			tmpl = m.MediaUpload.Protocols["simple"].Path
		}
		if !pathPattern(tmpl).MatchString(x.Path) {
			errs = append(errs, fmt.Sprintf("%s: path does not match %s", at, tmpl))
		}
		q := x.Query
		if !strings.Contains(q, "upload_id=") && !strings.Contains(q, "alt=json") {
			errs = append(errs, at+": no alt=json: "+q)
		}
		// Request bodies: JSON methods against their request schema.
		switch {
		case x.Method == playstoretest.MethodBundlesUpload:
		case m.Request != nil:
			var v any
			if err := json.Unmarshal(x.RequestBody, &v); err != nil {
				errs = append(errs, at+": request is not JSON")
			} else {
				errs = append(errs, doc.check(v, m.Request, at+" request")...)
			}
		case len(x.RequestBody) > 0:
			errs = append(errs, at+": body sent to a method that takes none")
		}
		// Responses.
		switch {
		case x.Status >= 400:
			if err := checkErrorEnvelope(x.ResponseBody); err != nil {
				errs = append(errs, at+": error body: "+err.Error())
			}
		case len(x.ResponseBody) == 0:
			if m.Response != nil && !(x.Method == playstoretest.MethodBundlesUpload) {
				errs = append(errs, at+": empty response, want "+m.Response.Ref)
			}
		case m.Response == nil:
			errs = append(errs, at+": response body for a method with none")
		default:
			var v any
			if err := json.Unmarshal(x.ResponseBody, &v); err != nil {
				errs = append(errs, at+": response is not JSON")
			} else {
				errs = append(errs, doc.check(v, m.Response, at+" response")...)
			}
		}
	}
	require.Empty(t, errs)
	for _, m := range []string{playstoretest.MethodEditsInsert, playstoretest.MethodEditsDelete, playstoretest.MethodEditsCommit,
		playstoretest.MethodTracksGet, playstoretest.MethodTracksUpdate, playstoretest.MethodBundlesList, playstoretest.MethodBundlesUpload, playstoretest.MethodReleasesList,
		playstoretest.MethodCrashRateGet, playstoretest.MethodCrashRateQuery, playstoretest.MethodAnrRateGet, playstoretest.MethodAnrRateQuery} {
		require.True(t, seen[m], "scenario never exercised %s", m)
	}
}

// TestSchemaCheckerCatchesMistakes keeps the checker honest.
func TestSchemaCheckerCatchesMistakes(t *testing.T) {
	t.Parallel()
	pub := loadDiscovery(t, "androidpublisher-v3-discovery.json")
	track := &jsonSchema{Ref: "Track"}
	for body, want := range map[string]string{
		`{"track":"production","releases":[{"status":"inProgress","userFraction":0.1,"versionCodes":["42"]}]}`: "",
		`{"track":"production","releases":[{"status":"inProgress","userFraction":0.1,"versionCodes":[42]}]}`:   "want string",
		`{"track":"production","releases":[{"status":"Completed","versionCodes":["42"]}]}`:                     "not in enum",
		`{"track":"production","releases":[{"status":"inProgress","userFraction":"0.1"}]}`:                     "want number",
		`{"track":"production","extra":1}`: `unknown property "extra"`,
	} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(body), &v))
		errs := pub.check(v, track, "track")
		if want == "" {
			require.Empty(t, errs, body)
			continue
		}
		require.NotEmpty(t, errs, body)
		require.Contains(t, strings.Join(errs, "\n"), want)
	}
	var v any
	require.NoError(t, json.Unmarshal([]byte(`{"versionCode":"42","sha1":"a"}`), &v))
	require.NotEmpty(t, pub.check(v, &jsonSchema{Ref: "Bundle"}, "bundle"), "Bundle.versionCode is an int32 number")
	require.True(t, pathPattern("androidpublisher/v3/applications/{packageName}/edits/{editId}:commit").MatchString("/androidpublisher/v3/applications/a.b/edits/1:commit"))
}
