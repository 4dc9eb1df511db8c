package appstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AppVersionState is an App Store version's appVersionState.
type AppVersionState string

const (
	VersionPrepareForSubmission    AppVersionState = "PREPARE_FOR_SUBMISSION"
	VersionReadyForReview          AppVersionState = "READY_FOR_REVIEW"
	VersionWaitingForReview        AppVersionState = "WAITING_FOR_REVIEW"
	VersionInReview                AppVersionState = "IN_REVIEW"
	VersionPendingDeveloperRelease AppVersionState = "PENDING_DEVELOPER_RELEASE"
	VersionReadyForDistribution    AppVersionState = "READY_FOR_DISTRIBUTION"
	VersionRejected                AppVersionState = "REJECTED"
	VersionDeveloperRejected       AppVersionState = "DEVELOPER_REJECTED"
	VersionMetadataRejected        AppVersionState = "METADATA_REJECTED"
)

// ReleaseType says when an approved version goes live.
type ReleaseType string

const (
	ReleaseManual        ReleaseType = "MANUAL"
	ReleaseAfterApproval ReleaseType = "AFTER_APPROVAL"
	ReleaseScheduled     ReleaseType = "SCHEDULED"
)

// AppStoreVersion is a version of an app on the App Store.
type AppStoreVersion struct {
	ID              string
	VersionString   string
	Platform        Platform
	AppVersionState AppVersionState
	ReleaseType     ReleaseType
}

type appStoreVersionAttrs struct {
	Platform        Platform        `json:"platform,omitempty"`
	VersionString   string          `json:"versionString,omitempty"`
	AppVersionState AppVersionState `json:"appVersionState,omitempty"`
	ReleaseType     ReleaseType     `json:"releaseType,omitempty"`
}

type appStoreVersionRels struct {
	App   toOne  `json:"app"`
	Build *toOne `json:"build,omitempty"`
}

func versionFrom(r resource[appStoreVersionAttrs]) *AppStoreVersion {
	return &AppStoreVersion{ID: r.ID, VersionString: r.Attributes.VersionString, Platform: r.Attributes.Platform,
		AppVersionState: r.Attributes.AppVersionState, ReleaseType: r.Attributes.ReleaseType}
}

// AppStoreVersion reads one version.
func (c *Client) AppStoreVersion(ctx context.Context, versionID string) (*AppStoreVersion, error) {
	if err := requireID("versionID", versionID); err != nil {
		return nil, err
	}
	r, err := getOne[appStoreVersionAttrs](ctx, c, "/v1/appStoreVersions/"+versionID, nil)
	if err != nil {
		return nil, err
	}
	return versionFrom(r), nil
}

// FindOrCreateAppStoreVersion returns the app's version versionString on
// platform, creating it (release type MANUAL, so the service decides when
// the phased release starts) if it does not exist. created reports whether
// this call created it.
func (c *Client) FindOrCreateAppStoreVersion(ctx context.Context, appID string, platform Platform, versionString string) (v *AppStoreVersion, created bool, err error) {
	if err := requireID("appID", appID); err != nil {
		return nil, false, err
	}
	if versionString == "" {
		return nil, false, &ValidationError{Field: "versionString", Reason: "must not be empty"}
	}
	if platform == "" {
		platform = PlatformIOS
	}
	q := url.Values{"filter[versionString]": {versionString}, "filter[platform]": {string(platform)}, "limit": {"200"}}
	rs, err := getAll[appStoreVersionAttrs](ctx, c, "/v1/apps/"+appID+"/appStoreVersions", q)
	if err != nil {
		return nil, false, err
	}
	for _, r := range rs {
		if r.Attributes.VersionString == versionString {
			return versionFrom(r), false, nil
		}
	}
	body := document[createData[appStoreVersionAttrs, appStoreVersionRels]]{Data: createData[appStoreVersionAttrs, appStoreVersionRels]{
		Type:          "appStoreVersions",
		Attributes:    &appStoreVersionAttrs{Platform: platform, VersionString: versionString, ReleaseType: ReleaseManual},
		Relationships: appStoreVersionRels{App: one("apps", appID)},
	}}
	var doc single[appStoreVersionAttrs]
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/appStoreVersions", body: body}, &doc); err != nil {
		return nil, false, err
	}
	return versionFrom(doc.Data), true, nil
}

