// Package reconciler is the system under test: a GitOps reconciler with Flux v2 semantics, one instance
// per workload cluster, as the Flux extension runs on each Arc-enabled AKS hybrid cluster.
//
// Its input is Flux's own API types -- source-controller's GitRepository, OCIRepository, HelmRepository
// and HelmChart (v1), kustomize-controller's Kustomization (v1) and helm-controller's HelmRelease (v2). In the twin it runs with Options.ObjectsInCluster: a
// controller on those objects in its cluster (cluster.go), as Flux's controllers are -- whoever created
// them, the Arc agent, kubectl, the flux CLI or a Kustomization it applied (the recursion of every
// `flux bootstrap` layout) -- writing their status to the status subresource in Flux's shape (conditions
// Ready, Reconciling, Stalled, Healthy with Flux's reasons, observedGeneration, revisions, inventory,
// the source's artifact), recording Kubernetes Events from source-controller and kustomize-controller,
// and keeping Flux's finalizer on them so a deleted Kustomization prunes first. Without it the objects
// live in memory only, fed through ApplyGitRepository / ApplyOCIRepository / ApplyKustomization (benches
// and unit tests). Either way field manager, owner labels and inventory IDs are Flux's, so real Flux
// can take the same objects over.
//
// Per Kustomization it fetches the source (go-git over HTTP(S), or over SSH with the Secret's identity
// and a strictly verified known_hosts, as source-controller does; OCI artifacts as `flux push artifact`
// makes them, with go-containerregistry; Buckets of the generic S3 provider with minio-go, as
// source-controller reads them), builds with kustomize and Flux's own
// generator, server-side applies in Flux's order, prunes what its inventory no longer declares,
// health-checks with kstatus, and honours dependsOn, suspend, force, targetNamespace, postBuild
// substitution, SOPS decryption with age keys (decrypt.go, kustomize-controller's decryptor's behaviour
// and messages, the same SOPS library), the prune/reconcile-disabled annotations and spec.kubeConfig (remote.go: applies,
// prunes and health checks on the cluster of a kubeconfig Secret, the hub-and-spoke layout; that
// cluster's objects are corrected at the interval, the drift watch covering the own cluster), and the
// CEL expressions of spec.healthCheckExprs and dependsOn[].readyExpr (cel.go, Flux's own CEL library;
// an invalid one stalls the Kustomization with InvalidCELExpression). Beyond Flux it wakes dependents the moment
// their dependencies become Ready (no 30 s requeue, fluxcd/flux2#4808) and watches every applied object
// so drift is corrected within a second instead of at the next interval; every correction is recorded.
//
// HelmReleases (helmrelease.go, helmrelease_release.go) follow helm-controller: the HelmChart made for
// spec.chart (or spec.chartRef), dependsOn, values and valuesFrom, then helm-controller's atomic release
// -- install, upgrade on a new chart version or values, unlock, remediation by rollback or uninstall --
// with the Helm v4 SDK (internal/helm) against the cluster, releases kept in Helm's Secrets; status
// (Released, Remediated, Ready, history) and events in helm-controller's shape; uninstall on delete;
// drift detection, post-renderers, commonMetadata, tests, the CRDs policies, dependsOn[].readyExpr,
// spec.healthCheckExprs (CEL status readers in Helm's kstatus wait) and spec.waitStrategy (poller, the
// default, is Helm's kstatus waiter; legacy is Helm's legacy wait). Refused with the field named:
// spec.kubeConfig, the install/upgrade strategy RetryOnFailure, and a chart template's valuesFiles and
// reconcileStrategy Revision.
//
// Source kinds are one table, sourceKinds (source.go): each kind's file (git.go, oci.go) states its row
// -- resource, Go type, validation, common fields, status, fetch -- and the shared bookkeeping, the
// cluster watch and the Kustomization's sourceRef check read the table.
//
// The decision logic is the pure package internal/core (fake-clock tested); Git, kustomize, apply and
// watches are engines under internal/. Its tests start the real API server and Git server they use
// with internal/testenv. client-go's own logs (reflectors, API warnings) go to Options.Logger, never to
// klog's stderr. This package imports client-go, controller-runtime, kustomize, fluxcd/pkg, go-git,
// go-containerregistry and the Helm v4 SDK, and must never import twin/, scenarios/ or hardware/ (its
// tests use the twin's in-process registry, twin/registry, which imports nothing of the project, and
// internal/testenv, which imports twin/gitserver for Gitea).
package reconciler
