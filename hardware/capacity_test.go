package hardware

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

// TestReserve checks the 15% failover reserve of seed 002 ("at least 15% of Azure Stack HCI capacity is
// reserved for both planned and unplanned failure") on vCPU: 2 hosts x 20 cores = 40 vCPU, 6 reserved, so the
// VMs may use 34. Management (4) + one control plane node (4) + n Standard_A2_v2 workers (2 each).
func TestReserve(t *testing.T) {
	cases := []struct {
		name     string
		workers  int
		percent  float64
		headroom float64
		ok       bool
	}{
		{"13 workers use 34 of 40: exactly 15% left", 13, 0, 0, true},
		{"14 workers use 36: 2 vCPU short", 14, 0, -2, false},
		{"raised to 25%: 13 workers 4 short", 13, 25, -4, false},
		{"raised to 25%: 11 workers fit", 11, 25, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := inv("aks-hci-2022", 2, 20, false, 100)
			i.Spec.Planning.ReservePercent = c.percent
			p := plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{Disabled: true},
				NodePools: []NodePool{{Name: "w", VMSize: "Standard_A2_v2", Count: c.workers}}})
			r := mustEval(t, i, p)
			cores := r.Headroom[0]
			if cores.Resource != "cores" || cores.Headroom != c.headroom || cores.OK != c.ok {
				t.Fatalf("cores headroom %+v, want %.0f ok=%v", cores, c.headroom, c.ok)
			}
			if got := len(findings(r, SeverityError, "reserve")) == 0; got != c.ok {
				t.Fatalf("reserve finding present=%v, want %v: %+v", !got, !c.ok, r.Findings)
			}
		})
	}
}

func TestReserveCannotBeLowered(t *testing.T) {
	i := inv("aks-hci-2022", 2, 20, false, 100)
	i.Spec.Planning.ReservePercent = 10
	var se *SpecError
	if err := i.Validate(); !errors.As(err, &se) || se.Field != "spec.planning.reservePercent" {
		t.Fatalf("want an error on spec.planning.reservePercent, got %v", err)
	}
}

// TestFailover checks N-1 with memory-bound hosts: 3 hosts of 64 GiB (128 GiB left after losing one).
// Management 8 GiB + control plane 4 GiB + n Standard_D4s_v3 workers (16 GiB).
func TestFailover(t *testing.T) {
	cases := []struct {
		workers int
		fits    bool
	}{{6, true}, {9, false}}
	for _, c := range cases {
		i := inv("aks-hci-2022", 3, 32, false, 64)
		p := plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{Disabled: true},
			NodePools: []NodePool{{Name: "w", VMSize: "Standard_D4s_v3", Count: c.workers}}})
		r := mustEval(t, i, p)
		if r.Failover.Fits != c.fits || !r.Failover.Checked || len(r.Failover.Failures) != 3 {
			t.Fatalf("%d workers: failover %+v, want fits=%v", c.workers, r.Failover, c.fits)
		}
		if got := len(findings(r, SeverityError, "n-1")) == 0; got != c.fits {
			t.Fatalf("%d workers: n-1 findings %+v", c.workers, r.Findings)
		}
		// After the worst failure its host is down, every other host stays within its memory, and every VM of
		// the lost host is either restarted elsewhere or named as stranded.
		placed := 0
		for _, h := range r.Failover.After {
			if h.Name == r.Failover.WorstHost {
				if !h.Down || len(h.VMs) != 0 {
					t.Fatalf("worst host %s after failure: %+v", h.Name, h)
				}
				continue
			}
			if float64(h.MemoryUsedGiB) > h.MemoryCapacityGiB {
				t.Fatalf("host %s over memory after failover: %d > %.0f", h.Name, h.MemoryUsedGiB, h.MemoryCapacityGiB)
			}
			placed += len(h.VMs)
		}
		var worst HostFailure
		for _, f := range r.Failover.Failures {
			if f.Host == r.Failover.WorstHost {
				worst = f
			}
		}
		if placed+len(worst.Stranded) != len(r.VMs) {
			t.Fatalf("%d VMs after failover + %d stranded != %d VMs", placed, len(worst.Stranded), len(r.VMs))
		}
		if !c.fits && (!errors.Is(r.Err(), ErrInsufficientCapacity) || len(worst.Stranded) == 0) {
			t.Fatalf("want stranded VMs and ErrInsufficientCapacity, got %v", r.Err())
		}
	}
}