// AttachBuild selects the build of an App Store version. It reads which
// build is attached first (GET /v1/builds?filter[appStoreVersion]=…) and
// sends nothing if it is already buildID.
func (c *Client) AttachBuild(ctx context.Context, versionID, buildID string) error {
	if err := requireID("versionID", versionID); err != nil {
		return err
	}
	if err := requireID("buildID", buildID); err != nil {
		return err
	}
	q := url.Values{"filter[appStoreVersion]": {versionID}, "limit": {"1"}}
	var col collection[buildAttrs]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/builds", query: q, idempotent: true}, &col); err != nil {
		return err
	}
	if len(col.Data) > 0 && col.Data[0].ID == buildID {
		return nil
	}
	body := document[resourceID]{Data: resourceID{Type: "builds", ID: buildID}}
	return c.do(ctx, request{method: http.MethodPatch, path: "/v1/appStoreVersions/" + versionID + "/relationships/build", body: body, idempotent: true}, nil)
}

// ReviewSubmissionState is a reviewSubmissions state.
type ReviewSubmissionState string

const (
	ReviewReadyForReview   ReviewSubmissionState = "READY_FOR_REVIEW"
	ReviewWaitingForReview ReviewSubmissionState = "WAITING_FOR_REVIEW"
	ReviewInReview         ReviewSubmissionState = "IN_REVIEW"
	ReviewUnresolvedIssues ReviewSubmissionState = "UNRESOLVED_ISSUES"
	ReviewCanceling        ReviewSubmissionState = "CANCELING"
	ReviewCompleting       ReviewSubmissionState = "COMPLETING"
	ReviewComplete         ReviewSubmissionState = "COMPLETE"
)

// ReviewSubmission is an App Review submission of an app.
type ReviewSubmission struct {
	ID            string
	Platform      Platform
	State         ReviewSubmissionState
	SubmittedDate time.Time
}

type reviewSubmissionAttrs struct {
	Platform      Platform              `json:"platform,omitempty"`
	State         ReviewSubmissionState `json:"state,omitempty"`
	SubmittedDate *time.Time            `json:"submittedDate,omitempty"`
}

type reviewSubmissionCreateAttrs struct {
	Platform Platform `json:"platform"`
}

type reviewSubmissionRels struct {
	App toOne `json:"app"`
}

type reviewSubmissionSubmitAttrs struct {
	Submitted bool `json:"submitted"`
}

type reviewSubmissionItemRels struct {
	ReviewSubmission toOne `json:"reviewSubmission"`
	AppStoreVersion  toOne `json:"appStoreVersion"`
}

func submissionFrom(r resource[reviewSubmissionAttrs]) *ReviewSubmission {
	s := &ReviewSubmission{ID: r.ID, Platform: r.Attributes.Platform, State: r.Attributes.State}
	if r.Attributes.SubmittedDate != nil {
		s.SubmittedDate = *r.Attributes.SubmittedDate
	}
	return s
}

// ReviewSubmission reads one review submission.
func (c *Client) ReviewSubmission(ctx context.Context, submissionID string) (*ReviewSubmission, error) {
	if err := requireID("submissionID", submissionID); err != nil {
		return nil, err
	}
	r, err := getOne[reviewSubmissionAttrs](ctx, c, "/v1/reviewSubmissions/"+submissionID, nil)
	if err != nil {
		return nil, err
	}
	return submissionFrom(r), nil
}

// ErrSubmissionInFlight is returned by SubmitForReview when the app already
// has a submission in review that does not contain the version.
var ErrSubmissionInFlight = errors.New("appstore: another review submission is in flight for this app")

