package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// PageSize is how many releases one page of the list shows.
const PageSize = 25

// auditLimit is how many audit entries the release page shows at once.
const auditLimit = 100

var releaseStates = []release.ReleaseState{release.ReleasePlanning, release.ReleaseActive, release.ReleaseCompleted, release.ReleaseFailed, release.ReleaseCancelled}

type laneChip struct {
	Platform string
	Kind     string
	State    string
	Percent  int
}

type releaseRow struct {
	release.Release
	Lanes []laneChip
}

type releasesView struct {
	App      string
	State    string
	Apps     []string
	States   []string
	Rows     []releaseRow
	NewerURL string
	OlderURL string
	Now      time.Time
	Error    string
}

func (db *Dashboard) releasesPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := r.Context()
	q := r.URL.Query()
	view := releasesView{App: q.Get("app"), State: q.Get("state"), Now: db.d.Now()}
	for _, s := range releaseStates {
		view.States = append(view.States, string(s))
	}
	apps, err := db.d.Store.Apps(ctx)
	if err != nil {
		db.internal(w, r, "list apps", err)
		return
	}
	for _, a := range apps {
		view.Apps = append(view.Apps, a.Name)
	}
	f := store.ReleaseFilter{App: view.App, State: release.ReleaseState(view.State)}
	var bad []string
	if view.App != "" && !slices.Contains(view.Apps, view.App) {
		bad = append(bad, fmt.Sprintf("app: %q is not a known app", view.App))
	}
	if view.State != "" && !slices.Contains(view.States, view.State) {
		bad = append(bad, fmt.Sprintf("state: %q is not one of %s", view.State, strings.Join(view.States, ", ")))
	}
	for _, k := range []string{"before", "after"} {
		if s := q.Get(k); s != "" {
			c, err := store.ParseReleaseCursor(s)
			if err != nil {
				bad = append(bad, k+": "+err.Error())
				continue
			}
			if k == "before" {
				f.Before = &c
			} else if f.Before == nil {
				f.After = &c
			}
		}
	}
	if len(bad) > 0 {
		view.Error = strings.Join(bad, "; ")
		db.renderLayout(w, r, http.StatusBadRequest, "releases", layoutView{Title: "Releases", Viewer: v, Page: view})
		return
	}
	p, err := db.d.Store.PageReleases(ctx, f, PageSize)
	if err != nil {
		db.internal(w, r, "list releases", err)
		return
	}
	ids := make([]string, 0, len(p.Releases))
	for _, rel := range p.Releases {
		ids = append(ids, rel.ID)
	}
	lanes, err := db.d.Store.LanesOf(ctx, ids)
	if err != nil {
		db.internal(w, r, "list lanes", err)
		return
	}
	for _, rel := range p.Releases {
		row := releaseRow{Release: rel}
		for _, l := range lanes[rel.ID] {
			row.Lanes = append(row.Lanes, laneChip{Platform: string(l.Platform), Kind: string(l.Kind), State: string(l.Status.State), Percent: l.Status.Percent})
		}
		view.Rows = append(view.Rows, row)
	}
	link := func(k string, c release.Release) string {
		u := url.Values{}
		if view.App != "" {
			u.Set("app", view.App)
		}
		if view.State != "" {
			u.Set("state", view.State)
		}
		u.Set(k, store.ReleaseCursor{CreatedAt: c.CreatedAt, ID: c.ID}.String())
		return "/?" + u.Encode()
	}
	if n := len(p.Releases); n > 0 {
		if p.Newer {
			view.NewerURL = link("after", p.Releases[0])
		}
		if p.Older {
			view.OlderURL = link("before", p.Releases[n-1])
		}
	}
	db.renderLayout(w, r, http.StatusOK, "releases", layoutView{Title: "Releases", Viewer: v, Page: view})
}

// stepView is one step of a lane's plan on the timeline.
type stepView struct {
	Index  int
	Label  string
	Detail string
	// Phase is done, current, next or later.
	Phase string
}

