package release

import (
	"fmt"
	"strings"
)

// LaneInput is what plan_release knows about one platform of a release.
type LaneInput struct {
	Platform Platform
	// Fingerprint is the native fingerprint of the tagged commit.
	Fingerprint string
	// LiveFingerprint is the fingerprint of the newest store binary recorded
	// for the app and platform; empty when none was ever shipped.
	LiveFingerprint string
	// LiveVersion names that binary for the reason text ("1.4.0 (10400)").
	LiveVersion string
	// Difference explains how Fingerprint differs from LiveFingerprint
	// (files and dependencies); used verbatim in reasons.
	Difference   string
	StoreEnabled bool
	OTAEnabled   bool
	// OTAOnly is set when the tag asked for an over-the-air release only.
	OTAOnly bool
}

// DecideLane decides how one platform of a release ships: a store binary, an
// OTA update, or a refusal. The reason always says why.
func DecideLane(in LaneInput) (LaneKind, string) {
	native := in.LiveFingerprint == "" || in.Fingerprint != in.LiveFingerprint
	var why string
	switch {
	case in.LiveFingerprint == "":
		why = fmt.Sprintf("no %s binary has been recorded for this app yet, so there is nothing an OTA update could target", in.Platform)
	case in.Fingerprint == "":
		why = "the native fingerprint of the commit is unknown (fail closed)"
	case native:
		why = fmt.Sprintf("native code differs from the live %s binary %s", in.Platform, in.LiveVersion)
		if d := strings.TrimSpace(in.Difference); d != "" {
			why += ": " + d
		}
	}
	if !native {
		if in.OTAEnabled {
			return KindOTA, fmt.Sprintf("JS-only change: native fingerprint equals the live %s binary %s", in.Platform, in.LiveVersion)
		}
		if in.OTAOnly {
			return KindRefused, "OTA refused: OTA is not enabled for this app"
		}
		if in.StoreEnabled {
			return KindStore, "JS-only change, but OTA is not enabled for this app: shipping a store binary"
		}
		return KindRefused, fmt.Sprintf("neither OTA nor the %s store lane is enabled for this app", in.Platform)
	}
	if in.OTAOnly {
		return KindRefused, "OTA refused: " + why
	}
	if in.StoreEnabled {
		return KindStore, why
	}
	return KindRefused, fmt.Sprintf("OTA refused and no %s store lane is configured: %s", in.Platform, why)
}
