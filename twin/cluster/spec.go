package cluster

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ProviderName selects the implementation that runs a workload cluster.
type ProviderName string

const (
	// ProviderEmbedded runs the control plane as processes from the tool cache on 127.0.0.1, with
	// simulated kubelets. The default: it needs no Docker.
	ProviderEmbedded ProviderName = "embedded"
	// ProviderKind runs the cluster with kind (Docker, privileged containers, node images).
	ProviderKind ProviderName = "kind"
)

// DefaultProvider is the provider a spec gets when it names none.
const DefaultProvider = ProviderEmbedded

// Component names a control-plane process, as used in ExtraArgs, logs and reports.
type Component string

const (
	Etcd                  Component = "etcd"
	KubeAPIServer         Component = "kube-apiserver"
	KubeControllerManager Component = "kube-controller-manager"
	KubeScheduler         Component = "kube-scheduler"
)

// Components lists the control-plane components in start order.
func Components() []Component {
	return []Component{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler}
}

// Spec is one AKS hybrid workload cluster: its control-plane and load-balancer VMs (which count in
// capacity but are not Nodes) and its worker VMs (which become Nodes).
type Spec struct {
	// Name is the cluster's name: a DNS label (lower case, digits, '-'), at most 40 characters.
	Name string `json:"name"`
	// Provider is "embedded" (default) or "kind".
	Provider ProviderName `json:"provider,omitempty"`
	// TimeProfile is "real" (default) or "fast". A twin chooses one for all its clusters.
	TimeProfile TimeProfileName `json:"timeProfile,omitempty"`
	// Tier is "full" (empty means full) or "light" (tier.go: a shared etcd and smaller caches, with
	// limits).
	Tier TierName `json:"tier,omitempty"`
	// Network holds the pod and service networks; empty fields take the defaults.
	Network Network `json:"network,omitempty"`
	// ControlPlane are the control-plane VMs. They count in capacity; the twin runs one API server for
	// them, whatever their number.
	ControlPlane []VMSpec `json:"controlPlane,omitempty"`
	// LoadBalancers are the load-balancer VMs (HAProxy in AKS hybrid). They count in capacity only.
	LoadBalancers []VMSpec `json:"loadBalancers,omitempty"`
	// Nodes are the worker VMs; each becomes a Node.
	Nodes []NodeSpec `json:"nodes"`
	// ExtraArgs adds flags to a control-plane component, e.g. {"kube-apiserver": ["--v=2"]}. Flags given
	// here come after the twin's, so they override them. The kind provider applies them as kubeadm
	// extraArgs (etcd's are ignored there).
	ExtraArgs map[Component][]string `json:"extraArgs,omitempty"`
}

// Network is a cluster's address plan.
type Network struct {
	// PodCIDR is the cluster's pod network (default DefaultPodCIDR).
	PodCIDR string `json:"podCIDR,omitempty"`
	// ServiceCIDR is the service network (default DefaultServiceCIDR).
	ServiceCIDR string `json:"serviceCIDR,omitempty"`
	// NodeCIDRMaskSize is the prefix length of each node's pod CIDR (default DefaultNodeCIDRMaskSize).
	NodeCIDRMaskSize int `json:"nodeCIDRMaskSize,omitempty"`
}

// VMSpec is a VM that counts in capacity but is not a Node (control plane, load balancer).
type VMSpec struct {
	Name      string `json:"name"`
	Host      string `json:"host,omitempty"` // the HCI host the VM runs on
	Size      string `json:"size,omitempty"` // the VM size, e.g. Standard_A4_v2
	CPU       int    `json:"cpu"`            // vCPUs
	MemoryMiB int64  `json:"memoryMiB"`
}

