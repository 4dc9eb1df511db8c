package ioslane

import (
	"context"
	"fmt"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

// awaitProcessing polls the build until processing ends.
func (r *iosRun) awaitProcessing(ctx context.Context) error {
	b, err := r.x.ASC.Build(ctx, r.data.BuildID)
	if err := ascFailure("read build "+r.data.label(), err); err != nil {
		return err
	}
	return r.processed(ctx, b.ProcessingState)
}

// processed acts on a processing state just read: go on, fail or wait.
func (r *iosRun) processed(ctx context.Context, state appstore.ProcessingState) error {
	d := &r.data
	switch state {
	case appstore.ProcessingStateValid:
		polls := d.Polls + 1
		if err := r.reach(ctx, iosStepProcessed); err != nil {
			return err
		}
		return r.progress(ctx, "ios.processed", map[string]any{"reads": polls})
	case appstore.ProcessingStateInvalid, appstore.ProcessingStateFailed:
		return lane.Fail("build %s ended %s in App Store Connect processing; upload a fixed build under a new build number", d.label(), state)
	}
	return r.wait(ctx, "processing", fmt.Sprintf("build %s still %s", d.label(), state))
}
