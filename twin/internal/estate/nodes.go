package estate

import (
	"fmt"
	"strings"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// clusterSpec is one workload cluster's cluster.Spec from the simulation's VMs: worker VMs become Nodes
// (CPU, memory, host, pool, size and address from the model), control-plane and load-balancer VMs count
// in capacity only. It is defaulted and validated here although the provider does it again: the plan
// step reports a cluster the model cannot make before anything starts.
func clusterSpec(s *spec.Spec, name string, vms []hardware.VMStatus) (cluster.Spec, error) {
	cs := cluster.Spec{Name: name, Provider: s.Spec.Provider, TimeProfile: s.Spec.TimeProfile, Tier: s.TierFor(name)}
	for _, vm := range vms {
		if vm.Cluster != name {
			continue
		}
		if vm.Host == "" {
			return cluster.Spec{}, fmt.Errorf("cluster %s: VM %s has no host (%s): the plan does not place; run `hybridtwin capacity`", name, vm.Name, vm.State)
		}
		switch vm.Role {
		case hardware.RoleWorker:
			cs.Nodes = append(cs.Nodes, nodeSpecOf(vm))
		case hardware.RoleControlPlane:
			cs.ControlPlane = append(cs.ControlPlane, cluster.VMSpec{Name: vm.Name, Host: vm.Host, Size: vm.Size, CPU: vm.VCPU, MemoryMiB: int64(vm.MemoryGiB) * 1024})
		case hardware.RoleLoadBalancer:
			cs.LoadBalancers = append(cs.LoadBalancers, cluster.VMSpec{Name: vm.Name, Host: vm.Host, Size: vm.Size, CPU: vm.VCPU, MemoryMiB: int64(vm.MemoryGiB) * 1024})
		}
	}
	cs = cs.WithDefaults()
	if err := cs.Validate(); err != nil {
		return cluster.Spec{}, fmt.Errorf("cluster %s from the hardware model: %w", name, err)
	}
	return cs, nil
}

// nodeSpecOf is the Node a worker VM of the model becomes.
func nodeSpecOf(vm hardware.VMStatus) cluster.NodeSpec {
	n := cluster.NodeSpec{Name: vm.Name, Pool: vm.Pool, Host: vm.Host, Size: vm.Size,
		CPU: vm.VCPU, MemoryMiB: int64(vm.MemoryGiB) * 1024, OS: strings.ToLower(string(vm.OSType))}
	if vm.IP.IsValid() {
		n.IP = vm.IP.String()
	}
	return n
}
