package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Deployment is a deployment as the fake holds it, for tests to inspect.
type Deployment struct {
	ID          int64
	SHA         string
	Ref         string
	Task        string
	Environment string
	Description string
	Payload     any
	Production  bool
	Transient   bool
	Statuses    []DeploymentStatus // oldest first
	CreatedAt   time.Time
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID             int64
	State          string
	Description    string
	LogURL         string
	EnvironmentURL string
	Environment    string
	CreatedAt      time.Time
}

// DeploymentStates are the states GitHub accepts for a deployment status.
var DeploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

// MaxStatusDescription is GitHub's limit on a deployment status's
// description, in characters.
const MaxStatusDescription = 140

// Deployments returns a copy of the repository's deployments, oldest first.
func (r *Repo) Deployments() []Deployment {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	out := make([]Deployment, 0, len(r.deployments))
	for _, d := range r.deployments {
		c := *d
		c.Statuses = append([]DeploymentStatus(nil), d.Statuses...)
		out = append(out, c)
	}
	return out
}

const (
	docDeployments = docsBase + "/deployments/deployments"
	docStatuses    = docsBase + "/deployments/statuses"
)

// simpleUser is GitHub's "Simple User" object.
func simpleUser(host, login string, id int64, typ string) map[string]any {
	u := "https://api.github.com/users/" + login
	return map[string]any{
		"login": login, "id": id, "node_id": fmt.Sprintf("U_%d", id), "avatar_url": "https://avatars.githubusercontent.com/u/" + strconv.FormatInt(id, 10),
		"gravatar_id": "", "url": u, "html_url": "https://github.com/" + login, "followers_url": u + "/followers",
		"following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}", "starred_url": u + "/starred{/owner}{/repo}",
		"subscriptions_url": u + "/subscriptions", "organizations_url": u + "/orgs", "repos_url": u + "/repos",
		"events_url": u + "/events{/privacy}", "received_events_url": u + "/received_events", "type": typ, "site_admin": false,
	}
}

func (s *Server) deploymentJSON(r *http.Request, repo *Repo, d *Deployment) map[string]any {
	url := s.apiURL(r, repo, "deployments/"+strconv.FormatInt(d.ID, 10))
	return map[string]any{
		"url": url, "id": d.ID, "node_id": fmt.Sprintf("DE_%d", d.ID), "sha": d.SHA, "ref": d.Ref, "task": d.Task,
		"payload": d.Payload, "original_environment": d.Environment, "environment": d.Environment, "description": d.Description,
		"creator":    simpleUser(r.Host, "releasepilot[bot]", 9001, "Bot"),
		"created_at": d.CreatedAt.UTC().Format(time.RFC3339), "updated_at": d.CreatedAt.UTC().Format(time.RFC3339),
		"statuses_url": url + "/statuses", "repository_url": strings.TrimSuffix(s.apiURL(r, repo, ""), "/"),
		"transient_environment": d.Transient, "production_environment": d.Production,
	}
}

func (s *Server) statusJSON(r *http.Request, repo *Repo, d *Deployment, st DeploymentStatus) map[string]any {
	durl := s.apiURL(r, repo, "deployments/"+strconv.FormatInt(d.ID, 10))
	return map[string]any{
		"url": durl + "/statuses/" + strconv.FormatInt(st.ID, 10), "id": st.ID, "node_id": fmt.Sprintf("DES_%d", st.ID),
		"state": st.State, "creator": simpleUser(r.Host, "releasepilot[bot]", 9001, "Bot"), "description": st.Description,
		"environment": st.Environment, "target_url": st.LogURL, "log_url": st.LogURL, "environment_url": st.EnvironmentURL,
		"created_at": st.CreatedAt.UTC().Format(time.RFC3339), "updated_at": st.CreatedAt.UTC().Format(time.RFC3339),
		"deployment_url": durl, "repository_url": strings.TrimSuffix(s.apiURL(r, repo, ""), "/"),
	}
}

// invalidRequest is GitHub's answer to a body that breaks the endpoint's
// schema, e.g. `"ref" wasn't supplied.`
func invalidRequest(w http.ResponseWriter, doc, detail string) {
	writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+detail, doc)
}

