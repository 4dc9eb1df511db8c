package appstore

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Platform is an App Store Connect platform.
type Platform string

const (
	PlatformIOS      Platform = "IOS"
	PlatformMacOS    Platform = "MAC_OS"
	PlatformTVOS     Platform = "TV_OS"
	PlatformVisionOS Platform = "VISION_OS"
)

// ProcessingState is a build's processingState.
type ProcessingState string

const (
	ProcessingStateProcessing ProcessingState = "PROCESSING"
	ProcessingStateFailed     ProcessingState = "FAILED"
	ProcessingStateInvalid    ProcessingState = "INVALID"
	ProcessingStateValid      ProcessingState = "VALID"
)

// Done reports whether processing has ended (successfully or not).
func (s ProcessingState) Done() bool { return s != "" && s != ProcessingStateProcessing }

// App is an App Store Connect app.
type App struct {
	ID       string
	BundleID string
	Name     string
	SKU      string
}

type appAttrs struct {
	BundleID string `json:"bundleId"`
	Name     string `json:"name"`
	SKU      string `json:"sku"`
}

// FindApp returns the app whose bundle id is exactly bundleID. The API filter
// can return prefix matches, so the result is compared exactly. An unknown
// bundle id gives an error matching ErrNotFound.
func (c *Client) FindApp(ctx context.Context, bundleID string) (*App, error) {
	if err := requireID("bundleID", bundleID); err != nil {
		return nil, err
	}
	q := url.Values{"filter[bundleId]": {bundleID}, "limit": {"200"}}
	rs, err := getAll[appAttrs](ctx, c, "/v1/apps", q)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Attributes.BundleID == bundleID {
			return &App{ID: r.ID, BundleID: r.Attributes.BundleID, Name: r.Attributes.Name, SKU: r.Attributes.SKU}, nil
		}
	}
	return nil, fmt.Errorf("appstore: no app with bundle id %q: %w", bundleID, ErrNotFound)
}

// Build is an uploaded binary.
type Build struct {
	ID              string
	Version         string // the build number (CFBundleVersion)
	ProcessingState ProcessingState
	Expired         bool
	// UsesNonExemptEncryption is nil until export compliance is answered.
	UsesNonExemptEncryption *bool
	UploadedDate            time.Time
	ExpirationDate          time.Time
	MinOSVersion            string
}

type buildAttrs struct {
	Version                 string          `json:"version"`
	UploadedDate            *time.Time      `json:"uploadedDate,omitempty"`
	ExpirationDate          *time.Time      `json:"expirationDate,omitempty"`
	Expired                 bool            `json:"expired"`
	MinOsVersion            string          `json:"minOsVersion,omitempty"`
	ProcessingState         ProcessingState `json:"processingState"`
	UsesNonExemptEncryption *bool           `json:"usesNonExemptEncryption"`
}

func buildFrom(r resource[buildAttrs]) *Build {
	b := &Build{
		ID:                      r.ID,
		Version:                 r.Attributes.Version,
		ProcessingState:         r.Attributes.ProcessingState,
		Expired:                 r.Attributes.Expired,
		UsesNonExemptEncryption: r.Attributes.UsesNonExemptEncryption,
		MinOSVersion:            r.Attributes.MinOsVersion,
	}
	if r.Attributes.UploadedDate != nil {
		b.UploadedDate = *r.Attributes.UploadedDate
	}
	if r.Attributes.ExpirationDate != nil {
		b.ExpirationDate = *r.Attributes.ExpirationDate
	}
	return b
}

// BuildQuery selects builds. AppID is required; empty fields do not filter.
type BuildQuery struct {
	AppID            string
	Version          string   // marketing version (preReleaseVersion.version), e.g. "1.2.3"
	BuildNumber      string   // CFBundleVersion, e.g. "45"
	Platform         Platform // preReleaseVersion.platform
	ProcessingStates []ProcessingState
	// IncludeExpired also returns expired builds (default: only unexpired).
	IncludeExpired bool
	Limit          int // page size, default 50, at most 200
}

// FindBuilds lists builds matching q, newest upload first (one page).
func (c *Client) FindBuilds(ctx context.Context, q BuildQuery) ([]Build, error) {
	if err := requireID("AppID", q.AppID); err != nil {
		return nil, err
	}
	v := url.Values{"filter[app]": {q.AppID}, "sort": {"-uploadedDate"}}
	if q.Version != "" {
		v.Set("filter[preReleaseVersion.version]", q.Version)
	}
	if q.BuildNumber != "" {
		v.Set("filter[version]", q.BuildNumber)
	}
	if q.Platform != "" {
		v.Set("filter[preReleaseVersion.platform]", string(q.Platform))
	}
	if len(q.ProcessingStates) > 0 {
		s := make([]string, len(q.ProcessingStates))
		for i, p := range q.ProcessingStates {
			s[i] = string(p)
		}
		v.Set("filter[processingState]", strings.Join(s, ","))
	}
	if !q.IncludeExpired {
		v.Set("filter[expired]", "false")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 200 {
		return nil, &ValidationError{Field: "Limit", Value: strconv.Itoa(limit), Reason: "must be at most 200"}
	}
	v.Set("limit", strconv.Itoa(limit))
	var col collection[buildAttrs]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/builds", query: v, idempotent: true}, &col); err != nil {
		return nil, err
	}
	out := make([]Build, 0, len(col.Data))
	for _, r := range col.Data {
		out = append(out, *buildFrom(r))
	}
	return out, nil
}

