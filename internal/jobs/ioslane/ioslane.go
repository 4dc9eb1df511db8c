// Package ioslane drives iOS store lanes through App Store Connect: the
// ios_lane job (one file per step: pickup or upload, processing, export
// compliance, TestFlight, Beta App Review, the App Store version, App
// Review) and, as the reconciler's Executor, Apple's phased release.
package ioslane

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/store"
)

// IOS drives App Store Connect for iOS store lanes. Its lane job takes the
// release's build through processing and TestFlight (and, with ios.app_store,
// App Review), records the binary and hands the lane to the reconciler; as the
// lanes' Executor it starts, pauses, resumes and completes Apple's phased
// release. It never removes an app from sale.
//
// The lane job is a state machine whose position is kept in the lane's data:
// each run continues from the last recorded step, and every step reads App
// Store Connect before it writes (the appstore client does so for every
// mutation), so a run repeated after a crash sends no mutation twice.
//
// The build number: a tag with semver build metadata names it (v1.4.0+45 is
// marketing version 1.4.0, build 45). Otherwise an uploaded IPA declares it in
// its Info.plist (CFBundleVersion), and a picked-up build is the newest build
// of the marketing version in App Store Connect that no other release of the
// app shipped. Once chosen it is kept in the lane's data and never changes.
type IOS struct {
	Store *store.Store
	ASC   *appstore.Client
	// Apps is the configuration by app name.
	Apps map[string]config.App
	// Assets fetches ios.ipa_asset from the tag's GitHub release.
	Assets lane.Assets
	// IPAVersion reads the marketing version and build number an IPA
	// declares; nil means IPAVersion.
	IPAVersion func(r io.ReaderAt, size int64) (version, build string, err error)
	// MaxPoll caps the interval between two polls of App Store Connect
	// (default 10 minutes); a nearly spent hourly budget stretches it.
	MaxPoll time.Duration
	Now     func() time.Time
	Log     *slog.Logger

	// observed holds Observe's phased-release reads for the Execute of
	// the same reconcile pass, by lane id.
	obsMu    sync.Mutex
	observed map[string]observed
}

// The steps of an iOS lane job, in order. A lane's data records the last one
// reached.
const (
	iosStepApp        = "app"                   // the App Store Connect app is known
	iosStepBuild      = "build"                 // the build is chosen (found or uploaded)
	iosStepProcessed  = "processed"             // processing ended VALID
	iosStepCompliance = "export_compliance"     // usesNonExemptEncryption answered
	iosStepWhatToTest = "what_to_test"          // release notes set
	iosStepInternal   = "internal_groups"       // in the internal groups
	iosStepBetaSubmit = "beta_review_submitted" // submitted to Beta App Review
	iosStepBetaOK     = "beta_approved"         // Beta App Review approved it
	iosStepTestFlight = "in_testflight"         // in every configured group
	iosStepVersion    = "app_store_version"     // the App Store version exists
	iosStepAttached   = "build_attached"        // the build is the version's build
	iosStepWhatsNew   = "whats_new"             // What's New is on every localization of an update
	iosStepSubmitted  = "app_store_submitted"   // submitted to App Review
	iosStepApproved   = "app_store_approved"    // approved, waiting for release
)

var iosSteps = []string{"", iosStepApp, iosStepBuild, iosStepProcessed, iosStepCompliance, iosStepWhatToTest, iosStepInternal,
	iosStepBetaSubmit, iosStepBetaOK, iosStepTestFlight, iosStepVersion, iosStepAttached, iosStepWhatsNew, iosStepSubmitted, iosStepApproved}

// iosLaneData is an iOS lane's memory between job runs and reconcile
// passes, stored as the lane's data. The ids are also how the App Store
// Connect webhook finds the lanes an event is about.
type iosLaneData struct {
	// BundleID, Source, AppStore and Phased are fixed when the lane starts,
	// so a config change cannot redirect a lane in flight.
	BundleID string `json:"bundle_id"`
	Source   string `json:"source"`
	AppStore bool   `json:"app_store,omitempty"`
	Phased   bool   `json:"phased_release,omitempty"`
	// Version is the marketing version (CFBundleShortVersionString) and
	// BuildNumber the CFBundleVersion; once set, BuildNumber never changes.
	Version     string `json:"version"`
	BuildNumber string `json:"build_number,omitempty"`
	AppID       string `json:"app_id,omitempty"`
	Asset       string `json:"asset,omitempty"`
	UploadID    string `json:"upload_id,omitempty"`
	BuildID     string `json:"build_id,omitempty"`
	VersionID   string `json:"version_id,omitempty"`
	// ReviewSubmissionID is the App Review submission holding VersionID.
	ReviewSubmissionID string `json:"review_submission_id,omitempty"`
	// ExternalGroupIDs are the ids of ios.external_groups, resolved before
	// Beta App Review so the groups are not listed again after it.
	ExternalGroupIDs []string `json:"external_group_ids,omitempty"`
	// Step is the last step reached (see iosSteps).
	Step string `json:"step,omitempty"`
	// Waiting names what the job is waiting for, since when and how often
	// it looked; polls slow down as Polls grows.
	Waiting      string    `json:"waiting,omitempty"`
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	Polls        int       `json:"polls,omitempty"`
}

func (d *iosLaneData) reached(step string) bool {
	return slices.Index(iosSteps, d.Step) >= slices.Index(iosSteps, step)
}

// label names the build in reasons: "1.4.0 (45)".
func (d *iosLaneData) label() string {
	if d.BuildNumber == "" {
		return d.Version
	}
	return fmt.Sprintf("%s (%s)", d.Version, d.BuildNumber)
}

// references reports whether an App Store Connect resource id is one this
// lane waits on (a build upload, a build or its beta detail, a version).
func (d *iosLaneData) references(id string) bool {
	return id != "" && (id == d.UploadID || id == d.BuildID || id == d.VersionID || id == d.ReviewSubmissionID)
}

func (x *IOS) now() time.Time {
	if x.Now == nil {
		return time.Now().UTC()
	}
	return x.Now().UTC()
}

func (x *IOS) log() *slog.Logger {
	if x.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return x.Log
}
