// Package fluxcmp benchmarks the twin's engine and real Flux (source-controller and kustomize-controller
// from the tool cache, run by twin/flux as processes) side by side on one twin cluster (the embedded
// provider: etcd, kube-apiserver, controller-manager, scheduler, one simulated node) with Flux's CRDs.
// Both engines do the same work: objects in the API server, status written to it, Kubernetes Events.
// Three engines run at once, each taking only the objects labelled with its shard (Flux's
// --watch-label-selector, the reconciler's WatchLabelSelector): ours as `hybridtwin up` runs it, Flux at
// its defaults, and Flux at our settings (--concurrent and GOGC). It writes the figures and their ratios
// to flux-compare.json (bench/result schema) in the run directory of $HYBRIDTWIN_BENCH_DIR, or
// bench/results/ without it (result.OutPath; -results overrides):
//
//   - BenchmarkScale: N Kustomizations to Ready in two shapes -- fluxbench, Flux's own benchmark
//     (controlplaneio-fluxcd/benchmark: one OCIRepository of a small app, N Kustomizations with
//     namePrefix, targetNamespace, serviceAccountName, wait and a patch), and monorepo (one GitRepository
//     of N one-ConfigMap apps) -- for each size (-sizes, default 100,500,1000), engine after engine per
//     sample (-benchtime 3x: three interleaved samples), each run in a fresh namespace deleted after it:
//     fluxcmp.<shape>.<N>.<engine>.{allReadySeconds,cpuSeconds,rssMiB,apiRequestsPerKustomization} and
//     the ratios fluxcmp.<shape>.<N>.{flux,fluxMatched}{,CPU}OverHybridtwin.
//   - BenchmarkDrift: a `kubectl edit` of a managed ConfigMap to its correction: ours (watch-driven),
//     Flux on a reconcile.fluxcd.io/requestedAt request, and Flux at a 30 s interval.
//   - BenchmarkPushToApplied: a git push to the new value in the cluster, with a source reconcile
//     requested right after the push for both engines.
//
// It has no code outside its tests. `go tool task bench:fluxcmp` runs it as the README quotes it:
//
//	go test -run '^$' -bench Scale -benchtime 3x -timeout 6h ./bench/fluxcmp/ -args -sizes=100,500
//
// It imports bench/result, reconciler, internal/testenv, internal/fluxcrd, internal/fluxartifact,
// tools/toolcache, twin/cluster, twin/registry, twin/flux and twin/arcagent; nothing imports it.
package fluxcmp