// ruleView is one gate rule of a lane and its newest measurement in the
// current stage, as the gate judged it.
type ruleView struct {
	Provider string
	// Metric is what the rule measures; for a Prometheus rule, its query
	// (Query is set) or the metric name it is given.
	Metric     string
	Query      string
	Bounds     string
	MinSamples int64
	// FailureLimit is how many failed measurements in a row the rule
	// allows; one more halts the lane.
	FailureLimit int
	Every        time.Duration
	// Status is the rule's newest measurement (Phase empty: none in this
	// stage yet), from release.GateStatuses.
	Status release.GateStatus
	// Measured says its value and samples: "0.962 (5,120 samples)".
	Measured string
}

// measured says a measurement's value for people: no value when the
// provider gave none, and no sample count for a single value (a PromQL
// result).
func measured(st release.GateStatus) string {
	switch {
	case st.Phase == "":
		return ""
	case st.Phase == release.PhaseError,
		st.Samples == 0 && st.Value == 0 && (st.Phase == release.PhaseInconclusive || st.Phase == release.PhaseStale):
		return "no value"
	case st.Samples == 1:
		return strconv.FormatFloat(st.Value, 'g', 4, 64)
	}
	return fmt.Sprintf("%s (%s samples)", strconv.FormatFloat(st.Value, 'g', 4, 64), groupDigits(st.Samples))
}

type freezeView struct {
	From, To time.Time
	Reason   string
	Active   bool
}

type otaView struct {
	App        string
	Deployment string
	Label      string
	Counts     codepush.Counts
	Found      bool
}

type commandButton struct {
	Name  string
	Label string
}

// lanePanel is everything the release page shows about one lane.
type lanePanel struct {
	ID           string
	ReleaseID    string
	Platform     string
	Kind         string
	KindLabel    string
	Reason       string
	State        string
	Percent      int
	StatusReason string
	UpdatedAt    time.Time
	Steps        []stepView
	SoakUntil    time.Time
	SoakLeft     time.Duration
	Window       string
	Freezes      []freezeView
	Gates        []ruleView
	// GateNote is the last verdict of the lane's gates, from the audit
	// log, when no measured values are available.
	GateNote   string
	GateNoteAt time.Time
	Approval   string
	Outlook    release.Outlook
	Commands   []commandButton
	OTA        *otaView
	Now        time.Time
	CanOperate bool
}

var commandOrder = []struct {
	cmd   release.Command
	label string
}{
	{release.CmdAdvance, "Advance"},
	{release.CmdApprove, "Approve"},
	{release.CmdResume, "Resume"},
	{release.CmdPause, "Pause"},
	{release.CmdHalt, "Halt"},
	{release.CmdRollback, "Roll back"},
	{release.CmdComplete, "Complete"},
	{release.CmdCancel, "Cancel"},
}

func kindLabel(k release.LaneKind) string {
	switch k {
	case release.KindStore:
		return "Store"
	case release.KindOTA:
		return "OTA"
	case release.KindRefused:
		return "Refused"
	}
	return string(k)
}

func stepLabel(s release.Step) (label, detail string) {
	switch {
	case s.SetPercent != nil:
		return strconv.Itoa(*s.SetPercent) + " %", "roll out to " + strconv.Itoa(*s.SetPercent) + " % of users"
	case s.Wait != nil:
		label = "Soak " + humanDuration(time.Duration(s.Wait.Soak))
		if s.Wait.Soak == 0 {
			label = "Wait"
		}
		if s.Wait.Window != "" {
			detail = "advances only in the window " + s.Wait.Window
		}
		return label, detail
	case s.Gate != nil:
		var rules []string
		for _, r := range s.Gate.Rules {
			rules = append(rules, r.Name()+" "+r.Bounds())
		}
		return "Gate", strings.Join(rules, ", ")
	case s.Approval != nil:
		return "Approval", s.Approval.Reason
	}
	return "?", ""
}

