package codepush

import "strings"

// UpdateRequest is a device's update check. Absent parameters are empty:
// code-push-server turns an absent label or hash into the string "undefined",
// which makes a device on its store binary inherit mandatory-ness from any
// older mandatory release; treating absent as empty is the deliberate choice
// here (reference §1.5, "Quirk").
type UpdateRequest struct {
	DeploymentKey  string
	AppVersion     string // the binary's version as sent ("2", "2.0" are accepted)
	PackageHash    string // hash of the running update, or of the binary on iOS
	Label          string // label of the running update
	ClientUniqueID string // only used for rollout membership
	IsCompanion    bool   // ignore the binary version
}

// UpdateInfo is the answer to an update check, before URL composition.
type UpdateInfo struct {
	DownloadURL            string
	Description            string
	IsAvailable            bool
	IsMandatory            bool
	AppVersion             string
	PackageHash            string
	Label                  string
	PackageSize            int64
	UpdateAppVersion       bool
	ShouldRunBinaryVersion bool

	// Release is the offered release when IsAvailable; nil otherwise.
	Release *Release
}

// viewRelease is a release with its target range parsed once per snapshot.
type viewRelease struct {
	Release
	rng     Range
	rangeOK bool
}

func newViewReleases(h []Release) []viewRelease {
	out := make([]viewRelease, len(h))
	for i, r := range h {
		out[i].Release = r
		out[i].rng, out[i].rangeOK = ParseRange(r.AppVersion)
	}
	return out
}

func (v *viewRelease) satisfiedBy(ver Version) bool { return v.rangeOK && v.rng.Satisfies(ver) }

// NormalizeAppVersion turns "2" into "2.0.0" and "2.0" / "2.0-beta" into
// "2.0.0" / "2.0.0-beta", as code-push-server does before validating, and
// reports whether the result is a valid semantic version.
func NormalizeAppVersion(s string) (Version, bool) {
	n, _ := normalizeAppVersion(s)
	return ParseVersion(n)
}

// normalizeAppVersion is the string rewrite of code-push-server's update
// check; changed reports whether it applied (the response then echoes the
// original spelling).
func normalizeAppVersion(s string) (n string, changed bool) {
	main, rest := s, ""
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		main, rest = s[:i], s[i:]
	}
	switch strings.Count(main, ".") {
	case 0:
		if isNumeric(main) && rest == "" {
			return main + ".0.0", true
		}
	case 1:
		a, b, _ := strings.Cut(main, ".")
		if isNumeric(a) && isNumeric(b) {
			return main + ".0" + rest, true
		}
	}
	return s, false
}

// Resolve answers an update check against a deployment history (oldest
// first) exactly as code-push-server's getUpdatePackageInfo plus its rollout
// selection do. An invalid app version yields an *Error of KindInvalid.
func Resolve(history []Release, req UpdateRequest) (UpdateInfo, error) {
	v, ok := NormalizeAppVersion(req.AppVersion)
	if !ok {
		return UpdateInfo{}, invalid("app_version", req.AppVersion, "must be a semantic version such as 1.4.0")
	}
	return resolveView(newViewReleases(history), v, req), nil
}

func resolveView(h []viewRelease, v Version, req UpdateRequest) UpdateInfo {
	norm, changed := normalizeAppVersion(req.AppVersion)
	info, rollout := scan(h, v, norm, req, false)
	if !unfinishedRollout(rollout) {
		if changed && info.AppVersion == norm {
			info.AppVersion = req.AppVersion // the server echoes the original spelling
		}
		return info
	}
	orig, _ := scan(h, v, norm, req, true)
	// code-push-server decides the echo on the original (non-rollout) answer
	// and applies it to both; kept for wire fidelity.
	echo := changed && orig.AppVersion == norm
	tag := info.Label
	if tag == "" {
		tag = info.PackageHash
	}
	// A device without an id never gets the rollout package.
	if req.ClientUniqueID == "" || !InRollout(req.ClientUniqueID, rollout, tag) {
		info = orig
	}
	if echo {
		info.AppVersion = req.AppVersion
	}
	return info
}

// scan is getUpdatePackage: newest to oldest, see the reference §1.5.
func scan(h []viewRelease, v Version, reqVersion string, req UpdateRequest, ignoreRollouts bool) (UpdateInfo, int) {
	var info UpdateInfo
	if len(h) == 0 {
		info.ShouldRunBinaryVersion = true
		return info, 0
	}
	found := false
	mandatory := false
	var latestEnabled, latestSatisfying *viewRelease
	for i := len(h) - 1; i >= 0; i-- {
		e := &h[i]
		found = found || (req.Label == "" && req.PackageHash == "") ||
			(req.Label != "" && e.Label == req.Label) ||
			(req.Label == "" && e.PackageHash == req.PackageHash)
		if e.Disabled || (ignoreRollouts && unfinishedRollout(e.Rollout)) {
			continue
		}
		if latestEnabled == nil {
			latestEnabled = e
		}
		if !req.IsCompanion && !e.satisfiedBy(v) {
			continue
		}
		if latestSatisfying == nil {
			latestSatisfying = e
		}
		if found {
			break
		} else if e.Mandatory {
			mandatory = true
			break
		}
	}
	info.ShouldRunBinaryVersion = latestSatisfying == nil
	if latestEnabled == nil {
		return info, 0
	}
	if info.ShouldRunBinaryVersion || latestSatisfying.PackageHash == req.PackageHash {
		if latestEnabled.rangeOK && latestEnabled.rng.GreaterThanRange(v) {
			info.AppVersion = latestEnabled.AppVersion
		} else if !latestEnabled.satisfiedBy(v) {
			info.UpdateAppVersion = true
			info.AppVersion = latestEnabled.AppVersion
		}
		return info, 0
	}
	r := latestSatisfying.Release
	info.Release = &r
	info.DownloadURL = r.BlobURL
	info.PackageSize = r.Size
	info.Description = r.Description
	info.IsMandatory = mandatory || r.Mandatory
	info.IsAvailable = true
	info.Label = r.Label
	info.PackageHash = r.PackageHash
	info.AppVersion = reqVersion // the client's version, not the range: old plugins need plain versions
	return info, r.Rollout
}
