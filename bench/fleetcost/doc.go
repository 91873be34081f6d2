// Package fleetcost benchmarks what a workload cluster costs the machine, for sizing fleets (issue 21):
// N embedded clusters (N = 1, 2, 4, 8 by default) are started side by side, each with Flux's CRDs and the
// twin's own engine, as `hybridtwin up` runs them, and left idle. For every cluster and every part of it
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and in the twin's own process the
// simulated kubelets and the engine) it records the resident memory (VmRSS from /proc/<pid>/status, and
// the proportional share Pss from /proc/<pid>/smaps_rollup, which splits the binaries' shared text among
// the clusters) and the idle CPU over a window (utime+stime from /proc/<pid>/stat).
//
// Each variant (Variants) changes one thing the issue asks about, so the figures say what each flag buys:
// a smaller watch cache, only the API groups the twin uses, fewer simulated nodes, one etcd shared by the
// API servers with --etcd-prefix, and the light tier that combines them.
//
// Run it with `go tool task bench:fleetcost`, or
//
//	HYBRIDTWIN_FLEETCOST_VARIANTS=full,light HYBRIDTWIN_FLEETCOST_COUNTS=1,2,4,8 \
//	  go test -run '^$' -bench FleetCost -benchtime 1x -timeout 60m ./bench/fleetcost/
//
// It writes fleetcost.json (bench/result schema) into $HYBRIDTWIN_BENCH_DIR, or bench/results/ without
// it; a run of some variants replaces their metrics and keeps the others'. RSS is robust to other work on
// a shared machine; CPU is not, so the load average at each point is recorded in the notes.
//
// It imports the twin's cluster and engine packages; nothing imports it.
package fleetcost
