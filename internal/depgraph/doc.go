// Package depgraph finds a cycle in a dependency graph (Flux's Kustomization dependsOn, as the twin spec,
// the fake Arc fluxConfigurations and the reconciler each check it). It owns the depth-first search only:
// which dependencies count (a self-dependency, an unknown name) and how a cycle is reported is the
// caller's.
//
// The search is deterministic: nodes and each node's dependencies are visited in ascending order, so the
// same graph always reports the same cycle, whatever order the caller's map iterates in.
//
// It imports only the standard library, so fakes/ and reconciler/internal/core may use it.
package depgraph
