// Package playstore drives Google Play releases through the Play Developer API
// (androidpublisher v3) and reads crash and ANR rates from the Play Developer
// Reporting API.
//
// Every change is one edit: insert, read the whole track, change only the
// release named by its versionCode, write every other release back unchanged,
// commit. An operation that finds the track already in the wanted state
// commits nothing, so the lane jobs and the reconciler can re-run any
// operation after a crash. A release of someone else that is in progress or
// halted on the track is never dropped or halted: the operation fails with a
// *ReleaseConflictError instead.
//
// A commit is never re-sent blindly. When its outcome is unknown (5xx, a lost
// connection) or Play says the edit expired, was deleted or was already
// committed, the operation starts again from a fresh edit and re-reads the
// track. Reads and track writes inside an edit are retried with backoff on
// 5xx, 429 and Play's 403 rateLimitExceeded.
//
// A versionCode is spent only once it may be in a committed edit: the
// VersionCodeLedger notes each commit before it is requested and how it
// ended. An upload whose edit Play never committed (Play discards such an
// edit with its bundles) is sent again with the same versionCode; one whose
// commit outcome stays unknown is refused until Play lists it.
//
// The fake in playstoretest stands in for Play in tests.
package playstore
