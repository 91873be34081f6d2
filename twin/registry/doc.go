// Package registry runs a real OCI distribution registry (github.com/distribution/distribution/v3, the code
// behind Docker's registry:2 and most private registries) in-process on a loopback port, with its blobs and
// manifests on disk under the twin's state directory, and gives the twin and its tests a small client
// (go-containerregistry's crane) to publish a generated image under a tag, list tags and the catalog, fetch a
// manifest by tag or digest, and delete.
//
// It owns the registry's lifecycle (Start, Stop), its limits (Profile) and the client helpers. Images it
// publishes are small and reproducible: the same repository and tag always give the same digest, so a
// scenario can reason about digests without pulling.
//
// The registry logs through logrus' process-wide standard logger (distribution offers no other hook). While
// a Registry runs, this package sends that logger's output to the Options.Logger of the registry a request
// was addressed to (silent when nil) instead of stderr. See log.go.
//
// It must not import other twin packages, reconciler/, scenarios/ or cmd/: the twin composes it.
package registry
