package lane

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// StoreRun is what a store lane job works on: its lane, release and app.
type StoreRun struct {
	Lane    release.Lane
	Release release.Release
	App     config.App
}

// LoadStore reads a pending store lane of platform p (what names it in
// errors: "an iOS store lane") for one run of its job. It answers nil, nil
// for a lane that is no longer pending (handed over before, or finished: a
// re-run does nothing), a cancelled job for a lane of another kind or
// platform (only the job is wrong), and a lane failure when noClient is set
// (the store client is not configured) or the release or its app cannot be
// found.
func LoadStore(ctx context.Context, st *store.Store, apps map[string]config.App, laneID string, p release.Platform, what, noClient string) (*StoreRun, error) {
	l, err := st.GetLane(ctx, laneID)
	if err != nil {
		return nil, err
	}
	if l.Kind != release.KindStore || l.Platform != p {
		return nil, river.JobCancel(fmt.Errorf("lane %s is a %s lane on %s, not %s", l.ID, l.Kind, l.Platform, what))
	}
	if l.Status.State != release.StatePending {
		return nil, nil
	}
	if noClient != "" {
		return nil, Fail("%s", noClient)
	}
	rel, err := st.GetRelease(ctx, l.ReleaseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, Fail("release %s of lane %s does not exist", l.ReleaseID, l.ID)
	}
	if err != nil {
		return nil, err
	}
	app, ok := apps[rel.App]
	if !ok {
		return nil, Fail("app %q is not configured", rel.App)
	}
	return &StoreRun{Lane: l, Release: rel, App: app}, nil
}
