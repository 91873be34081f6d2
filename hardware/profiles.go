package hardware

import (
	"slices"
	"time"
)

// ProfilesVersion is the revision of the profile data in this file. Bump it when any figure changes, so a
// report says which figures it was computed with.
const ProfilesVersion = "2026.1"

// Source documents. Every limit and default below names one of these and the figure it takes.
const (
	// SrcBaseline is the project's seed /work/shared/seeds/002: "Baseline architecture for AKS on Azure Stack
	// HCI" (learn.microsoft.com/azure/architecture/example-scenario/hybrid/aks-baseline).
	SrcBaseline = "Baseline architecture for AKS on Azure Stack HCI (seed 002)"
	// SrcAKSHCILimits: "Resource limits, VM sizes, and regions for AKS enabled by Azure Arc", AKS on Azure
	// Stack HCI 22H2 (learn.microsoft.com/azure/aks/hybrid/concepts-support).
	SrcAKSHCILimits = "AKS hybrid 'Resource limits, VM sizes, and regions' (learn.microsoft.com/azure/aks/hybrid/concepts-support)"
	// SrcAKSNetwork: "Network architecture for AKS on Azure Stack HCI", the seed's companion article
	// (learn.microsoft.com/azure/architecture/example-scenario/hybrid/aks-network), and "Network concepts for
	// deploying AKS nodes" (learn.microsoft.com/azure/aks/hybrid/concepts-node-networking).
	SrcAKSNetwork = "Network architecture for AKS on Azure Stack HCI (learn.microsoft.com/azure/architecture/example-scenario/hybrid/aks-network)"
	// SrcArcScale: "Scale requirements for AKS on Azure Local, version 23H2"
	// (learn.microsoft.com/azure/aks/aksarc/scale-requirements).
	SrcArcScale = "AKS Arc 'Scale requirements' 23H2 (learn.microsoft.com/azure/aks/aksarc/scale-requirements)"
	// SrcArcIPPlanning: "IP address planning requirements", AKS Arc 23H2
	// (learn.microsoft.com/azure/aks/aksarc/aks-hci-ip-address-planning).
	SrcArcIPPlanning = "AKS Arc 'IP address planning requirements' 23H2 (learn.microsoft.com/azure/aks/aksarc/aks-hci-ip-address-planning)"
	// SrcArcBridge: "Azure Arc resource bridge system requirements"
	// (learn.microsoft.com/azure/azure-arc/resource-bridge/system-requirements).
	SrcArcBridge = "Azure Arc resource bridge system requirements (learn.microsoft.com/azure/azure-arc/resource-bridge/system-requirements)"
	// SrcS2DFaultTolerance: "Fault tolerance and storage efficiency on Azure Stack HCI and Windows Server
	// clusters" (learn.microsoft.com/azure-stack/hci/concepts/fault-tolerance).
	SrcS2DFaultTolerance = "S2D 'Fault tolerance and storage efficiency' (learn.microsoft.com/azure-stack/hci/concepts/fault-tolerance)"
	// SrcS2DPlanVolumes: "Plan volumes on Azure Stack HCI" (learn.microsoft.com/azure-stack/hci/concepts/plan-volumes).
	SrcS2DPlanVolumes = "S2D 'Plan volumes' (learn.microsoft.com/azure-stack/hci/concepts/plan-volumes)"
	// SrcS2DCache: "Understanding the storage pool cache" and the Azure Stack HCI system requirements
	// (learn.microsoft.com/azure-stack/hci/concepts/cache, .../concepts/system-requirements).
	SrcS2DCache = "S2D 'Understanding the cache' and Azure Stack HCI 'System requirements' (learn.microsoft.com/azure-stack/hci/concepts/cache)"
	// SrcClusterHeartbeat: "Tuning Failover Cluster Network Thresholds" (techcommunity.microsoft.com, Failover
	// Clustering blog) with the Windows Server 2016+ defaults SameSubnetDelay=1s, SameSubnetThreshold=10.
	SrcClusterHeartbeat = "Failover Clustering 'Tuning Failover Cluster Network Thresholds' (techcommunity.microsoft.com/t5/failover-clustering/tuning-failover-cluster-network-thresholds/ba-p/371834)"
	// SrcLiveMigration: "Optimizing Hyper-V Live Migrations on an Hyperconverged Infrastructure"
	// (techcommunity.microsoft.com/blog/failoverclustering/optimizing-hyper-v-live-migrations-on-an-hyperconverged-infrastructure/396609).
	SrcLiveMigration = "Failover Clustering 'Optimizing Hyper-V Live Migrations on an Hyperconverged Infrastructure' (techcommunity.microsoft.com)"
	// SrcHostNetwork: "Host network requirements for Azure Stack HCI"
	// (learn.microsoft.com/azure-stack/hci/concepts/host-network-requirements).
	SrcHostNetwork = "Azure Stack HCI 'Host network requirements' (learn.microsoft.com/azure-stack/hci/concepts/host-network-requirements)"
	// SrcNoFigure marks a default that no document fixes; it is the conservative choice and can be set in the
	// inventory's planning block.
	SrcNoFigure = "hybridtwin default (no document figure; set it in spec.planning)"
)

