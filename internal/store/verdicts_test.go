package store_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/npmtest"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

var _ nativecheck.VerdictCache = store.PackageVerdicts{}

// clock is a settable clock for the verdict cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestPackageVerdicts(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := replicas(t, e)
			clk := &clock{t: now}
			va, vb := a.PackageVerdicts(3, 48*time.Hour), b.PackageVerdicts(3, 48*time.Hour)
			va.Now, vb.Now = clk.Now, clk.Now

			_, ok, err := va.LoadVerdict(ctx, "k1")
			require.NoError(t, err)
			require.False(t, ok)

			require.NoError(t, va.SaveVerdict(ctx, "k1", []byte(`{"ios":true}`)))
			got, ok, err := vb.LoadVerdict(ctx, "k1") // the other replica sees it
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, `{"ios":true}`, string(got))
			require.NoError(t, vb.SaveVerdict(ctx, "k1", []byte(`{"ios":false}`)), "saving again replaces")
			got, _, _ = va.LoadVerdict(ctx, "k1")
			require.Equal(t, `{"ios":false}`, string(got))

			// Bounded in size: the least recently used goes first. k1 is read
			// after k2 was written, so k2 is the one pruned.
			clk.Add(2 * time.Hour)
			require.NoError(t, va.SaveVerdict(ctx, "k2", []byte(`2`)))
			clk.Add(2 * time.Hour)
			_, ok, _ = va.LoadVerdict(ctx, "k1")
			require.True(t, ok)
			clk.Add(time.Minute)
			require.NoError(t, va.SaveVerdict(ctx, "k3", []byte(`3`)))
			require.NoError(t, va.SaveVerdict(ctx, "k4", []byte(`4`)))
			n, err := va.CountVerdicts(ctx)
			require.NoError(t, err)
			require.Equal(t, 3, n)
			_, ok, _ = vb.LoadVerdict(ctx, "k2")
			require.False(t, ok, "the least recently used entry was pruned")
			for _, k := range []string{"k1", "k3", "k4"} {
				_, ok, _ = vb.LoadVerdict(ctx, k)
				require.True(t, ok, k)
			}

			// Bounded in time: past MaxAge an entry is not used, and the next
			// save prunes it.
			clk.Add(47 * time.Hour)
			_, ok, _ = va.LoadVerdict(ctx, "k1")
			require.False(t, ok, "older than max age")
			_, ok, _ = va.LoadVerdict(ctx, "k4")
			require.True(t, ok)
			require.NoError(t, va.SaveVerdict(ctx, "k5", []byte(`5`)))
			n, _ = va.CountVerdicts(ctx)
			require.Equal(t, 3, n) // k3, k4, k5; k1 pruned by age

			// Bad input names the field.
			require.ErrorContains(t, va.SaveVerdict(ctx, "", []byte("x")), "package verdict key: empty")
			require.ErrorContains(t, va.SaveVerdict(ctx, strings.Repeat("k", 2000), []byte("x")), "package verdict key: 2000 bytes, more than 1024")
			require.ErrorContains(t, va.SaveVerdict(ctx, "k6", nil), "package verdict of k6: 0 bytes")
			_, _, err = va.LoadVerdict(ctx, "")
			require.ErrorContains(t, err, "package verdict key: empty")
		})
	}
}

// TestRegistryVerdictsSurviveRestartAndReplicas: a verdict judged once is
// read back by a restarted process and by a second replica without
// downloading the tarball again.
func TestRegistryVerdictsSurviveRestartAndReplicas(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := replicas(t, e)
			reg := npmtest.New()
			srv := httptest.NewServer(reg)
			t.Cleanup(srv.Close)
			reg.BaseURL = srv.URL
			reg.AddNative("react-native-mmkv", "3.2.0")
			reg.AddJS("lodash", "4.17.21")

			first := &nativecheck.Registry{URL: srv.URL, Cache: a.PackageVerdicts(0, 0)}
			pn, err := first.Inspect(ctx, "react-native-mmkv", "3.2.0")
			require.NoError(t, err)
			require.True(t, pn.IOS && pn.Android)
			_, err = first.Inspect(ctx, "lodash", "4.17.21")
			require.NoError(t, err)
			require.Equal(t, int64(4), reg.Requests.Load()) // metadata and tarball, twice

			for i, st := range []*store.Store{a, b} { // a restarted process, another replica
				r := &nativecheck.Registry{URL: srv.URL, Cache: st.PackageVerdicts(0, 0)}
				got, err := r.Inspect(ctx, "react-native-mmkv", "3.2.0")
				require.NoError(t, err)
				require.Equal(t, pn, got, fmt.Sprint(i))
				js, err := r.Inspect(ctx, "lodash", "4.17.21")
				require.NoError(t, err)
				require.False(t, js.IOS || js.Android)
			}
			require.Equal(t, int64(4), reg.Requests.Load(), "no download after the first")

			// Another registry is another cache key.
			other := npmtest.New()
			osrv := httptest.NewServer(other)
			t.Cleanup(osrv.Close)
			other.BaseURL = osrv.URL
			other.AddJS("react-native-mmkv", "3.2.0")
			got, err := (&nativecheck.Registry{URL: osrv.URL, Cache: b.PackageVerdicts(0, 0)}).Inspect(ctx, "react-native-mmkv", "3.2.0")
			require.NoError(t, err)
			require.False(t, got.IOS)
		})
	}
}
