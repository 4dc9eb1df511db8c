// Package progress shows each lane's progress where teams work, on GitHub:
// every lane of an app with github_deployments on is a GitHub Deployment of
// its release's commit, to an environment named for where it ships
// (ios-testflight, ios-app-store, android-production, ios-ota-production…),
// and its deployment statuses follow the lane: queued when planned,
// in_progress as it uploads and rolls out (the percentage in the
// description), success at 100 %, failure when it fails or halts, inactive
// when it is withdrawn or a later release's lane supersedes it. Each status
// links to the release in releasepilot.
//
// Like notifications, statuses come from a pass over the audit log from a
// cursor kept in the database. One replica at a time runs the pass (a lease
// in the database), and every change on GitHub is preceded by a read of
// what GitHub already has — the deployments of the commit and environment,
// the statuses of the deployment — so a pass that dies half-way and runs
// again, here or on another replica, creates each deployment and posts each
// status once.
package progress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Deployments is what the mirror needs of a repository on GitHub.
type Deployments interface {
	FindDeployment(ctx context.Context, sha, environment, laneID string) (*github.Deployment, error)
	CreateDeployment(ctx context.Context, d github.NewDeployment) (github.Deployment, error)
	DeploymentStatuses(ctx context.Context, id int64) ([]github.DeploymentStatus, error)
	CreateDeploymentStatus(ctx context.Context, id int64, s github.DeploymentStatus) error
}

// Cursor and lease names in the database.
const (
	cursorName = "github:deployments"
	leaseName  = "github-deployments"
	leaseTTL   = 2 * time.Minute
)

// Mirror mirrors lanes to GitHub Deployments.
type Mirror struct {
	Store *store.Store
	// Apps by name; only apps with GitHubDeployments are mirrored.
	Apps map[string]config.App
	// Repo opens a repository ("owner/name") on GitHub.
	Repo func(fullName string) (Deployments, error)
	// ReleaseURL links statuses to a release: {release_id} is replaced.
	ReleaseURL string
	// Holder names this replica in the lease.
	Holder string
	Now    func() time.Time
	Log    *slog.Logger
}

func (m *Mirror) now() time.Time {
	if m.Now == nil {
		return time.Now().UTC()
	}
	return m.Now().UTC()
}

func (m *Mirror) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// Enabled reports whether any app mirrors its lanes.
func (m *Mirror) Enabled() bool {
	for _, a := range m.Apps {
		if a.GitHubDeployments {
			return true
		}
	}
	return false
}

// Pass mirrors the audit events since the cursor, in order. It does
// nothing while another replica holds the lease. An event GitHub cannot
// take for good (a 4xx other than auth and rate limits) is logged and
// passed; any other failure stops the pass with the cursor on that event,
// for the next pass to try again.
func (m *Mirror) Pass(ctx context.Context) error {
	if !m.Enabled() {
		return nil
	}
	ok, err := m.Store.TryLease(ctx, leaseName, m.Holder, m.now(), leaseTTL)
	if err != nil || !ok {
		return err
	}
	defer func() { _ = m.Store.ReleaseLease(context.WithoutCancel(ctx), leaseName, m.Holder) }()
	cursor, err := m.Store.NotifyCursor(ctx, cursorName)
	if err != nil {
		return err
	}
	evs, err := m.Store.LogEvents(ctx, cursor, 200)
	if err != nil {
		return err
	}
	for _, e := range evs {
		// Keep the lease for the length of the pass; stop if it was lost
		// (this replica stalled past it and another took over).
		if ok, err := m.Store.TryLease(ctx, leaseName, m.Holder, m.now(), leaseTTL); err != nil || !ok {
			return err
		}
		if err := m.mirror(ctx, e.Event); err != nil {
			if !permanent(err) {
				return fmt.Errorf("github deployments, event %d (%s): %w", e.ID, e.Kind, err)
			}
			m.log().Warn("github deployment status not posted", "event", e.ID, "kind", e.Kind, "err", err)
		}
		if err := m.Store.SetNotifyCursor(ctx, cursorName, e.Cursor, m.now()); err != nil {
			return err
		}
	}
	return nil
}