// panel builds a lane's panel at now.
func (db *Dashboard) panel(ctx context.Context, rel release.Release, l release.Lane, v *viewer, now time.Time) lanePanel {
	st := l.Status
	p := lanePanel{ID: l.ID, ReleaseID: rel.ID, Platform: string(l.Platform), Kind: string(l.Kind), KindLabel: kindLabel(l.Kind), Reason: l.Reason,
		State: string(st.State), Percent: st.Percent, StatusReason: st.Reason, UpdatedAt: st.UpdatedAt, Now: now, CanOperate: v.CanOperate()}
	freezes := release.FreezesFor(db.d.Freezes, rel.App, l)
	p.Outlook = release.Next(l.Plan, st, now, freezes...)
	terminal := st.State.Terminal()
	for i, s := range l.Plan.Steps {
		label, detail := stepLabel(s)
		sv := stepView{Index: i + 1, Label: label, Detail: detail, Phase: "later"}
		switch {
		case i < st.StepIndex || st.State == release.StateCompleted:
			sv.Phase = "done"
		case terminal:
		case st.State == release.StatePending:
			if i == st.StepIndex {
				sv.Phase = "next"
			}
		case i == st.StepIndex:
			sv.Phase = "current"
		case i == st.StepIndex+1:
			sv.Phase = "next"
		}
		p.Steps = append(p.Steps, sv)
	}
	if st.StepIndex >= 0 && st.StepIndex < len(l.Plan.Steps) && !terminal {
		cur := l.Plan.Steps[st.StepIndex]
		if w := cur.Wait; w != nil && st.State != release.StatePending {
			if w.Soak > 0 && !st.StepStartedAt.IsZero() {
				p.SoakUntil = st.StepStartedAt.Add(time.Duration(w.Soak))
				if left := p.SoakUntil.Sub(now); left > 0 {
					p.SoakLeft = left
				}
			}
			p.Window = w.Window
		}
		if a := cur.Approval; a != nil && (st.State == release.StateWaiting || st.State == release.StateRolling) {
			p.Approval = "waiting for approval"
			if a.Reason != "" {
				p.Approval += ": " + a.Reason
			}
		}
	}
	if p.Window == "" {
		// The window that governs the next advance.
		for i := st.StepIndex; i >= 0 && i < len(l.Plan.Steps); i++ {
			if w := l.Plan.Steps[i].Wait; w != nil && w.Window != "" {
				p.Window = w.Window
				break
			}
			if l.Plan.Steps[i].SetPercent != nil {
				break
			}
		}
	}
	for _, f := range freezes {
		if f.To.After(now) {
			p.Freezes = append(p.Freezes, freezeView{From: f.From, To: f.To, Reason: f.Reason, Active: !now.Before(f.From)})
		}
	}
	db.gates(ctx, rel, l, &p, now)
	if v.CanOperate() && !terminal {
		for _, c := range commandOrder {
			// The same pure rule the command core applies decides which
			// buttons to offer; the core checks again on submit.
			if _, err := release.ApplyCommand(l.Plan, st, c.cmd, "", now); err == nil {
				p.Commands = append(p.Commands, commandButton{Name: string(c.cmd), Label: c.label})
			}
		}
	}
	if l.Kind == release.KindOTA {
		p.OTA = db.otaOfLane(ctx, l)
	}
	return p
}