// Role is what a VM does in the AKS hybrid deployment.
type Role string

const (
	RoleManagement   Role = "management"    // the AKS host / management cluster VM (22H2) or Arc resource bridge (23H2)
	RoleControlPlane Role = "control-plane" // a workload cluster's control plane node
	RoleLoadBalancer Role = "load-balancer" // a workload cluster's HAProxy load balancer VM (22H2)
	RoleWorker       Role = "worker"        // a node pool's worker node
)

// VMSize is one entry of a profile's VM size catalog. Memory figures in the AKS hybrid tables are "GB" in the
// Azure sense, i.e. GiB; the model treats them as GiB.
type VMSize struct {
	Name      string `json:"name"`
	VCPU      int    `json:"vcpu"`
	MemoryGiB int    `json:"memoryGiB"`
	Roles     []Role `json:"roles"`
}

// Allows reports whether the catalog allows this size for the role.
func (s VMSize) Allows(r Role) bool { return slices.Contains(s.Roles, r) }

// Limit is a maximum (or minimum) with the source that fixes it. Max 0 means no documented maximum.
type Limit struct {
	Min    int    `json:"min,omitempty"`
	Max    int    `json:"max,omitempty"`
	Source string `json:"source"`
}

// IPRules is how many addresses each object takes from the node IP pool and the VIP pool.
type IPRules struct {
	ManagementNodeIPs   int    `json:"managementNodeIPs"`   // addresses the management VM holds
	ManagementUpdateIPs int    `json:"managementUpdateIPs"` // held back for management updates
	ManagementVIPs      int    `json:"managementVIPs"`      // the management cluster's API server / control plane IP
	PerNodeIPs          int    `json:"perNodeIPs"`          // per workload cluster VM (control plane, LB VM, worker)
	ClusterUpdateIPs    int    `json:"clusterUpdateIPs"`    // held back per workload cluster for rolling updates
	PerAPIServerVIPs    int    `json:"perAPIServerVIPs"`    // per workload cluster API server
	PerLBServiceVIPs    int    `json:"perLBServiceVIPs"`    // per Service of type LoadBalancer
	MinRecommended      int    `json:"minRecommended"`      // warn below this many addresses in total
	Source              string `json:"source"`
}

// S2DRules are the Storage Spaces Direct figures the model uses.
type S2DRules struct {
	// DualParity efficiency by server count, per media: see DualParityEfficiency.
	// PoolReserveMaxDrives: reserve one capacity drive per server, up to this many.
	PoolReserveMaxDrives int `json:"poolReserveMaxDrives"`
	// CacheMetadataGiBPerTB: host memory S2D uses per TB of cache drive capacity on each server.
	CacheMetadataGiBPerTB float64 `json:"cacheMetadataGiBPerTB"`
	// DefaultMirrorPercent: the mirror share of a mirror-accelerated parity volume when the spec gives none.
	DefaultMirrorPercent int    `json:"defaultMirrorPercent"`
	Source               string `json:"source"`
}

