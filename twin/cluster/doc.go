// Package cluster owns the twin's workload clusters as data and as an interface: the cluster spec and
// node input (Spec, NodeSpec, VMSpec) and their validation, the versioned time profiles (real, fast),
// the node labels a VM-node carries, capacity accounting, and the small Provider interface that both
// implementations satisfy:
//
//   - embedded (the default, package twin/cluster/embedded): etcd, kube-apiserver,
//     kube-controller-manager and kube-scheduler from the tool cache on 127.0.0.1, with simulated
//     kubelets for the worker VMs;
//   - kind (package twin/cluster/kind): the same clusters as kind nodes, for machines with Docker.
//
// Optional capabilities are their own small interfaces: NodeFaults (fail and restore a VM-node) and
// NodePools (add and remove VM-nodes of a running cluster; the embedded provider has it).
//
// Package twin/cluster/providers picks one from a spec; package twin/cluster/e2e adapts any Provider
// to sigs.k8s.io/e2e-framework.
//
// The package is data and interfaces only: it starts no process and talks to no API server. It must not
// import the hardware model (twin's bridge maps VMs to NodeSpecs), the reconciler, scenarios, or any
// provider implementation.
package cluster
