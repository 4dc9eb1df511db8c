package appstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxWhatToTest is the longest "What to Test" text accepted, in characters.
// fastlane truncates at 4000 and attributes the limit to Apple.
const MaxWhatToTest = 4000

// BetaBuildLocalization is a build's "What to Test" text in one locale.
type BetaBuildLocalization struct {
	ID       string
	Locale   string
	WhatsNew string
}

type betaBuildLocalizationAttrs struct {
	Locale   string  `json:"locale,omitempty"`
	WhatsNew *string `json:"whatsNew,omitempty"`
}

type betaBuildLocalizationRels struct {
	Build toOne `json:"build"`
}

func localizationFrom(r resource[betaBuildLocalizationAttrs]) *BetaBuildLocalization {
	l := &BetaBuildLocalization{ID: r.ID, Locale: r.Attributes.Locale}
	if r.Attributes.WhatsNew != nil {
		l.WhatsNew = *r.Attributes.WhatsNew
	}
	return l
}

// SetWhatToTest sets a build's "What to Test" text for locale (e.g. "en-US").
// It reads the existing localization first: equal text sends nothing, a
// different text is PATCHed, a missing locale is created. Text longer than
// MaxWhatToTest characters is refused before any call.
func (c *Client) SetWhatToTest(ctx context.Context, buildID, locale, text string) (*BetaBuildLocalization, error) {
	if err := requireID("buildID", buildID); err != nil {
		return nil, err
	}
	if locale == "" {
		return nil, &ValidationError{Field: "locale", Reason: "must not be empty"}
	}
	if !utf8.ValidString(text) {
		return nil, &ValidationError{Field: "whatsNew", Reason: "is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(text); n > MaxWhatToTest {
		return nil, &ValidationError{Field: "whatsNew", Reason: fmt.Sprintf("is %d characters long; App Store Connect accepts at most %d", n, MaxWhatToTest)}
	}
	q := url.Values{"filter[build]": {buildID}, "filter[locale]": {locale}}
	existing, err := getAll[betaBuildLocalizationAttrs](ctx, c, "/v1/betaBuildLocalizations", q)
	if err != nil {
		return nil, err
	}
	for _, r := range existing {
		if r.Attributes.Locale != locale {
			continue
		}
		cur := localizationFrom(r)
		if cur.WhatsNew == text {
			return cur, nil
		}
		body := document[updateData[betaBuildLocalizationAttrs]]{Data: updateData[betaBuildLocalizationAttrs]{
			Type: "betaBuildLocalizations", ID: r.ID, Attributes: betaBuildLocalizationAttrs{WhatsNew: &text}}}
		var doc single[betaBuildLocalizationAttrs]
		if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/betaBuildLocalizations/" + r.ID, body: body, idempotent: true}, &doc); err != nil {
			return nil, err
		}
		return localizationFrom(doc.Data), nil
	}
	body := document[createData[betaBuildLocalizationAttrs, betaBuildLocalizationRels]]{Data: createData[betaBuildLocalizationAttrs, betaBuildLocalizationRels]{
		Type:          "betaBuildLocalizations",
		Attributes:    &betaBuildLocalizationAttrs{Locale: locale, WhatsNew: &text},
		Relationships: betaBuildLocalizationRels{Build: one("builds", buildID)},
	}}
	var doc single[betaBuildLocalizationAttrs]
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/betaBuildLocalizations", body: body}, &doc); err != nil {
		return nil, err
	}
	return localizationFrom(doc.Data), nil
}

// BetaGroup is a TestFlight tester group.
type BetaGroup struct {
	ID                   string
	Name                 string
	IsInternalGroup      bool
	HasAccessToAllBuilds bool
	PublicLinkEnabled    bool
}

type betaGroupAttrs struct {
	Name                 string `json:"name"`
	IsInternalGroup      bool   `json:"isInternalGroup"`
	HasAccessToAllBuilds bool   `json:"hasAccessToAllBuilds"`
	PublicLinkEnabled    bool   `json:"publicLinkEnabled"`
}

func groupsFrom(rs []resource[betaGroupAttrs]) []BetaGroup {
	out := make([]BetaGroup, 0, len(rs))
	for _, r := range rs {
		out = append(out, BetaGroup{ID: r.ID, Name: r.Attributes.Name, IsInternalGroup: r.Attributes.IsInternalGroup,
			HasAccessToAllBuilds: r.Attributes.HasAccessToAllBuilds, PublicLinkEnabled: r.Attributes.PublicLinkEnabled})
	}
	return out
}

// BetaGroups lists all beta groups of an app (every page).
func (c *Client) BetaGroups(ctx context.Context, appID string) ([]BetaGroup, error) {
	if err := requireID("appID", appID); err != nil {
		return nil, err
	}
	rs, err := getAll[betaGroupAttrs](ctx, c, "/v1/betaGroups", url.Values{"filter[app]": {appID}, "limit": {"200"}})
	if err != nil {
		return nil, err
	}
	return groupsFrom(rs), nil
}

