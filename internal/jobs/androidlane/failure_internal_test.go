package androidlane

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

func TestPlayFailureRefusedCredentialsFailTheLane(t *testing.T) {
	t.Parallel()
	refused := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400, Status: "400 Bad Request"}, ErrorCode: "invalid_grant",
		ErrorDescription: "Invalid JWT Signature.", Body: []byte(`{"error":"invalid_grant"}`)}
	err := playFailure("upload", fmt.Errorf("playstore: token: %w", refused))
	var fail *lane.Failure
	require.True(t, errors.As(err, &fail), "a refused key is not retried: %v", err)
	require.Equal(t, "upload: Google refused the service account's credentials; check playstore.service_account", fail.Reason)

	busy := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 429, Status: "429 Too Many Requests"}}
	err = playFailure("upload", fmt.Errorf("playstore: token: %w", busy))
	require.False(t, errors.As(err, &fail), "a throttled token endpoint is retried")
}
