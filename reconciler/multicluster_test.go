package reconciler_test

import (
	"context"
	"testing"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestOneReconcilerPerCluster: two workload clusters (two API servers), one reconciler each, in one
// process, fed the same GitRepository and Kustomization -- as the Flux extension runs per cluster.
// Each applies to its own cluster only, and drift in one cluster is corrected by that cluster's
// reconciler.
func TestOneReconcilerPerCluster(t *testing.T) {
	e := newEnv(t) // cluster A: the package's API server
	second := testenv.APIServer(t)
	cb, err := client.New(second, client.Options{})
	e.g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	e.g.Expect(cb.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}})).To(Succeed())
	e.g.Expect(cb.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: e.ns},
		StringData: map[string]string{"username": gitSrv.Username, "password": gitSrv.Password}})).To(Succeed())
	rb, err := reconciler.New(second, reconciler.Options{Cluster: "cluster-b", WorkDir: t.TempDir(), Clock: e.clk})
	e.g.Expect(err).NotTo(HaveOccurred())
	bctx, cancel := context.WithCancel(ctx)
	e.g.Expect(rb.Start(bctx)).To(Succeed())
	t.Cleanup(func() { cancel(); rb.Stop() })

	sha := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"v": "1"})})
	repo, ks := e.gitRepository("repo"), e.kustomization("apps", "apps")
	e.apply(repo, ks)
	e.g.Expect(rb.ApplyGitRepository(repo)).To(Succeed())
	e.g.Expect(rb.ApplyKustomization(ks)).To(Succeed())
	e.waitApplied("apps", sha)
	e.g.Eventually(func() string {
		k, _ := rb.Kustomization(e.ns, "apps")
		return k.Status.LastAppliedRevision
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal("main@sha1:" + sha))

	var inB corev1.ConfigMap
	e.g.Expect(cb.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "a"}, &inB)).To(Succeed())
	inB.Data["v"] = "drifted-in-b"
	e.g.Expect(cb.Update(ctx, &inB)).To(Succeed())
	e.g.Eventually(func() string {
		var got corev1.ConfigMap
		e.g.Expect(cb.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "a"}, &got)).To(Succeed())
		return got.Data["v"]
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal("1"))
	e.g.Eventually(rb.Corrections).WithTimeout(eventually).WithPolling(poll).Should(ContainElement(HaveField("Cluster", "cluster-b")))
	e.waitIdle()
	e.g.Expect(e.r.Corrections()).To(BeEmpty(), "cluster A's reconciler saw nothing to correct")
}
