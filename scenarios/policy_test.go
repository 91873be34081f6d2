package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/internal/admission"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// The admission-policy layer the scenario delivers by GitOps: examples/policies, copied into the
// layout's cluster-wide base (examples/repos/dir-per-env: infrastructure/base), so the cluster-scoped
// configuration of every environment applies it.
const (
	policySource     = "../examples/policies"
	policyLayerDir   = "infrastructure/base/policies"
	policyBaseKust   = "infrastructure/base/kustomization.yaml"
	policyDeployment = "apps/base/podinfo/deployment.yaml"
	// policyRefused is the policy the violating commit breaks, and the words of its message.
	policyRefused = "require-memory-limits"
	policyMessage = "containers without resources.limits.memory: podinfo"
	// podinfo's memory limit as the seed declares it; the violating commit drops it.
	podinfoLimit = "            limits:\n              memory: 128Mi\n"
)

// policySpecs: policy enforcement at admission with Kubernetes' own ValidatingAdmissionPolicy (CEL, served
// by each twin cluster's kube-apiserver). The policies arrive by GitOps like any other layer; a commit
// that breaks one is refused at admission on every cluster (the app's Kustomization not Ready with the
// policy's message, its Arc configuration Non-Compliant, nothing of the commit applied); `validate
// --policies` says the same before the push; the fix commit converges. The policy layer is removed at the
// end, so the specs after this one find the repository as they expect.
func policySpecs() {
	Describe("policy", Label("policy"), func() {
		It("refuses a commit that breaks a ValidatingAdmissionPolicy delivered by GitOps, and converges its fix", func(ctx SpecContext) {
			exp := Experiment("policy: refused at admission")
			clusters := env.Twin.Spec().ClusterNames()
			seed := GinkgoRandomSeed() % 100000

			By("delivering the policies by GitOps: " + policyLayerDir)
			withPolicies := func() string {
				dir := env.WorkingCopy()
				addPolicyLayer(dir, env.Twin.RegistryHost())
				return dir
			}
			start := time.Now()
			layer := env.Push(ctx, "main", withPolicies(), "platform: admission policies (memory limits, allowed registries, no privileged pods)")
			seedTree := env.WorkingCopy() // made here: a cleanup may not make temporary folders
			DeferCleanup(func(ctx SpecContext) {
				By("removing the policy layer")
				env.Push(ctx, "main", seedTree, "platform: remove the scenario's admission policies")
				for _, c := range clusters {
					Eventually(func(ctx context.Context) ([]string, error) {
						l, err := env.Kube[c].AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
						if err != nil {
							return nil, err
						}
						var names []string
						for _, p := range l.Items {
							names = append(names, p.Name)
						}
						return names, nil
					}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(BeEmpty(), "cluster %s: the pruned policies are still there", c)
				}
				Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			}, NodeTimeout(2*env.Waits.Converge))
			for _, c := range clusters {
				Eventually(enforces(env.Kube[c], baseConfigMapNS, env.Twin.RegistryHost())).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).
					Should(ContainSubstring("ValidatingAdmissionPolicy '"+policyRefused+"'"), "cluster %s: the API server does not enforce the policies of commit %.12s", c, layer)
			}
			recordTiming(exp, "policy commit to enforced on every cluster", time.Since(start))
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed(),
				"the compliant seed must stay Compliant under the policies")

			By("pushing a commit that drops podinfo's memory limit (and changes its ConfigMap)")
			marker := fmt.Sprintf("policy-%d", seed)
			bad := withPolicies()
			replaceIn(bad, policyDeployment, podinfoLimit, "")
			replaceIn(bad, baseConfigMapFile, "\ndata:\n", "\ndata:\n  POLICY_MARK: \""+marker+"\"\n")

			// validate --policies, before the push, on the same tree and policies.
			offline := offlinePolicyFindings(ctx, bad)
			Expect(offline).To(ContainElement(ContainSubstring(policyMessage)), "validate --policies does not flag the violating commit")

			pushed := time.Now()
			commit := env.Push(ctx, "main", bad, "podinfo: no memory limit (breaks "+policyRefused+")")
			for _, c := range clusters {
				name := "apps-" + c
				var refusal twin.KustomizationStatus
				Eventually(func(ctx context.Context) error {
					g, err := env.GitOps(ctx, c, name)
					if err != nil {
						return err
					}
					for _, k := range g.Kustomizations {
						if strings.HasSuffix(k.Name, "-apps") && k.Ready == "False" && strings.Contains(k.Message, policyMessage) {
							if g.ComplianceState != "Non-Compliant" {
								return fmt.Errorf("Kustomization refused but configuration %s is %s", name, g.ComplianceState)
							}
							refusal = k
							return nil
						}
					}
					return fmt.Errorf("configuration %s on %s: %s, Kustomizations %+v", name, c, g.ComplianceState, g.Kustomizations)
				}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll/5).Should(Succeed(),
					"cluster %s: commit %.12s was not reported refused with the policy's message", c, commit)
				recordTiming(exp, "commit to refusal reported ("+c+")", time.Since(pushed))
				Expect(refusal.Reason).To(Equal("ReconciliationFailed"))
				Expect(refusal.Message).To(ContainSubstring("ValidatingAdmissionPolicy '" + policyRefused + "' with binding '" + policyRefused + "' denied request"))
				matched := false
				for _, f := range offline {
					matched = matched || strings.Contains(refusal.Message, f)
				}
				Expect(matched).To(BeTrue(), "cluster %s: the API server's refusal\n  %s\nis none of validate --policies' messages\n  %s", c, refusal.Message, strings.Join(offline, "\n  "))

				// All or nothing: the ConfigMap change of the refused commit is not applied either.
				cm, err := env.Kube[c].CoreV1().ConfigMaps(baseConfigMapNS).Get(ctx, baseConfigMapName, metav1.GetOptions{})
				Expect(err).NotTo(HaveOccurred())
				Expect(cm.Data).NotTo(HaveKey("POLICY_MARK"), "cluster %s: part of the refused commit was applied", c)
				dep, err := env.Deployment(ctx, c, "apps", "podinfo")
				Expect(err).NotTo(HaveOccurred())
				Expect(dep.Spec.Template.Spec.Containers[0].Resources.Limits).To(HaveKey(corev1.ResourceMemory), "cluster %s: podinfo lost its limit", c)
				Note("%s: commit %.12s refused at admission: Kustomization %s/%s Ready=False (%s): %s", c, commit, refusal.Namespace, refusal.Name, refusal.Reason, refusal.Message)
			}

			By("pushing the fix")
			good := withPolicies()
			replaceIn(good, baseConfigMapFile, "\ndata:\n", "\ndata:\n  POLICY_MARK: \""+marker+"\"\n")
			Expect(offlinePolicyFindings(ctx, good)).To(BeEmpty(), "validate --policies flags the fix")
			fixed := time.Now()
			fix := env.Push(ctx, "main", good, "podinfo: memory limit back")
			waitConfigValue(ctx, env, exp, fixed, "POLICY_MARK", marker, "fix commit to applied")
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed(),
				"the fix %.12s did not converge", fix)
			recordTiming(exp, "fix commit to every configuration Compliant", time.Since(fixed))
			Note("Policies from %s (%s) delivered by commit %.12s; the violating commit %.12s was refused by %s on %v; the fix %.12s converged. `validate --policies` flagged the violation before the push with the API server's own message.",
				policySource, gitserver.PlaceholderRegistry, layer, commit, policyRefused, clusters, fix)
		})
	})
}