// permanent reports a GitHub answer that a retry cannot change.
func permanent(err error) bool {
	var ae *github.APIError
	if !errors.As(err, &ae) || errors.Is(err, github.ErrRateLimited) {
		return false
	}
	switch ae.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
		return false
	}
	return ae.StatusCode >= 400 && ae.StatusCode < 500
}

// Environment is where a lane ships, as a GitHub environment name.
func Environment(app config.App, l release.Lane) (name string, production bool) {
	switch {
	case l.Kind == release.KindOTA:
		return string(l.Platform) + "-ota-production", true
	case l.Platform == release.IOS && app.IOS.AppStore:
		return "ios-app-store", true
	case l.Platform == release.IOS:
		return "ios-testflight", false
	default:
		track := app.Android.Track
		if track == "" {
			track = "production"
		}
		return "android-" + track, track == "production"
	}
}

// Status is the deployment status an audit event means for its lane, and
// whether it means one at all.
func Status(e release.Event) (state, description string, ok bool) {
	pct := func() string {
		switch v := e.Details["percent"].(type) {
		case float64:
			return strconv.Itoa(int(v)) + "%"
		case int:
			return strconv.Itoa(v) + "%"
		}
		return "?%"
	}
	reason := func() string { s, _ := e.Details["reason"].(string); return s }
	with := func(head, tail string) string {
		if tail == "" {
			return head
		}
		return head + ": " + tail
	}
	switch e.Kind {
	case "lane.planned":
		if e.Details["kind"] == string(release.KindRefused) {
			return "", "", false
		}
		return "queued", with(fmt.Sprintf("%v lane planned", e.Details["kind"]), reason()), true
	case "lane.ready":
		d, _ := e.Details["detail"].(string)
		return "in_progress", with("0%, ready", d), true
	case "rollout.advance", "command.advance":
		return "in_progress", "rolling out: " + pct(), true
	case "command.resume":
		return "in_progress", with("resumed at "+pct(), reason()), true
	case "command.pause":
		return "in_progress", with("paused at "+pct(), reason()), true
	case "rollout.complete", "command.complete":
		return "success", "at 100%", true
	case "rollout.halt", "command.halt", "command.rollback":
		return "failure", with(strings.TrimPrefix(strings.TrimPrefix(e.Kind, "rollout."), "command.")+" at "+pct(), reason()), true
	case "lane.failed":
		return "failure", with("failed", reason()), true
	case "lane.cancelled", "command.cancel":
		return "inactive", with("cancelled", reason()), true
	case "ios.uploaded":
		return "in_progress", "0%, build uploaded to App Store Connect", true
	case "ios.in_testflight":
		return "in_progress", "0%, in TestFlight", true
	case "ios.app_store_submitted":
		return "in_progress", "0%, submitted for App Review", true
	case "ios.app_store_approved":
		return "in_progress", "0%, approved by App Review", true
	case "android.bundle_uploaded", "android.bundle_picked_up":
		return "in_progress", "0%, bundle in Google Play", true
	case "android.internal_track":
		return "in_progress", "0%, on the internal track", true
	case "ota.staged":
		return "in_progress", "0%, released to Staging", true
	}
	return "", "", false
}