// SubmitForReview submits an App Store version for App Review through
// reviewSubmissions: it reads the app's open submissions first; a
// submission already in review containing the version is returned as is; a
// READY_FOR_REVIEW submission is reused; otherwise one is created. Then the
// version is added as an item if missing, and the submission is PATCHed
// with submitted: true.
func (c *Client) SubmitForReview(ctx context.Context, appID string, platform Platform, versionID string) (*ReviewSubmission, error) {
	if err := requireID("appID", appID); err != nil {
		return nil, err
	}
	if err := requireID("versionID", versionID); err != nil {
		return nil, err
	}
	if platform == "" {
		platform = PlatformIOS
	}
	q := url.Values{
		"filter[app]":      {appID},
		"filter[platform]": {string(platform)},
		"filter[state]":    {strings.Join([]string{string(ReviewReadyForReview), string(ReviewWaitingForReview), string(ReviewInReview), string(ReviewUnresolvedIssues)}, ",")},
		"limit":            {"200"},
	}
	open, err := getAll[reviewSubmissionAttrs](ctx, c, "/v1/reviewSubmissions", q)
	if err != nil {
		return nil, err
	}
	var draft *ReviewSubmission
	for _, r := range open {
		s := submissionFrom(r)
		has, err := c.submissionHasVersion(ctx, s.ID, versionID)
		if err != nil {
			return nil, err
		}
		if s.State == ReviewReadyForReview {
			if draft == nil || has {
				draft = s
			}
			continue
		}
		if has {
			return s, nil // already submitted: nothing to do
		}
		return nil, fmt.Errorf("%w: submission %s is %s", ErrSubmissionInFlight, s.ID, s.State)
	}
	if draft == nil {
		body := document[createData[reviewSubmissionCreateAttrs, reviewSubmissionRels]]{Data: createData[reviewSubmissionCreateAttrs, reviewSubmissionRels]{
			Type:          "reviewSubmissions",
			Attributes:    &reviewSubmissionCreateAttrs{Platform: platform},
			Relationships: reviewSubmissionRels{App: one("apps", appID)},
		}}
		var doc single[reviewSubmissionAttrs]
		if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/reviewSubmissions", body: body}, &doc); err != nil {
			return nil, err
		}
		draft = submissionFrom(doc.Data)
	}
	has, err := c.submissionHasVersion(ctx, draft.ID, versionID)
	if err != nil {
		return nil, err
	}
	if !has {
		body := document[createData[struct{}, reviewSubmissionItemRels]]{Data: createData[struct{}, reviewSubmissionItemRels]{
			Type: "reviewSubmissionItems",
			Relationships: reviewSubmissionItemRels{
				ReviewSubmission: one("reviewSubmissions", draft.ID),
				AppStoreVersion:  one("appStoreVersions", versionID),
			},
		}}
		if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/reviewSubmissionItems", body: body}, nil); err != nil {
			return nil, err
		}
	}
	body := document[updateData[reviewSubmissionSubmitAttrs]]{Data: updateData[reviewSubmissionSubmitAttrs]{
		Type: "reviewSubmissions", ID: draft.ID, Attributes: reviewSubmissionSubmitAttrs{Submitted: true}}}
	var doc single[reviewSubmissionAttrs]
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/reviewSubmissions/" + draft.ID, body: body, idempotent: true}, &doc); err != nil {
		return nil, err
	}
	return submissionFrom(doc.Data), nil
}

type reviewSubmissionItemAttrs struct {
	State string `json:"state"`
}

func (c *Client) submissionHasVersion(ctx context.Context, submissionID, versionID string) (bool, error) {
	// Relationship linkage is only sent for included relationships.
	items, err := getAll[reviewSubmissionItemAttrs](ctx, c, "/v1/reviewSubmissions/"+submissionID+"/items",
		url.Values{"limit": {"200"}, "include": {"appStoreVersion"}})
	if err != nil {
		return false, err
	}
	for _, it := range items {
		if it.Relationships["appStoreVersion"].id() == versionID && it.Attributes.State != "REMOVED" {
			return true, nil
		}
	}
	return false, nil
}

// PhasedReleaseState is the state of a 7-day phased release.
type PhasedReleaseState string

const (
	PhasedInactive PhasedReleaseState = "INACTIVE"
	PhasedActive   PhasedReleaseState = "ACTIVE"
	PhasedPaused   PhasedReleaseState = "PAUSED"
	PhasedComplete PhasedReleaseState = "COMPLETE"
)

// PhasedRelease is a version's phased release. App Store Connect sets the
// day (1–7, following 1, 2, 5, 10, 20, 50, 100 %); the service can only
// pause, resume or complete it.
type PhasedRelease struct {
	ID                 string
	State              PhasedReleaseState
	StartDate          time.Time
	TotalPauseDuration int // as reported by Apple (believed to be days)
	CurrentDayNumber   int
}

type phasedReleaseAttrs struct {
	PhasedReleaseState PhasedReleaseState `json:"phasedReleaseState,omitempty"`
	StartDate          *time.Time         `json:"startDate,omitempty"`
	TotalPauseDuration int                `json:"totalPauseDuration,omitempty"`
	CurrentDayNumber   int                `json:"currentDayNumber,omitempty"`
}

type phasedReleaseStateAttrs struct {
	PhasedReleaseState PhasedReleaseState `json:"phasedReleaseState"`
}

type phasedReleaseRels struct {
	AppStoreVersion toOne `json:"appStoreVersion"`
}

func phasedFrom(r resource[phasedReleaseAttrs]) *PhasedRelease {
	p := &PhasedRelease{ID: r.ID, State: r.Attributes.PhasedReleaseState,
		TotalPauseDuration: r.Attributes.TotalPauseDuration, CurrentDayNumber: r.Attributes.CurrentDayNumber}
	if r.Attributes.StartDate != nil {
		p.StartDate = *r.Attributes.StartDate
	}
	return p
}

// PhasedRelease reads the phased release of a version; an error matching
// ErrNotFound means the version has none.
func (c *Client) PhasedRelease(ctx context.Context, versionID string) (*PhasedRelease, error) {
	if err := requireID("versionID", versionID); err != nil {
		return nil, err
	}
	r, err := getOne[phasedReleaseAttrs](ctx, c, "/v1/appStoreVersions/"+versionID+"/appStoreVersionPhasedRelease", nil)
	if err != nil {
		return nil, err
	}
	if r.ID == "" {
		return nil, fmt.Errorf("appstore: version %s has no phased release: %w", versionID, ErrNotFound)
	}
	return phasedFrom(r), nil
}