// Timing is the default timing of live migration and failover; the inventory's planning block overrides it.
type Timing struct {
	// FailoverDelay: from a host crash to its VMs restarting elsewhere; the cluster declares a node down after
	// SameSubnetThreshold missed heartbeats sent every SameSubnetDelay.
	FailoverDelay time.Duration `json:"failoverDelay"`
	// MigrationBandwidthGbps: live migration bandwidth per host when the inventory gives none.
	MigrationBandwidthGbps float64 `json:"migrationBandwidthGbps"`
	// MaxParallelMigrations: live migrations a host runs at once; they share the bandwidth.
	MaxParallelMigrations int `json:"maxParallelMigrations"`
	// MigrationBlackout: the pause while the last dirty pages and device state move.
	MigrationBlackout time.Duration `json:"migrationBlackout"`
	Source            string        `json:"source"`
}

// Profile is one versioned set of limits and defaults. Values are read-only; LookupProfile returns a copy.
type Profile struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Title   string `json:"title"`

	Hosts            Limit `json:"hosts"`            // physical servers per HCI cluster
	WorkloadClusters Limit `json:"workloadClusters"` // workload clusters per HCI cluster
	TotalVMs         Limit `json:"totalVMs"`         // all AKS VMs including management
	NodesPerPool     Limit `json:"nodesPerPool"`     // worker nodes in one node pool
	NodesPerCluster  Limit `json:"nodesPerCluster"`  // worker nodes in one workload cluster, all pools
	PoolsPerCluster  Limit `json:"poolsPerCluster"`  // node pools in one workload cluster

	ControlPlaneCounts []int  `json:"controlPlaneCounts"`
	ControlPlaneSource string `json:"controlPlaneSource"`

	// ReserveFraction of HCI compute capacity kept free for planned and unplanned failure.
	ReserveFraction float64 `json:"reserveFraction"`
	ReserveSource   string  `json:"reserveSource"`

	// Compute defaults of the planner, overridable in spec.planning.
	VCPUOvercommit        float64 `json:"vcpuOvercommit"`        // vCPUs per logical processor
	HostReservedMemoryGiB int     `json:"hostReservedMemoryGiB"` // per host, besides S2D cache metadata
	ComputeSource         string  `json:"computeSource"`

	ManagementName   string `json:"managementName"` // "AKS host" or "Arc resource bridge"
	ManagementVMSize string `json:"managementVMSize"`
	ControlPlaneSize string `json:"controlPlaneVMSize"`
	LoadBalancerSize string `json:"loadBalancerVMSize"` // empty: this platform has no load balancer VM
	LinuxWorkerSize  string `json:"linuxWorkerVMSize"`
	WindowsWorker    string `json:"windowsWorkerVMSize"`
	DefaultsSource   string `json:"defaultsSource"`

	VMSizes       []VMSize `json:"vmSizes"`
	VMSizesSource string   `json:"vmSizesSource"`

	IP     IPRules  `json:"ip"`
	S2D    S2DRules `json:"s2d"`
	Timing Timing   `json:"timing"`
}

// Size returns the catalog entry for name.
func (p *Profile) Size(name string) (VMSize, bool) {
	for _, s := range p.VMSizes {
		if s.Name == name {
			return s, true
		}
	}
	return VMSize{}, false
}

// SizeNames lists the catalog's sizes allowed for a role.
func (p *Profile) SizeNames(r Role) []string {
	var out []string
	for _, s := range p.VMSizes {
		if s.Allows(r) {
			out = append(out, s.Name)
		}
	}
	return out
}

var allRoles = []Role{RoleManagement, RoleControlPlane, RoleLoadBalancer, RoleWorker}
var nodeRoles = []Role{RoleControlPlane, RoleLoadBalancer, RoleWorker}