func TestSingleHostFailsNMinusOne(t *testing.T) {
	r := mustEval(t, inv("aks-arc-23h2", 1, 32, true, 512), nil)
	if r.Fits || r.Failover.Checked || len(findings(r, SeverityError, "n-1")) != 1 {
		t.Fatalf("a single host cannot pass N-1: %+v", r.Findings)
	}
}

func TestPlacementSpreadsPools(t *testing.T) {
	i := inv("aks-hci-2022", 4, 32, true, 512)
	p := plan(WorkloadCluster{Name: "prod", ControlPlane: ControlPlaneSpec{Count: 3},
		NodePools: []NodePool{{Name: "linux", Count: 8}, {Name: "win", OSType: Windows, Count: 4}}})
	r := mustEval(t, i, p)
	per := map[string]map[string]int{} // group -> host -> VMs
	for _, vm := range r.VMs {
		if vm.Host == "" {
			t.Fatalf("%s unplaced", vm.Name)
		}
		g := vm.Cluster + "/" + string(vm.Role) + "/" + vm.Pool
		if per[g] == nil {
			per[g] = map[string]int{}
		}
		per[g][vm.Host]++
	}
	// Anti-affinity: 3 control plane nodes on 3 hosts, 8 linux workers 2 per host, 4 windows workers 1 per host.
	want := map[string][]int{"prod/control-plane/": {1, 1, 1}, "prod/worker/linux": {2, 2, 2, 2}, "prod/worker/win": {1, 1, 1, 1}}
	for g, counts := range want {
		var got []int
		for _, n := range per[g] {
			got = append(got, n)
		}
		slices.Sort(got)
		if !slices.Equal(got, counts) {
			t.Errorf("%s spread over hosts %v, want %v", g, got, counts)
		}
	}
	// Stable, Kubernetes-valid node names.
	for _, n := range []string{"management-0", "prod-control-plane-2", "prod-lb-0", "prod-linux-7", "prod-win-3"} {
		if !slices.ContainsFunc(r.VMs, func(v VM) bool { return v.Name == n }) {
			t.Errorf("no VM named %s", n)
		}
	}
	for _, vm := range r.VMs {
		if msg := validName(vm.Name, 63); msg != "" {
			t.Errorf("node name %s: %s", vm.Name, msg)
		}
	}
	// Deterministic: the same inputs give the same result.
	r2 := mustEval(t, i, p)
	if !reflect.DeepEqual(r, r2) {
		t.Fatal("two evaluations of the same inputs differ")
	}
}

func TestPlacementNeverOvercommitsMemory(t *testing.T) {
	// 2 hosts of 40 GiB; Standard_D8s_v3 workers take 32 GiB. Management (8) goes to h1, the control plane (4)
	// to h2 (most free memory), then one worker fits beside each; a third would need 32 GiB where 0 and 4 are
	// left, so it stays unplaced rather than overcommit memory.
	i := inv("aks-hci-2022", 2, 64, true, 40)
	p := plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{Disabled: true},
		NodePools: []NodePool{{Name: "big", VMSize: "Standard_D8s_v3", Count: 3}}})
	r := mustEval(t, i, p)
	unplaced := 0
	for _, vm := range r.VMs {
		if vm.Host == "" {
			unplaced++
		}
	}
	for _, h := range r.Hosts {
		if float64(h.MemoryUsedGiB) > h.MemoryCapacityGiB {
			t.Fatalf("host %s: %d GiB used of %.0f", h.Name, h.MemoryUsedGiB, h.MemoryCapacityGiB)
		}
	}
	if unplaced != 1 || len(findings(r, SeverityError, "placement")) != 1 {
		t.Fatalf("want 1 unplaced VM and a placement finding; unplaced %d, findings %+v", unplaced, r.Findings)
	}
}

