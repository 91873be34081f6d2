// Package layout is the static stage of pre-deployment validation of GitOps repository layouts
// (`hybridtwin validate`): given a repository directory and the GitOps configurations that will sync it
// (Azure Arc fluxConfigurations, or the Flux Kustomizations the repository itself declares), it builds
// every Kustomization path with the reconciler's own build (reconciler/internal/build: Flux's generator,
// the real kustomize API, postBuild substitution), so validation and reconciliation build identically,
// and checks the result with a fixed set of rules (HT001...). Findings carry file, line, object, rule,
// severity and a fix hint; they render as text, JSON, SARIF 2.1.0 and JUnit XML.
//
// Schema validation (server-side dry-run against a real API server) runs only when the caller hands in
// a *rest.Config; this package starts no processes. It imports client-go, controller-runtime, kustomize
// and fluxcd/pkg, and must never import twin/, scenarios/, hardware/ or cmd/.
package layout
