package arcagent_test

import (
	"context"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
)

// A configuration's compliance is the combined status of its own Flux objects and of those they applied
// (ARM: statuses are "the Flux Kubernetes resources created by the fluxConfiguration or created by the
// managed objects provisioned by the fluxConfiguration"): a Kustomization the configuration's
// Kustomization applied (found through its inventory, in another namespace, and one level deeper) is
// listed with appliedBy, and its failure makes the configuration Non-Compliant, its progress Pending.
func TestComplianceIncludesNestedKustomizations(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	api := testenv.APIServer(t)
	_, err := fluxcrd.Install(ctx, api, nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	dyn := dynamic.NewForConfigOrDie(api)
	kube := kubernetes.NewForConfigOrDie(api)
	for _, ns := range []string{"flux-system", "apps"} {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	target, err := arcagent.NewClusterTarget(api)
	g.Expect(err).NotTo(HaveOccurred())
	azure := arc.NewServer(arc.DefaultOptions())
	agent, err := arcagent.New(arcagent.Options{ClusterID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c",
		Config: api, Target: target, Azure: azure})
	g.Expect(err).NotTo(HaveOccurred())

	src := sourcev1.GitRepositorySpec{URL: "http://127.0.0.1:1/fleet.git", Interval: metav1.Duration{Duration: time.Minute}}
	g.Expect(target.ApplyGitRepository(&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: "flux-system"}, Spec: src})).To(Succeed())
	ks := func(ns, name string) *kustomizev1.Kustomization {
		return &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: kustomizev1.KustomizationSpec{Path: "./" + name, Prune: true, Interval: metav1.Duration{Duration: time.Minute},
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "cluster", Namespace: "flux-system"}}}
	}
	for _, k := range []*kustomizev1.Kustomization{ks("flux-system", "cluster-root"), ks("apps", "apps"), ks("apps", "apps-db")} {
		g.Expect(target.ApplyKustomization(k)).To(Succeed())
	}
	ready := func(ok bool, reason, msg string) metav1.Condition {
		c := metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: 1, LastTransitionTime: metav1.Now()}
		if !ok {
			c.Status = metav1.ConditionFalse
		}
		return c
	}
	setStatus(t, api, sourcev1.GroupVersion.WithResource("gitrepositories"), "flux-system", "cluster",
		map[string]any{"conditions": []metav1.Condition{ready(true, meta.SucceededReason, "stored artifact")}})
	inventory := func(entries ...string) map[string]any {
		var es []map[string]any
		for _, e := range entries {
			es = append(es, map[string]any{"id": e, "v": "v1"})
		}
		return map[string]any{"entries": es}
	}
	ksGVR := kustomizev1.GroupVersion.WithResource("kustomizations")
	setStatus(t, api, ksGVR, "flux-system", "cluster-root", map[string]any{
		"conditions": []metav1.Condition{ready(true, meta.ReconciliationSucceededReason, "Applied revision: main@sha1:1")},
		"inventory":  inventory("apps_apps_kustomize.toolkit.fluxcd.io_Kustomization", "apps_settings__ConfigMap")})
	setStatus(t, api, ksGVR, "apps", "apps", map[string]any{
		"conditions": []metav1.Condition{ready(true, meta.ReconciliationSucceededReason, "Applied revision: main@sha1:1")},
		"inventory":  inventory("apps_apps-db_kustomize.toolkit.fluxcd.io_Kustomization")})
	setStatus(t, api, ksGVR, "apps", "apps-db", map[string]any{
		"conditions": []metav1.Condition{ready(false, "HealthCheckFailed", "timeout waiting for: [Deployment/apps/db status: 'InProgress']")},
		"inventory":  inventory("apps_web_helm.toolkit.fluxcd.io_HelmRelease")})
	hrGVR := schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	_, err = dyn.Resource(hrGVR).Namespace("apps").Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": map[string]any{"name": "web", "namespace": "apps"},
		"spec": map[string]any{"interval": "1m", "chart": map[string]any{"spec": map[string]any{"chart": "web",
			"sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}}}}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	setStatus(t, api, hrGVR, "apps", "web", map[string]any{
		"conditions": []metav1.Condition{ready(true, "InstallSucceeded", "Helm install succeeded for release apps/web.v1 with chart web@1.0.0")}})

	cfg := arc.FluxConfiguration{Name: "cluster", Properties: arc.FluxConfigurationProperties{Namespace: "flux-system",
		SourceKind: sourcev1.GitRepositoryKind, Kustomizations: map[string]*arc.KustomizationDefinition{"root": {Path: "./clusters/staging"}}}}
	rep := agent.Compliance(cfg)
	type st struct{ Kind, Namespace, Name, State, AppliedBy string }
	var got []st
	for _, s := range rep.Statuses {
		by := ""
		if s.AppliedBy != nil {
			by = s.AppliedBy.Namespace + "/" + s.AppliedBy.Name
		}
		got = append(got, st{s.Kind, s.Namespace, s.Name, s.ComplianceState, by})
	}
	g.Expect(got).To(Equal([]st{
		{"GitRepository", "flux-system", "cluster", arc.Compliant, ""},
		{"Kustomization", "flux-system", "cluster-root", arc.Compliant, ""},
		{"Kustomization", "apps", "apps", arc.Compliant, "flux-system/cluster-root"},
		{"Kustomization", "apps", "apps-db", arc.NonCompliant, "apps/apps"},
		{"HelmRelease", "apps", "web", arc.Compliant, "apps/apps-db"},
	}))
	g.Expect(rep.State).To(Equal(arc.NonCompliant))
	g.Expect(rep.Message).To(ContainSubstring("Kustomization/apps-db: timeout waiting for"))

	// The nested one healthy: the configuration is Compliant.
	setStatus(t, api, ksGVR, "apps", "apps-db", map[string]any{
		"conditions": []metav1.Condition{ready(true, meta.ReconciliationSucceededReason, "Applied revision: main@sha1:1")}})
	g.Expect(agent.Compliance(cfg).State).To(Equal(arc.Compliant))
}

// setStatus writes an object's status through the status subresource, as its controller does.
func setStatus(t *testing.T, cfg *rest.Config, gvr schema.GroupVersionResource, ns, name string, status map[string]any) {
	t.Helper()
	ctx := context.Background()
	r := dynamic.NewForConfigOrDie(cfg).Resource(gvr).Namespace(ns)
	u, err := r.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&struct {
		Status map[string]any `json:"status"`
	}{status})
	if err != nil {
		t.Fatal(err)
	}
	u.Object["status"] = s["status"]
	if _, err := r.UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