func TestVCPUOvercommit(t *testing.T) {
	// One host, 4 cores, no HT: 4 logical processors. Management (4 vCPU) + control plane (4 vCPU) = 8.
	for _, c := range []struct {
		ratio    float64
		unplaced bool
	}{{0, true}, {1, true}, {2, false}} {
		i := inv("aks-hci-2022", 1, 4, false, 64)
		i.Spec.Planning.VCPUOvercommit = c.ratio
		r := mustEval(t, i, plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{Disabled: true}}))
		if got := len(findings(r, SeverityError, "placement")) > 0; got != c.unplaced {
			t.Errorf("overcommit %g: unplaced=%v, want %v (%+v)", c.ratio, got, c.unplaced, r.Findings)
		}
	}
}

// TestIPRules checks the address rules: aks-network (22H2) "management cluster consumes 1 IP ... reserve
// another 2 IPs for update operations", a workload cluster 1 per node, 5 for updates, 1 for the load
// balancer; VIP pool 1 per API server and 1 per Service of type LoadBalancer. 23H2 (IP address planning):
// 1 per node, 1 per cluster for upgrades, control plane IP and load balancer IPs outside the pool.
func TestIPRules(t *testing.T) {
	cluster := WorkloadCluster{Name: "a", ControlPlane: ControlPlaneSpec{Count: 3}, LoadBalancerServices: 3,
		NodePools: []NodePool{{Name: "w", VMSize: "Standard_K8S3_v1", Count: 4}}}
	cases := []struct {
		profile   string
		poolSize  int
		nodeNeed  int
		vipNeed   int
		exhausted bool
	}{
		{"aks-hci-2022", 16, 1 + 2 + (3 + 1 + 4) + 5, 1 + 1 + 3, false},
		{"aks-hci-2022", 15, 16, 5, true},
		{"aks-arc-23h2", 10, 1 + 1 + (3 + 4) + 1, 1 + 1 + 3, false},
		{"aks-arc-23h2", 9, 10, 5, true},
	}
	for _, c := range cases {
		i := inv(c.profile, 2, 32, true, 256)
		end := netip.MustParseAddr("10.0.1.1")
		for k := 1; k < c.poolSize; k++ {
			end = end.Next()
		}
		i.Spec.Network.IPPools = []IPRange{{Start: "10.0.1.1", End: end.String()}}
		cl := cluster
		if c.profile == "aks-arc-23h2" {
			cl.ControlPlane.VMSize = "Standard_A4_v2"
		}
		r := mustEval(t, i, plan(cl))
		np, vp := r.Network.NodePool, r.Network.VIPPool
		if np.Size != c.poolSize || np.Need != c.nodeNeed || vp.Need != c.vipNeed {
			t.Fatalf("%s pool %d: node pool %+v vip %+v; want need %d and %d", c.profile, c.poolSize, np, vp, c.nodeNeed, c.vipNeed)
		}
		var pe *PoolExhaustedError
		got := errors.As(r.Err(), &pe)
		if got != c.exhausted {
			t.Fatalf("%s pool %d: exhausted=%v, want %v (%v)", c.profile, c.poolSize, got, c.exhausted, r.Err())
		}
		if got && (pe.More() != 1 || pe.Pool != "network.ipPools" || !errors.Is(pe, ErrPoolExhausted)) {
			t.Fatalf("want 1 more address for network.ipPools, got %+v", pe)
		}
	}
}