// s2dRules are Storage Spaces Direct facts shared by both profiles (same S2D on 22H2 and 23H2).
var s2dRules = S2DRules{
	// Plan volumes: "we recommend reserving the equivalent of one capacity drive per server, up to 4 drives".
	PoolReserveMaxDrives: 4,
	// System requirements / cache: "4 GB of RAM per terabyte (TB) of cache drive capacity on each server, for
	// Storage Spaces Direct metadata".
	CacheMetadataGiBPerTB: 4,
	// Mirror-accelerated parity: the fault-tolerance and Dell AX guidance example mirrors "the most active 20
	// percent of data" (10 TB volume on 4 servers: 22 TB footprint instead of 30 TB).
	DefaultMirrorPercent: 20,
	Source:               SrcS2DPlanVolumes + "; " + SrcS2DCache + "; " + SrcS2DFaultTolerance,
}

// timing is shared by both profiles (same Failover Clustering and Hyper-V underneath).
var timing = Timing{
	// SameSubnetDelay 1 s x SameSubnetThreshold 10 (Windows Server 2016 and later defaults): a crashed node is
	// declared down after 10 s, then its clustered VMs are restarted on surviving nodes.
	FailoverDelay: 10 * time.Second,
	// Host network requirements: storage intent adapters (which carry SMB live migration) are 10 GbE or faster;
	// the lower bound is the conservative default. The AKS tested configuration had 4 x 100 GbE.
	MigrationBandwidthGbps: 10,
	// "Configure a maximum of 2 simultaneous Live migrations (which is default)" (Optimizing Hyper-V Live
	// Migrations on an HCI).
	MaxParallelMigrations: 2,
	// The same article: the blackout window must stay "within the TCP reconnect window" to be seamless; the
	// initial TCP retransmission timeout is 1 s (RFC 6298 2.1), so the model uses half of it.
	MigrationBlackout: 500 * time.Millisecond,
	Source:            SrcClusterHeartbeat + "; " + SrcLiveMigration + "; " + SrcHostNetwork,
}

// The AKS on Azure Stack HCI 22H2 "Validated VM sizes" table (concepts-support, 2022), CPU and memory (GB).
// Standard_K8S_v1 and Standard_K8S2_v1 are "supported" but "may result in unexpected failures due to out of
// memory issues"; they stay in the catalog as documented.
var sizes2022 = []VMSize{
	{"Default", 4, 4, nodeRoles},
	{"Standard_A2_v2", 2, 4, allRoles},
	{"Standard_A4_v2", 4, 8, allRoles},
	{"Standard_D2s_v3", 2, 8, allRoles},
	{"Standard_D4s_v3", 4, 16, allRoles},
	{"Standard_D8s_v3", 8, 32, allRoles},
	{"Standard_D16s_v3", 16, 64, allRoles},
	{"Standard_D32s_v3", 32, 128, allRoles},
	{"Standard_DS2_v2", 2, 7, allRoles},
	{"Standard_DS3_v2", 2, 14, allRoles},
	{"Standard_DS4_v2", 8, 28, allRoles},
	{"Standard_DS5_v2", 16, 56, allRoles},
	{"Standard_DS13_v2", 8, 56, allRoles},
	{"Standard_K8S_v1", 4, 2, allRoles},
	{"Standard_K8S2_v1", 2, 2, allRoles},
	{"Standard_K8S3_v1", 4, 6, allRoles},
}

// The AKS Arc 23H2 scale-requirements tables: "Supported values for control plane node sizes" and "Supported
// values for worker node sizes" (CPU, memory GB), plus the Arc resource bridge VM (4 vCPU, 8 GB minimum).
var sizes23H2 = []VMSize{
	{"Standard_A2_v2", 2, 4, []Role{RoleWorker}},
	{"Standard_A4_v2", 4, 8, []Role{RoleControlPlane, RoleWorker}},
	{"Standard_D4s_v3", 4, 16, []Role{RoleControlPlane, RoleWorker}},
	{"Standard_D8s_v3", 8, 32, []Role{RoleControlPlane, RoleWorker}},
	{"Standard_K8S3_v1", 4, 6, []Role{RoleControlPlane, RoleWorker}},
	{"ArcResourceBridge", 4, 8, []Role{RoleManagement}},
}