// validationFailed is GitHub's 422 "Validation Failed" with its errors.
func validationFailed(w http.ResponseWriter, doc string, errs ...map[string]any) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": errs, "documentation_url": doc, "status": "422"})
}

// decodeBody reads a JSON object body; a body that is not one is GitHub's
// 400 "Problems parsing JSON".
func decodeBody(w http.ResponseWriter, r *http.Request, doc string) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&m); err != nil || m == nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", doc)
		return nil, false
	}
	return m, true
}

// field reads an optional field into v; a value of the wrong type is a 422
// naming the field.
func field(w http.ResponseWriter, m map[string]json.RawMessage, name, typ, doc string, v any) (present, ok bool) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return false, true
	}
	if err := json.Unmarshal(raw, v); err != nil {
		invalidRequest(w, doc, fmt.Sprintf("For 'properties/%s', %s is not %s.", name, raw, typ))
		return true, false
	}
	return true, true
}

// serveDeployments answers the deployments endpoints under
// /repos/{owner}/{repo}/deployments.
func (s *Server) serveDeployments(w http.ResponseWriter, r *http.Request, repo *Repo, rest string) {
	switch {
	case rest == "" && r.Method == http.MethodGet:
		s.listDeployments(w, r, repo)
	case rest == "" && r.Method == http.MethodPost:
		s.createDeployment(w, r, repo)
	case strings.HasSuffix(rest, "/statuses"):
		id, err := strconv.ParseInt(strings.TrimSuffix(rest, "/statuses"), 10, 64)
		var d *Deployment
		for _, x := range repo.deployments {
			if err == nil && x.ID == id {
				d = x
			}
		}
		if d == nil {
			notFound(w, docStatuses)
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.listStatuses(w, r, repo, d)
		case http.MethodPost:
			s.createStatus(w, r, repo, d)
		default:
			notFound(w, docStatuses)
		}
	default:
		notFound(w, docDeployments)
	}
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, repo *Repo) {
	q := r.URL.Query()
	var match []*Deployment
	// Newest first, as GitHub lists them.
	for i := len(repo.deployments) - 1; i >= 0; i-- {
		d := repo.deployments[i]
		if (q.Get("sha") == "" || q.Get("sha") == d.SHA) && (q.Get("ref") == "" || q.Get("ref") == d.Ref) &&
			(q.Get("task") == "" || q.Get("task") == d.Task) && (q.Get("environment") == "" || q.Get("environment") == d.Environment) {
			match = append(match, d)
		}
	}
	perPage, page := pageParams(r, 30)
	setLink(w, r, perPage, page, len(match))
	out := []map[string]any{}
	for i := (page - 1) * perPage; i < len(match) && i < page*perPage; i++ {
		out = append(out, s.deploymentJSON(r, repo, match[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request, repo *Repo) {
	const doc = docDeployments + "#create-a-deployment"
	m, ok := decodeBody(w, r, doc)
	if !ok {
		return
	}
	d := &Deployment{Task: "deploy", Environment: "production", Payload: map[string]any{}}
	autoMerge := true
	var contexts []string
	for _, f := range []struct {
		name, typ string
		v         any
	}{
		{"ref", "a string", &d.Ref}, {"task", "a string", &d.Task}, {"environment", "a string", &d.Environment},
		{"description", "a string", &d.Description}, {"auto_merge", "a boolean", &autoMerge},
		{"required_contexts", "an array", &contexts}, {"transient_environment", "a boolean", &d.Transient},
	} {
		if _, ok := field(w, m, f.name, f.typ, doc, f.v); !ok {
			return
		}
	}
	if _, present := m["ref"]; !present {
		invalidRequest(w, doc, `"ref" wasn't supplied.`)
		return
	}
	d.Production = d.Environment == "production"
	if _, ok := field(w, m, "production_environment", "a boolean", doc, &d.Production); !ok {
		return
	}
	if raw, present := m["payload"]; present {
		var p any
		if err := json.Unmarshal(raw, &p); err != nil {
			invalidRequest(w, doc, "For 'properties/payload', it is not an object or a string.")
			return
		}
		switch p.(type) {
		case map[string]any, string:
			d.Payload = p
		default:
			invalidRequest(w, doc, fmt.Sprintf("For 'properties/payload', %s is not an object or a string.", raw))
			return
		}
	}
	sha, _, found := repo.peel(d.Ref)
	if !found || sha == "" {
		writeError(w, http.StatusUnprocessableEntity, "No ref found for: "+d.Ref, doc)
		return
	}
	d.SHA = sha
	// auto_merge (on unless turned off) merges the default branch into a
	// ref that is behind it, instead of deploying it.
	if def, _, ok := repo.peel(repo.defaultBranch); autoMerge && ok && def != sha && !repo.ancestors(sha)[def] {
		writeJSON(w, http.StatusAccepted, map[string]any{"message": fmt.Sprintf("Auto-merged %s into %s on deployment.", repo.defaultBranch, d.Ref)})
		return
	}
	s.nextID++
	d.ID = s.nextID
	d.CreatedAt = s.now()
	repo.deployments = append(repo.deployments, d)
	writeJSON(w, http.StatusCreated, s.deploymentJSON(r, repo, d))
}

func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request, repo *Repo, d *Deployment) {
	perPage, page := pageParams(r, 30)
	setLink(w, r, perPage, page, len(d.Statuses))
	out := []map[string]any{}
	for i := (page - 1) * perPage; i < len(d.Statuses) && i < page*perPage; i++ {
		out = append(out, s.statusJSON(r, repo, d, d.Statuses[len(d.Statuses)-1-i])) // newest first
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request, repo *Repo, d *Deployment) {
	const doc = docStatuses + "#create-a-deployment-status"
	m, ok := decodeBody(w, r, doc)
	if !ok {
		return
	}
	st := DeploymentStatus{Environment: d.Environment}
	var targetURL string
	autoInactive := true
	for _, f := range []struct {
		name, typ string
		v         any
	}{
		{"state", "a string", &st.State}, {"description", "a string", &st.Description}, {"log_url", "a string", &st.LogURL},
		{"target_url", "a string", &targetURL}, {"environment_url", "a string", &st.EnvironmentURL},
		{"environment", "a string", &st.Environment}, {"auto_inactive", "a boolean", &autoInactive},
	} {
		if _, ok := field(w, m, f.name, f.typ, doc, f.v); !ok {
			return
		}
	}
	if _, present := m["state"]; !present {
		invalidRequest(w, doc, `"state" wasn't supplied.`)
		return
	}
	valid := false
	for _, v := range DeploymentStates {
		valid = valid || v == st.State
	}
	if !valid {
		validationFailed(w, doc, map[string]any{"resource": "DeploymentStatus", "code": "invalid", "field": "state"})
		return
	}
	if utf8.RuneCountInString(st.Description) > MaxStatusDescription {
		validationFailed(w, doc, map[string]any{"resource": "DeploymentStatus", "code": "custom", "field": "description",
			"message": fmt.Sprintf("description is too long (maximum is %d characters)", MaxStatusDescription)})
		return
	}
	if st.LogURL == "" {
		st.LogURL = targetURL // log_url replaces target_url; either sets both
	}
	s.nextID++
	st.ID, st.CreatedAt = s.nextID, s.now()
	d.Statuses = append(d.Statuses, st)
	d.Environment = st.Environment
	// auto_inactive: prior successful deployments to the same
	// non-transient, non-production environment become inactive.
	if st.State == "success" && autoInactive {
		for _, o := range repo.deployments {
			if o == d || o.Environment != d.Environment || o.Transient || o.Production || len(o.Statuses) == 0 {
				continue
			}
			if last := o.Statuses[len(o.Statuses)-1]; last.State == "success" {
				s.nextID++
				o.Statuses = append(o.Statuses, DeploymentStatus{ID: s.nextID, State: "inactive", Environment: o.Environment, CreatedAt: s.now()})
			}
		}
	}
	writeJSON(w, http.StatusCreated, s.statusJSON(r, repo, d, st))
}
