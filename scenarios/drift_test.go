package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// editManager is the field manager `kubectl edit` writes with, so the twin sees the same managedFields a
// hand edit leaves.
const editManager = "kubectl-edit"

// driftSpecs: hand edits of objects the reconciler manages, on the first cluster.
func driftSpecs() {
	Describe("drift", Label("drift"), func() {
		var cl string
		BeforeEach(func() { cl = env.Twin.Spec().ClusterNames()[0] })

		patch := func(ctx context.Context, kind, ns, name, body string) {
			var err error
			opts := metav1.PatchOptions{FieldManager: editManager}
			k := env.Kube[cl]
			switch kind {
			case "Deployment":
				_, err = k.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(body), opts)
			case "Service":
				_, err = k.CoreV1().Services(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(body), opts)
			}
			Expect(err).NotTo(HaveOccurred(), "edit %s %s/%s on %s by hand", kind, ns, name, cl)
		}

		It("puts a managed Deployment's replicas back after kubectl edits them", func(ctx SpecContext) {
			exp := Experiment("drift: replicas")
			ns, name := "ingress-system", "ingress-controller"
			dep, err := env.Deployment(ctx, cl, ns, name)
			Expect(err).NotTo(HaveOccurred())
			want := *dep.Spec.Replicas
			edited := want + 3
			start := time.Now()
			patch(ctx, "Deployment", ns, name, fmt.Sprintf(`{"spec":{"replicas":%d}}`, edited))
			Eventually(func(ctx context.Context) error {
				d, err := env.Deployment(ctx, cl, ns, name)
				if err != nil {
					return err
				}
				if got := *d.Spec.Replicas; got != want {
					return fmt.Errorf("Deployment %s/%s on %s: replicas still %d (Git says %d) %s after the hand edit; the reconciler did not correct the drift",
						ns, name, cl, got, want, time.Since(start).Round(time.Second))
				}
				return nil
			}).WithContext(ctx).WithTimeout(env.Waits.Drift).WithPolling(env.Waits.Poll / 5).Should(Succeed())
			recordTiming(exp, "time to correction (replicas)", time.Since(start))
		})

		It("puts a managed Deployment's image back after kubectl edits it", func(ctx SpecContext) {
			exp := Experiment("drift: image")
			ns, name := "apps", "podinfo"
			dep, err := env.Deployment(ctx, cl, ns, name)
			Expect(err).NotTo(HaveOccurred())
			want := dep.Spec.Template.Spec.Containers[0].Image
			c := dep.Spec.Template.Spec.Containers[0].Name
			start := time.Now()
			patch(ctx, "Deployment", ns, name, fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":"%s-hotfix"}]}}}}`, c, want))
			Eventually(func(ctx context.Context) error {
				d, err := env.Deployment(ctx, cl, ns, name)
				if err != nil {
					return err
				}
				if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
					return fmt.Errorf("Deployment %s/%s on %s: image still %s (Git says %s) %s after the hand edit; the reconciler did not correct the drift",
						ns, name, cl, got, want, time.Since(start).Round(time.Second))
				}
				return nil
			}).WithContext(ctx).WithTimeout(env.Waits.Drift).WithPolling(env.Waits.Poll / 5).Should(Succeed())
			recordTiming(exp, "time to correction (image)", time.Since(start))
		})

		It("recreates a managed Service deleted by hand", func(ctx SpecContext) {
			exp := Experiment("drift: deleted Service")
			ns, name := "apps", "podinfo"
			svcs := env.Kube[cl].CoreV1().Services(ns)
			old, err := svcs.Get(ctx, name, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			start := time.Now()
			Expect(svcs.Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed(), "kubectl delete service %s/%s on %s", ns, name, cl)
			Eventually(func(ctx context.Context) error {
				s, err := svcs.Get(ctx, name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					return fmt.Errorf("Service %s/%s on %s still missing %s after kubectl delete; the reconciler did not recreate it",
						ns, name, cl, time.Since(start).Round(time.Second))
				case err != nil:
					return err
				case s.UID == old.UID:
					return fmt.Errorf("Service %s/%s on %s: the deleted object (uid %s) is still there", ns, name, cl, old.UID)
				}
				return nil
			}).WithContext(ctx).WithTimeout(env.Waits.Drift).WithPolling(env.Waits.Poll / 5).Should(Succeed())
			recordTiming(exp, "time to correction (deleted Service)", time.Since(start))
		})

		It("keeps a label added by hand (a field the reconciler does not own), also across a correction", func(ctx SpecContext) {
			ns, name := "apps", "orders"
			key, val := "ops.example.com/on-call", "team-blue"
			patch(ctx, "Deployment", ns, name, fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, val))
			dep, err := env.Deployment(ctx, cl, ns, name)
			Expect(err).NotTo(HaveOccurred())
			want := dep.Spec.Template.Spec.Containers[0].Image
			// Force a correction of the same object, then check the label survived it.
			patch(ctx, "Deployment", ns, name, fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":"%s-hotfix"}]}}}}`,
				dep.Spec.Template.Spec.Containers[0].Name, want))
			Eventually(func(ctx context.Context) (string, error) {
				d, err := env.Deployment(ctx, cl, ns, name)
				if err != nil {
					return "", err
				}
				return d.Spec.Template.Spec.Containers[0].Image, nil
			}).WithContext(ctx).WithTimeout(env.Waits.Drift).WithPolling(env.Waits.Poll/5).Should(Equal(want),
				"Deployment %s/%s on %s: the image edit was not corrected", ns, name, cl)
			Consistently(func(ctx context.Context) map[string]string {
				d, err := env.Deployment(ctx, cl, ns, name)
				if err != nil {
					return map[string]string{"error": err.Error()}
				}
				return d.Labels
			}).WithContext(ctx).WithTimeout(env.Waits.Hold).WithPolling(env.Waits.Poll).Should(HaveKeyWithValue(key, val),
				"the hand-added label %s=%s was removed; Flux's server-side apply keeps fields owned by other managers", key, val)
			d, err := env.Deployment(ctx, cl, ns, name)
			Expect(err).NotTo(HaveOccurred())
			var owners []string
			for _, mf := range d.ManagedFields {
				if mf.FieldsV1 != nil && strings.Contains(mf.FieldsV1.GetRawString(), `"f:`+key+`"`) {
					owners = append(owners, mf.Manager)
				}
			}
			Expect(owners).To(ConsistOf(editManager), "the hand-added label is owned by %s only", editManager)
			Note("A label added by hand (%s=%s on Deployment %s/%s) stays: the twin, like Flux, server-side applies only the fields in Git; "+
				"fields owned by another manager (here %q) are left alone, also when the reconciler corrects drift on the same object. "+
				"Remove such fields by hand, or declare them in Git to take them over.", key, val, ns, name, editManager)
		})

		It("leaves a field Git does not set alone (the HPA-owned replicas of an app)", func(ctx SpecContext) {
			ns, name := "apps", "podinfo"
			hpa, err := env.Kube[cl].AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			dep, err := env.Deployment(ctx, cl, ns, name)
			Expect(err).NotTo(HaveOccurred())
			// A count inside the HPA's bounds, different from now: neither the reconciler nor the HPA has a reason to change it.
			edited := *dep.Spec.Replicas + 1
			if edited > hpa.Spec.MaxReplicas {
				edited = *dep.Spec.Replicas - 1
			}
			patch(ctx, "Deployment", ns, name, fmt.Sprintf(`{"spec":{"replicas":%d}}`, edited))
			Consistently(func(ctx context.Context) (int32, error) {
				d, err := env.Deployment(ctx, cl, ns, name)
				if err != nil {
					return 0, err
				}
				return *d.Spec.Replicas, nil
			}).WithContext(ctx).WithTimeout(env.Waits.Hold).WithPolling(env.Waits.Poll).Should(Equal(edited),
				"Deployment %s/%s on %s: replicas are not in Git (the HPA owns them), yet something reverted the hand edit", ns, name, cl)
			Note("Deployment %s/%s sets no replicas in Git (its HorizontalPodAutoscaler owns the count, %d..%d): a hand edit to %d stays for %s; the reconciler does not touch fields it does not own.",
				ns, name, *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, edited, env.Waits.Hold)
		})

		It("reports a namespace-scoped configuration that touches another namespace as Non-Compliant", func(ctx SpecContext) {
			cfg, nsCfg := namespacedConfig(cl)
			Expect(cfg).NotTo(BeEmpty(), "the twin has no namespace-scoped configuration on %s", cl)
			exp := Experiment("drift: cross-namespace")
			dir := env.WorkingCopy()
			intruder := fmt.Sprintf("intruder-%d", GinkgoRandomSeed()%100000)
			path := appPathOf(cfg)
			writeFile(dir, path+"/intruder.yaml", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: ingress-system\ndata:\n  owner: apps-team\n", intruder))
			appendResource(dir, path+"/kustomization.yaml", "intruder.yaml")
			start := time.Now()
			commit := env.Push(ctx, "main", dir, "apps: a ConfigMap in ingress-system (outside the configuration's namespace "+nsCfg+")")
			seed := env.WorkingCopy()
			DeferCleanup(func(ctx context.Context) {
				// Back to the seed content, and converged, for the specs after this one.
				env.Push(ctx, "main", seed, "Revert the cross-namespace ConfigMap")
				Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			})
			var last string
			Eventually(func(ctx context.Context) error {
				g, err := env.GitOps(ctx, cl, cfg)
				if err != nil {
					return err
				}
				last = g.Message
				if g.ComplianceState != "Non-Compliant" || !strings.Contains(g.SyncedCommit, commit) {
					return fmt.Errorf("configuration %s on %s is %s at %q, want Non-Compliant at %.12s: %s", cfg, cl, g.ComplianceState, g.SyncedCommit, commit, g.Message)
				}
				return nil
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			recordTiming(exp, "push to Non-Compliant", time.Since(start))
			Expect(last).To(ContainSubstring("ingress-system"), "the Non-Compliant message names the namespace it may not touch")
			_, err := env.Kube[cl].CoreV1().ConfigMaps("ingress-system").Get(ctx, intruder, metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "ConfigMap ingress-system/%s was created by a configuration scoped to %s", intruder, nsCfg)
			Note("Configuration %s (scope namespace, %s) asked to create ConfigMap ingress-system/%s: refused, reported Non-Compliant through ARM: %s", cfg, nsCfg, intruder, last)
		})
	})
}

// namespacedConfig returns the first namespace-scoped configuration targeting cluster, and its namespace.
func namespacedConfig(clusterName string) (string, string) {
	s := env.Twin.Spec()
	for _, g := range s.Spec.GitOps {
		if g.Scope != "namespace" {
			continue
		}
		for _, c := range s.TargetsOf(g) {
			if c == clusterName {
				return g.Name, g.Namespace
			}
		}
	}
	return "", ""
}

// appPathOf is the path (without ./) of a configuration's first kustomization, in sorted name order.
func appPathOf(cfg string) string {
	for _, g := range env.Twin.Spec().Spec.GitOps {
		if g.Name != cfg {
			continue
		}
		names := make([]string, 0, len(g.Kustomizations))
		for n := range g.Kustomizations {
			names = append(names, n)
		}
		if len(names) == 0 {
			break
		}
		sortStrings(names)
		return strings.TrimPrefix(g.Kustomizations[names[0]].Path, "./")
	}
	Fail("configuration " + cfg + " has no kustomization")
	return ""
}
