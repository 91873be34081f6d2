package twin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// clusterSpecs maps the simulation's VMs onto one cluster.Spec per workload cluster of the plan: worker
// VMs become Nodes (CPU, memory, host, pool, size and address from the model), control-plane and
// load-balancer VMs count in capacity only.
func clusterSpecs(s *Spec, vms []hardware.VMStatus) ([]cluster.Spec, error) {
	var out []cluster.Spec
	for _, name := range s.ClusterNames() {
		cs, err := clusterSpec(s, name, vms)
		if err != nil {
			return nil, err
		}
		out = append(out, cs)
	}
	return out, nil
}

// clusterSpec is one workload cluster's cluster.Spec from the simulation's VMs.
func clusterSpec(s *Spec, name string, vms []hardware.VMStatus) (cluster.Spec, error) {
	cs := cluster.Spec{Name: name, Provider: s.Spec.Provider, TimeProfile: s.Spec.TimeProfile}
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

// nodeControl is the bridge's NodeControl over the running clusters: the provider cuts nodes off and
// restores them, and the host label is patched through the cluster's API server.
type nodeControl struct {
	faults cluster.NodeFaults
	client func(cluster string) (kubernetes.Interface, bool) // the running cluster's admin client
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
	cl, ok := n.client(c)
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

// drainNode cordons a node and evicts its pods through the Eviction API, as `kubectl drain` does
// (Kubernetes documentation, "Safely Drain a Node": the node is marked unschedulable, then its pods are
// evicted, and evictions honour PodDisruptionBudgets; DaemonSet pods are left, they go with the node),
// and waits until the pods are gone: the simulated kubelet confirms each deletion. A PodDisruptionBudget
// that refuses an eviction is retried every poll until ctx ends; the error then names the pods left.
func drainNode(ctx context.Context, kc kubernetes.Interface, node string, poll time.Duration) error {
	if err := setUnschedulable(ctx, kc, node, true); err != nil {
		return err
	}
	var left []string
	err := wait.PollUntilContextCancel(ctx, poll, true, func(ctx context.Context) (bool, error) {
		pods, err := kc.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			left = []string{"(list pods: " + err.Error() + ")"}
			return false, nil
		}
		left = left[:0]
		for i := range pods.Items {
			p := &pods.Items[i]
			if ownedByDaemonSet(p) {
				continue
			}
			name := p.Namespace + "/" + p.Name
			if p.DeletionTimestamp != nil {
				left = append(left, name+" (terminating)")
				continue
			}
			err := kc.CoreV1().Pods(p.Namespace).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
			switch {
			case err == nil || apierrors.IsNotFound(err):
				left = append(left, name+" (evicted)")
			case apierrors.IsTooManyRequests(err):
				left = append(left, name+" (a PodDisruptionBudget refuses the eviction)")
			default:
				left = append(left, name+" ("+err.Error()+")")
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("drain node %s: %w; pods still on it: %s", node, err, strings.Join(left, ", "))
	}
	return nil
}

func ownedByDaemonSet(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// setUnschedulable cordons (true) or uncordons (false) a node, as kubectl cordon/uncordon do.
func setUnschedulable(ctx context.Context, kc kubernetes.Interface, node string, on bool) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"unschedulable": on}})
	if err != nil {
		return err
	}
	if _, err := kc.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set node %s unschedulable=%t: %w", node, on, err)
	}
	return nil
}