func TestIPAssignmentOrder(t *testing.T) {
	i := inv("aks-hci-2022", 2, 32, true, 256)
	// Two ranges: allocation runs on into the second.
	i.Spec.Network.IPPools = []IPRange{{Start: "10.0.1.1", End: "10.0.1.4"}, {Start: "10.0.3.1", End: "10.0.3.50"}}
	r := mustEval(t, i, plan(WorkloadCluster{Name: "a", LoadBalancerServices: 2, NodePools: []NodePool{{Name: "w", Count: 2}}}))
	ips := map[string]string{}
	for _, vm := range r.VMs {
		ips[vm.Name] = vm.IP.String()
	}
	// management-0 .1, management update .2 .3, a-control-plane-0 .4, a-lb-0 and the workers in range two.
	want := map[string]string{"management-0": "10.0.1.1", "a-control-plane-0": "10.0.1.4", "a-lb-0": "10.0.3.1", "a-w-0": "10.0.3.2", "a-w-1": "10.0.3.3"}
	if !reflect.DeepEqual(ips, want) {
		t.Fatalf("node IPs %v, want %v", ips, want)
	}
	if len(r.Network.Reservations) != 2 || len(r.Network.Reservations[1].Addrs) != 5 || r.Network.Reservations[1].Addrs[0].String() != "10.0.3.4" {
		t.Fatalf("update reservations %+v", r.Network.Reservations)
	}
	var vips []string
	for _, v := range r.Network.VIPs {
		vips = append(vips, v.Cluster+"/"+v.Purpose+"="+v.Addr.String())
	}
	wantVIPs := []string{"management/api-server=10.0.2.1", "a/api-server=10.0.2.2", "a/service=10.0.2.3", "a/service=10.0.2.4"}
	if !slices.Equal(vips, wantVIPs) {
		t.Fatalf("VIPs %v, want %v", vips, wantVIPs)
	}
}

func TestIPWarningBelow256AndDHCP(t *testing.T) {
	i := inv("aks-hci-2022", 2, 32, true, 256)
	if r := mustEval(t, i, nil); len(findings(r, SeverityWarning, "ip")) != 0 {
		t.Fatalf("350 addresses should not warn: %+v", r.Findings)
	}
	i.Spec.Network.IPPools = []IPRange{{Start: "10.0.1.1", End: "10.0.1.100"}}
	if r := mustEval(t, i, nil); len(findings(r, SeverityWarning, "ip")) != 1 || !r.Fits {
		t.Fatalf("200 addresses should warn but fit: %+v", r.Findings)
	}
	i.Spec.Network.Mode, i.Spec.Network.IPPools = DHCP, nil
	r := mustEval(t, i, plan(WorkloadCluster{Name: "a", NodePools: []NodePool{{Name: "w", Count: 2}}}))
	for _, vm := range r.VMs {
		if vm.IP.IsValid() {
			t.Fatalf("DHCP: %s got a static address %s", vm.Name, vm.IP)
		}
	}
	if r.Network.VIPPool.Need != 2 || r.Network.Total != 100 || len(findings(r, SeverityWarning, "ip")) != 1 {
		t.Fatalf("DHCP network %+v findings %+v", r.Network, r.Findings)
	}
}

func TestVIPExhaustion(t *testing.T) {
	i := inv("aks-arc-23h2", 2, 32, true, 256)
	i.Spec.Network.VIPPool = IPRange{Start: "10.0.2.1", End: "10.0.2.10"}
	r := mustEval(t, i, plan(WorkloadCluster{Name: "a", LoadBalancerServices: 20, NodePools: []NodePool{{Name: "w", Count: 1}}}))
	var pe *PoolExhaustedError
	if !errors.As(r.Err(), &pe) || pe.Pool != "network.vipPool" || pe.More() != 12 {
		t.Fatalf("want the VIP pool 12 addresses short (1+1+20 of 10), got %v", r.Err())
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name    string
		profile string
		hosts   int
		plan    *Plan
		limit   string
	}{
		{"9 servers on aks-hci-2022", "aks-hci-2022", 9, nil, "physical servers"},
		{"17 servers on aks-arc-23h2", "aks-arc-23h2", 17, nil, "physical servers"},
		{"65 nodes in a 23H2 pool", "aks-arc-23h2", 4, plan(WorkloadCluster{Name: "a", NodePools: []NodePool{{Name: "w", VMSize: "Standard_A2_v2", Count: 65}}}), "nodes in a node pool"},
		{"empty pool", "aks-arc-23h2", 4, plan(WorkloadCluster{Name: "a", NodePools: []NodePool{{Name: "w", Count: 0}}}), "nodes in a node pool"},
		{"201 VMs on aks-hci-2022", "aks-hci-2022", 8, plan(WorkloadCluster{Name: "a", NodePools: []NodePool{{Name: "w", VMSize: "Standard_K8S2_v1", Count: 198}}}), "AKS VMs in total"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := inv(c.profile, c.hosts, 64, true, 1024)
			i.Spec.Network.IPPools = []IPRange{{Start: "10.0.4.1", End: "10.0.7.250"}}
			r := mustEval(t, i, c.plan)
			var le *LimitError
			if !errors.As(r.Err(), &le) || le.Limit != c.limit || le.Source == "" || !errors.Is(le, ErrLimitExceeded) {
				t.Fatalf("want a LimitError on %q with its source, got %v", c.limit, r.Err())
			}
		})
	}
	// Nine workload clusters on aks-hci-2022 (the baseline's "up to eight").
	var cs []WorkloadCluster
	for k := 0; k < 9; k++ {
		cs = append(cs, WorkloadCluster{Name: string(rune('a' + k)), LoadBalancer: LoadBalancerSpec{Disabled: true}})
	}
	i := inv("aks-hci-2022", 4, 64, true, 1024)
	var le *LimitError
	if r := mustEval(t, i, plan(cs...)); !errors.As(r.Err(), &le) || le.Limit != "workload clusters" || le.Max != 8 {
		t.Fatalf("want the 8 workload cluster limit, got %v", r.Err())
	}
}

