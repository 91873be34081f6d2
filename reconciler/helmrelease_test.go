package reconciler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serveCharts packages testdata/charts/app at each version with the Helm SDK, indexes the packages as
// `helm repo index` does and serves them over HTTP: a chart repository for HelmRepository.
func serveCharts(t *testing.T, versions ...string) string {
	return serveChartDir(t, "app", versions, nil)
}

// serveChartDir serves testdata/charts/<name> at each version; edit, when set, rewrites each of the
// chart's plain files (crds/ among them) for a version.
func serveChartDir(t *testing.T, name string, versions []string, edit func(data []byte, version string) []byte) string {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	idx := repo.NewIndexFile()
	for _, v := range versions {
		ch, err := loader.LoadDir(filepath.Join("testdata", "charts", name))
		if err != nil {
			t.Fatal(err)
		}
		ch.Metadata.Version = v
		if edit != nil {
			for _, f := range ch.Files {
				f.Data = edit(f.Data, v)
			}
		}
		p, err := chartutil.Save(ch, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := idx.MustAdd(ch.Metadata, filepath.Base(p), srv.URL, "sha256:"+v); err != nil {
			t.Fatal(err)
		}
	}
	idx.SortEntries()
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL
}

func (e *env) helmRepository(name, url string) *sourcev1.HelmRepository {
	return &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec:       sourcev1.HelmRepositorySpec{URL: url, Interval: metav1.Duration{Duration: 10 * time.Minute}},
	}
}

// helmRelease installs chart "app" at version from HelmRepository "charts", with values. The test API
// server has no kubelets, so nothing waits for workloads to become ready (disableWait).
func (e *env) helmRelease(name, version string, values map[string]any, mutate ...func(*helmv2.HelmRelease)) *helmv2.HelmRelease {
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: 10 * time.Minute},
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{Chart: "app", Version: version,
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: "charts"}}},
			Install:   &helmv2.Install{DisableWait: true},
			Upgrade:   &helmv2.Upgrade{DisableWait: true},
			Rollback:  &helmv2.Rollback{DisableWait: true},
			Uninstall: &helmv2.Uninstall{DisableWait: true},
		},
	}
	if values != nil {
		b, err := json.Marshal(values)
		e.g.Expect(err).NotTo(HaveOccurred())
		hr.Spec.Values = &apiextensionsv1.JSON{Raw: b}
	}
	for _, m := range mutate {
		m(hr)
	}
	return hr
}

// hrReady returns a HelmRelease's Ready condition as "Status/Reason: message" once it is for the
// object's generation.
func (e *env) hrReady(name string) func() string {
	return func() string {
		hr, ok := e.r.HelmRelease(e.ns, name)
		if !ok {
			return "absent"
		}
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		if c == nil || c.ObservedGeneration != hr.Generation {
			return "not observed: " + readyOf(hr.Status.Conditions)
		}
		return readyOf(hr.Status.Conditions)
	}
}

// hrHistory returns a HelmRelease's history as "v<version> <chart>@<chartVersion> <status>", newest
// first.
func (e *env) hrHistory(name string) func() []string {
	return func() []string {
		hr, ok := e.r.HelmRelease(e.ns, name)
		if !ok {
			return nil
		}
		var out []string
		for _, s := range hr.Status.History {
			out = append(out, fmt.Sprintf("v%d %s %s", s.Version, s.VersionedChartName(), s.Status))
		}
		return out
	}
}

// releaseSecrets lists the names of Helm's storage Secrets of a release.
func (e *env) releaseSecrets(release string) func() []string {
	return func() []string {
		var l corev1.SecretList
		e.g.Expect(e.c.List(context.Background(), &l, client.InNamespace(e.ns),
			client.MatchingLabels{"owner": "helm", "name": release})).To(Succeed())
		var out []string
		for _, s := range l.Items {
			out = append(out, s.Name)
		}
		return out
	}
}

func (e *env) applyHelm(objs ...any) {
	e.t.Helper()
	for _, o := range objs {
		switch v := o.(type) {
		case *sourcev1.HelmRepository:
			e.g.Expect(e.r.ApplyHelmRepository(v)).To(Succeed())
		case *helmv2.HelmRelease:
			e.g.Expect(e.r.ApplyHelmRelease(v)).To(Succeed())
		default:
			e.t.Fatalf("cannot apply %T", o)
		}
	}
}

