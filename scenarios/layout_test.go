package scenarios

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// layoutSpecs: the twin's repository layout converges. The default twin runs the directory-per-environment
// layout; what each environment deploys is read from the cluster, not assumed.
func layoutSpecs() {
	Describe("layout", Label("layout"), func() {
		It("converges the dir-per-env layout on every cluster: each configuration Compliant at main's head, its objects applied", func(ctx SpecContext) {
			head, err := env.Git.BranchCommit(ctx, env.Repo, "main")
			Expect(err).NotTo(HaveOccurred())
			Eventually(func(ctx context.Context) error {
				st, err := env.Twin.Status(ctx)
				if err != nil {
					return err
				}
				for _, g := range st.GitOps {
					if g.ComplianceState != "Compliant" || !strings.Contains(g.SyncedCommit, head) {
						return fmt.Errorf("configuration %s on %s is %s at %q, want Compliant at main's head %.12s: %s",
							g.Name, g.Cluster, g.ComplianceState, g.SyncedCommit, head, g.Message)
					}
				}
				return nil
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			for _, c := range env.Twin.Spec().ClusterNames() {
				for _, ns := range []string{"apps", "ingress-system"} {
					_, err := env.Kube[c].CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
					Expect(err).NotTo(HaveOccurred(), "cluster %s: namespace %s of the cluster-wide layer", c, ns)
				}
				for _, d := range [][2]string{{"ingress-system", "ingress-controller"}, {"apps", "podinfo"}, {"apps", "orders"}} {
					dep, err := env.Deployment(ctx, c, d[0], d[1])
					Expect(err).NotTo(HaveOccurred(), "cluster %s: Deployment %s/%s", c, d[0], d[1])
					Expect(dep.Labels).To(HaveKeyWithValue("environment", c), "cluster %s gets the %s overlay", c, c)
					Expect(dep.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/name", Not(BeEmpty())),
						"Deployment %s/%s on %s carries Flux's owner labels", d[0], d[1], c)
				}
			}
			Note("main at %.12s: every configuration Compliant; namespaces, the ingress controller and both apps applied with their environment's overlay on %v", head, env.Twin.Spec().ClusterNames())
		})
	})
}
