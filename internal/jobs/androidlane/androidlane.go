// Package androidlane drives Android store lanes through Google Play: the
// android_lane job (bundle upload or pickup, the internal track) and, as the
// reconciler's Executor, the staged rollout on the production track and the
// vitals its gates read.
package androidlane

import (
	"io"
	"log/slog"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/playstore"
)

// Android drives Google Play for Android store lanes. Its lane job puts the
// release's bundle in the app and on the internal track, records the binary
// and hands the lane to the reconciler; as the lanes' Executor it moves the
// staged rollout on the configured track (production by default).
//
// Everything it remembers between runs is in the lane's data (the
// versionCode above all); everything it changes on Play is read first, so a
// re-run after a crash changes nothing twice.
type Android struct {
	Store *store.Store
	Play  *playstore.Client
	// Apps is the configuration by app name.
	Apps map[string]config.App
	// Assets fetches android.aab_asset from the tag's GitHub release.
	Assets lane.Assets
	// Vitals observes crash and ANR rates for the gates; nil: no vitals, so
	// every gate holds.
	Vitals *gate.PlayVitals
	// BundleVersionCode reads the versionCode an AAB declares; nil means
	// ManifestVersionCode. Tests of fakes swap it.
	BundleVersionCode func(r io.ReaderAt, size int64) (int64, error)
	// PickupTimeout bounds the wait for the bundle when the app sets no
	// android.bundle_timeout: default config.DefaultBundleTimeout.
	PickupTimeout time.Duration
	// PickupPoll is how often it looks again: default 2 minutes.
	PickupPoll time.Duration
	Now        func() time.Time
	Log        *slog.Logger
}

// androidLaneData is an Android lane's memory between job runs and
// reconcile passes, stored as the lane's data.
type androidLaneData struct {
	// Package and Track are fixed when the lane starts, so a config change
	// cannot move a rollout in flight to another app or track.
	Package string `json:"package"`
	Track   string `json:"track"`
	// VersionCode is the bundle this lane ships; once set it never changes.
	VersionCode int64 `json:"version_code,omitempty"`
	// Asset names the GitHub release asset it came from ("" when CI
	// uploaded it and the lane picked it up).
	Asset string `json:"asset,omitempty"`
	// Uploaded: the bundle is in the app. Internal: it is on the internal
	// track as completed (or the lane skips that track).
	Uploaded bool `json:"uploaded,omitempty"`
	Internal bool `json:"internal,omitempty"`
	// WaitingSince is when the lane began to wait for CI's bundle.
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	// StartedAt is when the rollout on Track began; StageAt and StagePercent
	// say when the current percentage took effect, so a gate only trusts
	// vitals that reach past it.
	StartedAt    time.Time `json:"started_at,omitzero"`
	StageAt      time.Time `json:"stage_at,omitzero"`
	StagePercent int       `json:"stage_percent,omitempty"`
}

func (a *Android) now() time.Time {
	if a.Now == nil {
		return time.Now().UTC()
	}
	return a.Now().UTC()
}

func (a *Android) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}