// gates fills every gate rule of the lane's plan (each judges the lane at
// any step: a failure past its limit halts it) with its newest measurement
// in the current stage, as the reconciler judged it. When nothing was
// measured in the stage, the last verdict the gates gave (from the audit
// log) is shown beside the rules.
func (db *Dashboard) gates(ctx context.Context, rel release.Release, l release.Lane, p *lanePanel, now time.Time) {
	rules := l.Plan.Rules()
	if len(rules) == 0 {
		return
	}
	readings, err := db.d.Gates.GateReadings(ctx, l.ID, l.Status.StageStart())
	if err != nil {
		db.log.Warn("dashboard: gate readings", "lane", l.ID, "err", err)
		readings = nil
	}
	for i, st := range release.GateStatuses(l.Plan, readings, now) {
		r := rules[i]
		rv := ruleView{Provider: r.ProviderName(), Metric: r.Metric, Bounds: r.Bounds(), MinSamples: r.MinSamples,
			FailureLimit: r.FailureLimit, Every: r.Every(), Status: st, Measured: measured(st)}
		if rv.Provider == release.ProviderPrometheus {
			rv.Query = r.Query
		}
		p.Gates = append(p.Gates, rv)
	}
	if len(readings) == 0 {
		e, err := db.d.Store.LatestGateEvent(ctx, rel.ID, l.ID)
		if err == nil {
			if reason, ok := e.Details["reason"].(string); ok {
				p.GateNote, p.GateNoteAt = reason, e.At
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			db.log.Warn("dashboard: gate events", "lane", l.ID, "err", err)
		}
	}
}

// otaOfLane finds the CodePush release an OTA lane shipped and its
// adoption.
func (db *Dashboard) otaOfLane(ctx context.Context, l release.Lane) *otaView {
	var data struct {
		CodePushApp     string `json:"codepush_app"`
		ProductionLabel string `json:"production_label"`
		StagingLabel    string `json:"staging_label"`
	}
	if err := db.d.Store.LaneData(ctx, l.ID, &data); err != nil || data.CodePushApp == "" {
		return nil
	}
	v := &otaView{App: data.CodePushApp, Deployment: codepush.Production, Label: data.ProductionLabel}
	if v.Label == "" {
		v.Deployment, v.Label = codepush.Staging, data.StagingLabel
	}
	if v.Label == "" || db.d.OTA == nil {
		return v
	}
	apps, err := db.d.OTA.Apps(ctx)
	if err != nil {
		return v
	}
	for _, a := range apps {
		if a.Name != v.App {
			continue
		}
		for _, d := range a.Deployments {
			if d.Name == v.Deployment {
				if counts, err := db.d.OTA.Counts(ctx, d.Key); err == nil {
					v.Counts, v.Found = counts[v.Label], true
				}
			}
		}
	}
	return v
}

// eventRow is one audit log entry as the page shows it.
type eventRow struct {
	ID       int64
	At       time.Time
	Actor    string
	Kind     string
	Platform string
	Text     string
}

func eventText(e release.Event) string {
	d := e.Details
	var parts []string
	if c, ok := d["command"].(string); ok && e.Kind == "command.requested" {
		parts = append(parts, c+" requested")
	}
	if s, ok := d["state"].(string); ok {
		part := s
		if p, ok := d["percent"].(float64); ok {
			part += fmt.Sprintf(" at %g %%", p)
		}
		parts = append(parts, part)
	} else if p, ok := d["percent"].(float64); ok {
		parts = append(parts, fmt.Sprintf("%g %%", p))
	}
	for _, k := range []string{"reason", "detail", "error", "tag"} {
		if s, ok := d[k].(string); ok && s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " — ")
}

func rowOf(e release.Event, lanes map[string]string) eventRow {
	p, _ := e.Details["platform"].(string)
	if p == "" {
		p = lanes[e.LaneID]
	}
	return eventRow{ID: e.ID, At: e.At, Actor: e.Actor, Kind: e.Kind, Platform: p, Text: eventText(e)}
}

type releaseView struct {
	Release     release.Release
	Lanes       []lanePanel
	Events      []eventRow
	LastEventID int64
	OlderURL    string
	Flash       string
	Viewer      *viewer
	Now         time.Time
}

// TagStatus says what became of the release's tag (moved to what, deleted,
// restarted as which release), as the API's tag_status does; "" while the
// tag names the release's commit.
func (v releaseView) TagStatus() string { return release.TagStatus(v.Release) }

// loadRelease reads a release with its lanes' panels and the newest audit
// entries (before beforeID when set).
func (db *Dashboard) loadRelease(ctx context.Context, id string, v *viewer, beforeID int64) (releaseView, error) {
	now := db.d.Now()
	rel, err := db.d.Store.GetRelease(ctx, id)
	if err != nil {
		return releaseView{}, err
	}
	lanes, err := db.d.Store.Lanes(ctx, id)
	if err != nil {
		return releaseView{}, err
	}
	view := releaseView{Release: rel, Viewer: v, Now: now}
	names := map[string]string{}
	for _, l := range lanes {
		view.Lanes = append(view.Lanes, db.panel(ctx, rel, l, v, now))
		names[l.ID] = string(l.Platform)
	}
	evs, err := db.d.Store.RecentEvents(ctx, id, beforeID, auditLimit+1)
	if err != nil {
		return releaseView{}, err
	}
	more := len(evs) > auditLimit
	if more {
		evs = evs[:auditLimit]
	}
	for _, e := range evs {
		view.Events = append(view.Events, rowOf(e, names))
	}
	if beforeID == 0 && len(evs) > 0 {
		view.LastEventID = evs[0].ID
	}
	// With no events yet, live updates start at the release's first:
	// LastEventID stays 0. (The newest id anywhere would not do: across
	// releases ids do not commit in order, so this release's first event
	// may commit later with a lower id.)
	if more {
		view.OlderURL = "/releases/" + url.PathEscape(id) + "?before=" + strconv.FormatInt(evs[len(evs)-1].ID, 10) + "#audit"
	}
	return view, nil
}

func (db *Dashboard) releasePage(w http.ResponseWriter, r *http.Request, v *viewer) {
	var before int64
	if s := r.URL.Query().Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			db.errorPage(w, r, http.StatusBadRequest, "Bad request", fmt.Sprintf("before: %q is not an event id", s))
			return
		}
		before = n
	}
	view, err := db.loadRelease(r.Context(), r.PathValue("id"), v, before)
	if errors.Is(err, store.ErrNotFound) {
		db.errorPage(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no release %q.", r.PathValue("id")))
		return
	}
	if err != nil {
		db.internal(w, r, "load release", err)
		return
	}
	if c := r.URL.Query().Get("queued"); c != "" {
		if _, err := release.ParseCommand(c); err == nil {
			view.Flash = c + " queued"
			if p := r.URL.Query().Get("platform"); p != "" {
				if _, err := release.ParsePlatform(p); err == nil {
					view.Flash += " for the " + p + " lane"
				}
			}
			view.Flash += "; the lane below changes as soon as it is done."
		}
	}
	title := view.Release.App + " " + view.Release.Tag
	refresh := 0
	if before == 0 {
		refresh = 30
	}
	db.renderLayout(w, r, http.StatusOK, "release", layoutView{Title: title, Viewer: v, Nav: "releases", Refresh: refresh, Page: view})
}

