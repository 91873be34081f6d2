// Package fluxcmp benchmarks the twin's reconciler and real Flux (source-controller and
// kustomize-controller from the tool cache, run by twin/flux as processes) side by side on the same API
// server and Git server in one run, driving both through the Arc agent's Target interface, and writes
// the figures and their ratios to flux-compare.json (bench/result schema) in the run directory of
// $HYBRIDTWIN_BENCH_DIR, or bench/results/ without it (result.OutPath; -results overrides):
//
//   - BenchmarkScale: 100 / 500 / 1000 one-ConfigMap Kustomizations (flux-benchmark's shape) to Ready,
//     fluxcmp.scale.<N>.{hybridtwin,flux}.{allReadySeconds,cpuSeconds,rssMiB} and
//     fluxcmp.scale.<N>.fluxOverHybridtwin. -sizes=100 or HYBRIDTWIN_FLUXCMP_SIZES=100 picks sizes.
//   - BenchmarkDrift: a `kubectl edit` of a managed ConfigMap to its correction: ours (watch-driven),
//     Flux on a reconcile.fluxcd.io/requestedAt request, and Flux at a 30 s interval.
//   - BenchmarkPushToApplied: a git push to the new value in the cluster, with a source reconcile
//     requested right after the push for both engines.
//
// It has no code outside its tests.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/fluxcmp/
//
// It imports bench/result, reconciler, internal/testenv, tools/toolcache, twin/flux and twin/arcagent;
// nothing imports it.
package fluxcmp
