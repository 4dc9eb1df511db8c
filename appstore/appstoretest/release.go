package appstoretest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/swapjoy/releasepilot/appstore"
)

func (f *Fake) releaseRoutes() {
	f.route("GET /v1/apps/{id}/appStoreVersions", []string{"filter[platform]", "filter[versionString]", "filter[appStoreState]", "filter[appVersionState]", "filter[id]", "limit", "include"}, f.listVersions)
	f.route("POST /v1/appStoreVersions", nil, f.createVersion)
	f.route("GET /v1/appStoreVersions/{id}", []string{"include"}, f.getVersion)
	f.route("PATCH /v1/appStoreVersions/{id}", nil, f.patchVersion)
	f.route("PATCH /v1/appStoreVersions/{id}/relationships/build", nil, f.attachBuild)
	f.route("GET /v1/appStoreVersions/{id}/appStoreVersionLocalizations", []string{"filter[locale]", "limit", "include"}, f.listVersionLocs)
	f.route("PATCH /v1/appStoreVersionLocalizations/{id}", nil, f.patchVersionLoc)
	f.route("GET /v1/reviewSubmissions", []string{"filter[platform]", "filter[state]", "filter[app]", "limit", "include"}, f.listSubs)
	f.route("POST /v1/reviewSubmissions", nil, f.createSub)
	f.route("GET /v1/reviewSubmissions/{id}", []string{"include"}, f.getSub)
	f.route("PATCH /v1/reviewSubmissions/{id}", nil, f.patchSub)
	f.route("GET /v1/reviewSubmissions/{id}/items", []string{"limit", "include"}, f.listItems)
	f.route("POST /v1/reviewSubmissionItems", nil, f.createItem)
	f.route("POST /v1/appStoreVersionReleaseRequests", nil, f.createReleaseRequest)
	f.route("POST /v1/appStoreVersionPhasedReleases", nil, f.createPhased)
	f.route("PATCH /v1/appStoreVersionPhasedReleases/{id}", nil, f.patchPhased)
	f.route("GET /v1/appStoreVersions/{id}/appStoreVersionPhasedRelease", nil, f.getPhased)
}

var platforms = []string{"IOS", "MAC_OS", "TV_OS", "VISION_OS"}

func (f *Fake) versionObj(r *http.Request, v *version) map[string]any {
	return obj(r, "appStoreVersions", v.id, map[string]any{
		"platform": string(v.platform), "versionString": v.versionString, "appVersionState": string(v.state),
		"releaseType": string(v.releaseType), "createdDate": ts(v.created), "reviewType": "APP_STORE", "downloadable": true,
	}, map[string]any{"app": relOne(r, "appStoreVersions/"+v.id, "app", false, "apps", v.appID)})
}

func (f *Fake) listVersions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkLimit(w, r, 200) || !checkEnum(w, q, "filter[platform]", platforms...) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[r.PathValue("id")]; !ok {
		notFound(w, "apps", r.PathValue("id"))
		return
	}
	var out []map[string]any
	for _, id := range sortedKeys(f.versions) {
		v := f.versions[id]
		if v.appID == r.PathValue("id") && match(csv(q, "filter[platform]"), string(v.platform)) &&
			match(csv(q, "filter[versionString]"), v.versionString) && match(csv(q, "filter[appVersionState]"), string(v.state)) &&
			match(csv(q, "filter[id]"), v.id) {
			out = append(out, f.versionObj(r, v))
		}
	}
	writeList(w, r, out)
}

func (f *Fake) getVersion(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.versions[r.PathValue("id")]
	if !ok {
		notFound(w, "appStoreVersions", r.PathValue("id"))
		return
	}
	f.pollDistribution(v)
	writeOne(w, r, http.StatusOK, f.versionObj(r, v))
}

// releaseTypeEditable: the states in which a version's release type still
// decides what happens on approval [UNVERIFIED exact list; the fake takes
// the states before release].
func releaseTypeEditable(s appstore.AppVersionState) bool {
	return !s.PastReview() || s == appstore.VersionPendingDeveloperRelease
}

type patchVersionAttrs struct {
	VersionString       *string `json:"versionString"`
	Copyright           *string `json:"copyright"`
	ReviewType          *string `json:"reviewType"`
	ReleaseType         *string `json:"releaseType"`
	EarliestReleaseDate *string `json:"earliestReleaseDate"`
	UsesIdfa            *bool   `json:"usesIdfa"`
	Downloadable        *bool   `json:"downloadable"`
}

