// Package twinup benchmarks `hybridtwin up` of the example twin (examples/twin.yaml: 4 HCI hosts, two
// workload clusters of 3 VM-nodes, Gitea, registry, Arc fake, a reconciler and Arc agent per cluster) on
// a warm tool cache: the wall time from twin.Up's call until it returns ready, until every GitOps
// configuration reports Compliant through ARM, and of Down.
//
// Run it with
//
//	go test -run '^$' -bench TwinUp -benchtime 3x -timeout 30m ./bench/twinup/
//
// It writes twin-up.json (schema bench/result) into the run directory of $HYBRIDTWIN_BENCH_DIR, or
// bench/results/ without it (result.OutPath). The goal: up to ready in < 30 s on 2 cores.
//
// It imports twin/ and bench/result; nothing imports it.
package twinup