// FindBuild returns the one unexpired build of appID with marketing version
// and build number on platform. A build can take minutes to appear after an
// upload: until then the error matches ErrNotFound (snooze and ask again).
func (c *Client) FindBuild(ctx context.Context, appID string, platform Platform, version, buildNumber string) (*Build, error) {
	if version == "" || buildNumber == "" {
		return nil, &ValidationError{Field: "version/buildNumber", Reason: "both are required"}
	}
	bs, err := c.FindBuilds(ctx, BuildQuery{AppID: appID, Version: version, BuildNumber: buildNumber, Platform: platform, Limit: 2})
	if err != nil {
		return nil, err
	}
	if alt := alternateVersion(version); len(bs) == 0 && alt != "" {
		// App Store Connect treats 1.2 and 1.2.0 as one version, but only
		// the spelling of the first upload is queryable (as fastlane found).
		if bs, err = c.FindBuilds(ctx, BuildQuery{AppID: appID, Version: alt, BuildNumber: buildNumber, Platform: platform, Limit: 2}); err != nil {
			return nil, err
		}
	}
	switch len(bs) {
	case 0:
		return nil, fmt.Errorf("appstore: build %s (%s) of app %s not found yet: %w", buildNumber, version, appID, ErrNotFound)
	case 1:
		return &bs[0], nil
	}
	return nil, fmt.Errorf("appstore: more than one unexpired build %s (%s) of app %s; expire all but one in App Store Connect: %w", buildNumber, version, appID, ErrAmbiguous)
}

// alternateVersion returns the other spelling of X.Y / X.Y.0, or "".
func alternateVersion(v string) string {
	switch parts := strings.Split(v, "."); {
	case len(parts) == 2:
		return v + ".0"
	case len(parts) == 3 && parts[2] == "0":
		return strings.TrimSuffix(v, ".0")
	}
	return ""
}

// Build reads one build.
func (c *Client) Build(ctx context.Context, buildID string) (*Build, error) {
	if err := requireID("buildID", buildID); err != nil {
		return nil, err
	}
	r, err := getOne[buildAttrs](ctx, c, "/v1/builds/"+buildID, nil)
	if err != nil {
		return nil, err
	}
	return buildFrom(r), nil
}

type buildUpdateAttrs struct {
	Expired                 *bool `json:"expired,omitempty"`
	UsesNonExemptEncryption *bool `json:"usesNonExemptEncryption,omitempty"`
}

// SetUsesNonExemptEncryption answers export compliance for a build. It reads
// the build first and, as fastlane does, sends the answer only while the
// build has none (no ITSAppUsesNonExemptEncryption in its Info.plist, nobody
// answered in App Store Connect). An answer that is already given is never
// overwritten: a different one is an *EncryptionMismatchError (matching
// ErrConflict), since one of the two declarations is wrong.
func (c *Client) SetUsesNonExemptEncryption(ctx context.Context, buildID string, uses bool) (*Build, error) {
	b, err := c.Build(ctx, buildID)
	if err != nil {
		return nil, err
	}
	if b.UsesNonExemptEncryption != nil {
		if *b.UsesNonExemptEncryption != uses {
			return b, &EncryptionMismatchError{BuildID: buildID, Declared: *b.UsesNonExemptEncryption, Wanted: uses}
		}
		return b, nil
	}
	return c.patchBuild(ctx, buildID, buildUpdateAttrs{UsesNonExemptEncryption: &uses})
}

// EncryptionMismatchError is a build whose usesNonExemptEncryption is
// already answered, differently from what the caller wanted to declare.
type EncryptionMismatchError struct {
	BuildID  string
	Declared bool // the build's answer
	Wanted   bool // the caller's
}

func (e *EncryptionMismatchError) Error() string {
	return fmt.Sprintf("appstore: build %s already declares usesNonExemptEncryption=%t, not %t; it is not overwritten", e.BuildID, e.Declared, e.Wanted)
}

// Is matches ErrConflict.
func (e *EncryptionMismatchError) Is(target error) bool { return target == ErrConflict }