// TestHelmRelease: a HelmRelease of a chart from an HTTP chart repository is installed (Ready with its
// history and Helm's release Secret), upgraded on a values change, a valuesFrom change and a chart
// version change; an upgrade the API server rejects is rolled back by the upgrade remediation; a chart
// version the repository lacks leaves it Ready=False saying so.
func TestHelmRelease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	url := serveCharts(t, "1.0.0", "1.1.0")
	rollback := helmv2.RollbackRemediationStrategy
	remediate := true
	hr := e.helmRelease("app", "1.0.0", map[string]any{"greeting": "hello"}, func(h *helmv2.HelmRelease) {
		h.Spec.Upgrade.Remediation = &helmv2.UpgradeRemediation{RemediateLastFailure: &remediate, Strategy: &rollback}
	})
	e.applyHelm(e.helmRepository("charts", url), hr)

	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(
		Equal(fmt.Sprintf("True/InstallSucceeded: Helm install succeeded for release %s/app.v1 with chart app@1.0.0", e.ns)))
	e.g.Expect(e.hrHistory("app")()).To(Equal([]string{"v1 app@1.0.0 deployed"}))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(HaveKeyWithValue("greeting", "hello"))
	e.g.Expect(e.releaseSecrets("app")()).To(ConsistOf("sh.helm.release.v1.app.v1"))
	var dep appsv1.Deployment
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &dep)).To(Succeed())
	got, _ := e.r.HelmRelease(e.ns, "app")
	e.g.Expect(got.Status.HelmChart).To(Equal(e.ns + "/" + e.ns + "-app"))
	e.g.Expect(got.Status.LastAttemptedRevision).To(Equal("1.0.0"))
	e.g.Expect(got.Status.StorageNamespace).To(Equal(e.ns))
	e.g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	e.g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, helmv2.ReleasedCondition)).To(BeTrue())
	chart, _ := e.r.HelmChart(e.ns, e.ns+"-app")
	e.g.Expect(chart.Status.Artifact.Revision).To(Equal("1.0.0"))
	e.g.Expect(readyOf(chart.Status.Conditions)).To(Equal("True/ChartPullSucceeded: pulled 'app' chart with version '1.0.0'"))

	// A values change upgrades: history 2.
	e.applyHelm(e.helmRelease("app", "1.0.0", map[string]any{"greeting": "bye"}, func(h *helmv2.HelmRelease) {
		h.Spec.Upgrade.Remediation = hr.Spec.Upgrade.Remediation
	}))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/UpgradeSucceeded"))
	e.g.Expect(e.hrHistory("app")()).To(Equal([]string{"v2 app@1.0.0 deployed", "v1 app@1.0.0 superseded"}))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(HaveKeyWithValue("greeting", "bye"))

	// valuesFrom: a ConfigMap's values.yaml, and a key set at a target path (spec.values, merged last,
	// would override them).
	e.g.Expect(e.c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-values", Namespace: e.ns},
		Data: map[string]string{"values.yaml": "replicas: 3\n", "greeting": "from-configmap"}})).To(Succeed())
	withFrom := func(h *helmv2.HelmRelease) {
		h.Spec.Upgrade.Remediation = hr.Spec.Upgrade.Remediation
		h.Spec.ValuesFrom = []helmv2.ValuesReference{{Kind: "ConfigMap", Name: "app-values"},
			{Kind: "ConfigMap", Name: "app-values", ValuesKey: "greeting", TargetPath: "greeting"},
			{Kind: "Secret", Name: "absent", Optional: true}}
	}
	e.applyHelm(e.helmRelease("app", "1.1.0", nil, withFrom))
	e.g.Eventually(e.hrHistory("app")).WithTimeout(eventually).WithPolling(poll).Should(HaveExactElements(
		"v3 app@1.1.0 deployed", "v2 app@1.0.0 superseded"))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/UpgradeSucceeded"))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(Equal(map[string]string{"greeting": "from-configmap", "chartVersion": "1.1.0"}))
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &dep)).To(Succeed())
	e.g.Expect(*dep.Spec.Replicas).To(Equal(int32(3)))

	// An upgrade the API server rejects (an invalid ConfigMap name) fails; the remediation rolls back
	// to the previous release, which is deployed again.
	e.applyHelm(e.helmRelease("app", "1.1.0", map[string]any{"configName": "Not_A_Valid_Name"}, withFrom))
	e.g.Eventually(func() string {
		h, _ := e.r.HelmRelease(e.ns, "app")
		return condition(h.Status.Conditions, helmv2.RemediatedCondition)
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal(fmt.Sprintf(
		"True/RollbackSucceeded: Helm rollback to previous release %s/app.v3 with chart app@1.1.0 succeeded", e.ns)))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/RollbackSucceeded"))
	e.g.Expect(e.hrHistory("app")()).To(HaveExactElements("v5 app@1.1.0 deployed", "v4 app@1.1.0 failed", "v3 app@1.1.0 superseded"))
	got, _ = e.r.HelmRelease(e.ns, "app")
	e.g.Expect(got.Status.History[0].ConfigDigest).To(Equal(got.Status.History[2].ConfigDigest))
	e.g.Expect(condition(got.Status.Conditions, meta.StalledCondition)).To(Equal("True/RetriesExceeded: Failed to upgrade after 1 attempt(s)"))
	e.g.Expect(condition(got.Status.Conditions, helmv2.ReleasedCondition)).To(HavePrefix("False/UpgradeFailed: Helm upgrade failed for release " + e.ns + "/app with chart app@1.1.0"))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(HaveKeyWithValue("greeting", "from-configmap"))

	// A chart version the repository does not have.
	e.applyHelm(e.helmRelease("app", "9.9.9", nil))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/SourceNotReady"), ContainSubstring("no 'app' chart with version matching '9.9.9' found")))
}