// BuildBetaGroups lists the beta groups a build is already in.
func (c *Client) BuildBetaGroups(ctx context.Context, buildID string) ([]BetaGroup, error) {
	if err := requireID("buildID", buildID); err != nil {
		return nil, err
	}
	rs, err := getAll[betaGroupAttrs](ctx, c, "/v1/betaGroups", url.Values{"filter[builds]": {buildID}, "limit": {"200"}})
	if err != nil {
		return nil, err
	}
	return groupsFrom(rs), nil
}

// AddBuildToGroups makes a build available to the given beta groups. It reads
// the build's current groups first and links only the missing ones, in one
// request; added lists the group ids it linked (empty if nothing was needed).
func (c *Client) AddBuildToGroups(ctx context.Context, buildID string, groupIDs ...string) (added []string, err error) {
	if err := requireID("buildID", buildID); err != nil {
		return nil, err
	}
	if len(groupIDs) == 0 {
		return nil, &ValidationError{Field: "groupIDs", Reason: "at least one group is required"}
	}
	for _, g := range groupIDs {
		if err := requireID("groupID", g); err != nil {
			return nil, err
		}
	}
	have, err := c.BuildBetaGroups(ctx, buildID)
	if err != nil {
		return nil, err
	}
	var body toMany
	for _, g := range groupIDs {
		if slices.ContainsFunc(have, func(h BetaGroup) bool { return h.ID == g }) || slices.Contains(added, g) {
			continue
		}
		added = append(added, g)
		body.Data = append(body.Data, resourceID{Type: "betaGroups", ID: g})
	}
	if len(added) == 0 {
		return nil, nil
	}
	// Linking is idempotent on the server side, so retrying a 5xx is safe.
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/builds/" + buildID + "/relationships/betaGroups", body: body, idempotent: true}, nil); err != nil {
		return nil, err
	}
	return added, nil
}

// BetaReviewState is a beta app review submission's state.
type BetaReviewState string

const (
	BetaReviewWaiting  BetaReviewState = "WAITING_FOR_REVIEW"
	BetaReviewInReview BetaReviewState = "IN_REVIEW"
	BetaReviewRejected BetaReviewState = "REJECTED"
	BetaReviewApproved BetaReviewState = "APPROVED"
)

// BetaAppReviewSubmission is a build's submission to TestFlight (external) review.
type BetaAppReviewSubmission struct {
	ID            string
	BuildID       string
	State         BetaReviewState
	SubmittedDate time.Time
}

type betaAppReviewSubmissionAttrs struct {
	BetaReviewState BetaReviewState `json:"betaReviewState"`
	SubmittedDate   *time.Time      `json:"submittedDate,omitempty"`
}

type betaAppReviewSubmissionRels struct {
	Build toOne `json:"build"`
}

func betaSubmissionFrom(r resource[betaAppReviewSubmissionAttrs], buildID string) *BetaAppReviewSubmission {
	s := &BetaAppReviewSubmission{ID: r.ID, BuildID: buildID, State: r.Attributes.BetaReviewState}
	if id := r.Relationships["build"].id(); id != "" {
		s.BuildID = id
	}
	if r.Attributes.SubmittedDate != nil {
		s.SubmittedDate = *r.Attributes.SubmittedDate
	}
	return s
}

// BetaReviewSubmission reads the beta review submission of a build; an
// error matching ErrNotFound means the build was never submitted.
func (c *Client) BetaReviewSubmission(ctx context.Context, buildID string) (*BetaAppReviewSubmission, error) {
	if err := requireID("buildID", buildID); err != nil {
		return nil, err
	}
	q := url.Values{"filter[build]": {buildID}, "limit": {strconv.Itoa(1)}}
	var col collection[betaAppReviewSubmissionAttrs]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/betaAppReviewSubmissions", query: q, idempotent: true}, &col); err != nil {
		return nil, err
	}
	if len(col.Data) == 0 {
		return nil, fmt.Errorf("appstore: build %s has no beta review submission: %w", buildID, ErrNotFound)
	}
	return betaSubmissionFrom(col.Data[0], buildID), nil
}

