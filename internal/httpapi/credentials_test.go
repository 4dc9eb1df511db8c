package httpapi_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/httpapi"
)

type failingCreds struct{}

func (failingCreds) Authenticate(context.Context, string) (httpapi.Identity, bool, error) {
	return httpapi.Identity{}, false, errors.New("database down")
}
func (failingCreds) Lookup(context.Context, string) (httpapi.Identity, bool, error) {
	return httpapi.Identity{}, false, nil
}

func TestTokenCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := httpapi.TokenCredentials{
		httpapi.NewToken("ops", httpapi.RoleOperator, "operator-token-0123456789"),
		httpapi.NewToken("watcher", httpapi.RoleViewer, "viewer-token-0123456789"),
	}
	id, ok, err := ts.Authenticate(ctx, "viewer-token-0123456789")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, httpapi.Identity{Subject: "token:watcher", Actor: "token:watcher", Role: httpapi.RoleViewer}, id)
	for _, bad := range []string{"", "viewer-token-012345678", "token:watcher"} {
		_, ok, err = ts.Authenticate(ctx, bad)
		require.NoError(t, err)
		require.False(t, ok, bad)
	}
	id, ok, err = ts.Lookup(ctx, "token:ops")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, httpapi.RoleOperator, id.Role)
	for _, gone := range []string{"token:nobody", "ops", "accesskey:ops"} {
		_, ok, err = ts.Lookup(ctx, gone)
		require.NoError(t, err)
		require.False(t, ok, gone)
	}

	// A chain asks each source in turn; a failure to look is an error, not
	// a wrong secret.
	chain := httpapi.CredentialChain{ts, failingCreds{}}
	id, ok, err = chain.Authenticate(ctx, "operator-token-0123456789")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "token:ops", id.Actor)
	_, _, err = chain.Authenticate(ctx, "unknown-secret-0123456789")
	require.EqualError(t, err, "database down")
	_, ok, err = chain.Lookup(ctx, "token:nobody")
	require.NoError(t, err)
	require.False(t, ok)
}
