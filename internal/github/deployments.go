package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	gh "github.com/google/go-github/v60/github"
)

// Deployment is a GitHub Deployment releasepilot made for a lane.
type Deployment struct {
	ID          int64
	SHA         string
	Environment string
	// LaneID is the lane the deployment's payload names.
	LaneID string
}

// NewDeployment is a deployment to create.
type NewDeployment struct {
	SHA         string
	Environment string
	Description string
	// Production marks an environment people use (production tracks); it
	// is false for test tracks such as TestFlight.
	Production bool
	LaneID     string
	ReleaseID  string
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	State          string // queued, in_progress, success, failure, error, inactive, pending
	Description    string
	LogURL         string
	EnvironmentURL string
}

// MaxStatusDescription is GitHub's limit on a status description.
const MaxStatusDescription = 140

// maxDeploymentPages bounds a listing (100 a page).
const maxDeploymentPages = 10

// FindDeployment returns the deployment of sha to environment whose payload
// names laneID, or nil: the read before a deployment is created, so a
// crash between creating it and recording it makes no second one.
func (r *Repo) FindDeployment(ctx context.Context, sha, environment, laneID string) (*Deployment, error) {
	opts := &gh.DeploymentsListOptions{SHA: sha, Environment: environment, ListOptions: gh.ListOptions{PerPage: 100}}
	for page := 0; page < maxDeploymentPages; page++ {
		ds, resp, err := r.gh.Repositories.ListDeployments(ctx, r.owner, r.name, opts)
		if err != nil {
			return nil, apiErr("list deployments of "+sha, resp, err)
		}
		for _, d := range ds {
			var p struct {
				LaneID string `json:"lane_id"`
			}
			if json.Unmarshal(d.Payload, &p) == nil && p.LaneID == laneID && d.GetEnvironment() == environment {
				return &Deployment{ID: d.GetID(), SHA: d.GetSHA(), Environment: d.GetEnvironment(), LaneID: laneID}, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
	return nil, nil
}

// CreateDeployment creates a deployment of the commit itself: no merge of
// the default branch into it (auto_merge false) and no commit status checks
// (required_contexts empty) — the release is what was tagged, whatever
// happened on main since.
func (r *Repo) CreateDeployment(ctx context.Context, d NewDeployment) (Deployment, error) {
	task := "deploy"
	payload := map[string]string{"lane_id": d.LaneID, "release_id": d.ReleaseID}
	req := &gh.DeploymentRequest{
		Ref: &d.SHA, Task: &task, AutoMerge: gh.Bool(false), RequiredContexts: &[]string{}, Payload: payload,
		Environment: &d.Environment, Description: &d.Description, TransientEnvironment: gh.Bool(false), ProductionEnvironment: &d.Production,
	}
	out, resp, err := r.gh.Repositories.CreateDeployment(ctx, r.owner, r.name, req)
	var accepted *gh.AcceptedError
	if errors.As(err, &accepted) {
		return Deployment{}, &APIError{Op: "create deployment of " + d.SHA, StatusCode: 202, Err: errors.New("GitHub merged the default branch instead of deploying")}
	}
	if err != nil {
		return Deployment{}, apiErr("create deployment of "+d.SHA+" to "+d.Environment, resp, err)
	}
	return Deployment{ID: out.GetID(), SHA: out.GetSHA(), Environment: out.GetEnvironment(), LaneID: d.LaneID}, nil
}

// DeploymentStatuses lists a deployment's statuses, newest first.
func (r *Repo) DeploymentStatuses(ctx context.Context, id int64) ([]DeploymentStatus, error) {
	var out []DeploymentStatus
	opts := &gh.ListOptions{PerPage: 100}
	for page := 0; page < maxDeploymentPages; page++ {
		ss, resp, err := r.gh.Repositories.ListDeploymentStatuses(ctx, r.owner, r.name, id, opts)
		if err != nil {
			return nil, apiErr(fmt.Sprintf("list statuses of deployment %d", id), resp, err)
		}
		for _, s := range ss {
			out = append(out, DeploymentStatus{State: s.GetState(), Description: s.GetDescription(), LogURL: s.GetLogURL(), EnvironmentURL: s.GetEnvironmentURL()})
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

// CreateDeploymentStatus posts a status. auto_inactive is off: releasepilot
// marks superseded deployments inactive itself, so every status it means is
// one it posts. A description longer than GitHub's 140 characters is cut.
func (r *Repo) CreateDeploymentStatus(ctx context.Context, id int64, s DeploymentStatus) error {
	desc := Truncate(s.Description, MaxStatusDescription)
	req := &gh.DeploymentStatusRequest{State: &s.State, Description: &desc, AutoInactive: gh.Bool(false)}
	if s.LogURL != "" {
		req.LogURL = &s.LogURL
	}
	if s.EnvironmentURL != "" {
		req.EnvironmentURL = &s.EnvironmentURL
	}
	_, resp, err := r.gh.Repositories.CreateDeploymentStatus(ctx, r.owner, r.name, id, req)
	return apiErr(fmt.Sprintf("create %s status of deployment %d", s.State, id), resp, err)
}

// Truncate cuts s to at most n characters, ending in "…" when cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
