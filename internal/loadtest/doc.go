// Package loadtest holds the load benchmarks of issue 13 (build tag load):
// webhook intake at a steady rate beside a bare net/http HMAC handler, and
// update checks through the real serve binary beside a bare net/http handler,
// driven by an external load tool (wrk). Run them with make load; the figures
// and the commands go to BENCHMARKS.md. Without the tag only this file builds.
package loadtest