// addPolicyLayer copies examples/policies into dir's cluster-wide base, with the registry placeholder
// replaced as the twin's seeding replaces it, and lists the folder in the base's kustomization.yaml.
func addPolicyLayer(dir, registryHost string) {
	entries, err := os.ReadDir(policySource)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(filepath.Join(dir, policyLayerDir), 0o755)).To(Succeed())
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(policySource, e.Name()))
		Expect(err).NotTo(HaveOccurred())
		data = []byte(strings.ReplaceAll(string(data), gitserver.PlaceholderRegistry, registryHost))
		Expect(os.WriteFile(filepath.Join(dir, policyLayerDir, e.Name()), data, 0o644)).To(Succeed())
	}
	replaceIn(dir, policyBaseKust, "resources:\n", "resources:\n  - policies\n")
}

// enforces returns the API server's answer to a server-side dry-run of a Pod in namespace ns whose
// only fault is that it has no memory limit, "" while such a Pod is admitted.
func enforces(kube kubernetes.Interface, ns, registryHost string) func(context.Context) (string, error) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "policy-probe", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: registryHost + "/apps/probe:1"}}}}
	return func(ctx context.Context) (string, error) {
		_, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			return "", nil
		}
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			return err.Error(), nil
		}
		return "", err
	}
}