// patchVersion updates releaseType (and accepts the other attributes
// without storing them).
func (f *Fake) patchVersion(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[patchVersionAttrs, struct{}](w, r, "appStoreVersions")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.versions[r.PathValue("id")]
	if !ok {
		notFound(w, "appStoreVersions", r.PathValue("id"))
		return
	}
	if vs := req.Attributes.VersionString; vs != nil && *vs != v.versionString {
		// Renaming is how an editable version is reused for the next
		// release (fastlane deliver does it); only an editable version can
		// be renamed, to a version string not used before [UNVERIFIED codes].
		if !editable(v.state) {
			conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("The version string cannot be changed while the version is %s.", v.state), "")
			return
		}
		for _, o := range f.versions {
			if o.id != v.id && o.appID == v.appID && o.platform == v.platform && o.versionString == *vs {
				conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE", "The provided entity includes an attribute with a value that has already been used",
					fmt.Sprintf("The version number '%s' has already been used.", *vs), "/data/attributes/versionString")
				return
			}
		}
		v.versionString = *vs
	}
	if rt := req.Attributes.ReleaseType; rt != nil && appstore.ReleaseType(*rt) != v.releaseType {
		switch appstore.ReleaseType(*rt) {
		case appstore.ReleaseManual, appstore.ReleaseAfterApproval, appstore.ReleaseScheduled:
		default:
			conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value",
				fmt.Sprintf("'%s' is not a valid releaseType", *rt), "/data/attributes/releaseType")
			return
		}
		if !releaseTypeEditable(v.state) {
			conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("The release type cannot be changed while the version is %s.", v.state), "")
			return
		}
		v.releaseType = appstore.ReleaseType(*rt)
	}
	writeOne(w, r, http.StatusOK, f.versionObj(r, v))
}

// blocksNewVersion reports whether a version still blocks creating a new one.
func blocksNewVersion(s appstore.AppVersionState) bool {
	return !slices.Contains([]appstore.AppVersionState{appstore.VersionReadyForDistribution, "REPLACED_WITH_NEW_VERSION", "ACCEPTED"}, s)
}

type createVersionAttrs struct {
	Platform            string  `json:"platform"`
	VersionString       string  `json:"versionString"`
	Copyright           *string `json:"copyright"`
	ReviewType          string  `json:"reviewType"`
	ReleaseType         string  `json:"releaseType"`
	EarliestReleaseDate *string `json:"earliestReleaseDate"`
	UsesIdfa            *bool   `json:"usesIdfa"`
}

type createVersionRels struct {
	App   *toOneReq `json:"app"`
	Build *toOneReq `json:"build"`
}

func (f *Fake) createVersion(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[createVersionAttrs, createVersionRels](w, r, "appStoreVersions")
	if !ok {
		return
	}
	appID, ok := requireRel(w, req.Relationships.App, "app", "apps")
	if !ok {
		return
	}
	a := req.Attributes
	if !slices.Contains(platforms, a.Platform) || a.VersionString == "" {
		conflict(w, "ENTITY_ERROR.ATTRIBUTE.REQUIRED", "The provided entity is missing a required attribute",
			"You must provide a value for the attributes 'platform' and 'versionString' with this request", "/data/attributes/versionString")
		return
	}
	if a.ReleaseType == "" {
		a.ReleaseType = string(appstore.ReleaseAfterApproval)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[appID]; !ok {
		relNotFound(w, "app", "apps", appID)
		return
	}
	for _, v := range f.versions {
		if v.appID != appID || string(v.platform) != a.Platform {
			continue
		}
		if v.versionString == a.VersionString {
			conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE", "The provided entity includes an attribute with a value that has already been used",
				fmt.Sprintf("The version number '%s' has already been used.", a.VersionString), "/data/attributes/versionString")
			return
		}
		if blocksNewVersion(v.state) {
			// Observed while the previous version is still in review (sceneview#3143).
			conflict(w, "ENTITY_ERROR.RELATIONSHIP.INVALID", "The provided entity includes a relationship with an invalid value",
				fmt.Sprintf("You cannot create a new version of the App in the current state (version %s is %s).", v.versionString, v.state), "/data/relationships/app")
			return
		}
	}
	v := &version{id: f.newID("version"), appID: appID, versionString: a.VersionString, platform: appstore.Platform(a.Platform),
		state: appstore.VersionPrepareForSubmission, releaseType: appstore.ReleaseType(a.ReleaseType), created: f.now()}
	f.versions[v.id] = v
	f.addVersionLocsLocked(v)
	writeOne(w, r, http.StatusCreated, f.versionObj(r, v))
}

