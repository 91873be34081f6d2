package integration

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
)

// TestKilledAPIServerIsRestarted kills a cluster's kube-apiserver with SIGKILL, as issue 22's `kill -9`
// did: the provider restarts it after the kubelet's back-off (TimeProfile.RestartBackoffInitial), with
// the same flags, certificates and etcd, so the cluster answers again, its node is Ready again, and the
// restart is counted in the cluster's processes. The time to recover is logged (a measurement, not a
// bound).
func TestKilledAPIServerIsRestarted(t *testing.T) {
	g := gomega.NewWithT(t)
	ctx := context.Background()
	p := embedded.New(embedded.Options{Dir: filepath.Join(t.TempDir(), "state")})
	defer func() { _ = p.Close(context.Background()) }()
	spec := smallSpec("crash-" + randomSuffix())
	info, err := p.Create(ctx, spec)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	c, err := clientFor(info.Kubeconfig)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	node := spec.Nodes[0].Name
	g.Eventually(func() corev1.ConditionStatus { return readyStatus(t, c, node) }).WithTimeout(settle).WithPolling(poll).Should(gomega.Equal(corev1.ConditionTrue))

	apiserver := func() cluster.Process {
		infos, err := p.List(ctx)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		for _, i := range infos {
			for _, pr := range i.Processes {
				if i.Name == spec.Name && pr.Component == cluster.KubeAPIServer {
					return pr
				}
			}
		}
		t.Fatalf("cluster %s has no kube-apiserver process", spec.Name)
		return cluster.Process{}
	}
	before := apiserver()
	g.Expect(before.Restarts).To(gomega.Equal(0))
	killed := time.Now()
	g.Expect(syscall.Kill(before.PID, syscall.SIGKILL)).To(gomega.Succeed())

	g.Eventually(func() int { return apiserver().Restarts }).WithTimeout(settle).WithPolling(poll).Should(gomega.Equal(1))
	after := apiserver()
	g.Expect(after.PID).NotTo(gomega.Equal(before.PID))
	g.Eventually(func() error {
		_, err := c.Discovery().ServerVersion()
		return err
	}).WithTimeout(settle).WithPolling(poll).Should(gomega.Succeed())
	answering := time.Since(killed)
	g.Eventually(func() corev1.ConditionStatus { return readyStatus(t, c, node) }).WithTimeout(settle).WithPolling(poll).Should(gomega.Equal(corev1.ConditionTrue))
	t.Logf("kube-apiserver of %s: killed (pid %d), restarted (pid %d) after the %s back-off; answering after %s, node %s Ready after %s",
		spec.Name, before.PID, after.PID, mustProfile(t).RestartBackoffInitial, answering.Round(100*time.Millisecond), node, time.Since(killed).Round(100*time.Millisecond))

	// The other components were not restarted.
	infos, err := p.List(ctx)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	for _, i := range infos {
		for _, pr := range i.Processes {
			if pr.Component != cluster.KubeAPIServer && pr.Restarts != 0 {
				t.Logf("%s restarted %d times while the API server was down", pr.Component, pr.Restarts)
			}
		}
	}
}

func mustProfile(t *testing.T) cluster.TimeProfile {
	p, err := cluster.Profile(cluster.ProfileFast)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
