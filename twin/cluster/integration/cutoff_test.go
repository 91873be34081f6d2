package integration

import (
	"context"
	"errors"
	"testing"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// TestNodeCutOff cuts a VM-node off in each cluster and follows the real node-lifecycle controller:
// the node goes Unknown, is tainted unreachable:NoExecute, its pods are evicted and rescheduled on the
// other VM-nodes, and the evicted pods stay Terminating because no kubelet confirms them. Then:
//
//   - in the first cluster the node is restored: its kubelet confirms the evicted pods' deletion and
//     the node turns Ready and untainted;
//   - in the second the node is marked out of service first: the real pod garbage collector deletes
//     the Terminating pods while the node is still down; then it is restored.
func TestNodeCutOff(t *testing.T) {
	p, clusters := sharedClusters(t)
	if len(clusters) < 2 {
		t.Fatalf("the example has %d clusters, the test needs 2", len(clusters))
	}
	cases := []struct {
		name         string
		sc           sharedCluster
		outOfService bool
	}{
		{"restore confirms the evicted pods", clusters[0], false},
		{"out-of-service lets the pod GC delete them", clusters[1], true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := gomega.NewWithT(t)
			ctx := context.Background()
			c := tc.sc.client
			ns := createNamespace(t, c)
			dep := createDeployment(t, c, ns, "api", 3)
			pods := waitDeploymentReady(t, c, dep, 3)

			victim := pods[0].Spec.NodeName
			var evicted []string
			for _, pod := range pods {
				if pod.Spec.NodeName == victim {
					evicted = append(evicted, pod.Name)
				}
			}
			t.Logf("cluster %s: cutting off node %s with pods %v", tc.sc.spec.Name, victim, evicted)
			g.Expect(p.CutOff(ctx, tc.sc.spec.Name, victim)).To(gomega.Succeed())

			// The real node-lifecycle controller notices the silent lease...
			g.Eventually(func() corev1.ConditionStatus { return readyStatus(t, c, victim) }).
				WithTimeout(eviction).WithPolling(poll).Should(gomega.Equal(corev1.ConditionUnknown))
			g.Eventually(func() []corev1.Taint { return nodeTaints(t, c, victim) }).WithTimeout(eviction).WithPolling(poll).
				Should(gomega.ContainElement(gomega.And(
					gomega.HaveField("Key", corev1.TaintNodeUnreachable),
					gomega.HaveField("Effect", corev1.TaintEffectNoExecute))))
			// ...evicts the pods after their 10 s toleration...
			for _, name := range evicted {
				g.Eventually(func() *metav1.Time { return deletionTimestamp(t, c, ns, name) }).
					WithTimeout(eviction).WithPolling(poll).ShouldNot(gomega.BeNil(), "pod %s not evicted", name)
			}
			// ...and the ReplicaSet's replacements run on the other VM-nodes.
			g.Eventually(func() []string {
				var on []string
				for _, pod := range livePods(t, c, dep) {
					on = append(on, pod.Spec.NodeName)
				}
				return on
			}).WithTimeout(eviction).WithPolling(poll).Should(gomega.And(gomega.HaveLen(3), gomega.Not(gomega.ContainElement(victim))))
			// Nobody confirms the evicted pods' end while the node is down: they are still Terminating.
			for _, name := range evicted {
				g.Expect(deletionTimestamp(t, c, ns, name)).NotTo(gomega.BeNil(), "evicted pod %s vanished without a kubelet or pod GC", name)
			}

			if tc.outOfService {
				g.Expect(p.MarkOutOfService(ctx, tc.sc.spec.Name, victim)).To(gomega.Succeed())
				for _, name := range evicted {
					g.Eventually(func() bool { return podGone(t, c, ns, name) }).WithTimeout(eviction).WithPolling(poll).
						Should(gomega.BeTrue(), "the pod GC did not delete %s from the out-of-service node", name)
				}
				g.Expect(readyStatus(t, c, victim)).To(gomega.Equal(corev1.ConditionUnknown), "the node must still be down")
			}

			g.Expect(p.Restore(ctx, tc.sc.spec.Name, victim)).To(gomega.Succeed())
			g.Eventually(func() corev1.ConditionStatus { return readyStatus(t, c, victim) }).
				WithTimeout(settle).WithPolling(poll).Should(gomega.Equal(corev1.ConditionTrue))
			for _, name := range evicted {
				g.Eventually(func() bool { return podGone(t, c, ns, name) }).WithTimeout(settle).WithPolling(poll).
					Should(gomega.BeTrue(), "the restored kubelet did not confirm the deletion of %s", name)
			}
			g.Eventually(func() []corev1.Taint { return nodeTaints(t, c, victim) }).WithTimeout(settle).WithPolling(poll).
				ShouldNot(gomega.ContainElement(gomega.HaveField("Key", gomega.BeElementOf(
					corev1.TaintNodeUnreachable, corev1.TaintNodeNotReady, corev1.TaintNodeOutOfService))))

			// The restored node runs pods again.
			pinned := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "pinned", Namespace: ns},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{corev1.LabelHostname: victim},
					Containers:   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
				},
			}
			_, err := c.CoreV1().Pods(ns).Create(ctx, pinned, metav1.CreateOptions{})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Eventually(func() bool {
				got, err := c.CoreV1().Pods(ns).Get(ctx, pinned.Name, metav1.GetOptions{})
				return err == nil && podReady(got) && got.Spec.NodeName == victim
			}).WithTimeout(settle).WithPolling(poll).Should(gomega.BeTrue(), "a pod pinned to the restored node %s did not run", victim)
		})
	}
}

func TestNodeFaultsReportUnknownNamesAndMisuse(t *testing.T) {
	p, clusters := sharedClusters(t)
	ctx := context.Background()
	name := clusters[0].spec.Name
	tests := []struct {
		name string
		err  error
	}{
		{"unknown cluster", p.CutOff(ctx, "no-such-cluster", "moc-x")},
		{"unknown node", p.CutOff(ctx, name, "no-such-node")},
		{"restore unknown node", p.Restore(ctx, name, "no-such-node")},
		{"out of service unknown node", p.MarkOutOfService(ctx, name, "no-such-node")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !errors.Is(tc.err, cluster.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", tc.err)
			}
		})
	}
	// The out-of-service taint is for a node that is down; on a live node it is refused.
	if err := p.MarkOutOfService(ctx, name, clusters[0].spec.Nodes[0].Name); err == nil {
		t.Fatal("MarkOutOfService on a running node was accepted")
	}
}

func readyStatus(t *testing.T, c kubernetes.Interface, node string) corev1.ConditionStatus {
	n, err := c.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Logf("get node %s: %v", node, err)
		return ""
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status
		}
	}
	return ""
}

func nodeTaints(t *testing.T, c kubernetes.Interface, node string) []corev1.Taint {
	n, err := c.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Logf("get node %s: %v", node, err)
		return nil
	}
	return n.Spec.Taints
}

func deletionTimestamp(t *testing.T, c kubernetes.Interface, ns, name string) *metav1.Time {
	p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Logf("get pod %s: %v", name, err)
		return nil
	}
	return p.DeletionTimestamp
}

func podGone(t *testing.T, c kubernetes.Interface, ns, name string) bool {
	_, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Logf("get pod %s: %v", name, err)
	}
	return apierrors.IsNotFound(err)
}
