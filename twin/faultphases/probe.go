package faultphases

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// ErrPhase is wrapped when a phase did not finish within its bound, or the twin did something a fault of
// this kind must not cause (a stranded VM during a failover that needs every node back, a worker node
// leaving Ready or a pod replaced during a live migration). A Wait stops at once on a check error that
// wraps it.
var ErrPhase = errors.New("failover phase failed")

// Probe reads the workload clusters of a running twin.
type Probe struct {
	// Kube holds a client per workload cluster, by name.
	Kube map[string]kubernetes.Interface
	// Namespaces are those whose Deployments and pods are "the apps"; none means every namespace.
	Namespaces []string
}

// NodeReady is a Node's Ready condition status, "" when it has none.
func NodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// IsReady and IsNotReady are node predicates for NodesAre.
func IsReady(n *corev1.Node) bool    { return NodeReady(n) == corev1.ConditionTrue }
func IsNotReady(n *corev1.Node) bool { return NodeReady(n) != corev1.ConditionTrue }

// OffHosts is a node predicate: the node runs on none of the hosts (its hybridtwin.io/hci-host label).
func OffHosts(hosts ...string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		for _, h := range hosts {
			if n.Labels[cluster.LabelHCIHost] == h {
				return false
			}
		}
		return true
	}
}

// ReadyOffHosts is a node predicate: Ready, on none of the hosts.
func ReadyOffHosts(hosts ...string) func(*corev1.Node) bool {
	off := OffHosts(hosts...)
	return func(n *corev1.Node) bool { return IsReady(n) && off(n) }
}

