// Package nativecheck computes the native fingerprint of a commit for each
// mobile platform and explains how two fingerprints differ.
//
// A fingerprint is a SHA-256 over the native-affecting inputs of a commit: the
// sorted (path, digest) pairs of native files (with version and build number
// bumps normalised out), the npm packages that ship native code at what they
// resolve to, and the native-relevant app config fields. An OTA update may
// target a binary only when the fingerprints are equal.
//
// A dependency ships native code on a platform when React Native's or Expo's
// autolinking would link it there (autolink.go): react-native.config.js is
// read statically by a careful reader of its object-literal subset
// (jsparse.go, rnconfig.go), and whatever it cannot understand with certainty
// counts as native. Registry packages are judged from their tarball (checked
// against the published integrity) and keyed by name@version; git, tarball
// and local dependencies are keyed by what they resolve to, and packages of
// the repository itself are judged from the tree, their native files being
// inputs of their own (local.go).
//
// The package reads a repository only through the small [Source] interface,
// so it does not depend on any GitHub client; gitlocal reads a local checkout
// with the git command. Whatever cannot be read or classified fails closed: a
// truncated tree is an error, and a dependency whose contents cannot be
// inspected, an unparseable lockfile or a changed PODFILE CHECKSUM counts as
// native with a reason.
package nativecheck
