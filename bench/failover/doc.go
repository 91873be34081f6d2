// Package failover benchmarks HCI host faults under a running twin (the default twin,
// examples/twin.yaml, brought up with twin.Up), in the phases of the scenario suite's failover specs:
//
//   - host crash: from the host fail operation until every worker node of the crashed host is NotReady, until those
//     nodes are Ready again on surviving hosts (failover clustering restarted their VMs), until every
//     Deployment is available with each pod on a Ready node, and until every GitOps configuration is
//     Compliant through ARM; then the host is repaired and the twin left healthy for the next sample;
//   - planned drain: from the host drain operation until the host is in maintenance with no VM left (live migration),
//     checking on every poll that no worker node left Ready and, at the end, that no pod was replaced.
//
// Driver measures one sample of either on a running twin (faultphases.Runner); Metrics turns the samples into bench/result
// metrics named failover.crash.*.seconds and failover.drain.seconds, each with the document figure it
// is read against as its anchor (the node-monitor grace period, the hardware model's failover delay and
// live-migration time, the eviction time). The benchmark in this package's test brings the twin up and
// writes failover.json into the run directory (result.OutPath):
//
//	go test -run '^$' -bench Failover -benchtime 1x -timeout 60m ./bench/failover/
//
// The phases, their checks and their failure messages are package twin/faultphases, the same code the scenario
// suite's failover specs run (bench must not import test code, so the suite's own helpers moved there);
// this package picks the host, repairs it after each sample, derives the bounds and writes the results.
// It imports twin/ (and its cluster profiles and twin/faultphases), reconciler/'s profile and bench/result;
// nothing imports it.
package failover
