package playstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// TestReplicasRacingOnOneApp: two replicas with the same service account act
// on one app at once. Play lets a user hold one edit per app, so they keep
// invalidating each other's edits; every operation must still end in a valid
// track or a clear error, never a lost release.
func TestReplicasRacingOnOneApp(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	atTen(t, tb)
	replicas := []*playstore.Client{tb.client, tb.newClient(t, tb.saJSON)}
	ctx := context.Background()
	ops := []func(c *playstore.Client) error{
		func(c *playstore.Client) error { _, err := c.SetFraction(ctx, pkg, "production", 42, 0.25); return err },
		func(c *playstore.Client) error { _, err := c.Halt(ctx, pkg, "production", 42); return err },
		func(c *playstore.Client) error { _, err := c.Resume(ctx, pkg, "production", 42, 0.5); return err },
		func(c *playstore.Client) error { _, err := c.Track(ctx, pkg, "production"); return err },
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- ops[i%len(ops)](replicas[i%2])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil || errors.Is(err, playstore.ErrState) || errors.Is(err, playstore.ErrInvalid) {
			continue
		}
		require.ErrorContains(t, err, "no edit committed after", "only giving up after repeated edit loss is acceptable")
	}
	got := tb.fake.Track(pkg, "production")
	require.Len(t, got, 2)
	require.Equal(t, playstoretest.Release{Name: "1.4.1", VersionCodes: []int64{41}, Status: "completed"}, got[0], "the live release is never lost")
	require.Contains(t, []string{"inProgress", "halted"}, got[1].Status)
	require.Contains(t, []float64{0.1, 0.25, 0.5}, got[1].UserFraction)
	require.Equal(t, 0, tb.fake.OpenEdits(pkg))
}
