// Package embedded is the default workload-cluster provider: each cluster is a real Kubernetes control
// plane on this machine without Docker — etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler built by the tool cache (tools/toolcache), on 127.0.0.1 with ports the operating
// system picks — and one simulated kubelet per worker VM (twin/cluster/internal/simkubelet) in this
// process. Certificates are made in Go; state and one log per process live under a per-cluster
// directory.
//
// A cluster is ready when the API server answers /readyz, the controller-manager and scheduler answer
// /healthz, every VM-node is Ready and the default service account exists. Every process runs in its
// own process group with a parent-death signal: Delete, Close, a failed start and a cancelled start
// stop them all, and if the parent dies the kernel kills them.
//
// What it does not have: container runtimes and kubelet endpoints (no logs, exec, port-forward or
// probes), kube-proxy and CNI (Services get ClusterIPs and EndpointSlices, but carry no traffic), and
// CSI (PersistentVolumeClaims stay Pending unless a test binds them).
//
// It imports twin/cluster, its internal packages, twin/internal/procgroup (which runs its processes) and
// tools/toolcache; it must not import the hardware model, the reconciler or the other providers.
package embedded
