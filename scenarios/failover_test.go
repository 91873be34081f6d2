package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// appNamespaces are the namespaces whose workloads "the apps" are: the cluster-wide layer's ingress
// controller and the applications (examples/repos: dir-per-env).
var appNamespaces = []string{"ingress-system", "apps"}

// failoverSpecs: HCI host faults under the twin.
func failoverSpecs() {
	Describe("failover", Label("failover"), func() {
		It("restarts a crashed host's VMs elsewhere with the reserve met: nodes return, pods run, apps healthy again", func(ctx SpecContext) {
			exp := Experiment("failover: host crash")
			st, err := env.Twin.Status(ctx)
			Expect(err).NotTo(HaveOccurred())
			victim, workers := busiestHost(st)
			Expect(workers).NotTo(BeEmpty(), "no host runs a worker VM")
			start := time.Now()
			tl := NewTimeline(start)
			_, err = env.Twin.FailHost(ctx, victim)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx context.Context) { repairAndWait(ctx, victim) })
			tl.Add(start, "host down", victim)

			Eventually(func(ctx context.Context) error {
				return nodesAre(ctx, workers, func(n *corev1.Node) bool { return nodeReady(n) != string(corev1.ConditionTrue) }, "NotReady")
			}).WithContext(ctx).WithTimeout(env.Waits.NodeNotReady).WithPolling(env.Waits.Poll).Should(Succeed())
			tl.Add(time.Now(), "nodes NotReady", strings.Join(workerNames(workers), ", "))
			recordTiming(exp, "host down to nodes NotReady", time.Since(start))

			Eventually(func(ctx context.Context) error {
				return nodesAre(ctx, workers, func(n *corev1.Node) bool {
					return nodeReady(n) == string(corev1.ConditionTrue) && n.Labels[cluster.LabelHCIHost] != victim
				}, "Ready on another host")
			}).WithContext(ctx).WithTimeout(env.Waits.NodeBack).WithPolling(env.Waits.Poll).Should(Succeed())
			tl.Add(time.Now(), "nodes Ready", "on surviving hosts")
			recordTiming(exp, "host down to nodes Ready elsewhere", time.Since(start))

			Eventually(appsHealthy).WithContext(ctx).WithTimeout(env.Waits.Healthy).WithPolling(env.Waits.Poll).Should(Succeed())
			tl.Add(time.Now(), "pods rescheduled", "every app replica Ready on a Ready node")
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			healthy := time.Since(start)
			tl.Add(time.Now(), "healthy", "every configuration Compliant")
			recordTiming(exp, "time to healthy", healthy)

			// The hardware side, from the bridge's records: which VM went where.
			st, err = env.Twin.Status(ctx)
			Expect(err).NotTo(HaveOccurred())
			var moves []string
			for _, r := range recordsSince(st, start) {
				switch r.Event.Type {
				case hardware.VMRestarted:
					tl.Add(r.At, "vm restarted", r.Event.VM+" on "+r.Event.Host)
					moves = append(moves, r.Event.VM+" -> "+r.Event.Host)
				case hardware.VMStranded:
					tl.Add(r.At, "pods Pending", r.Event.VM+" stranded: "+r.Event.Reason)
				}
			}
			Expect(moves).NotTo(BeEmpty(), "the bridge recorded no VM restart after %s crashed", victim)
			Note("Host %s crashed with %d worker VM(s); failover clustering restarted %s; apps healthy and every configuration Compliant after %s.",
				victim, len(workers), strings.Join(moves, ", "), healthy.Round(100*time.Millisecond))
		})

		It("drains a host for planned maintenance by live migration without disrupting a pod", func(ctx SpecContext) {
			exp := Experiment("failover: planned drain")
			st, err := env.Twin.Status(ctx)
			Expect(err).NotTo(HaveOccurred())
			host, workers := busiestHost(st)
			Expect(workers).NotTo(BeEmpty())
			before, err := podUIDs(ctx)
			Expect(err).NotTo(HaveOccurred())
			start := time.Now()
			tl := NewTimeline(start)
			_, err = env.Twin.DrainHost(ctx, host)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx context.Context) { repairAndWait(ctx, host) })
			tl.Add(start, "drain started", host)
			var disruptions []string
			Eventually(func(ctx context.Context) error {
				// Every poll while the VMs move: no worker node leaves Ready.
				if err := nodesAre(ctx, workers, func(n *corev1.Node) bool { return nodeReady(n) == string(corev1.ConditionTrue) }, "Ready"); err != nil {
					disruptions = append(disruptions, fmt.Sprintf("%.1fs: %v", time.Since(start).Seconds(), err))
				}
				st, err := env.Twin.Status(ctx)
				if err != nil {
					return err
				}
				for _, h := range st.Hosts {
					if h.Name == host && (h.State != string(hardware.HostMaintenance) || len(h.VMs) > 0) {
						return fmt.Errorf("host %s is %s with VMs %v", host, h.State, h.VMs)
					}
				}
				return nil
			}).WithContext(ctx).WithTimeout(env.Waits.Migration).WithPolling(env.Waits.Poll).Should(Succeed())
			tl.Add(time.Now(), "drain finished", host+" in maintenance")
			recordTiming(exp, "drain to maintenance", time.Since(start))
			Expect(disruptions).To(BeEmpty(), "worker nodes left Ready during a live-migration drain")
			Eventually(func(ctx context.Context) error {
				return nodesAre(ctx, workers, func(n *corev1.Node) bool { return n.Labels[cluster.LabelHCIHost] != host }, "relabelled off "+host)
			}).WithContext(ctx).WithTimeout(env.Waits.NodeBack).WithPolling(env.Waits.Poll).Should(Succeed())
			after, err := podUIDs(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(after).To(Equal(before), "pods were replaced during a live-migration drain (no pod may be disrupted)")
			st, err = env.Twin.Status(ctx)
			Expect(err).NotTo(HaveOccurred())
			var moved []string
			for _, r := range recordsSince(st, start) {
				if r.Event.Type == hardware.VMMigrated {
					tl.Add(r.At, "vm migrated", fmt.Sprintf("%s %s->%s (blackout %s)", r.Event.VM, r.Event.From, r.Event.To, r.Event.Blackout))
					moved = append(moved, r.Event.VM)
				}
			}
			Expect(moved).NotTo(BeEmpty(), "the bridge recorded no live migration off %s", host)
			Note("Host %s drained: %d VM(s) live-migrated (%s); %d pods kept their identity, worker nodes stayed Ready.",
				host, len(moved), strings.Join(moved, ", "), len(before))
		})
	})
}

