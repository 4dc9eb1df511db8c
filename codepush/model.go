package codepush

import "time"

// Default deployments created with every app, as code-push-server does.
const (
	Staging    = "Staging"
	Production = "Production"
)

// App is a mobile app (one per platform, by convention) with its deployments.
type App struct {
	Name        string       `json:"name"`
	Deployments []Deployment `json:"deployments"`
	CreatedAt   time.Time    `json:"createdTime"`
}

// Deployment is a release channel of an app; devices name it by its key.
type Deployment struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// ReleaseMethod tells how a release entered its deployment's history.
type ReleaseMethod string

// Release methods.
const (
	MethodUpload   ReleaseMethod = "Upload"
	MethodPromote  ReleaseMethod = "Promote"
	MethodRollback ReleaseMethod = "Rollback"
)

// Release is one entry of a deployment's append-only history.
type Release struct {
	Label       string `json:"label"`      // "v1", "v2", ...
	AppVersion  string `json:"appVersion"` // target binary range (node-semver)
	Description string `json:"description"`
	Mandatory   bool   `json:"isMandatory"`
	Disabled    bool   `json:"isDisabled"`
	// Rollout is the percentage of devices offered the release, 1..100; 100
	// (also the zero value) means everyone.
	Rollout     int           `json:"rollout"`
	PackageHash string        `json:"packageHash"` // what the client verifies (see PackageHash)
	Size        int64         `json:"size"`
	BlobKey     string        `json:"blobKey"`           // key in Blobs
	BlobURL     string        `json:"blobUrl,omitempty"` // absolute download URL overriding the served one
	Method      ReleaseMethod `json:"releaseMethod"`
	// OriginalLabel and OriginalDeployment name the source of a promote or
	// rollback.
	OriginalLabel      string    `json:"originalLabel,omitempty"`
	OriginalDeployment string    `json:"originalDeployment,omitempty"`
	ReleasedBy         string    `json:"releasedBy,omitempty"`
	Commit             string    `json:"commit,omitempty"`
	UploadTime         time.Time `json:"uploadTime"`
}

// Counts are a release's (or binary version's) status-report counters. Each
// counts devices (client ids), not reports: a device counts at most once
// per label and status.
type Counts struct {
	Active     int64 `json:"active"`     // devices whose latest report put them on this label
	Downloaded int64 `json:"downloaded"` // devices that reported downloading it
	Installed  int64 `json:"installed"`  // devices that reported installing it
	Failed     int64 `json:"failed"`     // devices that reported rolling it back
	// Clients is the number of devices that reported an install or a
	// failure of the label: the sample size of its failure rate.
	Clients int64 `json:"clients"`
}

// CountDelta is a change to the counters of a label (or, for binary
// versions, an app version) in a deployment, for stores that take counters
// in bulk (an import, a test's fixture). Devices' reports are counted with
// Store.RecordReport, which is what keeps them per device.
type CountDelta struct {
	DeploymentKey string
	Label         string
	Counts        // added to the stored values; a result below zero is stored as zero
}