// NodeSpec is a worker VM of the hardware model, as the cluster sees it.
type NodeSpec struct {
	// Name is the Node's name (the VM's name): a DNS subdomain.
	Name string `json:"name"`
	// Pool is the node pool the VM belongs to.
	Pool string `json:"pool"`
	// Host is the HCI host the VM runs on; it becomes the LabelHCIHost label.
	Host string `json:"host"`
	// Size is the VM size (e.g. Standard_A4_v2); it becomes node.kubernetes.io/instance-type.
	Size string `json:"size,omitempty"`
	// CPU is the VM size's vCPU count; MemoryMiB its memory; Pods the pod capacity (default
	// DefaultMaxPods).
	CPU       int   `json:"cpu"`
	MemoryMiB int64 `json:"memoryMiB"`
	Pods      int   `json:"pods,omitempty"`
	// Reserved is what the node keeps back from pods (kube-reserved, system-reserved and eviction
	// thresholds); allocatable = capacity - Reserved. Zero by default: the hardware model owns the figure.
	Reserved Resources `json:"reserved,omitempty"`
	// IP is the VM's address (InternalIP). Empty: numbered from DefaultNodeIPBase.
	IP string `json:"ip,omitempty"`
	// OS is "linux" (default) or "windows".
	OS string `json:"os,omitempty"`
	// Labels are added to the twin's labels (NodeLabels); they may not override them.
	Labels map[string]string `json:"labels,omitempty"`
	// Taints are the node pool's taints.
	Taints []Taint `json:"taints,omitempty"`
}

// Taint is a node taint, as in a node pool's --node-taints.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"` // NoSchedule, PreferNoSchedule or NoExecute
}

