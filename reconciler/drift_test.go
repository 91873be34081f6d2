package reconciler_test

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestDriftEditRevertedAndDeleteRecreated: a `kubectl edit` of a managed object is reverted and a
// `kubectl delete` is undone, between intervals (the fake clock never moves), and both are recorded.
func TestDriftEditRevertedAndDeleteRecreated(t *testing.T) {
	e := newEnv(t)
	sha := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"color": "blue", "size": "s"})})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps"))
	e.waitApplied("apps", sha)
	ctx := context.Background()

	// kubectl edit: an update by another field manager.
	var cm corev1.ConfigMap
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "a"}, &cm)).To(Succeed())
	cm.Data["color"] = "red"
	cm.Data["extra"] = "kept"
	e.g.Expect(e.c.Update(ctx, &cm, client.FieldOwner("kubectl-edit"))).To(Succeed())
	e.g.Eventually(e.configMapData(e.ns, "a")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal(map[string]string{"color": "blue", "size": "s", "extra": "kept"}))
	e.g.Eventually(e.r.Corrections).WithTimeout(eventually).WithPolling(poll).Should(ContainElement(And(
		HaveField("Object", "ConfigMap/"+e.ns+"/a"), HaveField("Kustomization", e.ns+"/apps"),
		HaveField("Action", "configured"), HaveField("Fields", []string{"/data/color"}))))

	// kubectl delete.
	e.g.Expect(e.c.Delete(ctx, &cm)).To(Succeed())
	e.g.Eventually(e.configMapData(e.ns, "a")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal(map[string]string{"color": "blue", "size": "s"}))
	e.g.Eventually(e.r.Corrections).WithTimeout(eventually).WithPolling(poll).Should(ContainElement(And(
		HaveField("Object", "ConfigMap/"+e.ns+"/a"), HaveField("Action", "created"))))
	for _, c := range e.r.Corrections() {
		e.g.Expect(c.Latency).To(BeNumerically(">=", 0))
		e.g.Expect(c.CorrectedAt).NotTo(BeTemporally("<", c.DetectedAt))
	}

	// A label removed by hand (the object leaves the watch's selection) is restored too.
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "a"}, &cm)).To(Succeed())
	delete(cm.Labels, "kustomize.toolkit.fluxcd.io/name")
	e.g.Expect(e.c.Update(ctx, &cm, client.FieldOwner("kubectl-edit"))).To(Succeed())
	e.g.Eventually(func() map[string]string {
		var got corev1.ConfigMap
		e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "a"}, &got)).To(Succeed())
		return got.Labels
	}).WithTimeout(eventually).WithPolling(poll).Should(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/name", "apps"))

	// Metrics count the corrections.
	srv := httptest.NewServer(e.r.MetricsHandler())
	defer srv.Close()
	scrape := func() string {
		resp, err := srv.Client().Get(srv.URL)
		e.g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	// The label fix is visible in the API server a moment before the correction is counted.
	e.g.Eventually(scrape).WithTimeout(eventually).WithPolling(poll).Should(And(
		MatchRegexp(`hybridtwin_reconciler_drift_corrections_total\{cluster="`+e.ns+`"\} [3-9]`),
		ContainSubstring(`hybridtwin_reconciler_reconcile_duration_seconds_count{cluster="`+e.ns+`",kind="Kustomization"}`),
		ContainSubstring(`hybridtwin_reconciler_queue_depth{cluster="`+e.ns+`",queue="kustomization"}`)))
}

// TestIgnoreRuleRespected: a field named by spec.ignore may be changed in the cluster; drift correction
// and later applies leave it, while the other fields are still corrected.
func TestIgnoreRuleRespected(t *testing.T) {
	e := newEnv(t)
	sha := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"color": "blue", "tuned": "1"})})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) {
		k.Spec.Ignore = []kustomizev1.IgnoreRule{{Paths: []string{"/data/tuned"}, Target: &kustomize.Selector{Kind: "ConfigMap"}}}
	}))
	e.waitApplied("apps", sha)
	ctx := context.Background()
	var cm corev1.ConfigMap
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "a"}, &cm)).To(Succeed())
	cm.Data["color"], cm.Data["tuned"] = "red", "9"
	e.g.Expect(e.c.Update(ctx, &cm, client.FieldOwner("tuner"))).To(Succeed())
	e.g.Eventually(e.configMapData(e.ns, "a")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal(map[string]string{"color": "blue", "tuned": "9"}))
	// The restored object is visible a moment before the correction is recorded.
	e.g.Eventually(e.r.Corrections).WithTimeout(eventually).WithPolling(poll).Should(ConsistOf(HaveField("Fields", []string{"/data/color"})))

	// The next revision changes color; the ignored field keeps the cluster's value.
	sha2 := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"color": "green", "tuned": "1"})})
	e.stepInterval()
	e.waitApplied("apps", sha2)
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"color": "green", "tuned": "9"}))
}

