// Package reconciler is the system under test: a GitOps reconciler with Flux v2 semantics, one instance
// per workload cluster, as the Flux extension runs on each Arc-enabled AKS hybrid cluster.
//
// Its input is Flux's own API types -- source-controller's GitRepository and OCIRepository (v1) and
// kustomize-controller's Kustomization (v1) -- held in memory and fed through ApplyGitRepository /
// ApplyOCIRepository / ApplyKustomization (the Arc agent translates Azure fluxConfigurations into them). Status is reported on the same types with Flux's
// condition types and reasons (Ready, Reconciling, Stalled, Healthy), so compliance reads the way the Arc
// agent reads Flux. A later run of real Flux controllers against the same clusters can take the same
// objects as CRs: field manager, owner labels and inventory IDs are Flux's.
//
// Per Kustomization it fetches the source (go-git over HTTP(S); OCI artifacts as `flux push artifact`
// makes them, with go-containerregistry; Git over SSH, Buckets and Helm are not supported and are
// refused with the field named), builds with kustomize and Flux's own
// generator, server-side applies in Flux's order, prunes what its inventory no longer declares,
// health-checks with kstatus, and honours dependsOn, suspend, force, targetNamespace, postBuild
// substitution and the prune/reconcile-disabled annotations. Beyond Flux it wakes dependents the moment
// their dependencies become Ready (no 30 s requeue, fluxcd/flux2#4808) and watches every applied object
// so drift is corrected within a second instead of at the next interval; every correction is recorded.
//
// The decision logic is the pure package internal/core (fake-clock tested); Git, kustomize, apply and
// watches are engines under internal/. reconcilertest starts the real API server and Git server tests
// use. client-go's own logs (reflectors, API warnings) go to Options.Logger, never to klog's stderr.
// This package imports client-go, controller-runtime, kustomize, fluxcd/pkg, go-git and
// go-containerregistry, and must never import twin/, scenarios/ or hardware/ (its tests use the twin's
// in-process registry, twin/registry, which imports nothing of the project).
package reconciler
