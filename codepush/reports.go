package codepush

import (
	"context"
	"regexp"
)

// DeployReport is a report_status/deploy body.
type DeployReport struct {
	DeploymentKey             string
	AppVersion                string
	ClientUniqueID            string
	Label                     string
	Status                    string // DeploymentSucceeded, DeploymentFailed (or Downloaded)
	PreviousLabelOrAppVersion string
	PreviousDeploymentKey     string // defaults to DeploymentKey
}

// Report statuses.
const (
	StatusSucceeded  = "DeploymentSucceeded"
	StatusFailed     = "DeploymentFailed"
	StatusDownloaded = "Downloaded"
)

// MaxReportField bounds every string field of a status report, in bytes.
// Real values are far shorter: a client id is a 36-character UUID, a label
// "v123", an app version "1.4.0".
const MaxReportField = 128

// reportLabelRE is the shape of the labels metrics are keyed by (reference
// §1.6); labelRE, stricter, is what this server generates.
var reportLabelRE = regexp.MustCompile(`^v[0-9]+$`)

func boundedField(field, v string) error {
	if len(v) > MaxReportField {
		return invalid(field, v[:32]+"…", "at most %d bytes", MaxReportField)
	}
	return nil
}

// hasLabel reports whether label is in the deployment's served history.
func (dv *deploymentView) hasLabel(label string) bool {
	if !reportLabelRE.MatchString(label) {
		return false
	}
	for i := range dv.releases {
		if dv.releases[i].Label == label {
			return true
		}
	}
	return false
}

// ClientReport is one device's status report as the Store counts it.
type ClientReport struct {
	DeploymentKey string
	ClientID      string
	// Label is the release the report is about or, for a device back on
	// its store binary (Status empty), the binary's app version.
	Label string
	// Status is StatusSucceeded, StatusFailed or StatusDownloaded, or empty
	// for a device that runs its store binary.
	Status string
	// PreviousDeploymentKey is the deployment the device left, when it
	// moved from another one (else empty).
	PreviousDeploymentKey string
}

// ReportDeploy records an install, a client-side rollback or a device back
// on its store binary.
//
// Reports are unauthenticated by protocol: the deployment key that
// authorises them ships inside every app binary, and the client id is
// whatever the client says. So what one report may change is bounded:
//   - a label must be one of the deployment's releases, an app version a
//     semantic version, every field at most MaxReportField bytes, and a
//     client id is required (else KindInvalid naming the field);
//   - each client id counts at most once per label and status: installed
//     and failed count devices, not reports, and Counts.Clients the
//     devices that reported an install or a failure of the label;
//   - active counts come from where each client id was last counted, not
//     from the report's "previous" fields, so they never go negative and a
//     repeated report moves nothing.
//
// A forger can still invent client ids; the per-address rate limit of the
// HTTP handlers bounds how fast. See the OTA gate's documentation for what
// that leaves.
func (s *Service) ReportDeploy(ctx context.Context, r DeployReport) error {
	for _, f := range [][2]string{{"deployment_key", r.DeploymentKey}, {"app_version", r.AppVersion}, {"client_unique_id", r.ClientUniqueID},
		{"label", r.Label}, {"status", r.Status}, {"previous_label_or_app_version", r.PreviousLabelOrAppVersion}, {"previous_deployment_key", r.PreviousDeploymentKey}} {
		if err := boundedField(f[0], f[1]); err != nil {
			return err
		}
	}
	if !validKey(r.DeploymentKey) || r.AppVersion == "" {
		return invalid("deployment_key", r.DeploymentKey, "A deploy status report must contain a valid appVersion and deploymentKey.")
	}
	if _, ok := NormalizeAppVersion(r.AppVersion); !ok {
		return invalid("app_version", r.AppVersion, "must be a semantic version such as 1.4.0")
	}
	if r.Label != "" && r.Status == "" {
		return invalid("status", "", "A deploy status report for a labelled package must contain a valid status.")
	}
	if r.Label != "" && r.Status != StatusSucceeded && r.Status != StatusFailed && r.Status != StatusDownloaded {
		return invalid("status", r.Status, "Invalid status: %s", r.Status)
	}
	if r.PreviousDeploymentKey != "" && !validKey(r.PreviousDeploymentKey) {
		return invalid("previous_deployment_key", r.PreviousDeploymentKey, "must be 10 to 100 characters of letters, digits, '_' or '-'")
	}
	dv := s.view(r.DeploymentKey)
	if dv == nil {
		return notFound("no deployment has the key %q", r.DeploymentKey)
	}
	if r.Label != "" && !dv.hasLabel(r.Label) {
		return invalid("label", r.Label, "not a release of this deployment")
	}
	// The previous label is not counted from (the store knows where each
	// client was), but a report naming one that cannot exist is refused.
	if prev := r.PreviousLabelOrAppVersion; prev != "" {
		isLabel := reportLabelRE.MatchString(prev)
		if _, ok := NormalizeAppVersion(prev); !isLabel && !ok {
			return invalid("previous_label_or_app_version", prev, "must be a label such as v7 or a semantic version such as 1.4.0")
		}
		pk := r.PreviousDeploymentKey
		if pk == "" {
			pk = r.DeploymentKey
		}
		if pv := s.view(pk); pv != nil && isLabel && !pv.hasLabel(prev) {
			return invalid("previous_label_or_app_version", prev, "not a release of the previous deployment")
		}
	}
	if r.ClientUniqueID == "" {
		return invalid("client_unique_id", "", "a deploy status report must contain client_unique_id: each device is counted once")
	}
	cr := ClientReport{DeploymentKey: r.DeploymentKey, ClientID: r.ClientUniqueID, Label: r.Label, Status: r.Status}
	if r.Label == "" {
		cr.Label, cr.Status = r.AppVersion, ""
	}
	if pk := r.PreviousDeploymentKey; pk != "" && pk != r.DeploymentKey && s.view(pk) != nil {
		cr.PreviousDeploymentKey = pk
	}
	return s.cfg.Store.RecordReport(ctx, cr)
}

// ReportDownload counts a device's download of a label, which must be one
// of the deployment's releases; each client id counts once per label.
func (s *Service) ReportDownload(ctx context.Context, deploymentKey, clientID, label string) error {
	for _, f := range [][2]string{{"label", label}, {"client_unique_id", clientID}} {
		if err := boundedField(f[0], f[1]); err != nil {
			return err
		}
	}
	if !validKey(deploymentKey) || label == "" {
		return invalid("deployment_key", deploymentKey, "A download status report must contain a valid deploymentKey and package label.")
	}
	if clientID == "" {
		return invalid("client_unique_id", "", "a download status report must contain client_unique_id: each device is counted once")
	}
	dv := s.view(deploymentKey)
	if dv == nil {
		return notFound("no deployment has the key %q", deploymentKey)
	}
	if !dv.hasLabel(label) {
		return invalid("label", label, "not a release of this deployment")
	}
	return s.cfg.Store.RecordReport(ctx, ClientReport{DeploymentKey: deploymentKey, ClientID: clientID, Label: label, Status: StatusDownloaded})
}
