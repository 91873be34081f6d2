package reconciler_test

import (
	"context"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/registry"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
)

// fluxContentMediaType is the layer media type `flux push artifact` sets; sources_test.go selects the
// layer by it.
const fluxContentMediaType = fluxartifact.ContentMediaType

// pushArtifact pushes files as `flux push artifact oci://<registry>/<repo>:<tag> --path=. --source=...
// --revision=...` does (internal/fluxartifact) and returns the manifest digest.
func pushArtifact(t *testing.T, reg *registry.Registry, repo, tag string, files map[string]string) string {
	t.Helper()
	img, err := fluxartifact.Build(files, fluxartifact.Meta{
		Source: "https://example.com/apps.git", Revision: "main@sha1:" + tag, Created: "2026-11-21T00:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := reg.Client().Push(context.Background(), img, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return pushed.Digest
}

// TestOCIRepository: Kustomizations read OCI artifacts as `flux push artifact` makes them from the
// twin's real registry -- applied, changed under the same tag, pruned, picked by semver, and with clear
// failures for a missing layer and a missing tag.
func TestOCIRepository(t *testing.T) {
	e := newEnv(t)
	reg, err := registry.Start(context.Background(), registry.Options{Dir: t.TempDir()})
	e.g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	repo := "manifests/" + e.ns
	url := "oci://" + reg.Host() + "/" + repo

	d1 := pushArtifact(t, reg, repo, "latest", map[string]string{
		"apps/a.yaml": configMap(e.ns, "a", map[string]string{"v": "1"}),
		"apps/b.yaml": configMap(e.ns, "b", map[string]string{"v": "1"}),
	})
	e.apply(e.ociRepository("oci", url), e.kustomization("apps", "./apps", ociSource("oci")))
	e.g.Eventually(e.appliedRevision("apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal("latest@"+d1), e.ready("apps"))
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"v": "1"}))
	o, _ := e.r.OCIRepository(e.ns, "oci")
	e.g.Expect(o.Status.Artifact.Metadata).To(HaveKeyWithValue("org.opencontainers.image.source", "https://example.com/apps.git"))
	e.g.Expect(apimeta.IsStatusConditionTrue(o.Status.Conditions, meta.ReadyCondition)).To(BeTrue())

	// A new artifact under the same tag: b changes, a is gone (pruned).
	d2 := pushArtifact(t, reg, repo, "latest", map[string]string{"apps/b.yaml": configMap(e.ns, "b", map[string]string{"v": "2"})})
	e.g.Expect(e.r.RequestReconcile(reconciler.KindOCIRepository, e.ns, "oci")).To(Succeed())
	e.g.Eventually(e.appliedRevision("apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal("latest@"+d2), e.ready("apps"))
	e.g.Expect(e.configMapData(e.ns, "b")()).To(Equal(map[string]string{"v": "2"}))
	e.g.Eventually(e.configMapData(e.ns, "a")).WithTimeout(eventually).WithPolling(poll).Should(BeNil())

	// semver picks the highest tag in range; the interval finds a new one.
	pushArtifact(t, reg, repo, "1.0.0", map[string]string{"apps/c.yaml": configMap(e.ns, "c", map[string]string{"v": "1.0.0"})})
	d11 := pushArtifact(t, reg, repo, "1.1.0", map[string]string{"apps/c.yaml": configMap(e.ns, "c", map[string]string{"v": "1.1.0"})})
	pushArtifact(t, reg, repo, "2.0.0", map[string]string{"apps/c.yaml": configMap(e.ns, "c", map[string]string{"v": "2.0.0"})})
	sv := e.ociRepository("semver", url)
	sv.Spec.Reference = &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0 <2.0.0"}
	e.apply(sv, e.kustomization("c", "apps", ociSource("semver")))
	e.g.Eventually(e.appliedRevision("c")).WithTimeout(eventually).WithPolling(poll).Should(Equal("1.1.0@"+d11), e.ready("c"))
	e.g.Expect(e.configMapData(e.ns, "c")()).To(Equal(map[string]string{"v": "1.1.0"}))
	d12 := pushArtifact(t, reg, repo, "1.2.0", map[string]string{"apps/c.yaml": configMap(e.ns, "c", map[string]string{"v": "1.2.0"})})
	e.stepInterval()
	e.g.Eventually(e.appliedRevision("c")).WithTimeout(eventually).WithPolling(poll).Should(Equal("1.2.0@"+d12), e.ready("c"))

	// A layer selector no layer matches, and a tag the registry does not have, fail with
	// source-controller's reasons and name what is missing.
	bad := e.ociRepository("bad-layer", url)
	bad.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: "application/vnd.example.other"}
	missing := e.ociRepository("missing", url)
	missing.Spec.Reference = &sourcev1.OCIRepositoryRef{Tag: "9.9.9"}
	e.apply(bad, missing)
	e.g.Eventually(e.sourceReady("bad-layer")).WithTimeout(eventually).WithPolling(poll).Should(
		And(HavePrefix("False/"+sourcev1.OCILayerOperationFailedReason), ContainSubstring("application/vnd.example.other")))
	e.g.Eventually(e.sourceReady("missing")).WithTimeout(eventually).WithPolling(poll).Should(
		And(HavePrefix("False/"+sourcev1.OCIPullFailedReason), ContainSubstring(":9.9.9")))
}

func ociSource(name string) func(*kustomizev1.Kustomization) {
	return func(k *kustomizev1.Kustomization) {
		k.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: name}
	}
}

// sourceReady returns an OCIRepository's Ready condition as "Status/Reason: message".
func (e *env) sourceReady(name string) func() string {
	return func() string {
		o, ok := e.r.OCIRepository(e.ns, name)
		if !ok {
			return "absent"
		}
		return readyOf(o.Status.Conditions)
	}
}
