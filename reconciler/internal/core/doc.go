// Package core is the reconciler's pure decision logic: the Kustomization dependency graph and its cycle
// check, the admission gate (suspend, source, dependencies) that decides whether a Kustomization may be
// reconciled now, the requeue times after each outcome, the deterministic due-time scheduler, the
// inventory difference that decides what to prune, the per-object apply plan (skip / unchanged / apply)
// and the field-level drift comparison with JSON-pointer ignore rules.
//
// Everything here is deterministic and free of I/O: no clients, no goroutines, no wall clock (times are
// passed in). The engines around it (Git, kustomize, server-side apply, watches) live in sibling packages
// and call into core; core imports none of them, nor anything of the project outside this package but
// internal/depgraph (the standard-library cycle search it shares with the spec validators).
package core