// TestHelmReleaseDependsOnAndDelete: a HelmRelease waits for the HelmRelease it depends on
// (DependencyNotReady), is installed once that one is Ready, and deleting it uninstalls the release:
// its objects and Helm's storage Secrets are gone, and so is the HelmChart made for it.
func TestHelmReleaseDependsOnAndDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	url := serveCharts(t, "1.0.0")
	web := e.helmRelease("web", "1.0.0", nil, func(h *helmv2.HelmRelease) {
		h.Spec.DependsOn = []meta.DependencyReference{{Name: "db"}}
	})
	e.applyHelm(e.helmRepository("charts", url), web)
	e.g.Eventually(e.hrReady("web")).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		fmt.Sprintf("False/DependencyNotReady: unable to get '%s/db' dependency: helmreleases.helm.toolkit.fluxcd.io \"db\" not found", e.ns)))
	e.g.Expect(e.releaseSecrets("web")()).To(BeEmpty())

	e.applyHelm(e.helmRelease("db", "1.0.0", map[string]any{"greeting": "db"}))
	for _, n := range []string{"db", "web"} {
		e.g.Eventually(e.hrReady(n)).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"), n)
	}
	e.g.Expect(e.configMapData(e.ns, "db-config")()).To(HaveKeyWithValue("greeting", "db"))

	e.g.Expect(e.r.DeleteHelmRelease(ctx, e.ns, "web")).To(Succeed())
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &corev1.Service{}, &appsv1.Deployment{}} {
		name := "web"
		if _, ok := obj.(*corev1.ConfigMap); ok {
			name = "web-config"
		}
		e.g.Eventually(func() bool {
			return apierrors.IsNotFound(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, obj))
		}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue(), fmt.Sprintf("%T %s", obj, name))
	}
	e.g.Expect(e.releaseSecrets("web")()).To(BeEmpty())
	_, ok := e.r.HelmChart(e.ns, e.ns+"-web")
	e.g.Expect(ok).To(BeFalse())
	e.g.Expect(e.releaseSecrets("db")()).To(ConsistOf("sh.helm.release.v1.db.v1"))
}

