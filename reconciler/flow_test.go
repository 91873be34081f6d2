package reconciler_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/hybridtwin/hybridtwin/reconciler"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestApplyChangeAndPrune: a layout is applied; a change in Git is applied at the next source interval;
// a file deleted from Git is pruned, except the object annotated prune: disabled.
func TestApplyChangeAndPrune(t *testing.T) {
	e := newEnv(t)
	sha1 := e.commit(map[string]string{
		"apps/a.yaml":    configMap(e.ns, "a", map[string]string{"color": "blue"}),
		"apps/b.yaml":    configMap(e.ns, "b", map[string]string{"k": "v"}),
		"apps/keep.yaml": configMap(e.ns, "keep", map[string]string{"k": "v"}, "kustomize.toolkit.fluxcd.io/prune", "disabled"),
		"README.md":      "not a manifest",
	})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "./apps"))
	e.waitApplied("apps", sha1)

	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"color": "blue"}))
	var cm corev1.ConfigMap
	e.g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "a"}, &cm)).To(Succeed())
	e.g.Expect(cm.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/name", "apps"))
	e.g.Expect(cm.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/namespace", e.ns))
	e.g.Expect(cm.ManagedFields).To(ContainElement(And(
		HaveField("Manager", "kustomize-controller"), HaveField("Operation", metav1.ManagedFieldsOperationApply))))
	k, _ := e.r.Kustomization(e.ns, "apps")
	e.g.Expect(k.Status.Inventory.Entries).To(ConsistOf(
		kustomizev1.ResourceRef{ID: e.ns + "_a__ConfigMap", Version: "v1"},
		kustomizev1.ResourceRef{ID: e.ns + "_b__ConfigMap", Version: "v1"},
		kustomizev1.ResourceRef{ID: e.ns + "_keep__ConfigMap", Version: "v1"}))
	e.g.Expect(k.Status.ObservedGeneration).To(Equal(k.Generation))
	src, _ := e.r.GitRepository(e.ns, "repo")
	e.g.Expect(src.Status.Artifact.Revision).To(Equal("main@sha1:" + sha1))

	sha2 := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"color": "green"})},
		"apps/b.yaml", "apps/keep.yaml")
	e.waitIdle()
	e.g.Expect(e.appliedRevision("apps")()).To(Equal("main@sha1:"+sha1), "nothing changes before the source interval")
	e.stepInterval()
	e.waitApplied("apps", sha2)
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"color": "green"}))
	e.g.Expect(e.configMapData(e.ns, "b")()).To(BeNil(), "pruned")
	e.g.Expect(e.configMapData(e.ns, "keep")()).NotTo(BeNil(), "prune: disabled")
	k, _ = e.r.Kustomization(e.ns, "apps")
	e.g.Expect(k.Status.Inventory.Entries).To(ConsistOf(kustomizev1.ResourceRef{ID: e.ns + "_a__ConfigMap", Version: "v1"}))
	e.g.Expect(eventMessages(e, "apps")).To(ContainElement(And(
		ContainSubstring("ConfigMap/"+e.ns+"/a configured"), ContainSubstring("ConfigMap/"+e.ns+"/b deleted"))))
}

// TestPruneFalseKeepsObjects: without spec.prune a removed file leaves its object in place.
func TestPruneFalseKeepsObjects(t *testing.T) {
	e := newEnv(t)
	sha1 := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"k": "v"}), "apps/b.yaml": configMap(e.ns, "b", map[string]string{"k": "v"})})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) { k.Spec.Prune = false }))
	e.waitApplied("apps", sha1)
	sha2 := e.commit(nil, "apps/b.yaml")
	e.stepInterval()
	e.waitApplied("apps", sha2)
	e.g.Expect(e.configMapData(e.ns, "b")()).NotTo(BeNil())
}

