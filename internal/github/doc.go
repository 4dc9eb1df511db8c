// Package github is releasepilot's side of GitHub: verifying and parsing
// webhook deliveries, matching release tags to apps, and reading a
// repository (trees, blobs, files, tags, compare) through go-github v60.
//
// The webhook functions are pure and allocate no clients, so the HTTP handler
// can call them before touching the database. [Repo] implements
// nativecheck.Source, so the plan_release job can fingerprint a commit.
package github