// TestInClusterHelmRelease: in the cluster a HelmRelease is helm-controller's: the HelmChart for its
// spec.chart is created in the API server, the release's status (Ready, history) is written to the
// status subresource with Flux's finalizer on the object, events come from helm-controller, a field the
// twin does not implement is refused with UnsupportedByTwin naming it, and deleting the object
// uninstalls the release through the finalizer.
func TestInClusterHelmRelease(t *testing.T) {
	e, c := inClusterEnv(t)
	ctx := context.Background()
	e.g.Expect(helmv2.AddToScheme(c.Scheme())).To(Succeed())
	url := serveCharts(t, "1.0.0")
	e.g.Expect(c.Create(ctx, e.helmRepository("charts", url))).To(Succeed())
	e.g.Expect(c.Create(ctx, e.helmRelease("app", "1.0.0", map[string]any{"greeting": "in-cluster"}))).To(Succeed())

	e.g.Eventually(func() string {
		var hr helmv2.HelmRelease
		if err := c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &hr); err != nil {
			return err.Error()
		}
		r := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		if r == nil || hr.Status.ObservedGeneration != hr.Generation || len(hr.Status.History) == 0 {
			return "not observed: " + readyOf(hr.Status.Conditions)
		}
		return fmt.Sprintf("%s/%s %s %v", r.Status, r.Reason, hr.Status.History[0].VersionedChartName(), hr.Finalizers)
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/InstallSucceeded app@1.0.0 [finalizers.fluxcd.io]"))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(HaveKeyWithValue("greeting", "in-cluster"))
	var hc sourcev1.HelmChart
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: e.ns + "-app"}, &hc)).To(Succeed())
	e.g.Expect(hc.Status.Artifact).NotTo(BeNil())
	e.g.Expect(hc.Labels).To(HaveKeyWithValue("helm.toolkit.fluxcd.io/name", "app"))
	// events lists "Type/Reason revision: message" of the HelmRelease's Events posted as helm-controller.
	events := func(name string) func() []string {
		return func() []string {
			var evs corev1.EventList
			e.g.Expect(c.List(ctx, &evs, client.InNamespace(e.ns))).To(Succeed())
			var got []string
			for _, ev := range evs.Items {
				if ev.InvolvedObject.Kind == "HelmRelease" && ev.InvolvedObject.Name == name && ev.Source.Component == "helm-controller" {
					got = append(got, fmt.Sprintf("%s/%s %s: %s", ev.Type, ev.Reason, ev.Annotations["helm.toolkit.fluxcd.io/revision"], ev.Message))
				}
			}
			return got
		}
	}
	e.g.Eventually(events("app")).WithTimeout(eventually).WithPolling(poll).Should(ContainElement(HavePrefix("Normal/InstallSucceeded 1.0.0: ")))
	// As helm-controller: a trace event (Normal) for the HelmChart it created, and none for the waits
	// on the chart source (SourceNotReady / ArtifactFailed set only the condition).
	e.g.Expect(events("app")()).To(ContainElement(fmt.Sprintf("Normal/HelmChartCreated : Created HelmChart/%s/%s-app with SourceRef 'HelmRepository/%s/charts'", e.ns, e.ns, e.ns)))
	e.g.Expect(events("app")()).NotTo(ContainElement(Or(ContainSubstring("/SourceNotReady"), ContainSubstring("/ArtifactFailed"))))

	// A field the twin does not implement is refused, with the field named.
	bad := e.helmRelease("rendered", "1.0.0", nil, func(h *helmv2.HelmRelease) {
		h.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "spoke"}}
	})
	e.g.Expect(c.Create(ctx, bad)).To(Succeed())
	e.g.Eventually(func() string {
		var hr helmv2.HelmRelease
		e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "rendered"}, &hr)).To(Succeed())
		return readyOf(hr.Status.Conditions)
	}).WithTimeout(eventually).WithPolling(poll).Should(And(HavePrefix("False/UnsupportedByTwin"), ContainSubstring("spec.kubeConfig")))

	// Deleting the HelmRelease uninstalls the release (objects and storage Secrets) and deletes its
	// HelmChart before the finalizer lets the object go.
	var hr helmv2.HelmRelease
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &hr)).To(Succeed())
	e.g.Expect(c.Delete(ctx, &hr)).To(Succeed())
	e.g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &helmv2.HelmRelease{}))
	}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue())
	e.g.Eventually(e.configMapData(e.ns, "app-config")).WithTimeout(eventually).WithPolling(poll).Should(BeNil())
	e.g.Expect(e.releaseSecrets("app")()).To(BeEmpty())
	e.g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: e.ns + "-app"}, &sourcev1.HelmChart{}))
	}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue())
	// The finalizer's events, as helm-controller posts them.
	e.g.Eventually(events("app")).WithTimeout(eventually).WithPolling(poll).Should(ContainElements(
		fmt.Sprintf("Normal/UninstallSucceeded 1.0.0: Helm uninstall succeeded for release %s/app.v1 with chart app@1.0.0", e.ns),
		fmt.Sprintf("Normal/HelmChartDeleted : deleted HelmChart '%s/%s-app'", e.ns, e.ns)))
}
