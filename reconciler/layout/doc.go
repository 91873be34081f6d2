// Package layout is pre-deployment validation of GitOps repository layouts (`hybridtwin validate` and
// `hybridtwin diff`). Given a repository directory and the GitOps configurations that will sync it
// (Azure Arc fluxConfigurations, or the Flux Kustomizations the repository itself declares), it builds
// every Kustomization path with the reconciler's own build (reconciler/internal/build: Flux's generator,
// the real kustomize API, postBuild substitution), so validation and reconciliation build identically,
// renders every HelmRelease's chart with the Helm SDK (chart loader and engine, values layered as
// helm-controller layers them), and checks the result with a fixed set of rules (HT001...). Findings
// carry file, line, object, rule, severity and a fix hint; they render as text, JSON, SARIF 2.1.0 and
// JUnit XML.
//
// Around the static stage it owns:
//   - OpenSource: a revision of a remote (http(s), go-git) or local Git repository as a plain tree;
//   - the schema stage (server-side dry-run), only when the caller hands in a *rest.Config;
//   - Diff: what applying the layout would change on a cluster (fluxcd/pkg/ssa dry-run and diff, prune
//     candidates from the owner labels);
//   - WaitConverge: the converge stage's decision logic over a StatusSource the caller adapts a running
//     twin to (pushing the layout and starting the twin are the caller's).
//
// This package starts no processes. It imports client-go, controller-runtime, kustomize, fluxcd/pkg,
// go-git, go-containerregistry, the Helm SDK and the reconciler (for its profile), and must never import
// twin/, scenarios/, hardware/ or cmd/.
package layout
