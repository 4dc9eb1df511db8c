package playstoretest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/androidpublisher/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/swapjoy/releasepilot/playstore/playstoretest"
	"github.com/swapjoy/releasepilot/playstore/playstoretest/wirecheck"
)

const pkg = "com.example.app"

type testBundle struct {
	fake  *playstoretest.Server
	url   string
	token string
	svc   *androidpublisher.Service
	sa    []byte
}

// setup returns a fake with one app, a token for it, and a raw Go client.
func setup(t *testing.T) *testBundle {
	t.Helper()
	fake := playstoretest.New(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	// Tests here send wrong requests on purpose; every answer is checked.
	srv := httptest.NewServer(wirecheck.Responses(t, fake))
	t.Cleanup(srv.Close)
	fake.AddApp(pkg)
	fake.ConsoleUpdate(pkg, "production", playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"})
	fake.SeedBundles(pkg, 42, 43)
	sa, err := fake.ServiceAccountJSON(srv.URL, "ci@fake.iam.gserviceaccount.com")
	require.NoError(t, err)
	ctx := context.Background()
	creds, err := google.CredentialsFromJSONWithType(ctx, sa, google.ServiceAccount, androidpublisher.AndroidpublisherScope)
	require.NoError(t, err)
	tok, err := creds.TokenSource.Token()
	require.NoError(t, err)
	svc, err := androidpublisher.NewService(ctx, option.WithAuthCredentialsJSON(option.ServiceAccount, sa), option.WithEndpoint(srv.URL+"/"))
	require.NoError(t, err)
	return &testBundle{fake: fake, url: srv.URL, token: tok.AccessToken, svc: svc, sa: sa}
}

func (tb *testBundle) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, tb.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tb.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (tb *testBundle) insert(t *testing.T) string {
	t.Helper()
	e, err := tb.svc.Edits.Insert(pkg, &androidpublisher.AppEdit{}).Do()
	require.NoError(t, err)
	return e.Id
}

func gerr(t *testing.T, err error) *googleapi.Error {
	t.Helper()
	require.Error(t, err)
	g, ok := err.(*googleapi.Error)
	if !ok {
		var ge *googleapi.Error
		require.ErrorAs(t, err, &ge)
		g = ge
	}
	return g
}

func TestTrackRulesUsePlaysMessages(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	base := "/androidpublisher/v3/applications/" + pkg + "/edits/"
	id := tb.insert(t)
	for _, tc := range []struct {
		name, track, body string
		code              int
		msg               string
	}{
		{"names must match", "production", `{"track":"beta","releases":[]}`, 400, "Track names in request path and request body must match."},
		{"status is case-sensitive", "production", `{"track":"production","releases":[{"status":"Completed","versionCodes":["42"]}]}`, 400, `Invalid value at 'track_config.releases[0].status' (TYPE_ENUM), \"Completed\"`},
		{"empty status", "production", `{"track":"production","releases":[{"versionCodes":["42"]}]}`, 400, `(type.googleapis.com/google.play.publishingapi.v3.Release.Status), \"\"`},
		{"halted needs a fraction", "production", `{"track":"production","releases":[{"status":"halted","versionCodes":["42"]}]}`, 400, "HALTED release must have fraction"},
		{"inProgress needs a fraction", "production", `{"track":"production","releases":[{"status":"inProgress","versionCodes":["42"]}]}`, 400, "IN_PROGRESS release must have fraction"},
		{"draft has none", "production", `{"track":"production","releases":[{"status":"draft","userFraction":0.1,"versionCodes":["42"]}]}`, 400, "DRAFT release must not have fraction"},
		{"completed has none", "production", `{"track":"production","releases":[{"status":"completed","userFraction":0.5,"versionCodes":["42"]}]}`, 400, "COMPLETED release must not have fraction"},
		{"fraction below one", "production", `{"track":"production","releases":[{"status":"inProgress","userFraction":1,"versionCodes":["42"]}]}`, 400, "User fraction must be lower than one"},
		{"fraction above zero", "production", `{"track":"production","releases":[{"status":"inProgress","userFraction":0,"versionCodes":["42"]}]}`, 400, "User fraction must be greater than zero"},
		{"one per status", "production", `{"track":"production","releases":[{"status":"completed","versionCodes":["41"]},{"status":"completed","versionCodes":["42"]}]}`, 400, "Only one completed release is allowed."},
		{"unknown field", "production", `{"track":"production","bogus":1}`, 400, "Invalid JSON payload received."},
		{"unknown versionCode", "production", `{"track":"production","releases":[{"status":"completed","versionCodes":["99"]}]}`, 400, "Version code 99 is not in this app."},
		{"unknown track", "nope", `{"track":"nope","releases":[]}`, 404, "Track not found: nope."},
	} {
		code, body := tb.do(t, "PUT", base+id+"/tracks/"+tc.track, tc.body)
		require.Equal(t, tc.code, code, tc.name)
		require.Contains(t, body, tc.msg, tc.name)
		require.Contains(t, body, `"errors":[{`, tc.name)
		require.Contains(t, body, `"status":"`, tc.name)
	}
	// versionCodes go out as strings and userFraction as a number.
	code, body := tb.do(t, "PUT", base+id+"/tracks/production", `{"track":"production","releases":[{"status":"completed","versionCodes":["41"]},{"status":"inProgress","userFraction":0.1,"versionCodes":["42"]}]}`)
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"track":"production","releases":[{"status":"completed","versionCodes":["41"]},{"status":"inProgress","userFraction":0.1,"versionCodes":["42"]}]}`, body)
}

func TestLowerVersionCodeThanLiveIsRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.fake.ConsoleUpdate(pkg, "production", playstoretest.Release{VersionCodes: []int64{43}, Status: "completed"})
	id := tb.insert(t)
	_, err := tb.svc.Edits.Tracks.Update(pkg, id, "production", &androidpublisher.Track{Track: "production", Releases: []*androidpublisher.TrackRelease{
		{Status: "completed", VersionCodes: []int64{43}}, {Status: "inProgress", UserFraction: 0.1, VersionCodes: []int64{42}},
	}}).Do()
	require.NoError(t, err)
	_, err = tb.svc.Edits.Commit(pkg, id).Do()
	g := gerr(t, err)
	require.Equal(t, 403, g.Code)
	require.Equal(t, "You cannot rollout this release because it does not allow any existing users to upgrade to the newly added APKs.", g.Message)
}

func TestEditLifecycle(t *testing.T) {
	t.Parallel()
	t.Run("first commit invalidates the others", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		mine := tb.insert(t)
		// Another user's edit, through a second key.
		sa, err := tb.fake.ServiceAccountJSON(tb.url, "other@fake.iam.gserviceaccount.com")
		require.NoError(t, err)
		other, err := androidpublisher.NewService(context.Background(), option.WithAuthCredentialsJSON(option.ServiceAccount, sa), option.WithEndpoint(tb.url+"/"))
		require.NoError(t, err)
		theirs, err := other.Edits.Insert(pkg, &androidpublisher.AppEdit{}).Do()
		require.NoError(t, err)
		_, err = tb.svc.Edits.Get(pkg, mine).Do()
		require.NoError(t, err, "edits of different users coexist")
		_, err = other.Edits.Commit(pkg, theirs.Id).Do()
		require.NoError(t, err)
		_, err = tb.svc.Edits.Tracks.Get(pkg, mine, "production").Do()
		g := gerr(t, err)
		require.Equal(t, 400, g.Code)
		require.Equal(t, "This Edit has been deleted.", g.Message)
		_, err = other.Edits.Commit(pkg, theirs.Id).Do()
		require.Equal(t, "This edit has already been successfully committed, please create a new Edit.", gerr(t, err).Message)
	})
	t.Run("a new edit invalidates the same user's older one", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		first := tb.insert(t)
		tb.insert(t)
		_, err := tb.svc.Edits.Get(pkg, first).Do()
		require.Equal(t, "This Edit has been deleted.", gerr(t, err).Message)
	})
	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		e, err := tb.svc.Edits.Insert(pkg, &androidpublisher.AppEdit{}).Do()
		require.NoError(t, err)
		require.Equal(t, strconv.FormatInt(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).Unix(), 10), e.ExpiryTimeSeconds, "now + 1 h, as a string")
		tb.fake.Advance(time.Hour)
		_, err = tb.svc.Edits.Commit(pkg, e.Id).Do()
		require.Equal(t, "This edit has expired, please create a new Edit.", gerr(t, err).Message)
	})
	t.Run("review flag both ways", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		id := tb.insert(t)
		_, err := tb.svc.Edits.Commit(pkg, id).ChangesNotSentForReview(true).Do()
		require.Equal(t, playstoretest.MsgChangesNotSentForReviewForbidden, gerr(t, err).Message)
		tb.fake.SetReviewMode(pkg, playstoretest.ReviewNotSentRequired)
		_, err = tb.svc.Edits.Commit(pkg, id).Do()
		require.Equal(t, playstoretest.MsgChangesNotSentForReviewRequired, gerr(t, err).Message)
		_, err = tb.svc.Edits.Commit(pkg, id).ChangesNotSentForReview(true).Do()
		require.NoError(t, err, "a refused review flag leaves the edit usable")
	})
}

func TestAuth(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.token = "ya29.forged"
	code, body := tb.do(t, "POST", "/androidpublisher/v3/applications/"+pkg+"/edits", "{}")
	require.Equal(t, 401, code)
	require.Contains(t, body, `"status":"UNAUTHENTICATED"`)

	// A JWT signed by a key the fake never issued is refused.
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"}}
	resp, err := http.PostForm(tb.url+"/token", form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)
}

func TestUploadsAsClientsSendThem(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	id := tb.insert(t)
	path := "/upload/androidpublisher/v3/applications/" + pkg + "/edits/" + id + "/bundles"

	// The Go client without an explicit content type sniffs application/zip.
	_, err := tb.svc.Edits.Bundles.Upload(pkg, id).Media(bytes.NewReader(playstoretest.FakeBundle(50, 100))).Do()
	require.Contains(t, gerr(t, err).Message, "Media type 'application/zip' is not supported")

	// uploadType=media, as curl sends it.
	req, _ := http.NewRequest("POST", tb.url+path+"?uploadType=media", bytes.NewReader(playstoretest.FakeBundle(51, 10)))
	req.Header.Set("Authorization", "Bearer "+tb.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var b struct{ VersionCode json.Number }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&b))
	resp.Body.Close()
	require.Equal(t, "51", b.VersionCode.String(), "a JSON number")

	// Resumable with PUT chunks and real 308s, as the Java client does.
	data := playstoretest.FakeBundle(52, 300)
	req, _ = http.NewRequest("POST", tb.url+path+"?uploadType=resumable", nil)
	req.Header.Set("Authorization", "Bearer "+tb.token)
	req.Header.Set("X-Upload-Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	require.Contains(t, loc, "upload_id=")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		rng  string
		part []byte
		code int
	}{{"bytes 0-199/*", data[:200], 308}, {"bytes 200-299/300", data[200:], 200}} {
		req, _ = http.NewRequest("PUT", loc, bytes.NewReader(c.part))
		req.Header.Set("Authorization", "Bearer "+tb.token)
		req.Header.Set("Content-Range", c.rng)
		resp, err = noRedirect.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, c.code, resp.StatusCode)
	}
	list, err := tb.svc.Edits.Bundles.List(pkg, id).Do()
	require.NoError(t, err)
	var vcs []int64
	for _, b := range list.Bundles {
		vcs = append(vcs, b.VersionCode)
	}
	require.Equal(t, []int64{41, 42, 43, 51, 52}, vcs)

	_, err = tb.svc.Edits.Bundles.Upload(pkg, id).Media(bytes.NewReader(playstoretest.FakeBundle(52, 10)), googleapi.ContentType("application/octet-stream")).Do()
	require.Equal(t, "APK specifies a version code that has already been used.", gerr(t, err).Message)
}

func TestQuotaFaultHasPlaysShape(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.fake.Inject(playstoretest.Fault{Method: playstoretest.MethodEditsInsert, Kind: playstoretest.FaultQuota})
	_, err := tb.svc.Edits.Insert(pkg, &androidpublisher.AppEdit{}).Do()
	g := gerr(t, err)
	require.Equal(t, 403, g.Code)
	require.Equal(t, "rateLimitExceeded", g.Errors[0].Reason)
	require.Contains(t, string(g.Body), `"domain":"usageLimits"`)
	tb.insert(t) // one fault, used once
}
