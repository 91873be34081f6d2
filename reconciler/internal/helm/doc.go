// Package helm is the reconciler's Helm engine, on the Helm v4 SDK (helm.sh/helm/v4, the major version
// the pinned Flux controllers build with: source-controller v1.9.6 and helm-controller v1.6.4 require
// v4.2.4). It fetches what source-controller fetches for the Helm kinds -- a chart repository's
// index.yaml, a chart version picked by semver from it and downloaded, a chart pulled from an OCI
// registry, a chart directory packaged -- and runs Helm's install, upgrade, rollback, uninstall and
// test actions against a cluster's REST config with Helm's Secret storage driver, so `helm list` on
// the cluster shows the releases. Waiting is Helm's own "watcher" strategy (kstatus, as Flux's health
// checks), or hooks only.
//
// What helm-controller adds around Helm is here too: post-renderers (kustomize patches and images,
// common metadata, origin labels; postrender.go), and drift detection and correction of a release's
// objects against its manifest (drift.go, with fluxcd/pkg/ssa's jsondiff as helm-controller uses it).
//
// It imports the Helm SDK, client-go, cli-runtime, controller-runtime's client, kustomize and
// fluxcd/pkg/ssa, never the rest of the project.
package helm
