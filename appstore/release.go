package appstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// AppVersionState is an App Store version's appVersionState.
type AppVersionState string

const (
	VersionPrepareForSubmission       AppVersionState = "PREPARE_FOR_SUBMISSION"
	VersionReadyForReview             AppVersionState = "READY_FOR_REVIEW"
	VersionWaitingForReview           AppVersionState = "WAITING_FOR_REVIEW"
	VersionInReview                   AppVersionState = "IN_REVIEW"
	VersionPendingDeveloperRelease    AppVersionState = "PENDING_DEVELOPER_RELEASE"
	VersionReadyForDistribution       AppVersionState = "READY_FOR_DISTRIBUTION"
	VersionRejected                   AppVersionState = "REJECTED"
	VersionDeveloperRejected          AppVersionState = "DEVELOPER_REJECTED"
	VersionMetadataRejected           AppVersionState = "METADATA_REJECTED"
	VersionWaitingForExportCompliance AppVersionState = "WAITING_FOR_EXPORT_COMPLIANCE"
	VersionInvalidBinary              AppVersionState = "INVALID_BINARY"
	VersionPendingAppleRelease        AppVersionState = "PENDING_APPLE_RELEASE"
	VersionProcessingForDistribution  AppVersionState = "PROCESSING_FOR_DISTRIBUTION"
	VersionAccepted                   AppVersionState = "ACCEPTED"
	VersionReplacedWithNewVersion     AppVersionState = "REPLACED_WITH_NEW_VERSION"
)

