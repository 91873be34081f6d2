package hardware

import (
	"fmt"
	"net/netip"
)

// PoolUsage is one address pool: its size, what the plan takes from it and what is left.
type PoolUsage struct {
	Pool     string   `json:"pool"` // network.ipPools or network.vipPool
	Ranges   []string `json:"ranges"`
	Size     int      `json:"size"`
	Assigned int      `json:"assigned"` // held by VMs, API servers and Services
	Reserved int      `json:"reserved"` // held back for update operations
	Need     int      `json:"need"`     // Assigned + Reserved as the plan asks
	Free     int      `json:"free"`     // Size - Need, never negative
}

// VIP is one address from the VIP pool.
type VIP struct {
	Cluster string     `json:"cluster"` // "management" for the management cluster
	Purpose string     `json:"purpose"` // api-server or service
	Addr    netip.Addr `json:"addr,omitzero"`
}

// Reservation is a block of node pool addresses held back for update operations.
type Reservation struct {
	Cluster string       `json:"cluster"`
	Addrs   []netip.Addr `json:"addrs"`
}

// NetworkResult is the address plan.
type NetworkResult struct {
	Mode         NetworkMode   `json:"mode"`
	Subnet       string        `json:"subnet"`
	NodePool     PoolUsage     `json:"nodePool"`
	VIPPool      PoolUsage     `json:"vipPool"`
	VIPs         []VIP         `json:"vips"`
	Reservations []Reservation `json:"reservations,omitempty"`
	Total        int           `json:"totalAddresses"`
	Source       string        `json:"source"`
}

// allocator hands out the addresses of a list of ranges in order, passing over those in use (the
// addresses pinned VMs of a running estate keep).
type allocator struct {
	ranges []addrRange
	ri     int
	next   netip.Addr
	taken  int
	inUse  map[netip.Addr]bool
}

func newAllocator(rs []addrRange, inUse map[netip.Addr]bool) *allocator {
	a := &allocator{ranges: rs, inUse: inUse}
	if len(rs) > 0 {
		a.next = rs[0].start
	}
	return a
}

func (a *allocator) take() (netip.Addr, bool) {
	for a.ri < len(a.ranges) {
		r := a.ranges[a.ri]
		if !r.end.Less(a.next) {
			addr := a.next
			a.next = a.next.Next()
			if a.inUse[addr] {
				continue
			}
			a.taken++
			return addr, true
		}
		a.ri++
		if a.ri < len(a.ranges) {
			a.next = a.ranges[a.ri].start
		}
	}
	return netip.Addr{}, false
}

func rangeStrings(rs []addrRange) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

func poolSize(rs []addrRange) int {
	n := 0
	for _, r := range rs {
		n += r.size()
	}
	return n
}

// allocateIPs assigns node IPs (static) and VIPs in plan order and records pool exhaustion and the
// 256-address recommendation as findings. Pinned VMs keep their address; the others get the first free
// ones. The counts (what the plan needs of each pool) do not depend on which addresses are free.
func (e *evaluator) allocateIPs() error {
	pn, err := e.inv.network()
	if err != nil {
		return err
	}
	rules := e.prof.IP
	mode := e.inv.Spec.Network.Mode
	if mode == "" {
		mode = Static
	}
	nr := &e.res.Network
	nr.Mode, nr.Subnet, nr.Source = mode, pn.subnet.String(), rules.Source

	// Node IP pool: the management VM's address plus its update reserve, then per workload cluster one
	// address per VM plus the cluster's update reserve.
	var inUse map[netip.Addr]bool
	for i := range e.vms {
		if vm := &e.vms[i]; vm.pinned && vm.IP.IsValid() {
			if inUse == nil {
				inUse = map[netip.Addr]bool{}
			}
			inUse[vm.IP] = true
		}
	}
	nodes := newAllocator(pn.pools, inUse)
	np := PoolUsage{Pool: "network.ipPools", Ranges: rangeStrings(pn.pools), Size: poolSize(pn.pools)}
	reserve := func(cluster string, n int) {
		r := Reservation{Cluster: cluster}
		for k := 0; k < n; k++ {
			np.Need++
			np.Reserved++
			if a, ok := nodes.take(); ok {
				r.Addrs = append(r.Addrs, a)
			}
		}
		nr.Reservations = append(nr.Reservations, r)
	}
	if mode == Static {
		cluster := ""
		for i := range e.vms {
			vm := &e.vms[i]
			if vm.Cluster != cluster && i > 0 {
				if cluster == "" {
					reserve("management", rules.ManagementUpdateIPs)
				} else {
					reserve(cluster, rules.ClusterUpdateIPs)
				}
			}
			cluster = vm.Cluster
			n := rules.PerNodeIPs
			if vm.Role == RoleManagement {
				n = rules.ManagementNodeIPs
			}
			for k := 0; k < n; k++ {
				np.Need++
				np.Assigned++
				if k == 0 && vm.pinned {
					continue // a running VM keeps its address (or its lack of one)
				}
				if a, ok := nodes.take(); ok && k == 0 {
					vm.IP = a
				}
			}
		}
		if cluster == "" {
			reserve("management", rules.ManagementUpdateIPs)
		} else {
			reserve(cluster, rules.ClusterUpdateIPs)
		}
		np.Free = max(0, np.Size-np.Need)
		if np.Need > np.Size {
			e.add(SeverityError, "ip", rules.Source, &PoolExhaustedError{Pool: "network.ipPools", Have: np.Size, Need: np.Need})
		}
	} else {
		np.Ranges = []string{"DHCP"}
	}
	nr.NodePool = np

	// VIP pool: the management cluster's API server, then per workload cluster its API server and one VIP per
	// Service of type LoadBalancer.
	vips := newAllocator([]addrRange{pn.vip}, nil)
	vp := PoolUsage{Pool: "network.vipPool", Ranges: []string{pn.vip.String()}, Size: pn.vip.size()}
	vip := func(cluster, purpose string, n int) {
		for k := 0; k < n; k++ {
			vp.Need++
			vp.Assigned++
			a, _ := vips.take()
			nr.VIPs = append(nr.VIPs, VIP{Cluster: cluster, Purpose: purpose, Addr: a})
		}
	}
	vip("management", "api-server", rules.ManagementVIPs)
	if e.plan != nil {
		for _, c := range e.plan.Spec.WorkloadClusters {
			vip(c.Name, "api-server", rules.PerAPIServerVIPs)
			vip(c.Name, "service", c.LoadBalancerServices*rules.PerLBServiceVIPs)
		}
	}
	vp.Free = max(0, vp.Size-vp.Need)
	if vp.Need > vp.Size {
		e.add(SeverityError, "vip", rules.Source, &PoolExhaustedError{Pool: "network.vipPool", Have: vp.Size, Need: vp.Need})
	}
	nr.VIPPool = vp
	nr.Total = vp.Size
	if mode == Static {
		nr.Total += np.Size
	}
	if nr.Total < rules.MinRecommended {
		what := "the node IP pool and the VIP pool hold"
		if mode == DHCP {
			what = "the VIP pool holds (node addresses come from DHCP and are not counted)"
		}
		e.add(SeverityWarning, "ip", SrcBaseline, fmt.Errorf("%s %d addresses; Microsoft recommends reserving a minimum of %d for an AKS deployment", what, nr.Total, rules.MinRecommended))
	}
	return nil
}
