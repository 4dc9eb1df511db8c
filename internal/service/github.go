package service

import (
	"context"
	"fmt"
	"os"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/progress"
	"github.com/swapjoy/releasepilot/internal/store"
)

// setupGitHub wires GitHub intake: the webhook route and the plan_release job.
func (s *Service) setupGitHub(ctx context.Context) error {
	opts := github.ClientOptions{BaseURL: s.Config.GitHub.APIURL, Token: s.Config.GitHub.Token.Value()}
	if app := s.Config.GitHub.App; app.Set() {
		key, err := github.ParseAppKey([]byte(app.PrivateKey.Value()))
		if err != nil {
			return config.Invalid("github.app.private_key", err)
		}
		opts.App = &github.AppCredentials{ID: app.ID, InstallationID: app.InstallationID, PrivateKey: key}
	}
	gh, err := github.NewClient(opts)
	if err != nil {
		return config.Invalid("github.api_url", err)
	}
	apps := map[string]config.App{}
	var hookApps []httpapi.GitHubApp
	for i, a := range s.Config.Apps {
		apps[a.Name] = a
		rule := github.TagRule{Repository: a.Repository, Pattern: a.TagPattern, Platforms: map[string]string{}}
		if a.IOS.TagPattern != "" {
			rule.Platforms["ios"] = a.IOS.TagPattern
		}
		if a.Android.TagPattern != "" {
			rule.Platforms["android"] = a.Android.TagPattern
		}
		if err := rule.Validate(); err != nil {
			return config.Invalid(fmt.Sprintf("apps[%d] (%s)", i, a.Name), err)
		}
		ha := httpapi.GitHubApp{Name: a.Name, Secret: []byte(a.WebhookSecret.Value()), Rule: rule}
		if a.OTATagPattern != "" {
			ha.OTARule = github.TagRule{Repository: a.Repository, Pattern: a.OTATagPattern}
			if err := ha.OTARule.Validate(); err != nil {
				return config.Invalid(fmt.Sprintf("apps[%d].ota_tag_pattern", i), err)
			}
		}
		hookApps = append(hookApps, ha)
	}
	planner := &jobs.Planner{
		Store: s.Store,
		Apps:  apps,
		Repo: func(fullName string) (jobs.RepoReader, error) {
			return gh.Repo(fullName)
		},
		// Verdicts live in the database too: a restart or another replica
		// does not download tarballs again.
		Packages: &nativecheck.Registry{URL: s.Config.NPM.Registry,
			Cache: s.Store.PackageVerdicts(s.Config.NPM.VerdictCache.MaxEntries, s.Config.NPM.VerdictCache.MaxAge.D())},
		Enqueue: func(ctx context.Context, tx *store.Store, args river.JobArgs, opts *river.InsertOpts) (int64, bool, error) {
			return s.Jobs.EnqueueTx(ctx, tx, args, opts)
		},
		CanStart: func(kind string) bool { return s.laneKinds[kind] },
		Log:      s.Log,
	}
	s.Planner = planner
	s.Assets = githubAssets{gh}
	s.Progress = &progress.Mirror{Store: s.Store, Apps: apps, ReleaseURL: s.Config.GitHub.ReleaseURL, Holder: jobs.DefaultNode(),
		Log: s.Log.With("component", "github-deployments"),
		Repo: func(fullName string) (progress.Deployments, error) {
			return gh.Repo(fullName)
		}}
	changes := &jobs.TagChanges{
		Store: s.Store,
		Apps:  apps,
		Repo: func(fullName string) (jobs.TagResolver, error) {
			return gh.Repo(fullName)
		},
		Enqueue: planner.Enqueue,
		Cancel:  func(ctx context.Context, laneID string) error { return s.Jobs.CancelLaneJobs(ctx, laneID) },
		Log:     s.Log,
	}
	s.addWorkers(func(w *river.Workers) {
		river.AddWorker(w, &jobs.PlanReleaseWorker{Planner: planner, PerRepository: s.Config.Jobs.PlanPerRepository})
		river.AddWorker(w, &jobs.TagChangeWorker{Changes: changes})
	})
	s.addRoute("POST /webhooks/github", httpapi.RoleNone, &httpapi.GitHubWebhook{Store: s.Store, Jobs: lazyEnqueuer{s}, Apps: hookApps, Log: s.Log, Metrics: s.Metrics,
		PlanPerRepository: s.Config.Jobs.PlanPerRepository})
	return nil
}

// lazyEnqueuer reaches the River client, which exists only after setup.
type lazyEnqueuer struct{ s *Service }

func (l lazyEnqueuer) EnqueueTx(ctx context.Context, tx *store.Store, args river.JobArgs, opts *river.InsertOpts) (int64, bool, error) {
	return l.s.Jobs.EnqueueTx(ctx, tx, args, opts)
}

// githubAssets fetches build artifacts from GitHub releases.
type githubAssets struct{ gh *github.Client }

func (a githubAssets) FetchAsset(ctx context.Context, repository, tag, pattern string) (*os.File, string, error) {
	r, err := a.gh.Repo(repository)
	if err != nil {
		return nil, "", err
	}
	return r.FetchAsset(ctx, tag, pattern)
}
