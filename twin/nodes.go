package twin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// clusterSpecs maps the simulation's VMs onto one cluster.Spec per workload cluster of the plan: worker
// VMs become Nodes (CPU, memory, host, pool, size and address from the model), control-plane and
// load-balancer VMs count in capacity only.
func clusterSpecs(s *Spec, vms []hardware.VMStatus) ([]cluster.Spec, error) {
	var out []cluster.Spec
	for _, name := range s.ClusterNames() {
		cs := cluster.Spec{Name: name, Provider: s.Spec.Provider, TimeProfile: s.Spec.TimeProfile}
		for _, vm := range vms {
			if vm.Cluster != name {
				continue
			}
			if vm.Host == "" {
				return nil, fmt.Errorf("cluster %s: VM %s has no host (%s): the plan does not place; run `hybridtwin capacity`", name, vm.Name, vm.State)
			}
			switch vm.Role {
			case hardware.RoleWorker:
				n := cluster.NodeSpec{Name: vm.Name, Pool: vm.Pool, Host: vm.Host, Size: vm.Size,
					CPU: vm.VCPU, MemoryMiB: int64(vm.MemoryGiB) * 1024, OS: strings.ToLower(string(vm.OSType))}
				if vm.IP.IsValid() {
					n.IP = vm.IP.String()
				}
				cs.Nodes = append(cs.Nodes, n)
			case hardware.RoleControlPlane:
				cs.ControlPlane = append(cs.ControlPlane, cluster.VMSpec{Name: vm.Name, Host: vm.Host, Size: vm.Size, CPU: vm.VCPU, MemoryMiB: int64(vm.MemoryGiB) * 1024})
			case hardware.RoleLoadBalancer:
				cs.LoadBalancers = append(cs.LoadBalancers, cluster.VMSpec{Name: vm.Name, Host: vm.Host, Size: vm.Size, CPU: vm.VCPU, MemoryMiB: int64(vm.MemoryGiB) * 1024})
			}
		}
		cs = cs.WithDefaults()
		if err := cs.Validate(); err != nil {
			return nil, fmt.Errorf("cluster %s from the hardware model: %w", name, err)
		}
		out = append(out, cs)
	}
	return out, nil
}

// nodeControl is the bridge's NodeControl over the running clusters: the provider cuts nodes off and
// restores them, and the host label is patched through the cluster's API server.
type nodeControl struct {
	faults  cluster.NodeFaults
	clients map[string]kubernetes.Interface // by cluster
}

var _ NodeControl = (*nodeControl)(nil)

func (n *nodeControl) CutOff(ctx context.Context, c, node string) error {
	return n.faults.CutOff(ctx, c, node)
}

func (n *nodeControl) Restore(ctx context.Context, c, node string) error {
	return n.faults.Restore(ctx, c, node)
}

// SetHost patches the node's cluster.LabelHCIHost label (a merge patch touches that label only).
func (n *nodeControl) SetHost(ctx context.Context, c, node, host string) error {
	cl, ok := n.clients[c]
	if !ok {
		return fmt.Errorf("set host of node %s: cluster %q: %w", node, c, cluster.ErrNotFound)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{cluster.LabelHCIHost: host}}})
	if err != nil {
		return err
	}
	if _, err := cl.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label node %s/%s %s=%s: %w", c, node, cluster.LabelHCIHost, host, err)
	}
	return nil
}
