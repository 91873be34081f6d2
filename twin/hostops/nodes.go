package hostops

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

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// Nodes is the bridge's NodeControl over running clusters: the provider cuts nodes off and restores
// them, and the host label is patched through the cluster's API server.
type Nodes struct {
	Faults cluster.NodeFaults
	Client func(cluster string) (kubernetes.Interface, bool) // the running cluster's admin client
	// NodeName is the name of a VM's Node in a cluster (cluster.Info.NodeName: the VM's own name on the
	// embedded provider, kind's <cluster>-worker<N> on kind); nil means the VM's name.
	NodeName func(cluster, vm string) string
}

var _ NodeControl = (*Nodes)(nil)

// CutOff makes the node's kubelet fall silent, as its VM failing does.
func (n *Nodes) CutOff(ctx context.Context, c, node string) error {
	return n.Faults.CutOff(ctx, c, node)
}

// Restore makes the node's kubelet report again.
func (n *Nodes) Restore(ctx context.Context, c, node string) error {
	return n.Faults.Restore(ctx, c, node)
}

// SetHost patches the cluster.LabelHCIHost label of the VM's node (a merge patch touches that label
// only).
func (n *Nodes) SetHost(ctx context.Context, c, vm, host string) error {
	cl, ok := n.Client(c)
	if !ok {
		return fmt.Errorf("set host of node %s: cluster %q: %w", vm, c, cluster.ErrNotFound)
	}
	node := vm
	if n.NodeName != nil {
		node = n.NodeName(c, vm)
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

// DrainNode cordons a node and evicts its pods through the Eviction API, as `kubectl drain` does
// (Kubernetes documentation, "Safely Drain a Node": the node is marked unschedulable, then its pods are
// evicted, and evictions honour PodDisruptionBudgets; DaemonSet pods are left, they go with the node),
// and waits until the pods are gone: the simulated kubelet confirms each deletion. A PodDisruptionBudget
// that refuses an eviction is retried every poll until ctx ends; the error then names the pods left.
func DrainNode(ctx context.Context, kc kubernetes.Interface, node string, poll time.Duration) error {
	if err := CordonNode(ctx, kc, node, true); err != nil {
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

// CordonNode cordons (true) or uncordons (false) a node, as kubectl cordon/uncordon do.
func CordonNode(ctx context.Context, kc kubernetes.Interface, node string, on bool) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"unschedulable": on}})
	if err != nil {
		return err
	}
	if _, err := kc.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set node %s unschedulable=%t: %w", node, on, err)
	}
	return nil
}
