// Package otalane ships OTA lanes through the CodePush server: the ota_lane
// job releases a JS bundle to Staging and promotes it to Production, and as
// the reconciler's Executor it moves, halts and rolls back that release.
package otalane

import (
	"log/slog"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/store"
)

// OTA ships OTA lanes through the CodePush server: the ota_lane job
// releases the bundle to Staging and promotes it to Production at the
// plan's first percentage; as an Executor it then moves the Production
// release's rollout for the reconciler, and observes its failure rate.
type OTA struct {
	Store    *store.Store
	CodePush *codepush.Service
	Apps     map[string]config.App
	Assets   lane.Assets
	Now      func() time.Time
	Log      *slog.Logger
	// AssetWait is how long after the release was created a missing bundle
	// asset is waited for when the app sets no ota.bundle_timeout (CI may
	// still be uploading it); default config.DefaultOTABundleTimeout.
	AssetWait time.Duration
}

// otaActor is who the CodePush history names for what lanes do.
const otaActor = "releasepilot"

// otaLaneData is what an OTA lane remembers between retries.
type otaLaneData struct {
	CodePushApp     string    `json:"codepush_app,omitempty"`
	TargetRange     string    `json:"target_range,omitempty"`
	StagingLabel    string    `json:"staging_label,omitempty"`
	StagedAt        time.Time `json:"staged_at,omitzero"`
	ProductionLabel string    `json:"production_label,omitempty"`
}

func (o *OTA) now() time.Time {
	if o.Now == nil {
		return time.Now().UTC()
	}
	return o.Now().UTC()
}

func (o *OTA) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}
