package wirecheck

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The checker must catch what it is there to catch, or every "matches the
// discovery document" claim is empty.
func TestCheckerCatchesMistakes(t *testing.T) {
	t.Parallel()
	ds, err := Docs()
	require.NoError(t, err)
	pub := ds[0]
	track := &Schema{Ref: "Track"}
	for body, want := range map[string]string{
		`{"track":"production","releases":[{"status":"inProgress","userFraction":0.1,"versionCodes":["42"]}]}`: "",
		`{"track":"production","releases":[{"status":"inProgress","userFraction":0.1,"versionCodes":[42]}]}`:   "want string",
		`{"track":"production","releases":[{"status":"Completed","versionCodes":["42"]}]}`:                     "not in enum",
		`{"track":"production","releases":[{"status":"inProgress","userFraction":"0.1"}]}`:                     "want number",
		`{"track":"production","extra":1}`: `unknown property "extra"`,
	} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(body), &v))
		errs := pub.Check(v, track, "track")
		if want == "" {
			require.Empty(t, errs, body)
			continue
		}
		require.NotEmpty(t, errs, body)
		require.Contains(t, strings.Join(errs, "\n"), want)
	}
	var v any
	require.NoError(t, json.Unmarshal([]byte(`{"versionCode":"42","sha1":"a"}`), &v))
	require.NotEmpty(t, pub.Check(v, &Schema{Ref: "Bundle"}, "bundle"), "Bundle.versionCode is an int32 number")

	const edit = "/androidpublisher/v3/applications/com.a.b/edits/123"
	for _, c := range []struct {
		method, url, body, want string
	}{
		{"POST", edit + ":commit?alt=json&prettyPrint=false&changesInReviewBehavior=ERROR_IF_IN_REVIEW", "", ""},
		{"POST", edit + ":commit?alt=json&changesInReviewBehavior=ERROR_IF_REVIEW", "", "not in enum"},
		{"POST", edit + ":commit?alt=json&changesNotSentForReview=yes", "", "not a boolean"},
		{"POST", edit + ":commit?alt=json&changesInReviewBehaviour=ERROR_IF_IN_REVIEW", "", `"changesInReviewBehaviour" is not declared`},
		{"POST", edit + ":commit?alt=json", `{"x":1}`, "takes none"},
		{"GET", edit + "?alt=xml", "", "not in enum"},
		{"GET", edit + "/tracks/production?alt=json", "", ""},
		{"PUT", edit + "/tracks/production?alt=json", `{"track":"production","releases":[]}`, ""},
		{"PUT", edit + "/tracks/production?alt=json", `{"track":"production","relases":[]}`, `unknown property "relases"`},
		{"PATCH", "/androidpublisher/v3/applications/com.a.b/nope", "", "no discovery method"},
		{"POST", "/upload/androidpublisher/v3/applications/com.a.b/edits/123/bundles?alt=json&uploadType=multipart", "", ""},
		{"PUT", "/upload/androidpublisher/v3/applications/com.a.b/edits/123/bundles?uploadType=resumable&upload_id=9", "", ""},
		{"POST", "/upload/androidpublisher/v3/applications/com.a.b/edits/123/bundles?uploadType=chunked", "", "uploadType"},
		{"POST", "/v1beta1/apps/com.a.b/crashRateMetricSet:query?alt=json", `{"metrics":["userPerceivedCrashRate"],"timelineSpec":{"aggregationPeriod":"DAILY"}}`, ""},
		{"POST", "/v1beta1/apps/com.a.b/crashRateMetricSet:query?alt=json", `{"timelineSpec":{"aggregationPeriod":"WEEKLY"}}`, "not in enum"},
		{"GET", "/v1beta1/apps/com.a.b/crashRateMetricSet?alt=json", "", ""},
		{"GET", "/androidpublisher/v3/applications/com.a.b/tracks/production/releases?alt=json", "", ""},
	} {
		errs := CheckRequest(c.method, c.url, "application/json", []byte(c.body))
		if c.want == "" {
			require.Empty(t, errs, c.url)
			continue
		}
		require.Contains(t, strings.Join(errs, "\n"), c.want, c.url)
	}

	require.NoError(t, CheckErrorEnvelope([]byte(`{"error":{"code":404,"message":"m","errors":[{"message":"m","domain":"androidpublisher","reason":"trackEmpty"}],"status":"NOT_FOUND"}}`)))
	require.Error(t, CheckErrorEnvelope([]byte(`{"error":{"code":404,"message":"m","status":"NOT_FOUND"}}`)))
	require.NotEmpty(t, CheckResponse("GET", edit+"/tracks/production", 200, []byte(`{"track":"production","kind":"x"}`)))
	require.Empty(t, CheckResponse("GET", edit+"/tracks/production", 200, []byte(`{"track":"production"}`)))
	require.NotEmpty(t, CheckResponse("GET", edit, 200, []byte(``)), "edits.get answers an AppEdit")
}