var profiles = []Profile{
	{
		Name:    "aks-hci-2022",
		Version: "v1",
		Title:   "AKS on Azure Stack HCI 22H2 / Windows Server (AKS hybrid, PowerShell and Windows Admin Center)",
		// Baseline: "Azure Stack HCI cluster is implemented as a 2-8 node cluster" and "a maximum of eight
		// physical servers per cluster"; concepts-support "Physical servers per cluster 8" and "tested ... for
		// single node, 2 node, 4 node and 8 node" clusters, hence 1-8.
		Hosts: Limit{Min: 1, Max: 8, Source: SrcBaseline + ": maximum of eight physical servers per cluster; " + SrcAKSHCILimits + ": Physical servers per cluster 8"},
		// Baseline: "you can deploy up to eight workload clusters" / "eight Kubernetes Clusters".
		WorkloadClusters: Limit{Max: 8, Source: SrcBaseline + ": up to eight workload clusters"},
		// Baseline: "... and 200 VMs"; concepts-support "Total number of VMs 200".
		TotalVMs:        Limit{Max: 200, Source: SrcBaseline + ": 200 VMs; " + SrcAKSHCILimits + ": Total number of VMs 200"},
		NodesPerPool:    Limit{Min: 1, Source: SrcAKSHCILimits + ": no per-pool maximum documented (bounded by 200 VMs)"},
		NodesPerCluster: Limit{Source: SrcAKSHCILimits + ": no per-cluster maximum documented (bounded by 200 VMs)"},
		PoolsPerCluster: Limit{Source: SrcAKSHCILimits + ": no node pool maximum documented"},
		// New-AksHciCluster -controlPlaneNodeCount: odd counts for etcd quorum; the twin allows 1, 3 and 5 as
		// documented for 23H2 (no different figure is published for 22H2).
		ControlPlaneCounts: []int{1, 3, 5},
		ControlPlaneSource: "New-AksHciCluster -controlPlaneNodeCount (default 1, odd for etcd quorum); " + SrcArcScale + ": allowed values 1, 3, 5",
		// Baseline: "ensure that at least 15% of Azure Stack HCI capacity is reserved for both planned and
		// unplanned failure"; concepts-support: "at least 15% (100/8=12.5)".
		ReserveFraction: 0.15,
		ReserveSource:   SrcBaseline + ": at least 15% of Azure Stack HCI capacity reserved for planned and unplanned failure",
		// No document fixes an overcommit ratio or a host memory reserve for AKS hybrid: no overcommit and no
		// reserve beyond the S2D cache metadata, the conservative and the documented-only choices.
		VCPUOvercommit: 1, HostReservedMemoryGiB: 0, ComputeSource: SrcNoFigure,
		// concepts-support "recommended limits were tested with the default VM sizes": AKS-Host Standard_A4_v2,
		// control plane Default, HAProxy load balancer Standard_A4_v2, Linux and Windows workers Standard_K8S3_v1.
		ManagementName:   "AKS host",
		ManagementVMSize: "Standard_A4_v2",
		ControlPlaneSize: "Default",
		LoadBalancerSize: "Standard_A4_v2",
		LinuxWorkerSize:  "Standard_K8S3_v1",
		WindowsWorker:    "Standard_K8S3_v1",
		DefaultsSource:   SrcAKSHCILimits + ": tested default VM sizes",
		VMSizes:          sizes2022,
		VMSizesSource:    SrcAKSHCILimits + ": Validated VM sizes",
		// aks-network: "The management cluster consumes 1 IP address from the node pool, but you should reserve
		// another 2 IPs for update operations" and one VIP for its API server; each workload cluster: 1 IP per
		// node, 5 for update operations, 1 for the load balancer VM; VIP pool: 1 per workload cluster API server
		// and 1 per Kubernetes Service of type LoadBalancer. Baseline: "reserving a minimum of 256 IP addresses".
		IP: IPRules{
			ManagementNodeIPs: 1, ManagementUpdateIPs: 2, ManagementVIPs: 1,
			PerNodeIPs: 1, ClusterUpdateIPs: 5, PerAPIServerVIPs: 1, PerLBServiceVIPs: 1,
			MinRecommended: 256,
			Source:         SrcAKSNetwork + "; " + SrcBaseline + ": minimum of 256 IP addresses",
		},
		S2D:    s2dRules,
		Timing: timing,
	},
	{
		Name:    "aks-arc-23h2",
		Version: "v1",
		Title:   "AKS Arc on Azure Stack HCI / Azure Local 23H2 (Arc resource bridge, az aksarc)",
		// Scale requirements: "Number of physical nodes in an Azure Local cluster 1 16".
		Hosts: Limit{Min: 1, Max: 16, Source: SrcArcScale + ": physical nodes 1-16"},
		// "Number of AKS clusters per Azure Local cluster 0 32".
		WorkloadClusters: Limit{Max: 32, Source: SrcArcScale + ": AKS clusters per Azure Local cluster 32"},
		TotalVMs:         Limit{Source: SrcArcScale + ": no total VM maximum documented"},
		// "Number of nodes in a node pool (empty node pools not supported) 1 64".
		NodesPerPool: Limit{Min: 1, Max: 64, Source: SrcArcScale + ": nodes in a node pool 1-64, empty node pools not supported"},
		// "Total number of nodes in an AKS cluster across nodepools 1 200".
		NodesPerCluster: Limit{Max: 200, Source: SrcArcScale + ": nodes in an AKS cluster across node pools 200"},
		// "Number of node pools in an AKS cluster 1 16".
		PoolsPerCluster: Limit{Max: 16, Source: SrcArcScale + ": node pools in an AKS cluster 16"},
		// "Count of control plane nodes (Allowed values are 1, 3, and 5)".
		ControlPlaneCounts: []int{1, 3, 5},
		ControlPlaneSource: SrcArcScale + ": control plane nodes, allowed values 1, 3, 5",
		ReserveFraction:    0.15,
		ReserveSource:      SrcBaseline + ": at least 15% of Azure Stack HCI capacity reserved for planned and unplanned failure",
		VCPUOvercommit:     1, HostReservedMemoryGiB: 0, ComputeSource: SrcNoFigure,
		// "Default values for virtual machine sizes": control plane Standard_A4_v2, Linux and Windows workers
		// Standard_K8S3_v1; 23H2 load-balances with MetalLB (no load balancer VM); the management plane is the
		// Arc resource bridge VM (4 vCPU, 8 GB minimum).
		ManagementName:   "Arc resource bridge",
		ManagementVMSize: "ArcResourceBridge",
		ControlPlaneSize: "Standard_A4_v2",
		LinuxWorkerSize:  "Standard_K8S3_v1",
		WindowsWorker:    "Standard_K8S3_v1",
		DefaultsSource:   SrcArcScale + ": default VM sizes; " + SrcArcBridge + ": 4 vCPUs, 8 GB memory",
		VMSizes:          sizes23H2,
		VMSizesSource:    SrcArcScale + ": supported control plane and worker node sizes; " + SrcArcBridge,
		// IP planning 23H2: one IP per node VM, one per cluster for Kubernetes version upgrades, one control
		// plane IP per cluster and one load balancer IP per Service (both outside the VM IP pool: the VIP pool
		// here). Arc resource bridge: appliance VM IP, a reserved appliance VM IP (upgrade) and a control plane IP.
		IP: IPRules{
			ManagementNodeIPs: 1, ManagementUpdateIPs: 1, ManagementVIPs: 1,
			PerNodeIPs: 1, ClusterUpdateIPs: 1, PerAPIServerVIPs: 1, PerLBServiceVIPs: 1,
			MinRecommended: 256,
			Source:         SrcArcIPPlanning + "; " + SrcArcBridge + "; " + SrcBaseline + ": minimum of 256 IP addresses",
		},
		S2D:    s2dRules,
		Timing: timing,
	},
}

// LookupProfile returns a copy of the named profile.
func LookupProfile(name string) (Profile, bool) {
	for _, p := range profiles {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// ProfileNames lists the known profiles.
func ProfileNames() []string {
	out := make([]string, len(profiles))
	for i, p := range profiles {
		out[i] = p.Name
	}
	return out
}