// PastReview reports whether a version has been through App Review
// successfully (approved, or released since).
func (s AppVersionState) PastReview() bool {
	switch s {
	case VersionPendingDeveloperRelease, VersionPendingAppleRelease, VersionProcessingForDistribution,
		VersionReadyForDistribution, VersionAccepted, VersionReplacedWithNewVersion:
		return true
	}
	return false
}

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
// this call created it. When another version of the platform is still
// editable (prepared or rejected), App Store Connect allows no new one: the
// answer is then an *EditableVersionError (matching ErrConflict) naming it,
// and nothing is sent.
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
			v := versionFrom(r)
			if v.ReleaseType == ReleaseManual || !releaseTypeEditable(v.AppVersionState) {
				// A version past review keeps its release type; the
				// caller decides what its state means.
				return v, false, nil
			}
			// Someone created it in App Store Connect, where the default is
			// AFTER_APPROVAL: approval would release it to everyone at once.
			v, err := c.setReleaseType(ctx, v.ID, ReleaseManual)
			return v, false, err
		}
	}
	// Only one version per platform can be edited at a time: one that is
	// prepared or rejected blocks creating another. Say which, so the
	// caller can reuse it (SetVersionString) rather than be refused.
	eq := url.Values{"filter[platform]": {string(platform)}, "limit": {"200"}, "filter[appVersionState]": {strings.Join([]string{
		string(VersionPrepareForSubmission), string(VersionDeveloperRejected), string(VersionRejected), string(VersionMetadataRejected), string(VersionInvalidBinary)}, ",")}}
	editable, err := getAll[appStoreVersionAttrs](ctx, c, "/v1/apps/"+appID+"/appStoreVersions", eq)
	if err != nil {
		return nil, false, err
	}
	if len(editable) > 0 {
		return nil, false, &EditableVersionError{Version: *versionFrom(editable[0]), Wanted: versionString}
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

// releaseTypeEditable reports whether a version is still before release,
// where its releaseType decides what approval does.
func releaseTypeEditable(s AppVersionState) bool {
	switch s {
	case VersionPrepareForSubmission, VersionReadyForReview, VersionWaitingForReview, VersionInReview,
		VersionDeveloperRejected, VersionRejected, VersionMetadataRejected, VersionWaitingForExportCompliance,
		VersionInvalidBinary, VersionPendingDeveloperRelease:
		return true
	}
	return false
}

type releaseTypeAttrs struct {
	ReleaseType ReleaseType `json:"releaseType"`
}

// SetReleaseType sets when an approved version goes live. It reads the
// version first and sends nothing when the type is already rt.
func (c *Client) SetReleaseType(ctx context.Context, versionID string, rt ReleaseType) (*AppStoreVersion, error) {
	v, err := c.AppStoreVersion(ctx, versionID)
	if err != nil {
		return nil, err
	}
	if v.ReleaseType == rt {
		return v, nil
	}
	return c.setReleaseType(ctx, versionID, rt)
}

func (c *Client) setReleaseType(ctx context.Context, versionID string, rt ReleaseType) (*AppStoreVersion, error) {
	body := document[updateData[releaseTypeAttrs]]{Data: updateData[releaseTypeAttrs]{
		Type: "appStoreVersions", ID: versionID, Attributes: releaseTypeAttrs{ReleaseType: rt}}}
	var doc single[appStoreVersionAttrs]
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/appStoreVersions/" + versionID, body: body, idempotent: true}, &doc); err != nil {
		return nil, err
	}
	return versionFrom(doc.Data), nil
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
// reviewSubmissions. A rejected version's submission (UNRESOLVED_ISSUES,
// holding the version) is submitted again as it is. It reads first, so a
// re-run never submits twice:
//   - a version already waiting for or in review, approved or released was
//     submitted before (perhaps by a run whose answer was lost); its
//     submission is returned (found among all the app's submissions; if
//     none holds it, a ReviewSubmission without ID in state COMPLETE);
//   - otherwise the app's open submissions are read: one already in review
//     holding the version is returned as is; a READY_FOR_REVIEW one is
//     reused; a COMPLETING one or one in review without the version makes
//     it ErrSubmissionInFlight; else one is created.
//
// Then the version is added as an item if missing, and the submission is
// PATCHed with submitted: true. That PATCH is not repeated blindly: after
// any error (a 5xx whose request may have been applied, or the 409 a repeat
// gets) the submission is read, and WAITING_FOR_REVIEW or IN_REVIEW is
// success.
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
	v, err := c.AppStoreVersion(ctx, versionID)
	if err != nil {
		return nil, err
	}
	if v.AppVersionState == VersionWaitingForReview || v.AppVersionState == VersionInReview || v.AppVersionState.PastReview() {
		all := []ReviewSubmissionState{ReviewWaitingForReview, ReviewInReview, ReviewUnresolvedIssues, ReviewCompleting, ReviewComplete}
		s, err := c.submissionWithVersion(ctx, appID, platform, versionID, all)
		if err != nil || s != nil {
			return s, err
		}
		return &ReviewSubmission{Platform: platform, State: ReviewComplete}, nil
	}
	q := url.Values{
		"filter[app]":      {appID},
		"filter[platform]": {string(platform)},
		"filter[state]": {strings.Join([]string{string(ReviewReadyForReview), string(ReviewWaitingForReview), string(ReviewInReview),
			string(ReviewUnresolvedIssues), string(ReviewCompleting)}, ",")},
		"limit": {"200"},
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
		switch {
		case s.State == ReviewReadyForReview:
			if draft == nil || has {
				draft = s
			}
		case has && s.State == ReviewUnresolvedIssues:
			// App Review rejected the version and the submission stays
			// open with it: after the fix (a new build attached) the same
			// submission is submitted again; never "already submitted".
			draft = s
		case has:
			return s, nil // already submitted: nothing to do
		default:
			return nil, fmt.Errorf("%w: submission %s is %s", ErrSubmissionInFlight, s.ID, s.State)
		}
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
	perr := c.do(ctx, request{method: http.MethodPatch, path: "/v1/reviewSubmissions/" + draft.ID, body: body}, &doc)
	if perr == nil {
		return submissionFrom(doc.Data), nil
	}
	if ctx.Err() != nil {
		return nil, perr
	}
	// The submit may have been applied and its answer lost (a 5xx, a cut
	// connection), or this is a repeat that Apple refuses with 409 because
	// the first one worked: look before reporting a failure.
	s, err := c.ReviewSubmission(ctx, draft.ID)
	if err != nil {
		return nil, fmt.Errorf("%w (and reading submission %s afterwards failed: %v)", perr, draft.ID, err)
	}
	switch s.State {
	case ReviewWaitingForReview, ReviewInReview, ReviewCompleting, ReviewComplete:
		return s, nil
	}
	return nil, perr
}

// submissionWithVersion finds the app's submission in one of states that
// holds versionID, or nil.
func (c *Client) submissionWithVersion(ctx context.Context, appID string, platform Platform, versionID string, states []ReviewSubmissionState) (*ReviewSubmission, error) {
	ss := make([]string, len(states))
	for i, s := range states {
		ss[i] = string(s)
	}
	q := url.Values{"filter[app]": {appID}, "filter[platform]": {string(platform)}, "filter[state]": {strings.Join(ss, ",")}, "limit": {"200"}}
	subs, err := getAll[reviewSubmissionAttrs](ctx, c, "/v1/reviewSubmissions", q)
	if err != nil {
		return nil, err
	}
	for _, r := range subs {
		has, err := c.submissionHasVersion(ctx, r.ID, versionID)
		if err != nil {
			return nil, err
		}
		if has {
			return submissionFrom(r), nil
		}
	}
	return nil, nil
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
// nothing. Apple allows any number of pauses of up to 30 days each.
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

// MaxWhatsNew is the longest App Store "What's New" text, in characters.
const MaxWhatsNew = 4000

// VersionLocalization is an App Store version's metadata in one locale.
type VersionLocalization struct {
	ID       string
	Locale   string
	WhatsNew string
}

type versionLocalizationAttrs struct {
	Locale   string  `json:"locale,omitempty"`
	WhatsNew *string `json:"whatsNew,omitempty"`
}

// VersionLocalizations lists an App Store version's localizations.
func (c *Client) VersionLocalizations(ctx context.Context, versionID string) ([]VersionLocalization, error) {
	if err := requireID("versionID", versionID); err != nil {
		return nil, err
	}
	rs, err := getAll[versionLocalizationAttrs](ctx, c, "/v1/appStoreVersions/"+versionID+"/appStoreVersionLocalizations", url.Values{"limit": {"200"}})
	if err != nil {
		return nil, err
	}
	out := make([]VersionLocalization, 0, len(rs))
	for _, r := range rs {
		l := VersionLocalization{ID: r.ID, Locale: r.Attributes.Locale}
		if r.Attributes.WhatsNew != nil {
			l.WhatsNew = *r.Attributes.WhatsNew
		}
		out = append(out, l)
	}
	return out, nil
}

// SetWhatsNew writes "What's New" on every localization of an App Store
// version: texts[locale] where there is one, else text. An update cannot go
// to App Review while a localization lacks it (Apple's 409 names each). It
// reads the localizations first and PATCHes only the ones that differ,
// returning the locales it changed. An empty text for a locale, or one
// longer than MaxWhatsNew characters, is refused before anything is sent.
func (c *Client) SetWhatsNew(ctx context.Context, versionID string, texts map[string]string, text string) (changed []string, err error) {
	locs, err := c.VersionLocalizations(ctx, versionID)
	if err != nil {
		return nil, err
	}
	want := make([]string, len(locs))
	for i, l := range locs {
		w, ok := texts[l.Locale]
		if !ok {
			w = text
		}
		switch n := utf8.RuneCountInString(w); {
		case strings.TrimSpace(w) == "":
			return nil, &ValidationError{Field: "whatsNew", Value: l.Locale, Reason: "no text for this locale of the version"}
		case n > MaxWhatsNew:
			return nil, &ValidationError{Field: "whatsNew", Value: l.Locale, Reason: fmt.Sprintf("is %d characters long; the App Store takes at most %d", n, MaxWhatsNew)}
		}
		want[i] = w
	}
	for i, l := range locs {
		if l.WhatsNew == want[i] {
			continue
		}
		body := document[updateData[versionLocalizationAttrs]]{Data: updateData[versionLocalizationAttrs]{
			Type: "appStoreVersionLocalizations", ID: l.ID, Attributes: versionLocalizationAttrs{WhatsNew: &want[i]}}}
		if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/appStoreVersionLocalizations/" + l.ID, body: body, idempotent: true}, nil); err != nil {
			return changed, err
		}
		changed = append(changed, l.Locale)
	}
	return changed, nil
}

// HasReleasedVersion reports whether the app has a version on the App
// Store on platform already: then a new version is an update, which needs
// "What's New" (and may have a phased release).
func (c *Client) HasReleasedVersion(ctx context.Context, appID string, platform Platform) (bool, error) {
	if err := requireID("appID", appID); err != nil {
		return false, err
	}
	if platform == "" {
		platform = PlatformIOS
	}
	q := url.Values{"filter[platform]": {string(platform)}, "limit": {"1"},
		"filter[appVersionState]": {strings.Join([]string{string(VersionReadyForDistribution), string(VersionProcessingForDistribution), string(VersionReplacedWithNewVersion)}, ",")}}
	var col collection[appStoreVersionAttrs]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/apps/" + appID + "/appStoreVersions", query: q, idempotent: true}, &col); err != nil {
		return false, err
	}
	return len(col.Data) > 0, nil
}

