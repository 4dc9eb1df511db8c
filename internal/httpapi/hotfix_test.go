package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/hotfix"
	"github.com/swapjoy/releasepilot/internal/httpapi"
)

// refusingHotfixer refuses every release with err, as the CodePush
// Service's rules do.
type refusingHotfixer struct{ err error }

func (h refusingHotfixer) Hotfix(context.Context, hotfix.Input) (codepush.Release, error) {
	return codepush.Release{}, h.err
}

// TestHotfixErrorsNameTheAPIsFields: a refusal of the CodePush rules is
// reported under the name the caller of POST /v1/ota/releases used for the
// field (target_binary, mandatory), not under the CodePush wire name
// (appVersion, isMandatory) the caller never sent.
func TestHotfixErrorsNameTheAPIsFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  *codepush.Error
		want string
	}{
		{&codepush.Error{Kind: codepush.KindInvalid, Field: "appVersion", Value: "(((", Message: "not a valid semver range"}, `target_binary: "(((": not a valid semver range`},
		{&codepush.Error{Kind: codepush.KindConflict, Field: "appVersion", Value: "1.0.1", Message: "native gate: the range covers no recorded ios binary"}, `target_binary: "1.0.1": native gate`},
		{&codepush.Error{Kind: codepush.KindInvalid, Field: "isMandatory", Message: "must be a boolean"}, `mandatory: must be a boolean`},
		{&codepush.Error{Kind: codepush.KindInvalid, Field: "rollout", Value: "500", Message: "rollout must be an integer from 1 to 100"}, `rollout: "500": rollout must be`},
	} {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		require.NoError(t, mw.WriteField("release", `{"app":"acme","platform":"ios","commit":"3b1570a6790bd88641b344a1d11557369bc3d3b9","target_binary":"x"}`))
		fw, err := mw.CreateFormFile("package", "bundle.zip")
		require.NoError(t, err)
		_, err = fw.Write([]byte("PK"))
		require.NoError(t, err)
		require.NoError(t, mw.Close())
		req := httptest.NewRequest(http.MethodPost, "/v1/ota/releases", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		rec := httptest.NewRecorder()
		(&httpapi.HotfixAPI{Hotfix: refusingHotfixer{tc.err}}).ServeHTTP(rec, req)
		require.Equal(t, codepush.HTTPStatus(tc.err), rec.Code, rec.Body.String())
		var e httpapi.Error
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
		require.Equal(t, string(tc.err.Kind), e.Error.Code)
		require.Contains(t, e.Error.Message, tc.want)
	}
}