// TestSuspendStopsChanges: a suspended Kustomization applies no new revision and corrects no drift;
// resuming it catches up.
func TestSuspendStopsChanges(t *testing.T) {
	e := newEnv(t)
	sha := e.commit(map[string]string{
		"apps/a.yaml":    configMap(e.ns, "a", map[string]string{"v": "1"}),
		"witness/w.yaml": configMap(e.ns, "w", map[string]string{"v": "1"}),
	})
	apps := e.kustomization("apps", "apps")
	e.apply(e.gitRepository("repo"), apps, e.kustomization("witness", "witness"))
	e.waitApplied("apps", sha)
	e.waitApplied("witness", sha)

	apps.Spec.Suspend = true
	e.apply(apps)
	sha2 := e.commit(map[string]string{
		"apps/a.yaml":    configMap(e.ns, "a", map[string]string{"v": "2"}),
		"witness/w.yaml": configMap(e.ns, "w", map[string]string{"v": "2"}),
	})
	e.stepInterval()
	e.waitApplied("witness", sha2)
	ctx := context.Background()
	var cm corev1.ConfigMap
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "a"}, &cm)).To(Succeed())
	cm.Data["v"] = "edited"
	e.g.Expect(e.c.Update(ctx, &cm)).To(Succeed())
	// The witness edit comes after in the same watch stream, so once it is corrected the suspended
	// object's event has been seen; then wait for all work to finish.
	var w corev1.ConfigMap
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "w"}, &w)).To(Succeed())
	w.Data["v"] = "edited"
	e.g.Expect(e.c.Update(ctx, &w)).To(Succeed())
	e.g.Eventually(e.configMapData(e.ns, "w")).WithTimeout(eventually).WithPolling(poll).Should(Equal(map[string]string{"v": "2"}))
	e.waitIdle()
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"v": "edited"}))
	e.g.Expect(e.appliedRevision("apps")()).To(Equal("main@sha1:" + sha))
	for _, c := range e.r.Corrections() {
		e.g.Expect(c.Kustomization).NotTo(Equal(e.ns+"/apps"), "a suspended Kustomization corrects nothing")
	}

	apps.Spec.Suspend = false
	e.apply(apps)
	e.waitApplied("apps", sha2)
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"v": "2"}))
}

// TestReconcileDisabledAnnotation: an object annotated reconcile: disabled is created by nobody and
// neither updated nor drift-corrected.
func TestReconcileDisabledAnnotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pre := &corev1.ConfigMap{}
	pre.Name, pre.Namespace = "frozen", e.ns
	pre.Annotations = map[string]string{"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}
	pre.Data = map[string]string{"v": "cluster"}
	e.g.Expect(e.c.Create(ctx, pre)).To(Succeed())
	sha := e.commit(map[string]string{
		"apps/frozen.yaml": configMap(e.ns, "frozen", map[string]string{"v": "git"}),
		"apps/a.yaml":      configMap(e.ns, "a", map[string]string{"v": "git"}),
	})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps"))
	e.waitApplied("apps", sha)
	e.g.Expect(e.configMapData(e.ns, "frozen")()).To(Equal(map[string]string{"v": "cluster"}))
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"v": "git"}))
	k, _ := e.r.Kustomization(e.ns, "apps")
	e.g.Expect(k.Status.Inventory.Entries).To(HaveLen(2))
}