// ExpireBuild expires a build so testers can no longer install it. It
// reads the build first and sends nothing if it is already expired.
func (c *Client) ExpireBuild(ctx context.Context, buildID string) (*Build, error) {
	b, err := c.Build(ctx, buildID)
	if err != nil {
		return nil, err
	}
	if b.Expired {
		return b, nil
	}
	t := true
	return c.patchBuild(ctx, buildID, buildUpdateAttrs{Expired: &t})
}

func (c *Client) patchBuild(ctx context.Context, buildID string, a buildUpdateAttrs) (*Build, error) {
	body := document[updateData[buildUpdateAttrs]]{Data: updateData[buildUpdateAttrs]{Type: "builds", ID: buildID, Attributes: a}}
	var doc single[buildAttrs]
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/builds/" + buildID, body: body, idempotent: true}, &doc); err != nil {
		return nil, err
	}
	return buildFrom(doc.Data), nil
}

// BetaBuildState is an internal or external TestFlight state of a build.
type BetaBuildState string

const (
	BetaStateProcessing              BetaBuildState = "PROCESSING"
	BetaStateProcessingException     BetaBuildState = "PROCESSING_EXCEPTION"
	BetaStateMissingExportCompliance BetaBuildState = "MISSING_EXPORT_COMPLIANCE"
	BetaStateReadyForBetaTesting     BetaBuildState = "READY_FOR_BETA_TESTING"
	BetaStateInBetaTesting           BetaBuildState = "IN_BETA_TESTING"
	BetaStateExpired                 BetaBuildState = "EXPIRED"
	BetaStateReadyForBetaSubmission  BetaBuildState = "READY_FOR_BETA_SUBMISSION"
	BetaStateWaitingForBetaReview    BetaBuildState = "WAITING_FOR_BETA_REVIEW"
	BetaStateInBetaReview            BetaBuildState = "IN_BETA_REVIEW"
	BetaStateBetaRejected            BetaBuildState = "BETA_REJECTED"
	BetaStateBetaApproved            BetaBuildState = "BETA_APPROVED"
)

// BuildBetaDetail is a build's TestFlight status.
type BuildBetaDetail struct {
	ID                 string
	AutoNotifyEnabled  bool
	InternalBuildState BetaBuildState
	ExternalBuildState BetaBuildState
}

type buildBetaDetailAttrs struct {
	AutoNotifyEnabled  bool           `json:"autoNotifyEnabled"`
	InternalBuildState BetaBuildState `json:"internalBuildState"`
	ExternalBuildState BetaBuildState `json:"externalBuildState"`
}

// BuildBetaDetail reads the TestFlight states of a build.
func (c *Client) BuildBetaDetail(ctx context.Context, buildID string) (*BuildBetaDetail, error) {
	if err := requireID("buildID", buildID); err != nil {
		return nil, err
	}
	r, err := getOne[buildBetaDetailAttrs](ctx, c, "/v1/builds/"+buildID+"/buildBetaDetail", nil)
	if err != nil {
		return nil, err
	}
	return &BuildBetaDetail{ID: r.ID, AutoNotifyEnabled: r.Attributes.AutoNotifyEnabled,
		InternalBuildState: r.Attributes.InternalBuildState, ExternalBuildState: r.Attributes.ExternalBuildState}, nil
}

// BuildEncryptionDeclaration returns the id of the app encryption
// declaration linked to a build ("" when none).
func (c *Client) BuildEncryptionDeclaration(ctx context.Context, buildID string) (string, error) {
	if err := requireID("buildID", buildID); err != nil {
		return "", err
	}
	r, err := getOne[buildAttrs](ctx, c, "/v1/builds/"+buildID, url.Values{"include": {"appEncryptionDeclaration"}})
	if err != nil {
		return "", err
	}
	return r.Relationships["appEncryptionDeclaration"].id(), nil
}

// SetEncryptionDeclaration links a build to an app encryption declaration,
// which Apple needs before it reviews a build that uses non-exempt
// encryption (Beta App Review or the App Store). It reads the build's
// declaration first and sends nothing when it is already declarationID; an
// unknown declaration comes back as Apple's 409.
func (c *Client) SetEncryptionDeclaration(ctx context.Context, buildID, declarationID string) error {
	if err := requireID("declarationID", declarationID); err != nil {
		return err
	}
	cur, err := c.BuildEncryptionDeclaration(ctx, buildID)
	if err != nil {
		return err
	}
	if cur == declarationID {
		return nil
	}
	body := document[resourceID]{Data: resourceID{Type: "appEncryptionDeclarations", ID: declarationID}}
	return c.do(ctx, request{method: http.MethodPatch, path: "/v1/builds/" + buildID + "/relationships/appEncryptionDeclaration", body: body, idempotent: true}, nil)
}