// link is the release's page in releasepilot, with the event that caused
// a status when event > 0 (so every status's link is its own).
func (m *Mirror) link(releaseID string, event int64) string {
	s := strings.ReplaceAll(m.ReleaseURL, "{release_id}", url.PathEscape(releaseID))
	if event <= 0 {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	q := u.Query()
	q.Set("event", strconv.FormatInt(event, 10))
	u.RawQuery = q.Encode()
	return u.String()
}

func (m *Mirror) mirror(ctx context.Context, e release.Event) error {
	state, desc, ok := Status(e)
	if !ok || e.LaneID == "" {
		return nil
	}
	l, err := m.Store.GetLane(ctx, e.LaneID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rel, err := m.Store.GetRelease(ctx, l.ReleaseID)
	if err != nil {
		return err
	}
	app, ok := m.Apps[rel.App]
	if !ok || !app.GitHubDeployments || l.Kind == release.KindRefused || rel.Commit == "" {
		return nil
	}
	rec, err := m.Store.GetGitHubDeployment(ctx, l.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		env, _ := Environment(app, l)
		rec = store.GitHubDeployment{LaneID: l.ID, Repository: app.Repository, Environment: env, SHA: rel.Commit}
	case err != nil:
		return err
	}
	if rec.EventID >= e.ID {
		return nil // mirrored before
	}
	repo, err := m.Repo(rec.Repository)
	if err != nil {
		return err
	}
	if rec.DeploymentID == 0 {
		if err := m.deployment(ctx, repo, &rec, app, l, rel); err != nil {
			return err
		}
	}
	st := github.DeploymentStatus{State: state, Description: github.Truncate(fmt.Sprintf("%s %s: %s", rel.Tag, l.Platform, desc), github.MaxStatusDescription),
		LogURL: m.link(rel.ID, e.ID), EnvironmentURL: m.link(rel.ID, 0)}
	if err := m.post(ctx, repo, rec.DeploymentID, st); err != nil {
		return err
	}
	rec.State, rec.EventID, rec.UpdatedAt = state, e.ID, m.now()
	if err := m.Store.SaveGitHubDeployment(ctx, rec); err != nil {
		return err
	}
	if state == "success" {
		return m.supersede(ctx, repo, rec, rel, e)
	}
	return nil
}

// deployment finds the lane's deployment on GitHub or creates it — the
// read comes first, so a deployment created by a pass that died before
// recording it is found, not made twice.
func (m *Mirror) deployment(ctx context.Context, repo Deployments, rec *store.GitHubDeployment, app config.App, l release.Lane, rel release.Release) error {
	found, err := repo.FindDeployment(ctx, rec.SHA, rec.Environment, l.ID)
	if err != nil {
		return err
	}
	if found == nil {
		_, production := Environment(app, l)
		d, err := repo.CreateDeployment(ctx, github.NewDeployment{SHA: rec.SHA, Environment: rec.Environment, Production: production,
			Description: fmt.Sprintf("%s %s (%s lane) by releasepilot", rel.App, rel.Tag, l.Platform), LaneID: l.ID, ReleaseID: rel.ID})
		if err != nil {
			return err
		}
		found = &d
	}
	rec.DeploymentID, rec.UpdatedAt = found.ID, m.now()
	return m.Store.SaveGitHubDeployment(ctx, *rec)
}

// post creates a status unless GitHub has it already: the statuses are
// read first, and the status whose link names the same event is the same
// status.
func (m *Mirror) post(ctx context.Context, repo Deployments, id int64, st github.DeploymentStatus) error {
	have, err := repo.DeploymentStatuses(ctx, id)
	if err != nil {
		return err
	}
	for _, h := range have {
		if h.State == st.State && h.LogURL == st.LogURL {
			return nil
		}
	}
	return repo.CreateDeploymentStatus(ctx, id, st)
}

// supersede marks this app's earlier successful deployments to the same
// environment inactive: the new lane's release replaced them.
func (m *Mirror) supersede(ctx context.Context, repo Deployments, rec store.GitHubDeployment, rel release.Release, e release.Event) error {
	others, err := m.Store.GitHubDeploymentsIn(ctx, rec.Repository, rec.Environment)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.LaneID == rec.LaneID || o.State != "success" || o.DeploymentID == 0 {
			continue
		}
		ol, err := m.Store.GetLane(ctx, o.LaneID)
		if err != nil {
			return err
		}
		orel, err := m.Store.GetRelease(ctx, ol.ReleaseID)
		if err != nil {
			return err
		}
		if orel.App != rel.App { // a monorepo's other app shares the environment name
			continue
		}
		st := github.DeploymentStatus{State: "inactive", Description: github.Truncate(fmt.Sprintf("%s %s: superseded by %s", orel.Tag, ol.Platform, rel.Tag), github.MaxStatusDescription),
			LogURL: m.link(rel.ID, e.ID), EnvironmentURL: m.link(orel.ID, 0)}
		if err := m.post(ctx, repo, o.DeploymentID, st); err != nil {
			return err
		}
		o.State, o.UpdatedAt = "inactive", m.now()
		if err := m.Store.SaveGitHubDeployment(ctx, o); err != nil {
			return err
		}
	}
	return nil
}