// offlinePolicyFindings runs `validate --policies` on tree (the twin spec's configurations, the policy
// layer of tree) and returns the API server messages of its HT016 errors.
func offlinePolicyFindings(ctx context.Context, tree string) []string {
	set, err := admission.Load(filepath.Join(tree, policyLayerDir))
	Expect(err).NotTo(HaveOccurred())
	s := env.Twin.Spec()
	var configs []layout.Config
	for _, g := range s.Spec.GitOps {
		var ks []layout.ArcKustomization
		for name, k := range g.Kustomizations {
			ks = append(ks, layout.ArcKustomization{Name: name, Path: k.Path, DependsOn: k.DependsOn, Substitute: k.Substitute})
		}
		scope := layout.Scope(g.Scope)
		if scope == "" {
			scope = layout.ScopeCluster
		}
		for _, cl := range s.TargetsOf(g) {
			configs = append(configs, layout.FromArc(cl, g.Name, scope, g.Namespace, tree, s.File, ks))
		}
	}
	rep, err := layout.Validate(ctx, configs, layout.Options{Policies: set, Offline: true})
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, f := range rep.Findings {
		if f.Rule == layout.RuleAdmission && f.Severity == layout.Error {
			out = append(out, strings.TrimPrefix(f.Message, "Deny: "))
		}
	}
	return out
}

// policyFidelityBehaviour is the fidelity row of admission: the require-memory-limits policy installed
// in both clusters, a Kustomization whose Deployment it refuses. Compared: the Ready verdict (status and
// reason), whether the Ready message carries the API server's refusal, and that nothing of the apply
// landed. The messages themselves are worded by each engine and shown in a note.
func policyFidelityBehaviour() fidelityBehaviour {
	const ns, name = "fid-policy", "policy"
	refusal := `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy '` + policyRefused + `' with binding '` + policyRefused +
		`' denied request: containers without resources.limits.memory: web`
	return fidelityBehaviour{name: "admission policy",
		check: "a ValidatingAdmissionPolicy (require-memory-limits, Deny) in both clusters; a Kustomization of a ConfigMap and a Deployment without a memory limit: refused at admission",
		run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
			set, err := admission.Load(policySource)
			Expect(err).NotTo(HaveOccurred())
			for _, eng := range f.engines {
				api := eng.kube.AdmissionregistrationV1()
				for _, p := range set.Policies {
					if p.Name != policyRefused {
						continue
					}
					_, err := api.ValidatingAdmissionPolicies().Create(ctx, p.ValidatingAdmissionPolicy.DeepCopy(), metav1.CreateOptions{})
					Expect(err).NotTo(HaveOccurred(), "%s: create ValidatingAdmissionPolicy %s", eng.name, p.Name)
					DeferCleanup(func(ctx SpecContext) {
						Expect(api.ValidatingAdmissionPolicies().Delete(ctx, p.Name, metav1.DeleteOptions{})).To(Succeed())
					})
				}
				for _, b := range set.Bindings {
					if b.Spec.PolicyName != policyRefused {
						continue
					}
					_, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, b.ValidatingAdmissionPolicyBinding.DeepCopy(), metav1.CreateOptions{})
					Expect(err).NotTo(HaveOccurred(), "%s: create ValidatingAdmissionPolicyBinding %s", eng.name, b.Name)
					DeferCleanup(func(ctx SpecContext) {
						Expect(api.ValidatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{})).To(Succeed())
					})
				}
			}
			f.prepare(ctx, ns)
			for _, eng := range f.engines {
				Eventually(enforces(eng.kube, ns, f.e.Twin.RegistryHost())).WithContext(ctx).WithTimeout(f.e.Waits.Converge).WithPolling(f.e.Waits.Poll/5).
					Should(ContainSubstring("ValidatingAdmissionPolicy '"+policyRefused+"'"), "cluster %s does not enforce the policy", eng.name)
			}
			start := time.Now()
			f.apply(ks(ns, name, "./policy", nil))
			secs, verdict := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines give a verdict on ./policy", settled(ns, name))
			r.timing("Kustomization applied to refusal reported", secs)
			for _, eng := range f.engines {
				k, err := eng.kustomization(ns, name)
				Expect(err).NotTo(HaveOccurred())
				msg := ""
				if c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition); c != nil {
					msg = c.Message
				}
				r.set(eng, "Ready", verdict[eng.name])
				r.set(eng, "Ready message carries the API server's refusal", fmt.Sprint(strings.Contains(msg, refusal)))
				r.set(eng, "Deployment fid-policy/web", eng.presence(ctx, "apps/v1", "Deployment", ns, "web"))
				r.set(eng, "ConfigMap fid-policy/settings", eng.presence(ctx, "v1", "ConfigMap", ns, "settings"))
			}
			f.noteMessages("admission policy", ns, name)
		}}
}
