package appstoretest

import (
	"fmt"
	"time"

	"github.com/swapjoy/releasepilot/appstore"
)

type app struct {
	id, bundleID, name, sku string
	// betaDetail is the app's Beta App Review information, betaLocs its
	// TestFlight test information per locale (zero: never filled in).
	betaDetail BetaAppReviewDetail
	betaLocs   []BetaAppLocalization
	locales    []string // App Store locales, primary first
}

// versionLoc is an App Store version's metadata in one locale.
type versionLoc struct {
	id, versionID, locale string
	whatsNew              *string
}

// SetLocales sets an app's App Store locales, the primary one first:
// versions created from now on get a localization per locale.
func (f *Fake) SetLocales(appID string, locales ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.apps[appID]; ok && len(locales) > 0 {
		a.locales = append([]string(nil), locales...)
	}
}

// BetaAppReviewDetail is an app's Beta App Review information: the contact
// Apple's reviewers call, and the demo account they sign in with.
type BetaAppReviewDetail struct {
	ContactFirstName, ContactLastName, ContactPhone, ContactEmail string
	DemoAccountRequired                                           bool
	DemoAccountName, DemoAccountPassword                          string
	Notes                                                         string
}

// BetaAppLocalization is an app's TestFlight test information in a locale.
type BetaAppLocalization struct {
	Locale, FeedbackEmail, Description, MarketingURL, PrivacyPolicyURL string
}

// SetBetaAppInfo sets an app's Beta App Review information and TestFlight
// test information, as a person does in App Store Connect. Apple refuses a
// Beta App Review submission until both are complete.
func (f *Fake) SetBetaAppInfo(appID string, detail BetaAppReviewDetail, locs ...BetaAppLocalization) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.apps[appID]; ok {
		a.betaDetail, a.betaLocs = detail, append([]BetaAppLocalization(nil), locs...)
	}
}

// CompleteBetaAppInfo fills in an app's Beta App Review and test
// information with made-up, complete values (no demo account needed).
func (f *Fake) CompleteBetaAppInfo(appID string) {
	f.SetBetaAppInfo(appID, BetaAppReviewDetail{ContactFirstName: "Ada", ContactLastName: "Lovelace", ContactPhone: "+1 555 0100",
		ContactEmail: "beta@example.com", Notes: "Made up by appstoretest."},
		BetaAppLocalization{Locale: "en-US", FeedbackEmail: "feedback@example.com", Description: "The next version of the app."})
}

type build struct {
	id, appID, version, number string
	platform                   appstore.Platform
	state, final               appstore.ProcessingState
	pollsLeft                  int
	readyAt                    time.Time
	uses                       *bool
	expired                    bool
	uploaded                   time.Time
	groups                     map[string]bool
	versionID                  string // attached App Store version
	declarationID              string // linked app encryption declaration
}

type declaration struct {
	id, appID, state string
	created          time.Time
}

type betaGroup struct {
	id, appID, name string
	internal        bool
	allBuilds       bool // hasAccessToAllBuilds: gets every build; none can be added
	created         time.Time
}

type localization struct {
	id, buildID, locale string
	whatsNew            *string
}

type betaSub struct {
	id, buildID string
	state       appstore.BetaReviewState
	submitted   time.Time
}

type upload struct {
	id, appID, version, number string
	platform                   appstore.Platform
	state                      appstore.BuildUploadState
	created                    time.Time
	uploaded                   time.Time
	pollsLeft                  int
	buildID                    string
	errors                     []appstore.StateDetail
	fileIDs                    []string
}

type uploadFile struct {
	id, uploadID, name, uti, assetType string
	size                               int64
	state                              string
	parts                              []filePart
	received                           map[int][]byte
	expires                            time.Time // of the part URLs
}

type filePart struct {
	offset, length int64
}

type version struct {
	id, appID, versionString string
	platform                 appstore.Platform
	state                    appstore.AppVersionState
	releaseType              appstore.ReleaseType
	created                  time.Time
	// PROCESSING_FOR_DISTRIBUTION ends when both are used up.
	distPollsLeft int
	distReadyAt   time.Time
}

type reviewSub struct {
	id, appID string
	platform  appstore.Platform
	state     appstore.ReviewSubmissionState
	submitted time.Time
}

type reviewItem struct {
	id, subID, versionID, state string
}

type phased struct {
	id, versionID string
	state         appstore.PhasedReleaseState
	start         time.Time     // first ACTIVE
	pausedFor     time.Duration // closed pauses
	pausedAt      time.Time     // open pause
}

// MaxPause is how long one pause of a phased release may last. Apple's
// current help: "You can pause a phased release for up to 30 days; there
// is no limit to the number of pauses." (Older help counted 30 days in
// total across all pauses.)
const MaxPause = 30 * 24 * time.Hour

