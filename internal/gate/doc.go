// Package gate turns health signals into the observations rollout gates
// read (release.Observations): Play vitals for Android store lanes, and the
// client-reported failure rate of OTA releases. It also holds the OTA native
// gate, which refuses an OTA release whose commit's native fingerprint differs
// from a binary it would target.
//
// OTA failure rates come from devices' unauthenticated status reports: anyone
// holding a deployment key (it ships inside the app) can forge well-formed
// reports. See OTAObservation for what is checked and what remains.
//
// A provider never reports "healthy" for missing data: a metric without
// data, or with data older than the current stage, is not Fresh, and a gate
// holds on it.
package gate