// CreatePhasedRelease enables a phased release for a version (state INACTIVE
// until the version is released, or ACTIVE). It reads first and returns the
// existing phased release unchanged if there is one.
func (c *Client) CreatePhasedRelease(ctx context.Context, versionID string, state PhasedReleaseState) (*PhasedRelease, error) {
	cur, err := c.PhasedRelease(ctx, versionID)
	if err == nil {
		return cur, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if state == "" {
		state = PhasedInactive
	}
	if state != PhasedInactive && state != PhasedActive {
		return nil, &ValidationError{Field: "phasedReleaseState", Value: string(state), Reason: "a new phased release must be INACTIVE or ACTIVE"}
	}
	body := document[createData[phasedReleaseStateAttrs, phasedReleaseRels]]{Data: createData[phasedReleaseStateAttrs, phasedReleaseRels]{
		Type:          "appStoreVersionPhasedReleases",
		Attributes:    &phasedReleaseStateAttrs{PhasedReleaseState: state},
		Relationships: phasedReleaseRels{AppStoreVersion: one("appStoreVersions", versionID)},
	}}
	var doc single[phasedReleaseAttrs]
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/appStoreVersionPhasedReleases", body: body}, &doc); err != nil {
		return nil, err
	}
	return phasedFrom(doc.Data), nil
}

// PausePhasedRelease pauses the version's phased release (the halt action
// for iOS; nothing is removed from sale). Pausing a paused release sends
// nothing. Apple allows 30 days of pause in total.
func (c *Client) PausePhasedRelease(ctx context.Context, versionID string) (*PhasedRelease, error) {
	return c.setPhasedState(ctx, versionID, PhasedPaused)
}

// ResumePhasedRelease resumes a paused phased release.
func (c *Client) ResumePhasedRelease(ctx context.Context, versionID string) (*PhasedRelease, error) {
	return c.setPhasedState(ctx, versionID, PhasedActive)
}

// CompletePhasedRelease releases the version to all users now.
func (c *Client) CompletePhasedRelease(ctx context.Context, versionID string) (*PhasedRelease, error) {
	return c.setPhasedState(ctx, versionID, PhasedComplete)
}

func (c *Client) setPhasedState(ctx context.Context, versionID string, want PhasedReleaseState) (*PhasedRelease, error) {
	cur, err := c.PhasedRelease(ctx, versionID)
	if err != nil {
		return nil, err
	}
	if cur.State == want {
		return cur, nil
	}
	if cur.State == PhasedComplete {
		return nil, fmt.Errorf("appstore: phased release %s is already COMPLETE, cannot set %s: %w", cur.ID, want, ErrConflict)
	}
	body := document[updateData[phasedReleaseStateAttrs]]{Data: updateData[phasedReleaseStateAttrs]{
		Type: "appStoreVersionPhasedReleases", ID: cur.ID, Attributes: phasedReleaseStateAttrs{PhasedReleaseState: want}}}
	var doc single[phasedReleaseAttrs]
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/appStoreVersionPhasedReleases/" + cur.ID, body: body, idempotent: true}, &doc); err != nil {
		return nil, err
	}
	return phasedFrom(doc.Data), nil
}

type releaseRequestRels struct {
	AppStoreVersion toOne `json:"appStoreVersion"`
}

// ReleaseVersion releases an approved MANUAL version
// (POST /v1/appStoreVersionReleaseRequests); with a phased release this
// starts day 1. Apple cannot undo it, so it reads the version first: one
// already released is left alone, and one not yet PENDING_DEVELOPER_RELEASE
// is refused with ErrConflict without calling the API.
func (c *Client) ReleaseVersion(ctx context.Context, versionID string) (*AppStoreVersion, error) {
	v, err := c.AppStoreVersion(ctx, versionID)
	if err != nil {
		return nil, err
	}
	switch v.AppVersionState {
	case VersionReadyForDistribution, "PROCESSING_FOR_DISTRIBUTION":
		return v, nil
	case VersionPendingDeveloperRelease:
	default:
		return nil, fmt.Errorf("appstore: version %s is %s, not PENDING_DEVELOPER_RELEASE: %w", v.VersionString, v.AppVersionState, ErrConflict)
	}
	body := document[createData[struct{}, releaseRequestRels]]{Data: createData[struct{}, releaseRequestRels]{
		Type: "appStoreVersionReleaseRequests", Relationships: releaseRequestRels{AppStoreVersion: one("appStoreVersions", versionID)}}}
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/appStoreVersionReleaseRequests", body: body}, nil); err != nil {
		return nil, err
	}
	return c.AppStoreVersion(ctx, versionID)
}