func (f *Fake) attachBuild(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Data *linkage `json:"data"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Data == nil || !checkType(w, req.Data.Type, "builds") {
		if req.Data == nil {
			unprocessable(w, "data is required")
		}
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.versions[r.PathValue("id")]
	if !ok {
		notFound(w, "appStoreVersions", r.PathValue("id"))
		return
	}
	b, ok := f.builds[req.Data.ID]
	if !ok || b.appID != v.appID {
		relNotFound(w, "build", "builds", req.Data.ID)
		return
	}
	if v.state != appstore.VersionPrepareForSubmission && v.state != appstore.VersionDeveloperRejected &&
		v.state != appstore.VersionRejected && v.state != appstore.VersionMetadataRejected {
		conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("The build cannot be changed while the version is %s.", v.state), "")
		return
	}
	if b.state != appstore.ProcessingStateValid || b.expired {
		conflict(w, "ENTITY_ERROR.RELATIONSHIP.INVALID", "The provided entity includes a relationship with an invalid value",
			"The build is not valid for this version.", "/data")
		return
	}
	for _, o := range f.builds {
		if o.versionID == v.id {
			o.versionID = ""
		}
	}
	b.versionID = v.id
	w.WriteHeader(http.StatusNoContent)
}

func (f *Fake) subObj(r *http.Request, s *reviewSub) map[string]any {
	a := map[string]any{"platform": string(s.platform), "state": string(s.state)}
	if !s.submitted.IsZero() {
		a["submittedDate"] = ts(s.submitted)
	}
	return obj(r, "reviewSubmissions", s.id, a, map[string]any{"app": relOne(r, "reviewSubmissions/"+s.id, "app", false, "apps", s.appID)})
}

func (f *Fake) listSubs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !requireParam(w, q, "filter[app]") || !checkLimit(w, r, 200) || !checkEnum(w, q, "filter[platform]", platforms...) ||
		!checkEnum(w, q, "filter[state]", "READY_FOR_REVIEW", "WAITING_FOR_REVIEW", "IN_REVIEW", "UNRESOLVED_ISSUES", "CANCELING", "COMPLETING", "COMPLETE") {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, id := range sortedKeys(f.subs) {
		s := f.subs[id]
		if match(csv(q, "filter[app]"), s.appID) && match(csv(q, "filter[platform]"), string(s.platform)) && match(csv(q, "filter[state]"), string(s.state)) {
			out = append(out, f.subObj(r, s))
		}
	}
	writeList(w, r, out)
}

func (f *Fake) getSub(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.subs[r.PathValue("id")]
	if !ok {
		notFound(w, "reviewSubmissions", r.PathValue("id"))
		return
	}
	writeOne(w, r, http.StatusOK, f.subObj(r, s))
}

type createSubAttrs struct {
	Platform string `json:"platform"`
}

type createSubRels struct {
	App *toOneReq `json:"app"`
}

func (f *Fake) createSub(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[*createSubAttrs, createSubRels](w, r, "reviewSubmissions")
	if !ok {
		return
	}
	appID, ok := requireRel(w, req.Relationships.App, "app", "apps")
	if !ok {
		return
	}
	platform := "IOS"
	if req.Attributes != nil && req.Attributes.Platform != "" {
		platform = req.Attributes.Platform
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[appID]; !ok {
		// microsoft/asconnect PR #47.
		conflict(w, "ENTITY_ERROR.RELATIONSHIP.INVALID", "The provided entity includes a relationship with an invalid value",
			fmt.Sprintf("app with id '%s' cannot be found", appID), "/data/relationships/app")
		return
	}
	for _, s := range f.subs {
		if s.appID == appID && string(s.platform) == platform && s.state != appstore.ReviewComplete {
			conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("The app already has an open review submission (%s).", s.state), "")
			return
		}
	}
	s := &reviewSub{id: f.newID("reviewsub"), appID: appID, platform: appstore.Platform(platform), state: appstore.ReviewReadyForReview}
	f.subs[s.id] = s
	writeOne(w, r, http.StatusCreated, f.subObj(r, s))
}

type patchSubAttrs struct {
	Platform  *string `json:"platform"`
	Submitted *bool   `json:"submitted"`
	Canceled  *bool   `json:"canceled"`
}

func (f *Fake) patchSub(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[patchSubAttrs, struct{}](w, r, "reviewSubmissions")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.subs[r.PathValue("id")]
	if !ok {
		notFound(w, "reviewSubmissions", r.PathValue("id"))
		return
	}
	a := req.Attributes
	if a.Submitted != nil && *a.Submitted {
		// A rejected submission (UNRESOLVED_ISSUES) is resubmitted as it
		// is, its items already in it: after a fix (a new build attached,
		// metadata changed) App Review looks again (anarlog#7104).
		if s.state != appstore.ReviewReadyForReview && s.state != appstore.ReviewUnresolvedIssues {
			conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("The review submission is %s and cannot be submitted.", s.state), "")
			return
		}
		var versions []*version
		for _, it := range f.items {
			if it.subID == s.id && it.state != "REMOVED" {
				versions = append(versions, f.versions[it.versionID])
				if it.state == "REJECTED" {
					it.state = "READY_FOR_REVIEW"
				}
			}
		}
		if len(versions) == 0 {
			conflict(w, "STATE_ERROR", stateErrorTitle, "The review submission has no items.", "")
			return
		}
		s.state, s.submitted = appstore.ReviewWaitingForReview, f.now()
		for _, v := range versions {
			v.state = appstore.VersionWaitingForReview
		}
	}
	if a.Canceled != nil && *a.Canceled {
		s.state = appstore.ReviewComplete
	}
	writeOne(w, r, http.StatusOK, f.subObj(r, s))
}

func (f *Fake) listItems(w http.ResponseWriter, r *http.Request) {
	if !checkLimit(w, r, 200) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[r.PathValue("id")]; !ok {
		notFound(w, "reviewSubmissions", r.PathValue("id"))
		return
	}
	var out []map[string]any
	for _, id := range sortedKeys(f.items) {
		it := f.items[id]
		if it.subID == r.PathValue("id") {
			out = append(out, f.itemObj(r, it))
		}
	}
	writeList(w, r, out, func(page []map[string]any) []map[string]any {
		if !includes(r, "appStoreVersion") {
			return nil
		}
		var inc []map[string]any
		seen := map[string]bool{}
		for _, o := range page {
			v := f.versions[f.items[o["id"].(string)].versionID]
			if !seen[v.id] {
				seen[v.id] = true
				inc = append(inc, f.versionObj(r, v))
			}
		}
		return inc
	})
}

func (f *Fake) itemObj(r *http.Request, it *reviewItem) map[string]any {
	return obj(r, "reviewSubmissionItems", it.id, map[string]any{"state": it.state},
		map[string]any{"appStoreVersion": relOne(r, "reviewSubmissionItems/"+it.id, "appStoreVersion", false, "appStoreVersions", it.versionID)})
}

type createItemRels struct {
	ReviewSubmission *toOneReq `json:"reviewSubmission"`
	AppStoreVersion  *toOneReq `json:"appStoreVersion"`
}

func (f *Fake) createItem(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[struct{}, createItemRels](w, r, "reviewSubmissionItems")
	if !ok {
		return
	}
	subID, ok := requireRel(w, req.Relationships.ReviewSubmission, "reviewSubmission", "reviewSubmissions")
	if !ok {
		return
	}
	versionID, ok := requireRel(w, req.Relationships.AppStoreVersion, "appStoreVersion", "appStoreVersions")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.subs[subID]
	if !ok {
		relNotFound(w, "reviewSubmission", "reviewSubmissions", subID)
		return
	}
	v, ok := f.versions[versionID]
	if !ok || v.appID != s.appID {
		relNotFound(w, "appStoreVersion", "appStoreVersions", versionID)
		return
	}
	if v.state.PastReview() || v.state == appstore.VersionWaitingForReview || v.state == appstore.VersionInReview {
		// An approved or released version cannot be submitted again;
		// nor can one already in review [UNVERIFIED exact code].
		conflict(w, "STATE_ERROR", stateErrorTitle,
			fmt.Sprintf("The App Store version is %s and cannot be added to a review submission.", v.state), "/data/relationships/appStoreVersion")
		return
	}
	for _, it := range f.items {
		if it.versionID == versionID && it.state != "REMOVED" && f.subs[it.subID].state != appstore.ReviewComplete {
			conflict(w, "ENTITY_ERROR.RELATIONSHIP.INVALID", "The provided entity includes a relationship with an invalid value",
				"The item is already attached to a review submission.", "/data/relationships/appStoreVersion")
			return
		}
	}
	var attached *build
	for _, b := range f.builds {
		if b.versionID == versionID {
			attached = b
		}
	}
	if attached == nil {
		submitErrors(w, "/v1/appStoreVersions/"+versionID, errorItem{ID: randomUUID(), Status: "409", Code: "ENTITY_ERROR.RELATIONSHIP.REQUIRED",
			Title: "The provided entity is missing a required relationship", Detail: "You must select a build before submitting for review."})
		return
	}
	if attached.uses == nil {
		// The build has no export compliance answer: Apple's answer is
		// quoted in the reference (§2.1, from fastlane's format_errors).
		submitErrors(w, "/v1/builds/"+attached.id, errorItem{ID: randomUUID(), Status: "409", Code: "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
			Title:  "The provided entity is missing a required attribute",
			Detail: "You must provide a value for the attribute 'usesNonExemptEncryption' with this request",
			Source: map[string]any{"pointer": "/data/attributes/usesNonExemptEncryption"}})
		return
	}
	if missing := f.missingWhatsNew(v); len(missing) > 0 {
		// Observed (fastlane#20100, sceneview#2908): the version is "not
		// in valid state", one associated error per localization.
		var items []errorItem
		assoc := map[string][]errorItem{}
		for _, l := range missing {
			e := errorItem{ID: randomUUID(), Status: "409", Code: "ENTITY_ERROR.ATTRIBUTE.REQUIRED", Title: "The provided entity is missing a required attribute",
				Detail: "You must provide a value for the attribute 'whatsNew' with this request", Source: map[string]any{"pointer": "/data/attributes/whatsNew"}}
			assoc["/v1/appStoreVersionLocalizations/"+l.id] = append(assoc["/v1/appStoreVersionLocalizations/"+l.id], e)
			items = append(items, e)
		}
		meta, _ := json.Marshal(map[string]any{"associatedErrors": assoc})
		writeErrors(w, http.StatusConflict, errorItem{ID: randomUUID(), Status: "409", Code: "STATE_ERROR.ENTITY_STATE_INVALID",
			Title: fmt.Sprintf("appStoreVersions with id '%s' is not in valid state.", v.id), Detail: "This resource cannot be reviewed, please check associated errors to see why.",
			Source: map[string]any{"pointer": "/data/relationships/appStoreVersion"}, Meta: meta})
		return
	}
	if f.missingDeclaration(attached) {
		submitErrors(w, "/v1/builds/"+attached.id, errorItem{ID: randomUUID(), Status: "409", Code: "ENTITY_ERROR.RELATIONSHIP.REQUIRED",
			Title:  "The provided entity is missing a required relationship",
			Detail: "You must provide a value for the relationship 'appEncryptionDeclaration' with this request",
			Source: map[string]any{"pointer": "/data/relationships/appEncryptionDeclaration"}})
		return
	}
	it := &reviewItem{id: f.newID("item"), subID: subID, versionID: versionID, state: "READY_FOR_REVIEW"}
	f.items[it.id] = it
	v.state = appstore.VersionReadyForReview
	writeOne(w, r, http.StatusCreated, f.itemObj(r, it))
}

// submitErrors answers 409 STATE_ERROR "Submit for review errors found."
// with the reasons in meta.associatedErrors under the resource path they
// concern, the shape App Store Connect uses for submission checks.
func submitErrors(w http.ResponseWriter, resourcePath string, reasons ...errorItem) {
	meta, _ := json.Marshal(map[string]any{"associatedErrors": map[string][]errorItem{resourcePath: reasons}})
	writeErrors(w, http.StatusConflict, errorItem{ID: randomUUID(), Status: "409", Code: "STATE_ERROR", Title: stateErrorTitle,
		Detail: "Submit for review errors found.", Meta: meta})
}

func (f *Fake) phasedObj(r *http.Request, p *phased) map[string]any {
	f.tickPhased(p)
	a := map[string]any{"phasedReleaseState": string(p.state), "totalPauseDuration": int(f.pausedTotal(p) / (24 * time.Hour))}
	if !p.start.IsZero() {
		a["startDate"] = ts(p.start)
		a["currentDayNumber"] = f.dayNumber(p)
	}
	return obj(r, "appStoreVersionPhasedReleases", p.id, a, nil)
}

func (f *Fake) getPhased(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.versions[r.PathValue("id")]; !ok {
		notFound(w, "appStoreVersions", r.PathValue("id"))
		return
	}
	f.pollDistribution(f.versions[r.PathValue("id")])
	p := f.phasedFor(r.PathValue("id"))
	if p == nil {
		notFound(w, "appStoreVersionPhasedReleases", r.PathValue("id"))
		return
	}
	writeOne(w, r, http.StatusOK, f.phasedObj(r, p))
}

type createPhasedAttrs struct {
	PhasedReleaseState string `json:"phasedReleaseState"`
}

type createPhasedRels struct {
	AppStoreVersion *toOneReq `json:"appStoreVersion"`
}

func (f *Fake) createPhased(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[*createPhasedAttrs, createPhasedRels](w, r, "appStoreVersionPhasedReleases")
	if !ok {
		return
	}
	versionID, ok := requireRel(w, req.Relationships.AppStoreVersion, "appStoreVersion", "appStoreVersions")
	if !ok {
		return
	}
	state := appstore.PhasedInactive
	if req.Attributes != nil && req.Attributes.PhasedReleaseState != "" {
		state = appstore.PhasedReleaseState(req.Attributes.PhasedReleaseState)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.versions[versionID]
	if !ok {
		relNotFound(w, "appStoreVersion", "appStoreVersions", versionID)
		return
	}
	if f.phasedFor(versionID) != nil {
		conflict(w, "ENTITY_ERROR.RELATIONSHIP.INVALID", "The provided entity includes a relationship with an invalid value",
			"The version already has a phased release.", "/data/relationships/appStoreVersion")
		return
	}
	first := true
	for _, o := range f.versions {
		if o.appID == v.appID && o.platform == v.platform && o.id != v.id && (o.state == appstore.VersionReadyForDistribution || o.state == "REPLACED_WITH_NEW_VERSION") {
			first = false
		}
	}
	if first {
		conflict(w, "STATE_ERROR", stateErrorTitle, "Phased release is not available for the first version of an app.", "")
		return
	}
	if !phasedConfigurable(v.state) {
		conflict(w, "STATE_ERROR", stateErrorTitle,
			fmt.Sprintf("A phased release cannot be set up while the version is %s.", v.state), "/data/relationships/appStoreVersion")
		return
	}
	if state != appstore.PhasedInactive && state != appstore.PhasedActive {
		conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value",
			fmt.Sprintf("'%s' is not a valid initial phasedReleaseState", state), "/data/attributes/phasedReleaseState")
		return
	}
	// Before release a phased release is INACTIVE whatever was asked; it
	// starts when the version is released.
	p := &phased{id: f.newID("phased"), versionID: versionID, state: appstore.PhasedInactive}
	f.phased[p.id] = p
	writeOne(w, r, http.StatusCreated, f.phasedObj(r, p))
}

// phasedConfigurable lists the version states in which App Store Connect
// Help says the phased release option can be set (ref §5.3), plus
// READY_FOR_REVIEW, the state of a version added to a draft submission.
func phasedConfigurable(s appstore.AppVersionState) bool {
	switch s {
	case appstore.VersionPrepareForSubmission, appstore.VersionReadyForReview, appstore.VersionWaitingForReview, appstore.VersionInReview,
		appstore.VersionWaitingForExportCompliance, appstore.VersionPendingDeveloperRelease,
		appstore.VersionDeveloperRejected, appstore.VersionRejected, appstore.VersionMetadataRejected:
		return true
	}
	return false
}

type patchPhasedAttrs struct {
	PhasedReleaseState string `json:"phasedReleaseState"`
}

func (f *Fake) patchPhased(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[patchPhasedAttrs, struct{}](w, r, "appStoreVersionPhasedReleases")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.phased[r.PathValue("id")]
	if !ok {
		notFound(w, "appStoreVersionPhasedReleases", r.PathValue("id"))
		return
	}
	f.tickPhased(p)
	want := appstore.PhasedReleaseState(req.Attributes.PhasedReleaseState)
	bad := func(detail string) {
		conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "The provided entity includes an attribute with an invalid value", detail, "/data/attributes/phasedReleaseState")
	}
	now := f.now()
	switch {
	case want == p.state:
	case p.state == appstore.PhasedComplete:
		bad("The phased release is complete.")
		return
	case p.start.IsZero() && want != appstore.PhasedInactive:
		bad("The phased release has not started; the version is not released yet.")
		return
	case want == appstore.PhasedPaused:
		// Any number of pauses, each up to MaxPause (tickPhased ends it).
		p.state, p.pausedAt = appstore.PhasedPaused, now
	case want == appstore.PhasedActive:
		p.pausedFor += now.Sub(p.pausedAt)
		p.state, p.pausedAt = appstore.PhasedActive, time.Time{}
	case want == appstore.PhasedComplete:
		if p.state == appstore.PhasedPaused {
			p.pausedFor += now.Sub(p.pausedAt)
			p.pausedAt = time.Time{}
		}
		p.state = appstore.PhasedComplete
	default:
		bad(fmt.Sprintf("'%s' is not a valid phasedReleaseState transition from %s", want, p.state))
		return
	}
	writeOne(w, r, http.StatusOK, f.phasedObj(r, p))
}

type createReleaseRequestRels struct {
	AppStoreVersion *toOneReq `json:"appStoreVersion"`
}

func (f *Fake) createReleaseRequest(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[struct{}, createReleaseRequestRels](w, r, "appStoreVersionReleaseRequests")
	if !ok {
		return
	}
	versionID, ok := requireRel(w, req.Relationships.AppStoreVersion, "appStoreVersion", "appStoreVersions")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.versions[versionID]
	if !ok {
		relNotFound(w, "appStoreVersion", "appStoreVersions", versionID)
		return
	}
	if v.state != appstore.VersionPendingDeveloperRelease {
		conflict(w, "STATE_ERROR", stateErrorTitle, fmt.Sprintf("The version is %s; only a version pending developer release can be released.", v.state), "")
		return
	}
	f.releaseLocked(v)
	writeOne(w, r, http.StatusCreated, obj(r, "appStoreVersionReleaseRequests", f.newID("release"), nil, nil))
}

// releaseLocked releases a version. With Options.DistributionPolls or
// DistributionTime it is PROCESSING_FOR_DISTRIBUTION first (its phased
// release still INACTIVE) until both are used up; then it is on sale.
func (f *Fake) releaseLocked(v *version) {
	if f.opts.DistributionPolls > 0 || f.opts.DistributionTime > 0 {
		v.state = appstore.VersionProcessingForDistribution
		v.distPollsLeft, v.distReadyAt = f.opts.DistributionPolls, f.now().Add(f.opts.DistributionTime)
		return
	}
	f.onSaleLocked(v)
}

// onSaleLocked puts a version on sale; its phased release starts on day 1.
func (f *Fake) onSaleLocked(v *version) {
	v.state = appstore.VersionReadyForDistribution
	if p := f.phasedFor(v.id); p != nil && p.state == appstore.PhasedInactive {
		p.state, p.start = appstore.PhasedActive, f.now()
	}
}

// pollDistribution counts a read of a version (or its phased release)
// that is PROCESSING_FOR_DISTRIBUTION and puts it on sale once the polls
// and the time are used up.
func (f *Fake) pollDistribution(v *version) {
	if v == nil || v.state != appstore.VersionProcessingForDistribution {
		return
	}
	if v.distPollsLeft > 0 {
		v.distPollsLeft--
	}
	f.tickDistribution(v)
}

func (f *Fake) tickDistribution(v *version) {
	if v.state == appstore.VersionProcessingForDistribution && v.distPollsLeft <= 0 && !f.now().Before(v.distReadyAt) {
		f.onSaleLocked(v)
	}
}

// tickReviews applies the automatic review outcomes of Options.BetaReviewTime
// and Options.AppReviewTime (both approve; zero means "wait for the test").
func (f *Fake) tickReviews() {
	now := f.now()
	for _, v := range f.versions {
		f.tickDistribution(v)
	}
	if d := f.opts.BetaReviewTime; d > 0 {
		for _, s := range f.betaSubs {
			if (s.state == appstore.BetaReviewWaiting || s.state == appstore.BetaReviewInReview) && !now.Before(s.submitted.Add(d)) {
				s.state = appstore.BetaReviewApproved
			}
		}
	}
	if d := f.opts.AppReviewTime; d > 0 {
		for _, s := range f.subs {
			if (s.state != appstore.ReviewWaitingForReview && s.state != appstore.ReviewInReview) || now.Before(s.submitted.Add(d)) {
				continue
			}
			s.state = appstore.ReviewComplete
			for _, it := range f.items {
				if it.subID != s.id {
					continue
				}
				it.state = "APPROVED"
				v := f.versions[it.versionID]
				switch v.releaseType {
				case appstore.ReleaseAfterApproval, appstore.ReleaseScheduled:
					// SCHEDULED without an earliestReleaseDate in the
					// past is released at once too [UNVERIFIED].
					f.releaseLocked(v)
				default:
					v.state = appstore.VersionPendingDeveloperRelease
				}
			}
		}
	}
}

// missingWhatsNew lists the localizations of an update without What's New,
// in locale order (none for an app's first version).
func (f *Fake) missingWhatsNew(v *version) []*versionLoc {
	if !f.isUpdate(v) {
		return nil
	}
	var out []*versionLoc
	for _, id := range sortedKeys(f.vlocs) {
		if l := f.vlocs[id]; l.versionID == v.id && (l.whatsNew == nil || strings.TrimSpace(*l.whatsNew) == "") {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b *versionLoc) int { return strings.Compare(a.locale, b.locale) })
	return out
}

func (f *Fake) versionLocObj(r *http.Request, l *versionLoc) map[string]any {
	a := map[string]any{"locale": l.locale, "description": "The app.", "keywords": "app"}
	if l.whatsNew != nil {
		a["whatsNew"] = *l.whatsNew
	}
	return obj(r, "appStoreVersionLocalizations", l.id, a, nil)
}

func (f *Fake) listVersionLocs(w http.ResponseWriter, r *http.Request) {
	if !checkLimit(w, r, 200) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.versions[r.PathValue("id")]; !ok {
		notFound(w, "appStoreVersions", r.PathValue("id"))
		return
	}
	var out []map[string]any
	for _, id := range sortedKeys(f.vlocs) {
		if l := f.vlocs[id]; l.versionID == r.PathValue("id") && match(csv(r.URL.Query(), "filter[locale]"), l.locale) {
			out = append(out, f.versionLocObj(r, l))
		}
	}
	writeList(w, r, out)
}

type patchVersionLocAttrs struct {
	Description     *string `json:"description"`
	Keywords        *string `json:"keywords"`
	MarketingURL    *string `json:"marketingUrl"`
	PromotionalText *string `json:"promotionalText"`
	SupportURL      *string `json:"supportUrl"`
	WhatsNew        *string `json:"whatsNew"`
}

// patchVersionLoc edits a version localization; the fake keeps What's New
// (and accepts the other attributes without storing them). What's New is
// editable only on an update that is not in review or past it, and holds
// at most 4,000 characters [UNVERIFIED codes].
func (f *Fake) patchVersionLoc(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeResource[patchVersionLocAttrs, struct{}](w, r, "appStoreVersionLocalizations")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.vlocs[r.PathValue("id")]
	if !ok {
		notFound(w, "appStoreVersionLocalizations", r.PathValue("id"))
		return
	}
	if wn := req.Attributes.WhatsNew; wn != nil {
		v := f.versions[l.versionID]
		invalid := func(detail string) {
			conflict(w, "ENTITY_ERROR.ATTRIBUTE.INVALID", "An attribute value is not acceptable for the current resource state.", detail, "/data/attributes/whatsNew")
		}
		switch {
		case !f.isUpdate(v):
			invalid("The attribute 'whatsNew' can not be edited at this time: the app has no version on the App Store yet.")
			return
		case !slices.Contains([]appstore.AppVersionState{appstore.VersionPrepareForSubmission, appstore.VersionReadyForReview, appstore.VersionRejected,
			appstore.VersionMetadataRejected, appstore.VersionDeveloperRejected}, v.state):
			invalid(fmt.Sprintf("The attribute 'whatsNew' can not be edited while the version is %s.", v.state))
			return
		case utf8.RuneCountInString(*wn) > 4000:
			invalid(fmt.Sprintf("The attribute 'whatsNew' is %d characters long; at most 4000 are allowed.", utf8.RuneCountInString(*wn)))
			return
		}
		text := *wn
		l.whatsNew = &text
	}
	writeOne(w, r, http.StatusOK, f.versionLocObj(r, l))
}

// editable reports whether a version can still be changed by its owner:
// prepared, or rejected (by App Review or its developer).
func editable(s appstore.AppVersionState) bool {
	switch s {
	case appstore.VersionPrepareForSubmission, appstore.VersionRejected, appstore.VersionMetadataRejected,
		appstore.VersionDeveloperRejected, appstore.VersionInvalidBinary:
		return true
	}
	return false
}
