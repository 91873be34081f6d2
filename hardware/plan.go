package hardware

import (
	"fmt"
	"slices"
	"strings"
)

// Plan is a ClusterPlan document: what AKS hybrid will run on the estate. A twin spec embeds PlanSpec.
type Plan struct {
	APIVersion string     `yaml:"apiVersion" json:"apiVersion"`
	Kind       string     `yaml:"kind" json:"kind"`
	Metadata   ObjectMeta `yaml:"metadata" json:"metadata"`
	Spec       PlanSpec   `yaml:"spec" json:"spec"`

	File    string    `yaml:"-" json:"-"`
	pos     positions // field path -> line
	shapeOK bool      // validateShape succeeded
}

// PlanSpec is the management cluster and the workload clusters.
type PlanSpec struct {
	Management       ManagementSpec    `yaml:"management" json:"management"`
	WorkloadClusters []WorkloadCluster `yaml:"workloadClusters" json:"workloadClusters"`
}

// ManagementSpec is the management cluster (AKS host) or Arc resource bridge VM.
type ManagementSpec struct {
	// VMSize overrides the profile's default size.
	VMSize string `yaml:"vmSize" json:"vmSize,omitempty"`
	// StorageGB is disk the management VM needs on the cluster volumes.
	StorageGB int `yaml:"storageGB" json:"storageGB,omitempty"`
}

// WorkloadCluster is one AKS workload (target) cluster.
type WorkloadCluster struct {
	Name         string           `yaml:"name" json:"name"`
	ControlPlane ControlPlaneSpec `yaml:"controlPlane" json:"controlPlane"`
	LoadBalancer LoadBalancerSpec `yaml:"loadBalancer" json:"loadBalancer"`
	// LoadBalancerServices is the number of Kubernetes Services of type LoadBalancer (one VIP each).
	LoadBalancerServices int `yaml:"loadBalancerServices" json:"loadBalancerServices"`
	// StorageGB is what the cluster's VMs and persistent volumes need on the cluster volumes.
	StorageGB int        `yaml:"storageGB" json:"storageGB,omitempty"`
	NodePools []NodePool `yaml:"nodePools" json:"nodePools"`
}

// ControlPlaneSpec is the control plane: 1, 3 or 5 VMs.
type ControlPlaneSpec struct {
	Count  int    `yaml:"count" json:"count"` // 0 means 1
	VMSize string `yaml:"vmSize" json:"vmSize,omitempty"`
}

// LoadBalancerSpec is the HAProxy load balancer VM of the aks-hci-2022 platform (23H2 has none).
type LoadBalancerSpec struct {
	VMSize   string `yaml:"vmSize" json:"vmSize,omitempty"`
	Disabled bool   `yaml:"disabled" json:"disabled,omitempty"`
}

// OSType is a node pool's operating system.
type OSType string

const (
	Linux   OSType = "Linux"
	Windows OSType = "Windows"
)

func (o *OSType) ParseScalar(s string) error {
	switch strings.ToLower(s) {
	case "", "linux":
		*o = Linux
	case "windows":
		*o = Windows
	default:
		return fmt.Errorf("unknown osType %q; use Linux or Windows", s)
	}
	return nil
}

// NodePool is a set of identical worker VMs, spread across hosts.
type NodePool struct {
	Name   string `yaml:"name" json:"name"`
	OSType OSType `yaml:"osType" json:"osType"`
	VMSize string `yaml:"vmSize" json:"vmSize,omitempty"`
	Count  int    `yaml:"count" json:"count"`
}

// Clone copies the plan deep enough that changing its clusters and node pools leaves p alone. The copy is
// validated again when it is next evaluated.
func (p *Plan) Clone() *Plan {
	if p == nil {
		return nil
	}
	c := *p
	c.shapeOK = false
	c.Spec.WorkloadClusters = make([]WorkloadCluster, len(p.Spec.WorkloadClusters))
	for i, wc := range p.Spec.WorkloadClusters {
		wc.NodePools = append([]NodePool(nil), wc.NodePools...)
		c.Spec.WorkloadClusters[i] = wc
	}
	return &c
}

func (p *Plan) errAt(path, format string, args ...any) *SpecError {
	file := p.File
	if file == "" {
		file = "<plan>"
	}
	line := 0
	if p.pos != nil {
		line = p.pos[path]
	}
	return &SpecError{File: file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)}
}

// Node names are <cluster>-<pool>-<index>; "-control-plane-NN" is the longest suffix the model adds, so a
// cluster name of at most 40 characters and a pool name of at most 12 keep every node name a valid
// DNS-1123 label (63).
const (
	maxClusterName = 40
	maxPoolName    = 12
)

// maxPlanVMs bounds a plan's worker nodes (and Services), so a hostile or mistyped plan cannot make the
// planner work for minutes: aks-arc-23h2's 32 clusters x 200 nodes is 6400.
const maxPlanVMs = 10_000

// validateShape checks what does not depend on the profile: names, counts, signs.
func (p *Plan) validateShape() error {
	if err := p.checkShape(); err != nil {
		return err
	}
	p.shapeOK = true
	return nil
}

// Validate checks a plan built in Go (parsed ones are checked by the parser); the profile's catalog and
// allowed values are checked when it is evaluated.
func (p *Plan) Validate() error { return p.validateShape() }