// SubmitForBetaReview submits a build to Beta App Review (needed before
// external testers get it). If the build already has a submission, that one
// is returned and nothing is sent. App Store Connect answers 409 while
// another build of the same version is in review and 422 while the build
// is not ready; both come back as *APIError.
func (c *Client) SubmitForBetaReview(ctx context.Context, buildID string) (*BetaAppReviewSubmission, error) {
	cur, err := c.BetaReviewSubmission(ctx, buildID)
	if err == nil {
		return cur, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	body := document[createData[struct{}, betaAppReviewSubmissionRels]]{Data: createData[struct{}, betaAppReviewSubmissionRels]{
		Type: "betaAppReviewSubmissions", Relationships: betaAppReviewSubmissionRels{Build: one("builds", buildID)}}}
	var doc single[betaAppReviewSubmissionAttrs]
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/betaAppReviewSubmissions", body: body}, &doc); err != nil {
		return nil, err
	}
	return betaSubmissionFrom(doc.Data, buildID), nil
}

// BetaAppReviewDetail is an app's Beta App Review information.
type BetaAppReviewDetail struct {
	ContactFirstName, ContactLastName, ContactPhone, ContactEmail string
	DemoAccountRequired                                           bool
	DemoAccountName, DemoAccountPassword                          string
}

type betaAppReviewDetailAttrs struct {
	ContactFirstName    string `json:"contactFirstName"`
	ContactLastName     string `json:"contactLastName"`
	ContactPhone        string `json:"contactPhone"`
	ContactEmail        string `json:"contactEmail"`
	DemoAccountName     string `json:"demoAccountName"`
	DemoAccountPassword string `json:"demoAccountPassword"`
	DemoAccountRequired bool   `json:"demoAccountRequired"`
}

// BetaAppReviewInfo reads an app's Beta App Review information (GET
// /v1/apps/{id}/betaAppReviewDetail).
func (c *Client) BetaAppReviewInfo(ctx context.Context, appID string) (*BetaAppReviewDetail, error) {
	if err := requireID("appID", appID); err != nil {
		return nil, err
	}
	r, err := getOne[betaAppReviewDetailAttrs](ctx, c, "/v1/apps/"+appID+"/betaAppReviewDetail", nil)
	if err != nil {
		return nil, err
	}
	a := r.Attributes
	return &BetaAppReviewDetail{ContactFirstName: a.ContactFirstName, ContactLastName: a.ContactLastName, ContactPhone: a.ContactPhone,
		ContactEmail: a.ContactEmail, DemoAccountRequired: a.DemoAccountRequired, DemoAccountName: a.DemoAccountName,
		DemoAccountPassword: a.DemoAccountPassword}, nil
}

// BetaAppLocalization is an app's TestFlight test information in a locale.
type BetaAppLocalization struct {
	ID, Locale, FeedbackEmail, Description string
}

type betaAppLocalizationAttrs struct {
	Locale        string `json:"locale"`
	FeedbackEmail string `json:"feedbackEmail"`
	Description   string `json:"description"`
}

// BetaAppLocalizations lists an app's TestFlight test information, one per
// locale (every page).
func (c *Client) BetaAppLocalizations(ctx context.Context, appID string) ([]BetaAppLocalization, error) {
	if err := requireID("appID", appID); err != nil {
		return nil, err
	}
	rs, err := getAll[betaAppLocalizationAttrs](ctx, c, "/v1/betaAppLocalizations", url.Values{"filter[app]": {appID}, "limit": {"200"}})
	if err != nil {
		return nil, err
	}
	out := make([]BetaAppLocalization, 0, len(rs))
	for _, r := range rs {
		out = append(out, BetaAppLocalization{ID: r.ID, Locale: r.Attributes.Locale, FeedbackEmail: r.Attributes.FeedbackEmail, Description: r.Attributes.Description})
	}
	return out, nil
}

// BetaReviewMissing reads what Beta App Review needs from an app before it
// takes a build and lists what is missing, by the name App Store Connect
// uses ("betaAppReviewDetail.contactEmail", "betaAppLocalization
// feedbackEmail"); empty when nothing is. Two reads, no write.
func (c *Client) BetaReviewMissing(ctx context.Context, appID string) ([]string, error) {
	d, err := c.BetaAppReviewInfo(ctx, appID)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"contactFirstName", d.ContactFirstName}, {"contactLastName", d.ContactLastName},
		{"contactPhone", d.ContactPhone}, {"contactEmail", d.ContactEmail}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, "betaAppReviewDetail."+f.name)
		}
	}
	if d.DemoAccountRequired {
		for _, f := range []struct{ name, v string }{{"demoAccountName", d.DemoAccountName}, {"demoAccountPassword", d.DemoAccountPassword}} {
			if strings.TrimSpace(f.v) == "" {
				missing = append(missing, "betaAppReviewDetail."+f.name+" (demoAccountRequired is true)")
			}
		}
	}
	locs, err := c.BetaAppLocalizations(ctx, appID)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(locs, func(l BetaAppLocalization) bool {
		return strings.TrimSpace(l.FeedbackEmail) != "" && strings.TrimSpace(l.Description) != ""
	}) {
		missing = append(missing, "a betaAppLocalization with feedbackEmail and description")
	}
	return missing, nil
}
