// Package nativecheck computes the native fingerprint of a commit for each
// mobile platform and explains how two fingerprints differ.
//
// A fingerprint is a SHA-256 over the native-affecting inputs of a commit: the
// sorted (path, digest) pairs of native files (with version and build number
// bumps normalised out), the npm packages that ship native code at their
// resolved versions, and the native-relevant app config fields. An OTA update
// may target a binary only when the fingerprints are equal.
//
// The package reads a repository only through the small [Source] interface,
// so it does not depend on any GitHub client. Whatever cannot be read or
// classified fails closed: a truncated tree is an error, and a dependency
// whose contents cannot be inspected counts as native with a reason.
package nativecheck