// NodesAre fails naming every worker's node for which ok is false, with its Ready status and host; want
// says what ok means ("NotReady", "Ready on another host").
func (p Probe) NodesAre(ctx context.Context, workers []twin.VMState, ok func(*corev1.Node) bool, want string) error {
	var bad []string
	for _, w := range workers {
		k, found := p.Kube[w.Cluster]
		if !found {
			return fmt.Errorf("%w: no client for cluster %s", ErrPhase, w.Cluster)
		}
		n, err := k.CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !ok(n) {
			ready := NodeReady(n)
			if ready == "" {
				ready = "-"
			}
			bad = append(bad, fmt.Sprintf("%s/%s (Ready=%s on host %s)", w.Cluster, w.Name, ready, n.Labels[cluster.LabelHCIHost]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("nodes not %s: %s", want, strings.Join(bad, ", "))
	}
	return nil
}

// AppsHealthy fails unless every Deployment of the namespaces on every cluster has all its replicas ready
// for its current generation and every live pod (not Succeeded or Failed) is scheduled on a Ready node;
// it names what is missing.
func (p Probe) AppsHealthy(ctx context.Context) error {
	var bad []string
	for _, c := range p.clusters() {
		k := p.Kube[c]
		nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := map[string]bool{}
		for i := range nodes.Items {
			ready[nodes.Items[i].Name] = IsReady(&nodes.Items[i])
		}
		for _, ns := range p.namespaces() {
			deps, err := k.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, d := range deps.Items {
				want := int32(1)
				if d.Spec.Replicas != nil {
					want = *d.Spec.Replicas
				}
				if d.Status.ReadyReplicas < want || d.Status.ObservedGeneration < d.Generation {
					bad = append(bad, fmt.Sprintf("%s: Deployment %s/%s %d/%d ready", c, d.Namespace, d.Name, d.Status.ReadyReplicas, want))
				}
			}
			pods, err := k.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, pod := range pods.Items {
				if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
					continue
				}
				if pod.Spec.NodeName == "" {
					bad = append(bad, fmt.Sprintf("%s: pod %s/%s Pending (unscheduled)", c, pod.Namespace, pod.Name))
				} else if !ready[pod.Spec.NodeName] {
					bad = append(bad, fmt.Sprintf("%s: pod %s/%s on NotReady node %s", c, pod.Namespace, pod.Name, pod.Spec.NodeName))
				}
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return errors.New("apps not healthy: " + strings.Join(bad, "; "))
	}
	return nil
}

// PodUIDs maps every live pod of the namespaces, as cluster/namespace/name, to its UID.
func (p Probe) PodUIDs(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := p.EachPod(ctx, func(c string, pod *corev1.Pod) {
		out[c+"/"+pod.Namespace+"/"+pod.Name] = string(pod.UID)
	})
	return out, err
}

// EachPod calls fn with every live pod (no deletion timestamp) of the namespaces on every cluster, the
// clusters in name order.
func (p Probe) EachPod(ctx context.Context, fn func(cluster string, pod *corev1.Pod)) error {
	for _, c := range p.clusters() {
		for _, ns := range p.namespaces() {
			pods, err := p.Kube[c].CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for i := range pods.Items {
				if pods.Items[i].DeletionTimestamp == nil {
					fn(c, &pods.Items[i])
				}
			}
		}
	}
	return nil
}

func (p Probe) clusters() []string {
	out := make([]string, 0, len(p.Kube))
	for k := range p.Kube {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p Probe) namespaces() []string {
	if len(p.Namespaces) == 0 {
		return []string{metav1.NamespaceAll}
	}
	return p.Namespaces
}

// PodChanges names the pods that disappeared, appeared or changed UID between two PodUIDs, sorted.
func PodChanges(before, after map[string]string) []string {
	var out []string
	for k, uid := range before {
		switch a, ok := after[k]; {
		case !ok:
			out = append(out, k+" gone")
		case a != uid:
			out = append(out, k+" replaced")
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k+" new")
		}
	}
	sort.Strings(out)
	return out
}

// Compliant fails unless the status reports GitOps configurations and every one is Compliant (as ARM
// reports it), naming those that are not.
func Compliant(st *twin.Status) error {
	if len(st.GitOps) == 0 {
		return errors.New("no GitOps configuration reported yet")
	}
	var bad []string
	for _, g := range st.GitOps {
		if g.ComplianceState != "Compliant" {
			bad = append(bad, fmt.Sprintf("%s/%s is %s: %s", g.Cluster, g.Name, g.ComplianceState, g.Message))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not every configuration is Compliant: %s", strings.Join(bad, "; "))
	}
	return nil
}

// HostIs fails unless the status reports host in state, naming what it is instead.
func HostIs(st *twin.Status, host string, state hardware.HostState) error {
	for _, h := range st.Hosts {
		if h.Name == host {
			if h.State != string(state) {
				return fmt.Errorf("host %s is %s, not %s", host, h.State, state)
			}
			return nil
		}
	}
	return fmt.Errorf("host %s is not in the twin's status", host)
}

// Drained fails unless host is in maintenance with no VM left.
func Drained(st *twin.Status, host string) error {
	for _, h := range st.Hosts {
		if h.Name == host && (h.State != string(hardware.HostMaintenance) || len(h.VMs) > 0) {
			return fmt.Errorf("host %s is %s with VMs %v", host, h.State, h.VMs)
		}
	}
	return nil
}

// BusiestHost is the Up host running the most worker VMs, and those VMs; ties go to the first host in
// the status order (the inventory's). It returns "" when no Up host runs a worker VM.
func BusiestHost(st *twin.Status) (string, []twin.VMState) {
	byName := map[string]twin.VMState{}
	for _, v := range st.VMs {
		byName[v.Name] = v
	}
	best, workers := "", []twin.VMState(nil)
	for _, h := range st.Hosts {
		if h.State != string(hardware.HostUp) {
			continue
		}
		var ws []twin.VMState
		for _, v := range h.VMs {
			if byName[v].Role == string(hardware.RoleWorker) {
				ws = append(ws, byName[v])
			}
		}
		if len(ws) > len(workers) {
			best, workers = h.Name, ws
		}
	}
	return best, workers
}

// WorkerNames names VMs as cluster/node.
func WorkerNames(ws []twin.VMState) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Cluster+"/"+w.Name)
	}
	return out
}

// RecordsSince are the bridge's records applied at or after t.
func RecordsSince(st *twin.Status, t time.Time) []twin.BridgeRecord {
	var out []twin.BridgeRecord
	for _, r := range st.Events {
		if !r.At.Before(t) {
			out = append(out, r)
		}
	}
	return out
}
