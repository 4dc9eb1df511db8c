// Package release holds releasepilot's domain: apps, releases, lanes, rollout
// plans and their status, and the pure logic that moves a lane through its plan.
//
// Nothing here performs I/O. Time is passed in, observations are passed in, and
// every function returns a value or an error; illegal transitions are errors,
// never panics. The jobs package executes what this package decides.
package release
