package hardware

import (
	"fmt"
	"net/netip"
	"strconv"
)

// sizeIndex maps profile name -> VM size name -> size, for the hot path of evaluation.
var sizeIndex = func() map[string]map[string]VMSize {
	idx := map[string]map[string]VMSize{}
	for _, p := range profiles {
		m := map[string]VMSize{}
		for _, s := range p.VMSizes {
			m[s.Name] = s
		}
		idx[p.Name] = m
	}
	return idx
}()

// VM is one AKS hybrid virtual machine and where the model put it. Name is a valid Kubernetes node name
// (DNS-1123 label), stable for a given plan: <cluster>-control-plane-<i>, <cluster>-lb-<i>,
// <cluster>-<pool>-<i>, and management-0 for the management VM.
type VM struct {
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Cluster   string     `json:"cluster,omitempty"`
	Pool      string     `json:"pool,omitempty"`
	OSType    OSType     `json:"osType,omitempty"`
	Size      string     `json:"size"`
	VCPU      int        `json:"vcpu"`
	MemoryGiB int        `json:"memoryGiB"`
	Host      string     `json:"host"`        // "" when the VM could not be placed
	IP        netip.Addr `json:"ip,omitzero"` // zero with DHCP or when the node IP pool ran out

	group   int  // anti-affinity group: the management VM, a control plane, a load balancer, a node pool
	hostIdx int  // index of Host in the evaluation's hosts, -1 when unplaced
	pinned  bool // a running VM of a Sim: it keeps its Host and IP, placement does not move it
}

// hostCap is one host's capacity and usage during placement.
type hostCap struct {
	vcpuCap float64
	memCap  float64
	vcpu    int
	mem     int
	up      bool
	groups  []int16 // VMs of each anti-affinity group on this host
}

func (h *hostCap) fits(vm *VM) bool {
	return h.up && float64(h.mem+vm.MemoryGiB) <= h.memCap && float64(h.vcpu+vm.VCPU) <= h.vcpuCap
}

func (h *hostCap) add(vm *VM) {
	h.vcpu += vm.VCPU
	h.mem += vm.MemoryGiB
	h.groups[vm.group]++
}

func (h *hostCap) remove(vm *VM) {
	h.vcpu -= vm.VCPU
	h.mem -= vm.MemoryGiB
	h.groups[vm.group]--
}

// pickHost chooses the host for vm the way AKS hybrid spreads a node pool over the HCI cluster
// (seed 002: "distributes the worker nodes for each node pool ... using Azure Stack HCI placement logic"):
// among the hosts with room (memory is never overcommitted; vCPUs up to the overcommit ratio), the one with
// the fewest VMs of the same group (anti-affinity), then the most free memory (failover clustering places on
// the node with the most available memory), then the lowest index. It returns -1 when no host has room.
func pickHost(hosts []hostCap, vm *VM) int {
	best := -1
	var bestGroup int16
	var bestFree float64
	for i := range hosts {
		h := &hosts[i]
		if !h.fits(vm) {
			continue
		}
		g := h.groups[vm.group]
		free := h.memCap - float64(h.mem)
		if best < 0 || g < bestGroup || (g == bestGroup && free > bestFree) {
			best, bestGroup, bestFree = i, g, free
		}
	}
	return best
}