// EditableVersionError says which editable version (prepared or rejected)
// stands in the way of creating another one: App Store Connect edits one
// version per platform at a time. Reuse it with SetVersionString, as
// fastlane's deliver does, or finish it first.
type EditableVersionError struct {
	Version AppStoreVersion
	Wanted  string
}

func (e *EditableVersionError) Error() string {
	return fmt.Sprintf("appstore: version %s cannot be created: version %s (%s) is %s, and only one version can be edited at a time",
		e.Wanted, e.Version.VersionString, e.Version.ID, e.Version.AppVersionState)
}

func (e *EditableVersionError) Is(target error) bool { return target == ErrConflict }

type versionStringAttrs struct {
	VersionString string `json:"versionString"`
}

// SetVersionString renames an editable version (prepared or rejected) so
// that it ships versionString. It reads the version first and sends
// nothing when it already has that string.
func (c *Client) SetVersionString(ctx context.Context, versionID, versionString string) (*AppStoreVersion, error) {
	if versionString == "" {
		return nil, &ValidationError{Field: "versionString", Reason: "must not be empty"}
	}
	v, err := c.AppStoreVersion(ctx, versionID)
	if err != nil {
		return nil, err
	}
	if v.VersionString == versionString {
		return v, nil
	}
	body := document[updateData[versionStringAttrs]]{Data: updateData[versionStringAttrs]{
		Type: "appStoreVersions", ID: versionID, Attributes: versionStringAttrs{VersionString: versionString}}}
	var doc single[appStoreVersionAttrs]
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/appStoreVersions/" + versionID, body: body, idempotent: true}, &doc); err != nil {
		return nil, err
	}
	return versionFrom(doc.Data), nil
}