// busiestHost is the Up host running the most worker VMs, and those VMs.
func busiestHost(st *twin.Status) (string, []twin.VMState) {
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

func workerNames(ws []twin.VMState) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Cluster+"/"+w.Name)
	}
	return out
}

// nodesAre fails naming every worker's node for which ok is false.
func nodesAre(ctx context.Context, workers []twin.VMState, ok func(*corev1.Node) bool, want string) error {
	var bad []string
	for _, w := range workers {
		n, err := env.Kube[w.Cluster].CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !ok(n) {
			bad = append(bad, fmt.Sprintf("%s/%s (Ready=%s on host %s)", w.Cluster, w.Name, nodeReady(n), n.Labels[cluster.LabelHCIHost]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("nodes not %s: %s", want, strings.Join(bad, ", "))
	}
	return nil
}

// appsHealthy fails unless every Deployment of the app namespaces on every cluster has all its replicas
// Ready, each pod on a Ready node; it names what is missing.
func appsHealthy(ctx context.Context) error {
	var bad []string
	for _, c := range env.Twin.Spec().ClusterNames() {
		k := env.Kube[c]
		nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := map[string]bool{}
		for i := range nodes.Items {
			ready[nodes.Items[i].Name] = nodeReady(&nodes.Items[i]) == string(corev1.ConditionTrue)
		}
		for _, ns := range appNamespaces {
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
					bad = append(bad, fmt.Sprintf("%s: Deployment %s/%s %d/%d ready", c, ns, d.Name, d.Status.ReadyReplicas, want))
				}
			}
			pods, err := k.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				if p.Spec.NodeName == "" {
					bad = append(bad, fmt.Sprintf("%s: pod %s/%s Pending (unscheduled)", c, ns, p.Name))
				} else if !ready[p.Spec.NodeName] {
					bad = append(bad, fmt.Sprintf("%s: pod %s/%s on NotReady node %s", c, ns, p.Name, p.Spec.NodeName))
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

// podUIDs maps every live pod of the app namespaces to its UID.
func podUIDs(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range env.Twin.Spec().ClusterNames() {
		for _, ns := range appNamespaces {
			pods, err := env.Kube[c].CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil {
					out[c+"/"+ns+"/"+p.Name] = string(p.UID)
				}
			}
		}
	}
	return out, nil
}

// recordsSince are the bridge's records applied at or after t.
func recordsSince(st *twin.Status, t time.Time) []twin.BridgeRecord {
	var out []twin.BridgeRecord
	for _, r := range st.Events {
		if !r.At.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// repairAndWait brings a host back and waits until it is Up and the apps are healthy, for the next spec.
func repairAndWait(ctx context.Context, host string) {
	_, err := env.Twin.RepairHost(ctx, host)
	Expect(err).NotTo(HaveOccurred(), "repair host %s", host)
	Eventually(func(ctx context.Context) (string, error) {
		st, err := env.Twin.Status(ctx)
		if err != nil {
			return "", err
		}
		for _, h := range st.Hosts {
			if h.Name == host {
				return h.State, nil
			}
		}
		return "missing", nil
	}).WithContext(ctx).WithTimeout(env.Waits.NodeBack).WithPolling(env.Waits.Poll).Should(Equal(string(hardware.HostUp)))
	Eventually(appsHealthy).WithContext(ctx).WithTimeout(env.Waits.Healthy).WithPolling(env.Waits.Poll).Should(Succeed())
}
