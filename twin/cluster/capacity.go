package cluster

// Capacity is what a cluster's VMs take from the HCI hosts and what its Nodes offer to pods.
type Capacity struct {
	// Workers is the worker VMs' size (the Nodes' capacity); Allocatable what pods may use of it.
	Workers     Resources `json:"workers"`
	Allocatable Resources `json:"allocatable"`
	// Pods is the Nodes' total pod capacity.
	Pods int `json:"pods"`
	// ControlPlane and LoadBalancers are the VMs that are not Nodes but run on the hosts all the same.
	ControlPlane  Resources `json:"controlPlane"`
	LoadBalancers Resources `json:"loadBalancers"`
	// Total is every VM of the cluster: what it costs the HCI cluster.
	Total Resources `json:"total"`
	// Nodes counts the worker VMs, VMs every VM.
	Nodes int `json:"nodes"`
	VMs   int `json:"vms"`
}

// Capacity sums the cluster's VMs. Call it on a spec after WithDefaults.
func (s Spec) Capacity() Capacity {
	var c Capacity
	for _, n := range s.Nodes {
		r := Resources{CPUMilli: int64(n.CPU) * 1000, MemoryMiB: n.MemoryMiB}
		c.Workers = c.Workers.Add(r)
		c.Allocatable = c.Allocatable.Add(Resources{CPUMilli: r.CPUMilli - n.Reserved.CPUMilli, MemoryMiB: r.MemoryMiB - n.Reserved.MemoryMiB})
		c.Pods += n.Pods
	}
	for _, vm := range s.ControlPlane {
		c.ControlPlane = c.ControlPlane.Add(Resources{CPUMilli: int64(vm.CPU) * 1000, MemoryMiB: vm.MemoryMiB})
	}
	for _, vm := range s.LoadBalancers {
		c.LoadBalancers = c.LoadBalancers.Add(Resources{CPUMilli: int64(vm.CPU) * 1000, MemoryMiB: vm.MemoryMiB})
	}
	c.Total = c.Workers.Add(c.ControlPlane).Add(c.LoadBalancers)
	c.Nodes = len(s.Nodes)
	c.VMs = len(s.Nodes) + len(s.ControlPlane) + len(s.LoadBalancers)
	return c
}