// buildVMs expands the plan into VMs in a fixed order: the management VM, then per workload cluster its
// control plane, its load balancer and its node pools. It also returns the number of anti-affinity groups.
func buildVMs(prof *Profile, plan *Plan) ([]VM, int, error) {
	ps := PlanSpec{}
	if plan != nil {
		ps = plan.Spec
	}
	total := 1
	for _, c := range ps.WorkloadClusters {
		total += max(c.ControlPlane.Count, 1) + 1
		for _, np := range c.NodePools {
			total += np.Count
		}
	}
	vms := make([]VM, 0, total)
	sizes := sizeIndex[prof.Name]
	group := 0
	add := func(vm VM) {
		s := sizes[vm.Size]
		vm.VCPU, vm.MemoryGiB, vm.group = s.VCPU, s.MemoryGiB, group
		vms = append(vms, vm)
	}
	mgmt := ps.Management.VMSize
	if mgmt == "" {
		mgmt = prof.ManagementVMSize
	}
	add(VM{Name: "management-0", Role: RoleManagement, OSType: Linux, Size: mgmt})
	group++
	names := make(map[string]struct{}, total)
	names["management-0"] = struct{}{}
	// Paths are built only for the error, which is rare: cluster "a-b" pool "c" and cluster "a" pool "b-c"
	// both make a-b-c-0.
	check := func(name string, i, j int) error {
		if _, dup := names[name]; dup {
			path := fmt.Sprintf("spec.workloadClusters[%d]", i)
			if j >= 0 {
				path += fmt.Sprintf(".nodePools[%d]", j)
			}
			return plan.errAt(path+".name", "makes node name %q, which another cluster or pool also makes; rename the cluster or the pool", name)
		}
		names[name] = struct{}{}
		return nil
	}
	for i, c := range ps.WorkloadClusters {
		n := c.ControlPlane.Count
		if n == 0 {
			n = 1
		}
		size := c.ControlPlane.VMSize
		if size == "" {
			size = prof.ControlPlaneSize
		}
		for k := 0; k < n; k++ {
			name := c.Name + "-control-plane-" + strconv.Itoa(k)
			if err := check(name, i, -1); err != nil {
				return nil, 0, err
			}
			add(VM{Name: name, Role: RoleControlPlane, Cluster: c.Name, OSType: Linux, Size: size})
		}
		group++
		if prof.LoadBalancerSize != "" && !c.LoadBalancer.Disabled {
			size := c.LoadBalancer.VMSize
			if size == "" {
				size = prof.LoadBalancerSize
			}
			name := c.Name + "-lb-0"
			if err := check(name, i, -1); err != nil {
				return nil, 0, err
			}
			add(VM{Name: name, Role: RoleLoadBalancer, Cluster: c.Name, OSType: Linux, Size: size})
			group++
		}
		for j, np := range c.NodePools {
			size := np.VMSize
			os := np.OSType
			if os == "" {
				os = Linux
			}
			if size == "" {
				size = prof.LinuxWorkerSize
				if os == Windows {
					size = prof.WindowsWorker
				}
			}
			for k := 0; k < np.Count; k++ {
				name := c.Name + "-" + np.Name + "-" + strconv.Itoa(k)
				if err := check(name, i, j); err != nil {
					return nil, 0, err
				}
				add(VM{Name: name, Role: RoleWorker, Cluster: c.Name, Pool: np.Name, OSType: os, Size: size})
			}
			group++
		}
	}
	return vms, group, nil
}

// placeAll places vms in order on hosts; it returns the indexes of the VMs that found no host. Pinned VMs
// (already running, see pinVMs) are not placed again: they stay where they are, or unplaced.
func placeAll(vms []VM, hosts []hostCap, hostNames []string) []int {
	var unplaced []int
	for i := range vms {
		vm := &vms[i]
		if vm.pinned {
			if vm.hostIdx < 0 {
				unplaced = append(unplaced, i)
			}
			continue
		}
		h := pickHost(hosts, vm)
		vm.hostIdx = h
		if h < 0 {
			vm.Host = ""
			unplaced = append(unplaced, i)
			continue
		}
		hosts[h].add(vm)
		vm.Host = hostNames[h]
	}
	return unplaced
}

// pin is where a running VM is: the host it runs on ("" when it is stranded) and its address. A Sim pins
// its VMs when it evaluates a change, so the change is judged on the estate as it runs.
type pin struct {
	Host string
	IP   netip.Addr
}

// pinVMs fixes the pinned VMs on their hosts before placement: each counts on its host's capacity and
// anti-affinity group, and placement only chooses hosts for the others.
func pinVMs(vms []VM, pins map[string]pin, hosts []hostCap, hostNames []string) {
	if pins == nil {
		return
	}
	idx := make(map[string]int, len(hostNames))
	for i, n := range hostNames {
		idx[n] = i
	}
	for i := range vms {
		vm := &vms[i]
		p, ok := pins[vm.Name]
		if !ok {
			continue
		}
		vm.pinned, vm.IP, vm.Host, vm.hostIdx = true, p.IP, "", -1
		if h, ok := idx[p.Host]; ok {
			vm.Host, vm.hostIdx = p.Host, h
			hosts[h].add(vm)
		}
	}
}