// App seeds an app.
type App struct {
	ID       string // default generated
	BundleID string
	Name     string
	SKU      string
	// Locales are the App Store locales of the app's versions, the
	// primary one first (default en-US): each new version gets a
	// localization per locale.
	Locales []string
}

// AddApp seeds an app and returns its id.
func (f *Fake) AddApp(a App) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.ID == "" {
		f.seq++
		a.ID = fmt.Sprintf("%d", 1000000000+f.seq)
	}
	if len(a.Locales) == 0 {
		a.Locales = []string{"en-US"}
	}
	f.apps[a.ID] = &app{id: a.ID, bundleID: a.BundleID, name: a.Name, sku: a.SKU, locales: append([]string(nil), a.Locales...)}
	return a.ID
}

// Build seeds a build, as if uploaded and being processed.
type Build struct {
	AppID       string
	Version     string // marketing version, e.g. "1.2.3"
	BuildNumber string
	Platform    appstore.Platform // default IOS
	// State is the initial processing state (default PROCESSING).
	State appstore.ProcessingState
	// Result is the state processing ends in (default VALID).
	Result appstore.ProcessingState
	// Polls overrides Options.ProcessingPolls for this build.
	Polls                   int
	UsesNonExemptEncryption *bool
	UploadedDate            time.Time // default now
}

// AddBuild seeds a build and returns its id.
func (f *Fake) AddBuild(b Build) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addBuildLocked(b)
}

func (f *Fake) addBuildLocked(b Build) string {
	if b.Platform == "" {
		b.Platform = appstore.PlatformIOS
	}
	if b.State == "" {
		b.State = appstore.ProcessingStateProcessing
	}
	if b.Result == "" {
		b.Result = appstore.ProcessingStateValid
	}
	if b.Polls <= 0 {
		b.Polls = f.opts.ProcessingPolls
	}
	now := f.now()
	if b.UploadedDate.IsZero() {
		b.UploadedDate = now
	}
	id := f.newID("build")
	f.builds[id] = &build{
		id: id, appID: b.AppID, version: b.Version, number: b.BuildNumber, platform: b.Platform,
		state: b.State, final: b.Result, pollsLeft: b.Polls, readyAt: now.Add(f.opts.ProcessingTime),
		uses: b.UsesNonExemptEncryption, uploaded: b.UploadedDate, groups: map[string]bool{},
	}
	f.buildOrder = append(f.buildOrder, id)
	return id
}

// AddBetaGroup seeds a beta group whose builds are added one by one and
// returns its id.
func (f *Fake) AddBetaGroup(appID, name string, internal bool) string {
	return f.AddGroup(BetaGroup{AppID: appID, Name: name, Internal: internal})
}

// BetaGroup seeds a TestFlight group.
type BetaGroup struct {
	AppID    string
	Name     string
	Internal bool
	// AllBuilds is hasAccessToAllBuilds: an internal group that gets every
	// build of the app by itself (App Store Connect's automatic
	// distribution). Apple refuses to add a build to it.
	AllBuilds bool
}

// AddGroup seeds a beta group and returns its id.
func (f *Fake) AddGroup(g BetaGroup) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.newID("group")
	f.groups[id] = &betaGroup{id: id, appID: g.AppID, name: g.Name, internal: g.Internal, allBuilds: g.Internal && g.AllBuilds, created: f.now()}
	return id
}

