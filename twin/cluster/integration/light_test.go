package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
)

// lightSpec is a small light-tier cluster: two worker VMs.
func lightSpec(name string) cluster.Spec {
	s := cluster.Spec{Name: name, Tier: cluster.TierLight, TimeProfile: cluster.ProfileFast}
	for i := 1; i <= 2; i++ {
		s.Nodes = append(s.Nodes, cluster.NodeSpec{Name: fmt.Sprintf("%s-w%d", name, i), Pool: "linuxpool",
			Host: fmt.Sprintf("hci-%d", i), Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192})
	}
	return s
}

// layout is the same small application applied to every cluster, as one repository drives a fleet: a
// namespace, a ConfigMap naming the cluster and a Deployment of two replicas.
func applyLayout(ctx context.Context, c kubernetes.Interface, clusterName string) error {
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "site", Namespace: "shop"}, Data: map[string]string{"cluster": clusterName}}
	if _, err := c.CoreV1().ConfigMaps("shop").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return err
	}
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1"}}},
			},
		},
	}
	_, err := c.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{})
	return err
}

// TestLightClustersShareOneEtcdAndAreIsolated starts two light clusters: they share one etcd process,
// each converges the same layout on its own nodes, sees only its own objects, and deleting one leaves
// the other whole; a light cluster recreated under a deleted one's name starts empty, and the shared
// etcd stops with the last light cluster.
func TestLightClustersShareOneEtcdAndAreIsolated(t *testing.T) {
	g := gomega.NewWithT(t)
	ctx := context.Background()
	p := embedded.New(embedded.Options{})
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	suffix := randomSuffix()
	names := []string{"light-a-" + suffix, "light-b-" + suffix}
	infos := make([]cluster.Info, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); infos[i], errs[i] = p.Create(ctx, lightSpec(n)) }()
	}
	wg.Wait()
	for _, err := range errs {
		g.Expect(err).NotTo(gomega.HaveOccurred())
	}

	// One etcd, listed by both as shared.
	etcdOf := func(in cluster.Info) cluster.Process {
		for _, pr := range in.Processes {
			if pr.Component == cluster.Etcd {
				return pr
			}
		}
		t.Fatalf("cluster %s lists no etcd: %+v", in.Name, in.Processes)
		return cluster.Process{}
	}
	e0, e1 := etcdOf(infos[0]), etcdOf(infos[1])
	g.Expect(e0.Shared).To(gomega.BeTrue())
	g.Expect(e0.PID).To(gomega.Equal(e1.PID), "both light clusters use one etcd process")

	clients := make([]kubernetes.Interface, len(infos))
	for i, in := range infos {
		c, err := clientFor(in.Kubeconfig)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		clients[i] = c
		g.Expect(applyLayout(ctx, c, in.Name)).To(gomega.Succeed())
	}

	for i, c := range clients {
		// Converged: both replicas Running on this cluster's own nodes.
		g.Eventually(func() (int32, error) {
			d, err := c.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return 0, err
			}
			return d.Status.ReadyReplicas, nil
		}).WithTimeout(settle).WithPolling(poll).Should(gomega.Equal(int32(2)), "cluster %s", names[i])
		pods, err := c.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(pods.Items).To(gomega.HaveLen(2))
		for _, pod := range pods.Items {
			g.Expect(pod.Spec.NodeName).To(gomega.HavePrefix(names[i]+"-w"), "a pod of %s is on another cluster's node", names[i])
		}
		// Isolated: the ConfigMap of the same name holds this cluster's data; nodes are its own.
		cm, err := c.CoreV1().ConfigMaps("shop").Get(ctx, "site", metav1.GetOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(cm.Data).To(gomega.HaveKeyWithValue("cluster", names[i]))
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(nodes.Items).To(gomega.HaveLen(2))
		for _, n := range nodes.Items {
			g.Expect(n.Name).To(gomega.HavePrefix(names[i] + "-w"))
		}
	}
	// An object made in one only is not in the other.
	only := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-a", Namespace: "shop"}}
	_, err := clients[0].CoreV1().ConfigMaps("shop").Create(ctx, only, metav1.CreateOptions{})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	_, err = clients[1].CoreV1().ConfigMaps("shop").Get(ctx, "only-in-a", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "light-b sees light-a's ConfigMap: %v", err)

	// Deleting one leaves the other whole, and the shared etcd running.
	g.Expect(p.Delete(ctx, names[0])).To(gomega.Succeed())
	g.Consistently(func() (int32, error) {
		d, err := clients[1].AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		return d.Status.ReadyReplicas, nil
	}).WithTimeout(3 * time.Second).WithPolling(poll).Should(gomega.Equal(int32(2)))

	// Recreated under the same name, a light cluster starts empty: its prefix went with it.
	again, err := p.Create(ctx, lightSpec(names[0]))
	g.Expect(err).NotTo(gomega.HaveOccurred())
	c0, err := clientFor(again.Kubeconfig)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	_, err = c0.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "a recreated light cluster still has the deleted one's namespace: %v", err)
	g.Expect(etcdOf(again).PID).To(gomega.Equal(e0.PID), "the shared etcd kept running while a light cluster remained")

	// The shared etcd stops with the last light cluster.
	g.Expect(p.Delete(ctx, names[0])).To(gomega.Succeed())
	g.Expect(p.Delete(ctx, names[1])).To(gomega.Succeed())
	expectNothingLeft(t, []cluster.Process{e0}, e0.Ports)
}
