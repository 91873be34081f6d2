// Package fluxcmp benchmarks the twin's reconciler and real Flux (source-controller and
// kustomize-controller from the tool cache, run by twin/flux) side by side on the same API server in
// one run, driving both through the Arc agent's Target interface, and writes the figures and their
// ratios to flux-compare.json (bench/result schema) in the run directory of $HYBRIDTWIN_BENCH_DIR, or
// bench/results/ without it (result.OutPath; -results overrides). It has no code outside its tests.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/fluxcmp/
//
// It imports bench/result, reconciler, reconciler/reconcilertest, twin/flux and twin/arcagent.
package fluxcmp