// Resources is an amount of CPU and memory.
type Resources struct {
	CPUMilli  int64 `json:"cpuMilli,omitempty"`
	MemoryMiB int64 `json:"memoryMiB,omitempty"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPUMilli: r.CPUMilli + o.CPUMilli, MemoryMiB: r.MemoryMiB + o.MemoryMiB}
}

// maxClusterName keeps derived names within Kubernetes' 63-character label-value limit: the AKS hybrid
// node-pool label is "<cluster>-<8 hex>-<pool>".
const maxClusterName = 40

// WithDefaults returns the spec with every empty field set to its default.
func (s Spec) WithDefaults() Spec {
	if s.Provider == "" {
		s.Provider = DefaultProvider
	}
	if s.TimeProfile == "" {
		s.TimeProfile = DefaultTimeProfile
	}

	if s.Network.PodCIDR == "" {
		s.Network.PodCIDR = DefaultPodCIDR
	}
	if s.Network.ServiceCIDR == "" {
		s.Network.ServiceCIDR = DefaultServiceCIDR
	}
	if s.Network.NodeCIDRMaskSize == 0 {
		s.Network.NodeCIDRMaskSize = DefaultNodeCIDRMaskSize
	}
	nodes := make([]NodeSpec, len(s.Nodes))
	base := net.ParseIP(DefaultNodeIPBase).To4()
	for i, n := range s.Nodes {
		if n.Pods == 0 {
			n.Pods = DefaultMaxPods
		}
		if n.OS == "" {
			n.OS = "linux"
		}
		if n.IP == "" && base != nil {
			ip := make(net.IP, 4)
			copy(ip, base)
			ip[3] += byte(i)
			n.IP = ip.String()
		}
		nodes[i] = n
	}
	s.Nodes = nodes
	return s
}

// Validate checks a spec (after WithDefaults) and returns every problem found, each naming the field and
// what to do. The error wraps ErrInvalidSpec.
func (s Spec) Validate() error {
	var errs specErrors
	add := func(field, problem string) { errs = append(errs, fieldError{Field: field, Problem: problem}) }

	switch {
	case s.Name == "":
		add("name", "is empty; give the cluster a name such as \"workload-1\"")
	case len(s.Name) > maxClusterName:
		add("name", fmt.Sprintf("%q is %d characters; use at most %d", s.Name, len(s.Name), maxClusterName))
	default:
		for _, m := range validation.IsDNS1123Label(s.Name) {
			add("name", fmt.Sprintf("%q: %s", s.Name, m))
		}
	}
	switch s.Provider {
	case ProviderEmbedded, ProviderKind:
	default:
		add("provider", fmt.Sprintf("%q is not a provider; use %q or %q", s.Provider, ProviderEmbedded, ProviderKind))
	}
	if _, err := Profile(s.TimeProfile); err != nil {
		add("timeProfile", fmt.Sprintf("%q is not a time profile; use %q or %q", s.TimeProfile, ProfileReal, ProfileFast))
	}
	if _, err := LookupTier(s.Tier); err != nil {
		add("tier", err.Error())
	} else if s.Tier == TierLight && s.Provider != ProviderEmbedded {
		add("tier", fmt.Sprintf("%q needs provider %q (a shared etcd on this machine); use tier %q with provider %q", s.Tier, ProviderEmbedded, TierFull, s.Provider))
	}
	validateNetwork(s.Network, add)

	for i, vm := range s.ControlPlane {
		validateVM(fmt.Sprintf("controlPlane[%d]", i), vm, add)
	}
	for i, vm := range s.LoadBalancers {
		validateVM(fmt.Sprintf("loadBalancers[%d]", i), vm, add)
	}
	if len(s.Nodes) == 0 {
		add("nodes", "is empty; a workload cluster needs at least one worker VM")
	}
	names := map[string]int{}
	ips := map[string]int{}
	for i, n := range s.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		validateNode(f, s.Name, n, add)
		if j, dup := names[n.Name]; dup && n.Name != "" {
			add(f+".name", fmt.Sprintf("%q is also nodes[%d].name; node names must be unique in a cluster", n.Name, j))
		}
		names[n.Name] = i
		if j, dup := ips[n.IP]; dup && n.IP != "" {
			add(f+".ip", fmt.Sprintf("%s is also nodes[%d].ip; each VM has its own address", n.IP, j))
		}
		ips[n.IP] = i
	}

	comps := make([]string, 0, len(s.ExtraArgs))
	for c := range s.ExtraArgs {
		comps = append(comps, string(c))
	}
	sort.Strings(comps)
	for _, c := range comps {
		known := false
		for _, k := range Components() {
			known = known || Component(c) == k
		}
		if !known {
			add("extraArgs."+c, fmt.Sprintf("is not a component; use one of %s", joinComponents()))
			continue
		}
		for i, a := range s.ExtraArgs[Component(c)] {
			if !strings.HasPrefix(a, "--") {
				add(fmt.Sprintf("extraArgs.%s[%d]", c, i), fmt.Sprintf("%q is not a flag; write it as --name=value", a))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &SpecError{Cluster: s.Name, errs: errs}
}

func validateNetwork(n Network, add func(field, problem string)) {
	_, pod, err := net.ParseCIDR(n.PodCIDR)
	if err != nil || pod.IP.To4() == nil {
		add("network.podCIDR", fmt.Sprintf("%q is not an IPv4 CIDR; use e.g. %s", n.PodCIDR, DefaultPodCIDR))
	}
	_, svc, err := net.ParseCIDR(n.ServiceCIDR)
	if err != nil || svc.IP.To4() == nil {
		add("network.serviceCIDR", fmt.Sprintf("%q is not an IPv4 CIDR; use e.g. %s", n.ServiceCIDR, DefaultServiceCIDR))
	}
	if pod != nil && svc != nil && (pod.Contains(svc.IP) || svc.Contains(pod.IP)) {
		add("network.serviceCIDR", fmt.Sprintf("%s overlaps network.podCIDR %s; give services their own range", n.ServiceCIDR, n.PodCIDR))
	}
	if pod != nil {
		ones, _ := pod.Mask.Size()
		if n.NodeCIDRMaskSize <= ones || n.NodeCIDRMaskSize > 30 {
			add("network.nodeCIDRMaskSize", fmt.Sprintf("%d must be longer than the pod CIDR's /%d and at most 30", n.NodeCIDRMaskSize, ones))
		}
	}
}

func validateVM(f string, vm VMSpec, add func(field, problem string)) {
	if vm.Name == "" {
		add(f+".name", "is empty; name the VM")
	}
	if vm.CPU <= 0 {
		add(f+".cpu", fmt.Sprintf("is %d; set the VM size's vCPU count", vm.CPU))
	}
	if vm.MemoryMiB <= 0 {
		add(f+".memoryMiB", fmt.Sprintf("is %d; set the VM size's memory in MiB", vm.MemoryMiB))
	}
}

func validateNode(f, cluster string, n NodeSpec, add func(field, problem string)) {
	if n.Name == "" {
		add(f+".name", "is empty; use the VM's name")
	} else {
		for _, m := range validation.IsDNS1123Subdomain(n.Name) {
			add(f+".name", fmt.Sprintf("%q: %s", n.Name, m))
		}
	}
	if n.Pool == "" {
		add(f+".pool", "is empty; name the node pool the VM belongs to")
	} else {
		for _, m := range validation.IsDNS1123Label(n.Pool) {
			add(f+".pool", fmt.Sprintf("%q: %s", n.Pool, m))
		}
		if v := aksArcPoolLabel(cluster, n.Pool); len(v) > validation.LabelValueMaxLength {
			add(f+".pool", fmt.Sprintf("%q makes the node-pool label %q longer than %d characters; shorten the pool or cluster name", n.Pool, v, validation.LabelValueMaxLength))
		}
	}
	if n.Host == "" {
		add(f+".host", "is empty; name the HCI host the VM runs on")
	} else {
		for _, m := range validation.IsValidLabelValue(n.Host) {
			add(f+".host", fmt.Sprintf("%q: %s", n.Host, m))
		}
	}
	for _, m := range validation.IsValidLabelValue(n.Size) {
		add(f+".size", fmt.Sprintf("%q: %s", n.Size, m))
	}
	if n.CPU <= 0 {
		add(f+".cpu", fmt.Sprintf("is %d; set the VM size's vCPU count", n.CPU))
	}
	if n.MemoryMiB <= 0 {
		add(f+".memoryMiB", fmt.Sprintf("is %d; set the VM size's memory in MiB", n.MemoryMiB))
	}
	if n.Pods <= 0 {
		add(f+".pods", fmt.Sprintf("is %d; set the node's pod capacity (Kubernetes' default is %d)", n.Pods, DefaultMaxPods))
	}
	if n.Reserved.CPUMilli < 0 || (n.CPU > 0 && n.Reserved.CPUMilli >= int64(n.CPU)*1000) {
		add(f+".reserved.cpuMilli", fmt.Sprintf("is %d; it must be at least 0 and below the node's %d millicores", n.Reserved.CPUMilli, n.CPU*1000))
	}
	if n.Reserved.MemoryMiB < 0 || (n.MemoryMiB > 0 && n.Reserved.MemoryMiB >= n.MemoryMiB) {
		add(f+".reserved.memoryMiB", fmt.Sprintf("is %d; it must be at least 0 and below the node's %d MiB", n.Reserved.MemoryMiB, n.MemoryMiB))
	}
	if ip := net.ParseIP(n.IP); ip == nil || ip.To4() == nil {
		add(f+".ip", fmt.Sprintf("%q is not an IPv4 address; use the VM's address or leave it empty", n.IP))
	}
	if n.OS != "linux" && n.OS != "windows" {
		add(f+".os", fmt.Sprintf("%q is not an OS; use \"linux\" or \"windows\"", n.OS))
	}
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, m := range validation.IsQualifiedName(k) {
			add(f+".labels", fmt.Sprintf("key %q: %s", k, m))
		}
		for _, m := range validation.IsValidLabelValue(n.Labels[k]) {
			add(f+".labels."+k, fmt.Sprintf("%q: %s", n.Labels[k], m))
		}
		if isTwinLabel(k) {
			add(f+".labels."+k, "is set by the twin from the node's pool, host, size and OS; remove it")
		}
	}
	for i, t := range n.Taints {
		tf := fmt.Sprintf("%s.taints[%d]", f, i)
		for _, m := range validation.IsQualifiedName(t.Key) {
			add(tf+".key", fmt.Sprintf("%q: %s", t.Key, m))
		}
		for _, m := range validation.IsValidLabelValue(t.Value) {
			add(tf+".value", fmt.Sprintf("%q: %s", t.Value, m))
		}
		switch t.Effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			add(tf+".effect", fmt.Sprintf("%q is not a taint effect; use NoSchedule, PreferNoSchedule or NoExecute", t.Effect))
		}
	}
}

func joinComponents() string {
	var s []string
	for _, c := range Components() {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}
