// Package apply server-side applies a Kustomization's objects the way kustomize-controller does with
// fluxcd/pkg/ssa -- staged (CRDs, Namespaces and ClusterRoles first and waited for, then class
// definitions, then the rest, in ssa's kind order), with one field manager, force ownership, Flux's
// exclusion annotations, spec.ignore rules and force-recreate on immutable-field changes -- and prunes
// and health-checks with fluxcd/pkg/ssa itself.
//
// It differs from ssa.ResourceManager.ApplyAll in cost, not outcome: an object whose desired state is
// what was last applied and whose live copy (from the drift watcher's cache) still matches needs no
// request; an absent object is looked up in the API server's watch cache; the all-or-nothing dry-run
// pass runs only when a stage applies more than one object (one object cannot be half-applied).
// It imports client-go, controller-runtime and fluxcd/pkg/ssa, and of the project only reconciler/internal/core.
package apply
