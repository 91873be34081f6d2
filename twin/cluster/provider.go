package cluster

import (
	"context"
	"maps"
	"slices"
	"time"
)

// Provider runs workload clusters. Implementations: twin/cluster/embedded (default) and twin/cluster/kind.
type Provider interface {
	// Name says which implementation this is.
	Name() ProviderName
	// Create starts a cluster and returns once it is ready: the API server answers /readyz, the
	// controllers report healthy, and every node is Ready. A failed or cancelled Create leaves nothing
	// running. The error wraps ErrInvalidSpec, ErrExists or ErrStart.
	Create(ctx context.Context, spec Spec) (Info, error)
	// Delete stops a cluster and everything it started. Deleting an unknown cluster wraps ErrNotFound.
	Delete(ctx context.Context, name string) error
	// Kubeconfig returns the path of an admin kubeconfig for the cluster; kubectl, client-go and Flux
	// use it unchanged.
	Kubeconfig(ctx context.Context, name string) (string, error)
	// List returns the clusters this provider runs, sorted by name.
	List(ctx context.Context) ([]Info, error)
}

// NodeFaults is implemented by providers that can fail a VM-node the way an HCI host failure does.
type NodeFaults interface {
	// CutOff makes a node's kubelet fall silent, as when its VM or host dies: the lease and node status
	// are no longer renewed and the pods on it are no longer tended, so the real node-lifecycle
	// controller marks the node Unknown, taints it and evicts its pods after the time profile's
	// tolerations. Evicted pods then stay Terminating, as on a real cluster, until Restore or
	// MarkOutOfService.
	CutOff(ctx context.Context, cluster, node string) error
	// Restore brings a cut-off node back, as when its VM restarts: the kubelet renews its lease, posts
	// Ready, and finishes the deletion of pods evicted meanwhile.
	Restore(ctx context.Context, cluster, node string) error
	// MarkOutOfService adds the node.kubernetes.io/out-of-service=nodeshutdown:NoExecute taint to a
	// cut-off node, as an operator does after a non-graceful node shutdown; the real pod garbage
	// collector then force-deletes the pods left Terminating on it. Restore removes the taint again.
	MarkOutOfService(ctx context.Context, cluster, node string) error
}

// NodePools is implemented by providers that can add and remove VM-nodes of a running cluster, as scaling
// an AKS hybrid node pool adds or deletes worker VMs. The caller (the twin) decides which VMs exist; the
// provider only makes the cluster follow.
type NodePools interface {
	// AddNode registers a worker VM as a Node of a running cluster, starts its kubelet and returns once
	// the node is Ready with a pod CIDR. A failed or cancelled AddNode leaves no Node and no kubelet.
	// A node of that name that already exists wraps ErrExists.
	AddNode(ctx context.Context, cluster string, node NodeSpec) error
	// RemoveNode stops a node's kubelet and deletes its Node object (its lease goes with it, by owner
	// reference). Draining the node first is the caller's job. An unknown node wraps ErrNotFound.
	RemoveNode(ctx context.Context, cluster, node string) error
}

// Info describes a running cluster.
type Info struct {
	Name              string          `json:"name"`
	Provider          ProviderName    `json:"provider"`
	KubernetesVersion string          `json:"kubernetesVersion"`
	TimeProfile       TimeProfileName `json:"timeProfile"`
	ProfilesVersion   string          `json:"profilesVersion"`
	// Kubeconfig is the path of the admin kubeconfig; Context its context; Server the API server URL.
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context"`
	Server     string `json:"server"`
	// Nodes are the VM-nodes' VM names, in spec order. A VM's Kubernetes Node may be named otherwise:
	// ask NodeName.
	Nodes []string `json:"nodes"`
	// NodeNames maps a VM's name to its Node's name, for the VMs whose Node the provider names otherwise
	// (kind: <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, ...). A VM missing here has a
	// Node of its own name; the embedded provider leaves NodeNames empty, since it names every Node after
	// its VM. Use NodeName and VMName rather than reading it.
	NodeNames map[string]string `json:"nodeNames,omitempty"`
	Capacity  Capacity          `json:"capacity"`
	// Start says how long the start took, phase by phase.
	Start StartReport `json:"start"`
	// Processes are the processes the cluster runs (embedded provider), in start order.
	Processes []Process `json:"processes,omitempty"`
	// StateDir holds the cluster's certificates, data and logs (embedded provider).
	StateDir string `json:"stateDir,omitempty"`
}

// NodeName returns the name of the Kubernetes Node that VM vm is in this cluster. Every call that acts on
// a VM-node through the API server (label, cordon, drain, delete) must look the Node up by this name, not
// by the VM's.
func (i Info) NodeName(vm string) string {
	if n, ok := i.NodeNames[vm]; ok {
		return n
	}
	return vm
}

// VMName is NodeName's inverse: the VM whose Node is named node.
func (i Info) VMName(node string) string {
	for _, vm := range slices.Sorted(maps.Keys(i.NodeNames)) {
		if i.NodeNames[vm] == node {
			return vm
		}
	}
	return node
}

// Process is one control-plane process of a cluster.
type Process struct {
	Component Component `json:"component"`
	PID       int       `json:"pid"`
	// Ports are the TCP ports it listens on, all on 127.0.0.1.
	Ports []int  `json:"ports"`
	Log   string `json:"log"`
	// Restarts is how often it was restarted after a crash (TimeProfile's restart back-off).
	Restarts int `json:"restarts,omitempty"`
	// Shared is set for a process several clusters use (a light tier's etcd): stopping it stops them all.
	Shared bool `json:"shared,omitempty"`
}

// Phase names a step of a cluster start.
type Phase string

const (
	PhaseCertificates Phase = "certificates" // PKI and kubeconfigs written
	PhaseEtcd         Phase = "etcd"         // etcd answers /health
	PhaseAPIServer    Phase = "apiserver"    // kube-apiserver answers /readyz
	PhaseControllers  Phase = "controllers"  // controller-manager and scheduler answer /healthz
	PhaseNodes        Phase = "nodes"        // every VM-node Ready, default service account present
)

// PhaseTime is how long one phase took.
type PhaseTime struct {
	Phase Phase         `json:"phase"`
	Took  time.Duration `json:"took"`
}

// StartReport says how long a cluster took to become ready.
type StartReport struct {
	Total  time.Duration `json:"total"`
	Phases []PhaseTime   `json:"phases"`
}

// Took returns the duration of a phase, or 0 if it was not recorded.
func (r StartReport) Took(p Phase) time.Duration {
	for _, pt := range r.Phases {
		if pt.Phase == p {
			return pt.Took
		}
	}
	return 0
}

// LogExporter is implemented by providers that can copy a cluster's logs, one file per component.
type LogExporter interface {
	ExportLogs(ctx context.Context, name, dest string) error
}
