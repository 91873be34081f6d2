package cluster

import "time"

// The defaults below are part of ProfilesVersion: change that when one of them changes.

const (
	// DefaultPodCIDR is the cluster's pod network, split into one /24 per node by the real node-ipam
	// controller. kind's default (sigs.k8s.io/kind v0.33.0 pkg/apis/config/v1alpha4/default.go,
	// PodSubnet "10.244.0.0/16"), so both providers hand out the same addresses.
	DefaultPodCIDR = "10.244.0.0/16"
	// DefaultServiceCIDR is the service network. kind's default (same file, ServiceSubnet
	// "10.96.0.0/16"; kind deliberately uses a /16 rather than kubeadm's /12).
	DefaultServiceCIDR = "10.96.0.0/16"
	// DefaultNodeCIDRMaskSize is the per-node pod CIDR size: kube-controller-manager's default for IPv4
	// (k8s.io/kubernetes v1.33.13 cmd/kube-controller-manager/app/options/nodeipamcontroller.go, 24).
	DefaultNodeCIDRMaskSize = 24
	// DefaultNodeIPBase is where node InternalIPs are numbered from when a NodeSpec has no IP: TEST-NET-2
	// (RFC 5737, 198.51.100.0/24), never routed, so a placeholder address cannot be mistaken for a real
	// one. The twin's bridge sets the VM's address from the hardware model's IP pool instead.
	DefaultNodeIPBase = "198.51.100.10"
	// DefaultMaxPods is the pod capacity of a node whose NodeSpec has none: the kubelet's default
	// maxPods (k8s.io/kubernetes v1.33.13 pkg/kubelet/apis/config/v1beta1/defaults.go, 110).
	DefaultMaxPods = 110
	// KubeletPort is the port a node reports in status.daemonEndpoints (the kubelet's default, 10250).
	// The simulated kubelets do not listen on it: logs and exec are not available (see the embedded
	// provider's documentation).
	KubeletPort = 10250

	// DefaultStartTimeout bounds one cluster's start. RECIPES.md measured ~4.3 s for one cluster and
	// 5-7 s for three at once on 2 cores; the bound is far above that so a loaded CI runner or a cold
	// page cache does not fail a start, while a hung component still fails within minutes.
	DefaultStartTimeout = 3 * time.Minute
	// DefaultStopGrace is how long a component gets to exit after SIGTERM before its process group is
	// killed. The control-plane components exit within about a second of SIGTERM; 10 s covers a
	// loaded machine, and a stop is never slower than that.
	DefaultStopGrace = 10 * time.Second
)
