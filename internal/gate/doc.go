// Package gate turns health signals into the observations rollout gates
// read (release.Observations): Play vitals for Android store lanes here;
// OTA failure rates and Prometheus queries beside it.
//
// A provider never reports "healthy" for missing data: a metric without
// data, or with data older than the current stage, is not Fresh, and a gate
// holds on it.
package gate