func (p *Plan) checkShape() error {
	p.shapeOK = false
	if p.APIVersion != APIVersion {
		return p.errAt("apiVersion", "is %q; write apiVersion: %s", p.APIVersion, APIVersion)
	}
	if p.Kind != KindClusterPlan {
		return p.errAt("kind", "is %q; a plan has kind: %s", p.Kind, KindClusterPlan)
	}
	if msg := validName(p.Metadata.Name, 63); msg != "" {
		return p.errAt("metadata.name", "%s", msg)
	}
	if p.Spec.Management.StorageGB < 0 {
		return p.errAt("spec.management.storageGB", "must not be negative, got %d", p.Spec.Management.StorageGB)
	}
	if n := len(p.Spec.WorkloadClusters); n > 256 {
		return p.errAt("spec.workloadClusters", "%d workload clusters is far beyond any profile (at most 32 documented); the model stops at 256", n)
	}
	clusters := map[string]int{}
	total := 0
	for i, c := range p.Spec.WorkloadClusters {
		cp := fmt.Sprintf("spec.workloadClusters[%d]", i)
		if msg := validName(c.Name, maxClusterName); msg != "" {
			return p.errAt(cp+".name", "%s", msg)
		}
		if j, dup := clusters[c.Name]; dup {
			return p.errAt(cp+".name", "%q is also spec.workloadClusters[%d]; cluster names must be unique", c.Name, j)
		}
		clusters[c.Name] = i
		if c.ControlPlane.Count < 0 {
			return p.errAt(cp+".controlPlane.count", "must be 1, 3 or 5, got %d", c.ControlPlane.Count)
		}
		if c.LoadBalancerServices < 0 || c.LoadBalancerServices > maxPlanVMs {
			return p.errAt(cp+".loadBalancerServices", "must be a count of Services of type LoadBalancer (0-%d), got %d", maxPlanVMs, c.LoadBalancerServices)
		}
		if c.StorageGB < 0 {
			return p.errAt(cp+".storageGB", "must not be negative, got %d", c.StorageGB)
		}
		if len(c.NodePools) > 256 {
			return p.errAt(cp+".nodePools", "%d node pools is far beyond any profile (at most 16 documented); the model stops at 256", len(c.NodePools))
		}
		pools := map[string]int{}
		for j, np := range c.NodePools {
			pp := fmt.Sprintf("%s.nodePools[%d]", cp, j)
			if msg := validName(np.Name, maxPoolName); msg != "" {
				return p.errAt(pp+".name", "%s", msg)
			}
			if np.Name == "control" || np.Name == "lb" {
				return p.errAt(pp+".name", "%q is reserved for the cluster's own VMs; choose another pool name", np.Name)
			}
			if k, dup := pools[np.Name]; dup {
				return p.errAt(pp+".name", "%q is also %s.nodePools[%d]; pool names must be unique in a cluster", np.Name, cp, k)
			}
			pools[np.Name] = j
			if np.Count < 0 {
				return p.errAt(pp+".count", "must be the number of worker nodes, got %d", np.Count)
			}
			total += np.Count
			if total > maxPlanVMs {
				return p.errAt(pp+".count", "brings the plan to %d worker nodes, far beyond any profile (the largest documented estate is 32 clusters of 200 nodes); the model stops at %d", total, maxPlanVMs)
			}
		}
	}
	return nil
}

// validateFor checks the plan against a profile's catalog and allowed values. Limits (counts) are not
// errors here: they are verdict findings, so a report shows them with their source.
func (p *Plan) validateFor(prof *Profile) error {
	sizes := sizeIndex[prof.Name]
	// path builds the field path only for an error (this runs on every evaluation).
	checkSize := func(path func() string, size string, role Role) error {
		if size == "" {
			return nil
		}
		s, ok := sizes[size]
		if !ok {
			return p.errAt(path(), "%q is not in the %s VM size catalog; use one of %s (%s)", size, prof.Name, strings.Join(prof.SizeNames(role), ", "), prof.VMSizesSource)
		}
		if !s.Allows(role) {
			return p.errAt(path(), "%s is not a supported %s size in %s; use one of %s (%s)", size, role, prof.Name, strings.Join(prof.SizeNames(role), ", "), prof.VMSizesSource)
		}
		return nil
	}
	cpath := func(i int, rest string) func() string {
		return func() string { return fmt.Sprintf("spec.workloadClusters[%d]%s", i, rest) }
	}
	if err := checkSize(func() string { return "spec.management.vmSize" }, p.Spec.Management.VMSize, RoleManagement); err != nil {
		return err
	}
	for i, c := range p.Spec.WorkloadClusters {
		if n := c.ControlPlane.Count; n != 0 && !slices.Contains(prof.ControlPlaneCounts, n) {
			return p.errAt(cpath(i, ".controlPlane.count")(), "%d control plane nodes; %s allows %v (%s)", n, prof.Name, prof.ControlPlaneCounts, prof.ControlPlaneSource)
		}
		if err := checkSize(cpath(i, ".controlPlane.vmSize"), c.ControlPlane.VMSize, RoleControlPlane); err != nil {
			return err
		}
		if prof.LoadBalancerSize == "" && c.LoadBalancer.VMSize != "" {
			return p.errAt(cpath(i, ".loadBalancer.vmSize")(), "%s has no load balancer VM (Services get addresses from the VIP pool through MetalLB); remove it", prof.Name)
		}
		if err := checkSize(cpath(i, ".loadBalancer.vmSize"), c.LoadBalancer.VMSize, RoleLoadBalancer); err != nil {
			return err
		}
		for j, np := range c.NodePools {
			if err := checkSize(cpath(i, fmt.Sprintf(".nodePools[%d].vmSize", j)), np.VMSize, RoleWorker); err != nil {
				return err
			}
		}
	}
	return nil
}
