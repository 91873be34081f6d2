// Package faultphases measures what an HCI host fault does to a running twin, in the phases a platform team
// watches: a host crash (its worker nodes NotReady, the same nodes Ready again on surviving hosts once
// failover clustering restarted their VMs, every Deployment available with each pod on a Ready node,
// every GitOps configuration Compliant through ARM) and a planned drain by live migration (the host in
// maintenance with no VM left, no worker node leaving Ready and no pod replaced on the way). It also
// holds the checks those phases wait on (Probe), so a caller that drives a fault of its own (two hosts at
// once, an estate that fails N-1) asks the same questions the same way.
//
// It is the one implementation behind both the scenario suite's failover specs (scenarios/) and the
// failover benchmark (bench/failover): the scenarios wait with Gomega's Eventually and the benchmark
// with Poll, through the Wait a Runner is given; the phases, checks and their failure messages are
// this package's. It is a normal (non-test) package so that bench/ can use it: bench/ must not import
// test code, and ARCHITECTURE.md lets both scenarios/ and bench/ import twin/ and its subpackages.
//
// BoundsFor derives how long each phase may take from the twin's time profile, with the caller's slack,
// for both callers.
//
// It imports twin/ (the running twin's status, fault calls and run profile), twin/cluster (the node
// labels and time profiles), twin/arcagent (its poll interval), reconciler (its profile's intervals),
// the hardware model's event and state names and failover figure, and client-go. It must not import scenarios/, bench/, Ginkgo or
// Gomega (a program may measure with it), and nothing under twin/ imports it: twin.Up never depends on how
// its faults are measured.
package faultphases
