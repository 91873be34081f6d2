package arcagent_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
)

// The ClusterTarget against a real API server holding Flux's CRDs from the pinned modules, without an engine:
// what it applies is what the API server stores (server-side apply, field manager hybridtwin), what it
// reads back is the cluster's object, and a Ready condition written for an older generation reads as
// Progressing. The controllers themselves run in TestFluxConvergesAnArcConfiguration.
func TestClusterTargetAppliesAndReadsFluxObjects(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	api := testenv.APIServer(t)
	dirs, err := fluxcrd.Dirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := fluxcrd.Read(append(dirs, filepath.Join("..", "..", "internal", "fluxcrd", "testdata", "crds")))
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(api)
	applyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := fluxcrd.Apply(applyCtx, dyn, crds); err != nil {
		t.Fatal(err)
	}
	// Applying again (a second twin start on the same cluster) is a no-op, not a conflict.
	if err := fluxcrd.Apply(applyCtx, dyn, crds); err != nil {
		t.Fatalf("re-applying the CRDs: %v", err)
	}

	target, err := arcagent.NewClusterTarget(api)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "default"
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet", Namespace: ns, Labels: map[string]string{"clusterconfig.azure.com/name": "fleet"}},
		Spec:       sourcev1.GitRepositorySpec{URL: "http://127.0.0.1:1/fleet.git", Interval: metav1.Duration{Duration: time.Minute}},
	}
	g.Expect(target.ApplyGitRepository(repo)).To(Succeed())
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet-main", Namespace: ns},
		Spec: kustomizev1.KustomizationSpec{Path: "./apps", Prune: true, Interval: metav1.Duration{Duration: time.Minute},
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "fleet"}},
	}
	g.Expect(target.ApplyKustomization(k)).To(Succeed())

	gotRepo, ok := target.GitRepository(ns, "fleet")
	g.Expect(ok).To(BeTrue())
	g.Expect(gotRepo.Spec.URL).To(Equal(repo.Spec.URL))
	g.Expect(gotRepo.Labels).To(HaveKeyWithValue("clusterconfig.azure.com/name", "fleet"))
	g.Expect(gotRepo.ManagedFields).To(ContainElement(HaveField("Manager", arcagent.FieldManager)))
	gotK, ok := target.Kustomization(ns, "fleet-main")
	g.Expect(ok).To(BeTrue())
	g.Expect(gotK.Spec.Path).To(Equal("./apps"))
	g.Expect(gotK.Generation).To(BeEquivalentTo(1))

	// Flux reports Ready for generation 1 (written here through the status subresource, as the
	// controller does).
	u, err := dyn.Resource(kustomizev1.GroupVersion.WithResource("kustomizations")).Namespace(ns).Get(ctx, "fleet-main", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	cond := metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
		Message: "Applied revision: main@sha1:abc", ObservedGeneration: 1, LastTransitionTime: metav1.Now()}
	cm, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cond)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(unstructured.SetNestedSlice(u.Object, []any{cm}, "status", "conditions")).To(Succeed())
	_, err = dyn.Resource(kustomizev1.GroupVersion.WithResource("kustomizations")).Namespace(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	gotK, _ = target.Kustomization(ns, "fleet-main")
	g.Expect(apimeta.IsStatusConditionTrue(gotK.Status.Conditions, meta.ReadyCondition)).To(BeTrue())

	// A new spec: until Flux reconciles generation 2, Ready reads as Progressing, not the old True.
	k.Spec.Path = "./apps-v2"
	g.Expect(target.ApplyKustomization(k)).To(Succeed())
	gotK, _ = target.Kustomization(ns, "fleet-main")
	g.Expect(gotK.Generation).To(BeEquivalentTo(2))
	ready := apimeta.FindStatusCondition(gotK.Status.Conditions, meta.ReadyCondition)
	g.Expect(ready.Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(ready.Reason).To(Equal(meta.ProgressingReason))

	// An OCIRepository: applied as declared (the v1 CRD source-controller v1.9.6 serves), read back, and
	// deleted like the GitRepository.
	oci := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: ns},
		Spec: sourcev1.OCIRepositorySpec{URL: "oci://127.0.0.1:1/manifests/platform", Insecure: true,
			Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"}, Interval: metav1.Duration{Duration: time.Minute}},
	}
	g.Expect(target.ApplyOCIRepository(oci)).To(Succeed())
	gotOCI, ok := target.OCIRepository(ns, "platform")
	g.Expect(ok).To(BeTrue())
	g.Expect(gotOCI.Spec.URL).To(Equal(oci.Spec.URL))
	g.Expect(gotOCI.Spec.Insecure).To(BeTrue())
	g.Expect(gotOCI.Spec.Reference).To(Equal(&sourcev1.OCIRepositoryRef{Tag: "1.0.0"}))
	g.Expect(gotOCI.ManagedFields).To(ContainElement(HaveField("Manager", arcagent.FieldManager)))
	g.Expect(target.DeleteOCIRepository(ns, "platform")).To(Succeed())
	g.Expect(target.DeleteOCIRepository(ns, "platform")).To(Succeed())
	_, ok = target.OCIRepository(ns, "platform")
	g.Expect(ok).To(BeFalse())

	// Deletes, and deleting what is gone is no error.
	g.Expect(target.DeleteKustomization(ctx, ns, "fleet-main")).To(Succeed())
	g.Expect(target.DeleteKustomization(ctx, ns, "fleet-main")).To(Succeed())
	g.Expect(target.DeleteGitRepository(ns, "fleet")).To(Succeed())
	g.Expect(target.DeleteGitRepository(ns, "fleet")).To(Succeed())
	_, ok = target.Kustomization(ns, "fleet-main")
	g.Expect(ok).To(BeFalse())
	_, ok = target.GitRepository(ns, "fleet")
	g.Expect(ok).To(BeFalse())
}
