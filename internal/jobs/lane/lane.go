// Package lane is what every lane job shares: the job args and their kinds,
// the loader of a pending store lane, the outcome handling and backoff of a
// run, and the records a lane leaves (ready, failed, progress). The
// platform packages (ioslane, androidlane, otalane) build on it; the
// runner, reconciler and commands in package jobs start the lanes with it.
package lane

import (
	"context"
	"errors"
	"os"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/jobs/queue"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Lane jobs carry only the lane id: everything else is read from the store
// when the job runs, so a retried job sees the current state. Every lane job
// args type has a lane_id field, which is how a halt finds and cancels them.

// IOSArgs drives an iOS store lane: build pickup or upload, processing,
// TestFlight, beta review, App Store submission and the phased release.
type IOSArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (IOSArgs) Kind() string { return "ios_lane" }

// InsertOpts puts lane steps on the plan queue, before planning.
func (IOSArgs) InsertOpts() river.InsertOpts { return insertOpts }

// AndroidArgs drives an Android store lane: AAB upload or pickup,
// internal track, then production at the first stage.
type AndroidArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (AndroidArgs) Kind() string { return "android_lane" }

// InsertOpts puts lane steps on the plan queue, before planning.
func (AndroidArgs) InsertOpts() river.InsertOpts { return insertOpts }

// OTAArgs drives an OTA lane: release to Staging, promote to Production
// at the first stage.
type OTAArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (OTAArgs) Kind() string { return "ota_lane" }

// InsertOpts puts lane steps on the plan queue, before planning.
func (OTAArgs) InsertOpts() river.InsertOpts { return insertOpts }

// insertOpts: lane steps talk to the stores and may wait minutes (uploads,
// processing), so they run on the plan queue; a lane already under way goes
// before new planning.
var insertOpts = river.InsertOpts{Queue: queue.Plan, Priority: queue.PriorityLane}

// Kinds are the kinds of lane step jobs: what a halt or a withdrawn lane
// cancels.
func Kinds() []string {
	return []string{IOSArgs{}.Kind(), AndroidArgs{}.Kind(), OTAArgs{}.Kind()}
}

// Start returns the job that starts a planned lane, or nil for a lane
// that does not run (refused).
func Start(l release.Lane) river.JobArgs {
	switch {
	case l.Kind == release.KindOTA:
		return OTAArgs{LaneID: l.ID}
	case l.Kind == release.KindStore && l.Platform == release.IOS:
		return IOSArgs{LaneID: l.ID}
	case l.Kind == release.KindStore && l.Platform == release.Android:
		return AndroidArgs{LaneID: l.ID}
	}
	return nil
}

// StartOpts makes a lane's start job unique per lane while it is not
// finished, so planning twice starts a lane once.
func StartOpts() *river.InsertOpts {
	return &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Assets fetches build artifacts attached to the GitHub release of a tag
// (an .ipa, an .aab, a JS bundle zip).
type Assets interface {
	// FetchAsset downloads the first asset of the release at tag whose name
	// matches the glob pattern into a new temporary file, positioned at 0.
	// The caller closes and removes it. A missing release or asset matches
	// fs.ErrNotExist — as does one not looked for now because polling
	// backs off or the GitHub budget keeps polls back: wait and ask again.
	FetchAsset(ctx context.Context, repository, tag, pattern string) (f *os.File, name string, err error)
}

// Fingerprint returns the stored native fingerprint hash of the
// release's commit for the lane's platform ("" when none was recorded).
func Fingerprint(ctx context.Context, st *store.Store, app string, p release.Platform, commit string) (string, error) {
	f, err := st.GetFingerprint(ctx, app, p, commit, nativecheck.Algorithm)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return f.Hash, err
}

// Resuming reports whether an advance of lane is a person's resume: only
// then may an executor undo a halt it finds remotely (Play halted, phased
// release paused, OTA release disabled). A scheduled advance that finds the
// rollout stopped must leave it stopped and say so.
func Resuming(l release.Lane) bool {
	return l.Status.State == release.StateHalted || l.Status.State == release.StatePaused
}
