package jobs

import (
	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Lane jobs carry only the lane id: everything else is read from the store
// when the job runs, so a retried job sees the current state. Every lane job
// args type has a lane_id field, which is how a halt finds and cancels them.

// IOSLaneArgs drives an iOS store lane: build pickup or upload, processing,
// TestFlight, beta review, App Store submission and the phased release.
type IOSLaneArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (IOSLaneArgs) Kind() string { return "ios_lane" }

// AndroidLaneArgs drives an Android store lane: AAB upload or pickup,
// internal track, then production at the first stage.
type AndroidLaneArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (AndroidLaneArgs) Kind() string { return "android_lane" }

// OTALaneArgs drives an OTA lane: release to Staging, promote to Production
// at the first stage.
type OTALaneArgs struct {
	LaneID string `json:"lane_id" river:"unique"`
}

func (OTALaneArgs) Kind() string { return "ota_lane" }

// LaneStart returns the job that starts a planned lane, or nil for a lane
// that does not run (refused).
func LaneStart(l release.Lane) river.JobArgs {
	switch {
	case l.Kind == release.KindOTA:
		return OTALaneArgs{LaneID: l.ID}
	case l.Kind == release.KindStore && l.Platform == release.IOS:
		return IOSLaneArgs{LaneID: l.ID}
	case l.Kind == release.KindStore && l.Platform == release.Android:
		return AndroidLaneArgs{LaneID: l.ID}
	}
	return nil
}

// LaneStartOpts makes a lane's start job unique per lane while it is not
// finished, so planning twice starts a lane once.
func LaneStartOpts() *river.InsertOpts {
	return &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}
