package playstore_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
	"github.com/swapjoy/releasepilot/playstore/playstoretest/wirecheck"
)

const pkg = "com.swapjoy.app"

type testBundle struct {
	fake   *playstoretest.Server
	url    string
	client *playstore.Client
	ledger *playstore.MemoryLedger
	saJSON []byte

	mu     sync.Mutex
	sleeps []time.Duration
}

func (tb *testBundle) slept() []time.Duration {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]time.Duration(nil), tb.sleeps...)
}

// setup starts a fake with one app whose production track serves
// versionCode 41 to everyone, and a client pointed at it.
func setup(t testing.TB) *testBundle {
	t.Helper()
	fake := playstoretest.New(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	srv := httptest.NewServer(wirecheck.Handler(t, fake))
	t.Cleanup(srv.Close)
	fake.AddApp(pkg)
	fake.ConsoleUpdate(pkg, "production", playstoretest.Release{Name: "1.4.1", VersionCodes: []int64{41}, Status: "completed"})

	sa, err := fake.ServiceAccountJSON(srv.URL, "releasepilot@fake-project.iam.gserviceaccount.com")
	require.NoError(t, err)
	tb := &testBundle{fake: fake, url: srv.URL, ledger: playstore.NewMemoryLedger(), saJSON: sa}
	tb.client = tb.newClient(t, sa)
	return tb
}

func (tb *testBundle) newClient(t testing.TB, sa []byte) *playstore.Client {
	t.Helper()
	c, err := playstore.New(context.Background(), playstore.Config{
		CredentialsJSON:   sa,
		Endpoint:          tb.url + "/",
		ReportingEndpoint: tb.url + "/",
		Ledger:            tb.ledger,
		UploadChunkSize:   256 << 10,
		Sleep: func(ctx context.Context, d time.Duration) error {
			tb.mu.Lock()
			defer tb.mu.Unlock()
			tb.sleeps = append(tb.sleeps, d)
			return nil
		},
	})
	require.NoError(t, err)
	return c
}

func TestSmoke(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ts, err := tb.client.Track(context.Background(), pkg, "production")
	require.NoError(t, err)
	require.Equal(t, playstore.TrackState{Track: "production", Releases: []playstore.Release{{Name: "1.4.1", VersionCodes: []int64{41}, Status: "completed"}}}, ts)
	require.Equal(t, 1, tb.fake.TokensIssued())
	require.Equal(t, 0, tb.fake.OpenEdits(pkg))
}