// AddEncryptionDeclaration seeds an app encryption declaration in state
// (APPROVED when empty) and returns its id: what a build that uses
// non-exempt encryption must be linked to before Beta App Review or App
// Review.
func (f *Fake) AddEncryptionDeclaration(appID, state string) string {
	if state == "" {
		state = "APPROVED"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.newID("declaration")
	f.declarations[id] = &declaration{id: id, appID: appID, state: state, created: f.now()}
	return id
}

// AddAppStoreVersion seeds an App Store version of release type MANUAL and
// returns its id.
func (f *Fake) AddAppStoreVersion(appID string, platform appstore.Platform, versionString string, state appstore.AppVersionState) string {
	return f.AddVersion(AppStoreVersion{AppID: appID, Platform: platform, VersionString: versionString, State: state, ReleaseType: appstore.ReleaseManual})
}

// AppStoreVersion seeds an App Store version, as if made in App Store
// Connect.
type AppStoreVersion struct {
	AppID         string
	Platform      appstore.Platform // default IOS
	VersionString string
	State         appstore.AppVersionState // default PREPARE_FOR_SUBMISSION
	// ReleaseType defaults to AFTER_APPROVAL, App Store Connect's default
	// for a version made without one (as POST /v1/appStoreVersions does).
	ReleaseType appstore.ReleaseType
}

// AddVersion seeds an App Store version and returns its id.
func (f *Fake) AddVersion(v AppStoreVersion) string {
	if v.Platform == "" {
		v.Platform = appstore.PlatformIOS
	}
	if v.State == "" {
		v.State = appstore.VersionPrepareForSubmission
	}
	if v.ReleaseType == "" {
		v.ReleaseType = appstore.ReleaseAfterApproval
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.newID("version")
	f.versions[id] = &version{id: id, appID: v.AppID, versionString: v.VersionString, platform: v.Platform, state: v.State,
		releaseType: v.ReleaseType, created: f.now()}
	f.addVersionLocsLocked(f.versions[id])
	return id
}

// SetReleaseType changes a version's release type, as a person in App
// Store Connect would.
func (f *Fake) SetReleaseType(versionID string, rt appstore.ReleaseType) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.versions[versionID]
	if !ok {
		return fmt.Errorf("appstoretest: no version %s", versionID)
	}
	v.releaseType = rt
	return nil
}

// ReleaseType returns a version's release type.
func (f *Fake) ReleaseType(versionID string) appstore.ReleaseType {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.versions[versionID]; ok {
		return v.releaseType
	}
	return ""
}

// DeletePhasedRelease removes a version's phased release, as a person
// turning the option off in App Store Connect would.
func (f *Fake) DeletePhasedRelease(versionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.phasedFor(versionID); p != nil {
		delete(f.phased, p.id)
	}
}

// BuildState is a snapshot of a build for assertions.
type BuildState struct {
	AppID                   string
	Version                 string // marketing version
	BuildNumber             string
	ProcessingState         appstore.ProcessingState
	UsesNonExemptEncryption *bool
	Expired                 bool
	Groups                  []string
	WhatsNew                map[string]string // locale → text
	BetaReview              appstore.BetaReviewState
	// EncryptionDeclaration is the id of the linked app encryption
	// declaration ("" when none).
	EncryptionDeclaration string
}

// Build returns a snapshot of build id (ok false if unknown).
func (f *Fake) Build(id string) (BuildState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tickReviews()
	b, ok := f.builds[id]
	if !ok {
		return BuildState{}, false
	}
	s := BuildState{AppID: b.appID, Version: b.version, BuildNumber: b.number, ProcessingState: b.state, UsesNonExemptEncryption: b.uses, Expired: b.expired,
		WhatsNew: map[string]string{}, EncryptionDeclaration: b.declarationID}
	for _, g := range sortedKeys(b.groups) {
		s.Groups = append(s.Groups, g)
	}
	for _, l := range f.locs {
		if l.buildID == id && l.whatsNew != nil {
			s.WhatsNew[l.locale] = *l.whatsNew
		}
	}
	if bs := f.betaSubFor(id); bs != nil {
		s.BetaReview = bs.state
	}
	return s, true
}

// Builds returns the ids of all builds, in creation order.
func (f *Fake) Builds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.buildOrder...)
}

// SetBetaReview moves a build's beta review submission to state (e.g.
// APPROVED or REJECTED), as App Review would.
func (f *Fake) SetBetaReview(buildID string, state appstore.BetaReviewState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	bs := f.betaSubFor(buildID)
	if bs == nil {
		return fmt.Errorf("appstoretest: build %s has no beta review submission", buildID)
	}
	bs.state = state
	return nil
}

// SetVersionState sets an App Store version's appVersionState, e.g. to
// PENDING_DEVELOPER_RELEASE when App Review approves it. If a review
// submission holds the version it moves along (COMPLETE on approval,
// UNRESOLVED_ISSUES on rejection).
func (f *Fake) SetVersionState(versionID string, state appstore.AppVersionState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.versions[versionID]
	if !ok {
		return fmt.Errorf("appstoretest: no version %s", versionID)
	}
	v.state = state
	for _, it := range f.items {
		if it.versionID != versionID {
			continue
		}
		s := f.subs[it.subID]
		switch state {
		case appstore.VersionPendingDeveloperRelease, appstore.VersionReadyForDistribution:
			s.state, it.state = appstore.ReviewComplete, "APPROVED"
		case appstore.VersionRejected, appstore.VersionMetadataRejected:
			s.state, it.state = appstore.ReviewUnresolvedIssues, "REJECTED"
		case appstore.VersionInReview:
			s.state = appstore.ReviewInReview
		}
	}
	return nil
}

// ReleaseVersion releases an approved version: READY_FOR_DISTRIBUTION, and
// its phased release (if any) starts on day 1.
func (f *Fake) ReleaseVersion(versionID string) error {
	if err := f.SetVersionState(versionID, appstore.VersionReadyForDistribution); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onSaleLocked(f.versions[versionID])
	return nil
}

