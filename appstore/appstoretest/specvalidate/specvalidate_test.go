package specvalidate

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The validator must catch what it is there to catch, or every other
// "passes OpenAPI validation" claim is empty.
func TestValidatorCatchesBadTraffic(t *testing.T) {
	t.Parallel()
	good := httptest.NewRequest("GET", "https://api.appstoreconnect.apple.com/v1/builds?filter[processingState]=VALID&limit=10", nil)
	in, err := Request(good)
	require.NoError(t, err)

	bad := httptest.NewRequest("GET", "/v1/builds?filter[processingState]=DONE", nil)
	_, err = Request(bad)
	require.ErrorContains(t, err, "filter[processingState]")

	_, err = Request(httptest.NewRequest("GET", "/v1/bananas", nil))
	require.Error(t, err)

	body := `{"data":{"type":"builds","id":"1","attributes":{"usesNonExemptEncryption":"no"}}}`
	patch := httptest.NewRequest("PATCH", "/v1/builds/1", strings.NewReader(body))
	patch.Header.Set("Content-Type", "application/json")
	_, err = Request(patch)
	require.ErrorContains(t, err, "usesNonExemptEncryption")

	h := http.Header{"Content-Type": {"application/json"}}
	require.NoError(t, Response(in, 200, h, []byte(`{"data":[],"links":{"self":"https://x/v1/builds"}}`)))
	require.Error(t, Response(in, 200, h, []byte(`{"data":[{"type":"builds","id":"1","attributes":{"processingState":"DONE"}}],"links":{"self":"https://x/v1/builds"}}`)))
	require.Error(t, Response(in, 200, h, []byte(`{"data":[]}`)), "links is required")
	require.Error(t, Response(in, 418, h, []byte(`{"errors":[]}`)), "undeclared status")
	require.NoError(t, Response(in, 429, h, []byte(`{"errors":[{"status":"429","code":"RATE_LIMIT_EXCEEDED","title":"The request rate limit has been reached."}]}`)))
	require.Error(t, Response(in, 429, h, []byte(`{"errors":[{"status":429,"code":"RATE_LIMIT_EXCEEDED","title":"t"}]}`)), "status must be a string")
}

// Apple's schemas leave additionalProperties open; the validator closes
// them, so a misspelled attribute, relationship or query parameter fails.
func TestValidatorIsStrict(t *testing.T) {
	t.Parallel()
	patch := func(body string) error {
		r := httptest.NewRequest("PATCH", "/v1/builds/1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		_, err := Request(r)
		return err
	}
	require.NoError(t, patch(`{"data":{"type":"builds","id":"1","attributes":{"usesNonExemptEncryption":false}}}`))
	require.ErrorContains(t, patch(`{"data":{"type":"builds","id":"1","attributes":{"usesNonExemptEncryptoin":false}}}`), "usesNonExemptEncryptoin")
	require.ErrorContains(t, patch(`{"data":{"type":"builds","id":"1","relationships":{"appEncryptionDeclarations":{"data":{"type":"appEncryptionDeclarations","id":"d"}}}}}`), "appEncryptionDeclarations")
	require.ErrorContains(t, patch(`{"data":{"type":"builds","id":"1"},"meta":{}}`), "meta")

	_, err := Request(httptest.NewRequest("GET", "/v1/builds?filter[processingState]=VALID&fliter[app]=1", nil))
	require.ErrorContains(t, err, `"fliter[app]"`)
	_, err = Request(httptest.NewRequest("GET", "/v1/builds?limit=10&cursor=abc", nil))
	require.NoError(t, err, "links.next pages with cursor")

	in, err := Request(httptest.NewRequest("GET", "/v1/builds/1", nil))
	require.NoError(t, err)
	h := http.Header{"Content-Type": {"application/json"}}
	require.NoError(t, Response(in, 200, h, []byte(`{"data":{"type":"builds","id":"1","attributes":{"version":"45"},"links":{"self":"https://x/v1/builds/1"}},"links":{"self":"https://x/v1/builds/1"}}`)))
	require.ErrorContains(t, Response(in, 200, h, []byte(`{"data":{"type":"builds","id":"1","attributes":{"versoin":"45"},"links":{"self":"https://x/v1/builds/1"}},"links":{"self":"https://x/v1/builds/1"}}`)), "versoin")
}
