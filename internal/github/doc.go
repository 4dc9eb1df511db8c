// Package github is releasepilot's side of GitHub: verifying and parsing
// webhook deliveries (JSON or form-encoded, signatures checked while the body
// streams), matching release tags to apps, reading a repository (trees,
// blobs, files, tags, compare, release assets) and mirroring lanes as
// Deployments, through go-github v60.
//
// A Client authenticates with a token or as a GitHub App (installation
// tokens minted with golang-jwt and refreshed before they expire, or after a
// 401), and keeps each credential's hourly budget from GitHub's rate-limit
// headers: it stops before GitHub refuses, waits as long as Retry-After
// says, and lets polls for release assets spend only what is above a
// reserve, backing off between looks.
//
// The webhook functions are pure and allocate no clients, so the HTTP handler
// can call them before touching the database. [Repo] implements
// nativecheck.Source, so the plan_release job can fingerprint a commit.
package github