// TestDependsOnIsEventDriven: apps waits for infra; it is applied the moment infra becomes Ready,
// without the 30 s dependency requeue: the fake clock never moves in this test, so nothing but the
// dependency's readiness can wake apps.
func TestDependsOnIsEventDriven(t *testing.T) {
	e := newEnv(t)
	e.commit(map[string]string{
		"infra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n",
		"apps/cm.yaml":  configMap(e.ns, "app", map[string]string{"tier": "apps"}),
	})
	apps := e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []meta.DependencyReference{{Name: "infra"}}
	})
	e.apply(e.gitRepository("repo"), apps, e.kustomization("infra", "infra"))
	e.g.Eventually(e.ready("infra")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/BuildFailed"))
	e.waitIdle()
	e.g.Expect(e.ready("apps")()).To(Equal("False/DependencyNotReady: dependency '" + e.ns + "/infra' is not ready"))
	e.g.Expect(e.configMapData(e.ns, "app")()).To(BeNil())

	sha := e.commit(map[string]string{"infra/cm.yaml": configMap(e.ns, "infra", map[string]string{"tier": "infra"})})
	e.g.Expect(e.r.RequestReconcile("GitRepository", e.ns, "repo")).To(Succeed())
	e.waitApplied("infra", sha)
	e.waitApplied("apps", sha)
	e.g.Expect(e.configMapData(e.ns, "app")()).To(Equal(map[string]string{"tier": "apps"}))

	// Order: infra's success precedes apps' first apply.
	var order []string
	for _, ev := range e.r.Events() {
		if ev.Reason == "ReconciliationSucceeded" || (ev.Reason == "Progressing" && strings.Contains(ev.Message, "created")) {
			order = append(order, ev.Name+":"+ev.Reason)
		}
	}
	iInfra := slices.Index(order, "infra:ReconciliationSucceeded")
	iApps := slices.Index(order, "apps:Progressing")
	e.g.Expect(iInfra).To(BeNumerically(">=", 0), "%v", order)
	e.g.Expect(iApps).To(BeNumerically(">", iInfra), "%v", order)
}

// TestFluxExactProfileWaitsForTheRequeue: with FluxExactProfile a dependent is not woken when its
// dependency becomes Ready; it is applied at the dependency requeue (30 s on the fake clock), as Flux does.
// Drift is not corrected by a watch either, only at the next reconcile.
func TestFluxExactProfileWaitsForTheRequeue(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.Profile = reconciler.FluxExactProfile() })
	sha := e.commit(map[string]string{
		"infra/cm.yaml": configMap(e.ns, "infra", map[string]string{"tier": "infra"}),
		"apps/cm.yaml":  configMap(e.ns, "app", map[string]string{"tier": "apps"}),
	})
	apps := e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []meta.DependencyReference{{Name: "infra"}}
	})
	e.apply(apps, e.gitRepository("repo"))
	e.g.Eventually(e.ready("apps")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/"))
	e.apply(e.kustomization("infra", "infra"))
	e.waitApplied("infra", sha)
	e.waitIdle()
	e.g.Expect(e.ready("apps")()).To(HavePrefix("False/DependencyNotReady"), "apps was woken by infra's readiness")
	e.g.Expect(e.configMapData(e.ns, "app")()).To(BeNil())

	e.clk.Step(reconciler.FluxExactProfile().DependencyRequeue + time.Second)
	e.waitApplied("apps", sha)

	// An edit stays until the next reconcile: no watch undoes it.
	var cm corev1.ConfigMap
	e.g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "app"}, &cm)).To(Succeed())
	cm.Data["tier"] = "edited"
	e.g.Expect(e.c.Update(context.Background(), &cm)).To(Succeed())
	e.waitIdle()
	e.g.Consistently(e.configMapData(e.ns, "app")).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).
		Should(HaveKeyWithValue("tier", "edited"))
	e.g.Expect(e.r.RequestReconcile("Kustomization", e.ns, "apps")).To(Succeed())
	e.g.Eventually(e.configMapData(e.ns, "app")).WithTimeout(eventually).WithPolling(poll).Should(HaveKeyWithValue("tier", "apps"))
}

// TestDependencyCycleRejected: a dependsOn cycle is rejected with its path.
func TestDependencyCycleRejected(t *testing.T) {
	e := newEnv(t)
	e.apply(e.kustomization("a", "a", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []meta.DependencyReference{{Name: "b"}}
	}), e.kustomization("b", "b", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []meta.DependencyReference{{Name: "c"}}
	}))
	err := e.r.ApplyKustomization(e.kustomization("c", "c", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []meta.DependencyReference{{Name: "a"}}
	}))
	e.g.Expect(err).To(MatchError(reconcilerErrDependencyCycle))
	e.g.Expect(err.Error()).To(ContainSubstring(e.ns + "/a -> " + e.ns + "/b -> " + e.ns + "/c -> " + e.ns + "/a"))
	_, ok := e.r.Kustomization(e.ns, "c")
	e.g.Expect(ok).To(BeFalse(), "a rejected Kustomization is not stored")
	// Self-dependency.
	err = e.r.ApplyKustomization(e.kustomization("self", "s", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []meta.DependencyReference{{Name: "self"}}
	}))
	e.g.Expect(err).To(MatchError(ContainSubstring(e.ns + "/self -> " + e.ns + "/self")))
}

func eventMessages(e *env, name string) []string {
	var out []string
	for _, ev := range e.r.Events() {
		if ev.Name == name {
			out = append(out, ev.Message)
		}
	}
	return out
}