// releasePanels renders the lanes and the audit log of a release alone,
// for the page's periodic refresh when live updates are not available.
func (db *Dashboard) releasePanels(w http.ResponseWriter, r *http.Request, v *viewer) {
	view, err := db.loadRelease(r.Context(), r.PathValue("id"), v, 0)
	if errors.Is(err, store.ErrNotFound) {
		db.errorPage(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no release %q.", r.PathValue("id")))
		return
	}
	if err != nil {
		db.internal(w, r, "load release", err)
		return
	}
	html, err := db.renderBlock("release", "panels", view)
	if err != nil {
		db.internal(w, r, "render panels", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(html))
}

type otaRelease struct {
	codepush.Release
	Counts codepush.Counts
}

type otaDeployment struct {
	Name     string
	Releases []otaRelease
	More     int
}

type otaApp struct {
	Name        string
	Deployments []otaDeployment
}

type otaPageView struct {
	Apps []otaApp
	Now  time.Time
}

// otaHistory is how many releases per deployment the OTA page lists.
const otaHistory = 20

func (db *Dashboard) otaPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := r.Context()
	apps, err := db.d.OTA.Apps(ctx)
	if err != nil {
		db.internal(w, r, "list codepush apps", err)
		return
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	view := otaPageView{Now: db.d.Now()}
	for _, a := range apps {
		oa := otaApp{Name: a.Name}
		for _, d := range a.Deployments {
			rs, err := db.d.OTA.Releases(ctx, d.Key)
			if err != nil {
				db.internal(w, r, "codepush history", err)
				return
			}
			counts, err := db.d.OTA.Counts(ctx, d.Key)
			if err != nil {
				db.internal(w, r, "codepush metrics", err)
				return
			}
			od := otaDeployment{Name: d.Name}
			for i := len(rs) - 1; i >= 0; i-- {
				if len(od.Releases) == otaHistory {
					od.More = i + 1
					break
				}
				od.Releases = append(od.Releases, otaRelease{Release: rs[i], Counts: counts[rs[i].Label]})
			}
			oa.Deployments = append(oa.Deployments, od)
		}
		view.Apps = append(view.Apps, oa)
	}
	db.renderLayout(w, r, http.StatusOK, "ota", layoutView{Title: "OTA deployments", Viewer: v, Page: view})
}

func (db *Dashboard) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	db.log.Error("dashboard: "+what, "err", err)
	db.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The page could not be read. Try again in a moment.")
}