func TestPlanAgainstProfile(t *testing.T) {
	cases := []struct {
		name    string
		profile string
		plan    *Plan
		field   string
	}{
		{"control plane of 2", "aks-hci-2022", plan(WorkloadCluster{Name: "a", ControlPlane: ControlPlaneSpec{Count: 2}}), "spec.workloadClusters[0].controlPlane.count"},
		{"unknown size", "aks-hci-2022", plan(WorkloadCluster{Name: "a", NodePools: []NodePool{{Name: "w", VMSize: "Standard_E64_v5", Count: 1}}}), "spec.workloadClusters[0].nodePools[0].vmSize"},
		{"Default is not a 23H2 size", "aks-arc-23h2", plan(WorkloadCluster{Name: "a", ControlPlane: ControlPlaneSpec{VMSize: "Default"}}), "spec.workloadClusters[0].controlPlane.vmSize"},
		{"A2_v2 is not a 23H2 control plane size", "aks-arc-23h2", plan(WorkloadCluster{Name: "a", ControlPlane: ControlPlaneSpec{VMSize: "Standard_A2_v2"}}), "spec.workloadClusters[0].controlPlane.vmSize"},
		{"no load balancer VM on 23H2", "aks-arc-23h2", plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{VMSize: "Standard_A4_v2"}}), "spec.workloadClusters[0].loadBalancer.vmSize"},
		{"node name collision", "aks-hci-2022", plan(WorkloadCluster{Name: "a-b", NodePools: []NodePool{{Name: "c", Count: 1}}}, WorkloadCluster{Name: "a", NodePools: []NodePool{{Name: "b-c", Count: 1}}}), "spec.workloadClusters[1].nodePools[0].name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Evaluate(inv(c.profile, 2, 32, true, 256), c.plan)
			var se *SpecError
			if !errors.As(err, &se) || se.Field != c.field {
				t.Fatalf("want a SpecError on %s, got %v", c.field, err)
			}
		})
	}
}

func TestEvaluateValidatesGoBuiltDocuments(t *testing.T) {
	if _, err := Evaluate(nil, nil); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("nil inventory: %v", err)
	}
	i := inv("aks-hci-2022", 2, 16, true, 128)
	i.Spec.Hosts = nil
	var se *SpecError
	if _, err := Evaluate(i, nil); !errors.As(err, &se) || se.Field != "spec.hosts" {
		t.Fatalf("no hosts: %v", err)
	}
	p := plan(WorkloadCluster{Name: "Bad Name"})
	if _, err := Evaluate(inv("aks-hci-2022", 2, 16, true, 128), p); !errors.As(err, &se) || se.Field != "spec.workloadClusters[0].name" {
		t.Fatalf("bad plan: %v", err)
	}
}
