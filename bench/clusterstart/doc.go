// Package clusterstart benchmarks the embedded workload clusters: how long 1, 3 and 6 clusters started
// in parallel take to be ready, and how much memory each holds when idle (VmRSS of its etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, read from /proc). Each cluster has the
// example's shape: 1 control-plane VM, 1 load-balancer VM and 3 worker VMs as Nodes.
//
// Run it with
//
//	go test -run '^$' -bench ClusterStart -benchtime 1x -timeout 30m ./bench/clusterstart/
//
// It writes cluster-start.json (schema: Results) and cluster-start.bench.json (bench/result schema) into
// the run directory of $HYBRIDTWIN_BENCH_DIR, or bench/results/ without it (result.OutPath). The issue's
// goal: 3 clusters ready in under 15 s on a warm machine, under 500 MB RSS per cluster.
//
// It imports the twin's cluster packages and the tool cache; nothing imports it.
package clusterstart