// Version returns a version's state and the id of its attached build.
func (f *Fake) Version(versionID string) (state appstore.AppVersionState, buildID string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tickReviews()
	v, ok := f.versions[versionID]
	if !ok {
		return "", "", false
	}
	for _, b := range f.builds {
		if b.versionID == versionID {
			buildID = b.id
		}
	}
	return v.state, buildID, true
}

// PhasedRelease returns a snapshot of the version's phased release.
func (f *Fake) PhasedRelease(versionID string) (appstore.PhasedRelease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.phasedFor(versionID)
	if p == nil {
		return appstore.PhasedRelease{}, false
	}
	f.tickPhased(p)
	return appstore.PhasedRelease{ID: p.id, State: p.state, StartDate: p.start,
		TotalPauseDuration: int(f.pausedTotal(p) / (24 * time.Hour)), CurrentDayNumber: f.dayNumber(p)}, true
}

// UploadedBytes returns the bytes received for a build upload file.
func (f *Fake) UploadedBytes(fileID string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[fileID]
	if !ok {
		return nil
	}
	var out []byte
	for i := range fl.parts {
		out = append(out, fl.received[i]...)
	}
	return out
}

// FailUpload makes a PROCESSING build upload end FAILED with one error.
func (f *Fake) FailUpload(uploadID, code, description string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[uploadID]
	if !ok {
		return fmt.Errorf("appstoretest: no upload %s", uploadID)
	}
	if u.state != appstore.UploadProcessing && u.state != appstore.UploadAwaiting {
		return fmt.Errorf("appstoretest: upload %s is %s; only an unfinished upload can fail", uploadID, u.state)
	}
	u.state = appstore.UploadFailed
	u.errors = append(u.errors, appstore.StateDetail{Code: code, Description: description})
	return nil
}

func (f *Fake) betaSubFor(buildID string) *betaSub {
	for _, s := range f.betaSubs {
		if s.buildID == buildID {
			return s
		}
	}
	return nil
}

func (f *Fake) phasedFor(versionID string) *phased {
	for _, p := range f.phased {
		if p.versionID == versionID {
			return p
		}
	}
	return nil
}

// pausedTotal includes the pause in progress.
func (f *Fake) pausedTotal(p *phased) time.Duration {
	d := p.pausedFor
	if p.state == appstore.PhasedPaused && !p.pausedAt.IsZero() {
		d += f.now().Sub(p.pausedAt)
	}
	return d
}

// tickPhased applies the passage of time: a pause that has lasted its 30
// days ends and the release goes on [UNVERIFIED what Apple does then], and
// day 7 + 24h completes the release.
func (f *Fake) tickPhased(p *phased) {
	if p.state == appstore.PhasedPaused && !p.pausedAt.IsZero() && f.now().Sub(p.pausedAt) >= MaxPause {
		p.pausedFor += MaxPause
		p.pausedAt = time.Time{}
		p.state = appstore.PhasedActive
	}
	if p.state == appstore.PhasedActive && !p.start.IsZero() {
		if f.now().Sub(p.start)-f.pausedTotal(p) >= 7*24*time.Hour {
			p.state = appstore.PhasedComplete
		}
	}
}

func (f *Fake) dayNumber(p *phased) int {
	if p.start.IsZero() {
		return 0
	}
	if p.state == appstore.PhasedComplete {
		return 7
	}
	d := 1 + int((f.now().Sub(p.start)-f.pausedTotal(p))/(24*time.Hour))
	return min(max(d, 1), 7)
}

// addVersionLocsLocked gives a new version a localization per locale of
// its app, without What's New (Apple copies the rest of the metadata from
// the previous version, but never its What's New).
func (f *Fake) addVersionLocsLocked(v *version) {
	locales := []string{"en-US"}
	if a, ok := f.apps[v.appID]; ok && len(a.locales) > 0 {
		locales = a.locales
	}
	for _, l := range locales {
		id := v.id + "-" + l // its own ids: other resources' ids stay as they were
		f.vlocs[id] = &versionLoc{id: id, versionID: v.id, locale: l}
	}
}

// isUpdate reports whether v is an update: its app has a version that was
// on the App Store before. Only an update takes (and needs) What's New.
func (f *Fake) isUpdate(v *version) bool {
	for _, o := range f.versions {
		if o.id == v.id || o.appID != v.appID || o.platform != v.platform {
			continue
		}
		switch o.state {
		case appstore.VersionReadyForDistribution, appstore.VersionReplacedWithNewVersion, appstore.VersionProcessingForDistribution:
			return true
		}
	}
	return false
}

// WhatsNew returns the What's New text of each localization of an App
// Store version, by locale ("" where it has none).
func (f *Fake) WhatsNew(versionID string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, l := range f.vlocs {
		if l.versionID != versionID {
			continue
		}
		out[l.locale] = ""
		if l.whatsNew != nil {
			out[l.locale] = *l.whatsNew
		}
	}
	return out
}
