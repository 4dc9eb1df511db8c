package ioslane

import (
	"context"
	"errors"
	"fmt"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

// chooseBuild finds the build CI uploaded, or uploads the IPA asset.
func (r *iosRun) chooseBuild(ctx context.Context) error {
	if r.data.Source == "upload" {
		return r.upload(ctx)
	}
	return r.pickUp(ctx)
}

func (r *iosRun) pickUp(ctx context.Context) error {
	x, d := r.x, &r.data
	var b *appstore.Build
	if d.BuildNumber != "" {
		found, err := x.ASC.FindBuild(ctx, d.AppID, appstore.PlatformIOS, d.Version, d.BuildNumber)
		if errors.Is(err, appstore.ErrNotFound) {
			return r.wait(ctx, "pickup", fmt.Sprintf("build %s has not appeared in App Store Connect", d.label()))
		}
		if err := ascFailure("find build "+d.label(), err); err != nil {
			return err
		}
		taken, err := r.chosenElsewhere(ctx)
		if err != nil {
			return err
		}
		if other, ok := taken[found.ID]; ok {
			return lane.Fail("build %s is already the build of release %s; tag a new build number", d.label(), other)
		}
		b = found
	} else {
		builds, err := x.ASC.FindBuilds(ctx, appstore.BuildQuery{AppID: d.AppID, Version: d.Version, Platform: appstore.PlatformIOS, Limit: 20})
		if err := ascFailure("list builds of "+d.Version, err); err != nil {
			return err
		}
		shipped, err := r.shippedElsewhere(ctx)
		if err != nil {
			return err
		}
		taken, err := r.chosenElsewhere(ctx)
		if err != nil {
			return err
		}
		for i := range builds {
			if _, ok := taken[builds[i].ID]; !ok && !shipped[builds[i].Version] {
				b = &builds[i]
				break
			}
		}
		if b == nil {
			return r.wait(ctx, "pickup", fmt.Sprintf("no new build of %s has appeared in App Store Connect", d.Version))
		}
		d.BuildNumber = b.Version
	}
	d.BuildID = b.ID
	if err := r.reach(ctx, iosStepBuild); err != nil {
		return err
	}
	if err := r.progress(ctx, "ios.build_found", map[string]any{"processing_state": string(b.ProcessingState)}); err != nil {
		return err
	}
	// This read was the first poll of processing.
	return r.processed(ctx, b.ProcessingState)
}

// shippedElsewhere lists the build numbers other releases of the app
// recorded, so a pickup never takes an older release's build.
func (r *iosRun) shippedElsewhere(ctx context.Context) (map[string]bool, error) {
	bins, err := r.x.Store.Binaries(ctx, r.rel.App, release.IOS)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, b := range bins {
		if b.ReleaseID != r.rel.ID {
			out[b.BuildNumber] = true
		}
	}
	return out, nil
}

// chosenElsewhere maps the build ids other iOS lanes of the app have
// chosen (kept in their lane data, before any binary is recorded) to
// their release's tag, so two releases never ship one build. Failed and
// cancelled lanes release their build.
func (r *iosRun) chosenElsewhere(ctx context.Context) (map[string]string, error) {
	rels, err := r.x.Store.ListReleases(ctx, r.rel.App, 200)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, rel := range rels {
		if rel.ID == r.rel.ID {
			continue
		}
		lanes, err := r.x.Store.Lanes(ctx, rel.ID)
		if err != nil {
			return nil, err
		}
		for _, l := range lanes {
			if l.Platform != release.IOS || l.Kind != release.KindStore || l.ID == r.l.ID ||
				l.Status.State == release.StateFailed || l.Status.State == release.StateCancelled {
				continue
			}
			var other iosLaneData
			if err := r.x.Store.LaneData(ctx, l.ID, &other); err != nil {
				return nil, err
			}
			if other.BuildID != "" {
				out[other.BuildID] = rel.Tag
			}
		}
	}
	return out, nil
}
