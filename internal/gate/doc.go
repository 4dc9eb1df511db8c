// Package gate measures rollout health for gate rules: four providers of
// readings (release.Reading) for a lane's Target — Play vitals for Android
// store lanes, the OTA clients' install reports for OTA lanes, Sentry
// release health and an instant Prometheus query for every lane — each with
// a Measure method the reconciler calls through a small interface of its
// own. It also holds the OTA native gate, which refuses an OTA release whose
// commit's native fingerprint differs from a binary it would target.
//
// OTA failure rates come from devices' unauthenticated status reports: anyone
// holding a deployment key (it ships inside the app) can forge well-formed
// reports. See OTAObservation for what is checked and what remains.
//
// A provider never reports "healthy" for missing data: no data, or too few
// samples, is inconclusive; data that does not describe the current stage
// (it predates it, or a query's window reaches before it) is stale; a gate
// holds on both. Within a context made by WithPass, providers that would
// ask the same question share one answer.
package gate
