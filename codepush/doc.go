// Package codepush is a CodePush-compatible over-the-air update server: the
// release rules of microsoft/code-push-server (target binary ranges with
// node-semver semantics, mandatory propagation, rollout membership by the same
// hash as Microsoft's server, disable and rollback), the acquisition HTTP API
// spoken by the react-native-code-push client (code-push SDK 4.x), and the
// management API as code-push-cli 2.1.9 and code-push-server's own CLI speak
// it (routes, bodies, status codes and plain-text errors).
//
// The package imports nothing from the service that embeds it. Metadata lives
// behind [Store] and package contents behind [Blobs]; [MemStore] and [DirBlobs]
// are complete implementations for a single process. An optional [Gate] can
// refuse a release before it is persisted (the native-code gate), per-app
// signing keys make every release carry a valid CodePush signature
// ([VerifySignature], [WritePackage]), and [Operations] lets the embedding
// service put its own rules in front of every management change.
//
// Status reports are unauthenticated by protocol, so they count devices, not
// requests (each client id once per label and status), never drive counts
// negative, and are rate-limited per client address. Download URLs never come
// from the Host header.
//
// Update checks are answered from an immutable in-memory view of each
// deployment's history, replaced on every change made through the [Service];
// when another replica changes the data, call [Service.Invalidate].
package codepush
