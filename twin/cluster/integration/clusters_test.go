package integration

import (
	"context"
	"net"
	"testing"

	"github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// TestWorkerVMsAreNodes checks that each worker VM of the spec is a Node with the VM size's capacity and
// the twin's labels, and that the control-plane and load-balancer VMs are not Nodes but count in capacity.
func TestWorkerVMsAreNodes(t *testing.T) {
	_, clusters := sharedClusters(t)
	for _, sc := range clusters {
		t.Run(sc.spec.Name, func(t *testing.T) {
			g := gomega.NewWithT(t)
			ctx := context.Background()
			nodes, err := sc.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(nodes.Items).To(gomega.HaveLen(len(sc.spec.Nodes)))

			byName := map[string]corev1.Node{}
			for _, n := range nodes.Items {
				byName[n.Name] = n
			}
			for _, vm := range append(append([]cluster.VMSpec{}, sc.spec.ControlPlane...), sc.spec.LoadBalancers...) {
				g.Expect(byName).NotTo(gomega.HaveKey(vm.Name), "VM %s is not a worker and must not be a Node", vm.Name)
			}
			for _, want := range sc.spec.Nodes {
				n, ok := byName[want.Name]
				g.Expect(ok).To(gomega.BeTrue(), "worker VM %s has no Node", want.Name)
				g.Expect(n.Labels).To(gomega.HaveKeyWithValue(cluster.LabelHCIHost, want.Host))
				g.Expect(n.Labels).To(gomega.HaveKeyWithValue(cluster.LabelNodePool, want.Pool))
				g.Expect(n.Labels).To(gomega.HaveKeyWithValue(cluster.LabelCluster, sc.spec.Name))
				g.Expect(n.Labels).To(gomega.HaveKeyWithValue(corev1.LabelInstanceTypeStable, want.Size))
				g.Expect(n.Labels).To(gomega.HaveKeyWithValue(corev1.LabelHostname, want.Name))
				g.Expect(n.Labels).To(gomega.HaveKeyWithValue(cluster.LabelAKSArcNodePool, gomega.HavePrefix(sc.spec.Name+"-")))
				g.Expect(n.Labels[cluster.LabelAKSArcNodePool]).To(gomega.HaveSuffix("-" + want.Pool))

				g.Expect(n.Status.Capacity.Cpu().Cmp(*resource.NewQuantity(int64(want.CPU), resource.DecimalSI))).To(gomega.Equal(0), "cpu %s", n.Status.Capacity.Cpu())
				g.Expect(n.Status.Capacity.Memory().Value()).To(gomega.Equal(want.MemoryMiB << 20))
				g.Expect(n.Status.Capacity.Pods().Value()).To(gomega.Equal(int64(want.Pods)))
				g.Expect(n.Status.Addresses).To(gomega.ContainElement(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: want.IP}))
				g.Expect(n.Spec.PodCIDR).NotTo(gomega.BeEmpty(), "the node-ipam controller assigns each node a pod CIDR")
			}

			c := sc.info.Capacity
			g.Expect(c.Nodes).To(gomega.Equal(3))
			g.Expect(c.VMs).To(gomega.Equal(5))
			g.Expect(c.ControlPlane.CPUMilli).To(gomega.Equal(int64(4000)))
			g.Expect(c.LoadBalancers.MemoryMiB).To(gomega.Equal(int64(8192)))
			g.Expect(c.Total.CPUMilli).To(gomega.Equal(c.Workers.CPUMilli + c.ControlPlane.CPUMilli + c.LoadBalancers.CPUMilli))
			g.Expect(sc.info.TimeProfile).To(gomega.Equal(cluster.ProfileFast))
			g.Expect(sc.info.ProfilesVersion).To(gomega.Equal(cluster.ProfilesVersion))
			g.Expect(sc.info.Start.Total).To(gomega.BeNumerically(">", 0))
			t.Logf("cluster %s ready in %s (%v)", sc.spec.Name, sc.info.Start.Total, sc.info.Start.Phases)
		})
	}
}

// TestDeploymentsRunOnVMNodes creates a Deployment in each cluster and sees its pods Running and Ready on
// the VM-nodes, with pod IPs from each node's pod CIDR.
func TestDeploymentsRunOnVMNodes(t *testing.T) {
	_, clusters := sharedClusters(t)
	for _, sc := range clusters {
		t.Run(sc.spec.Name, func(t *testing.T) {
			t.Parallel()
			g := gomega.NewWithT(t)
			ctx := context.Background()
			ns := createNamespace(t, sc.client)
			dep := createDeployment(t, sc.client, ns, "web", 3)

			pods := waitDeploymentReady(t, sc.client, dep, 3)
			nodes := nodesByName(t, sc.client)
			ips := map[string]bool{}
			for _, p := range pods {
				n, ok := nodes[p.Spec.NodeName]
				g.Expect(ok).To(gomega.BeTrue(), "pod %s is on %q, not a VM-node", p.Name, p.Spec.NodeName)
				g.Expect(p.Status.Phase).To(gomega.Equal(corev1.PodRunning))
				g.Expect(p.Status.HostIP).To(gomega.Equal(internalIP(n)))
				_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(cidr.Contains(net.ParseIP(p.Status.PodIP))).To(gomega.BeTrue(), "pod IP %s outside node %s's pod CIDR %s", p.Status.PodIP, n.Name, n.Spec.PodCIDR)
				g.Expect(ips).NotTo(gomega.HaveKey(p.Status.PodIP), "pod IP %s handed out twice", p.Status.PodIP)
				ips[p.Status.PodIP] = true
			}
			// The deployment is complete: the real controllers saw the simulated pods as available.
			g.Eventually(func() int32 {
				d, err := sc.client.AppsV1().Deployments(ns).Get(ctx, dep.Name, metav1.GetOptions{})
				if err != nil {
					return -1
				}
				return d.Status.AvailableReplicas
			}).WithTimeout(settle).WithPolling(poll).Should(gomega.Equal(int32(3)))
		})
	}
}

func createNamespace(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	name := "t-" + randomSuffix()
	_, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func createDeployment(t *testing.T, c kubernetes.Interface, ns, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.k8s.io/pause:3.10",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
				}}},
			},
		},
	}
	out, err := c.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/%s: %v", ns, name, err)
	}
	return out
}

// waitDeploymentReady waits until n pods of the deployment are Running and Ready and not being deleted,
// and returns them.
func waitDeploymentReady(t *testing.T, c kubernetes.Interface, d *appsv1.Deployment, n int) []corev1.Pod {
	t.Helper()
	g := gomega.NewWithT(t)
	var ready []corev1.Pod
	g.Eventually(func() int {
		ready = livePods(t, c, d)
		return len(ready)
	}).WithTimeout(settle).WithPolling(poll).Should(gomega.Equal(n), "ready pods of deployment %s/%s", d.Namespace, d.Name)
	return ready
}

// livePods are the deployment's Ready pods that are not being deleted.
func livePods(t *testing.T, c kubernetes.Interface, d *appsv1.Deployment) []corev1.Pod {
	pods, err := c.CoreV1().Pods(d.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + d.Name})
	if err != nil {
		t.Logf("list pods: %v", err)
		return nil
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			out = append(out, p)
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.Status.Phase == corev1.PodRunning
		}
	}
	return false
}

func nodesByName(t *testing.T, c kubernetes.Interface) map[string]corev1.Node {
	t.Helper()
	nodes, err := c.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	out := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		out[n.Name] = n
	}
	return out
}

func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}
