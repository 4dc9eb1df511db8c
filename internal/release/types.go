package release

import (
	"fmt"
	"time"
)

// Platform is a store platform a lane ships to.
type Platform string

const (
	IOS     Platform = "ios"
	Android Platform = "android"
)

// Platforms lists every platform in a stable order.
var Platforms = []Platform{IOS, Android}

// ParsePlatform validates a platform name.
func ParsePlatform(s string) (Platform, error) {
	switch Platform(s) {
	case IOS, Android:
		return Platform(s), nil
	}
	return "", fmt.Errorf("platform %q is not one of ios, android", s)
}

// LaneKind says how a lane ships: a store binary, an over-the-air update, or
// not at all because the change was refused.
type LaneKind string

const (
	KindStore   LaneKind = "store"
	KindOTA     LaneKind = "ota"
	KindRefused LaneKind = "refused"
)

// App is a mobile app releasepilot ships, keyed by its configured name.
type App struct {
	Name       string
	Repository string // GitHub "owner/name"
}

// ReleaseState is the overall state of a release, derived from its lanes.
type ReleaseState string

const (
	ReleasePlanning  ReleaseState = "planning"
	ReleaseActive    ReleaseState = "active"
	ReleaseCompleted ReleaseState = "completed"
	ReleaseFailed    ReleaseState = "failed"
	ReleaseCancelled ReleaseState = "cancelled"
)

// Release is one version of an app started from one git tag.
type Release struct {
	ID        string
	App       string
	Tag       string
	Version   string
	Commit    string
	State     ReleaseState
	Notes     string
	CreatedAt time.Time
	UpdatedAt time.Time
	// SupersededBy is the release that replaced this one when its tag moved
	// under the restart policy; "" while this one is the tag's current
	// release.
	SupersededBy string
	// TagState is what deliveries said of the tag since the release began:
	// "" (it points at Commit), TagMoved (to TagCommit) or TagDeleted.
	TagState  TagState
	TagCommit string
}

// Lane is the part of a release that ships to one platform.
type Lane struct {
	ID        string
	ReleaseID string
	Platform  Platform
	Kind      LaneKind
	// Reason explains the kind: why a store binary is needed, or why OTA was
	// refused (the files and dependencies that differ).
	Reason string
	Plan   Plan
	Status Status
}

// Binary is a store binary releasepilot shipped, with the native fingerprint of
// the commit it was built from. OTA releases may only target binaries whose
// fingerprint equals theirs.
type Binary struct {
	App         string
	Platform    Platform
	Version     string // marketing version, e.g. 1.4.0
	BuildNumber string // CFBundleVersion or versionCode
	Commit      string
	Fingerprint string
	ReleaseID   string
	CreatedAt   time.Time
}

// Event is one entry in the audit log.
type Event struct {
	ID        int64
	At        time.Time
	Actor     string
	ReleaseID string
	LaneID    string
	Kind      string
	Details   map[string]any
}
