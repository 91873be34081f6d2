package flux_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/twin/chartmirror"
	"github.com/hybridtwin/hybridtwin/twin/flux"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

var (
	helmRepositories = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "helmrepositories"}
	helmReleases     = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
)

// Real helm-controller and source-controller install HelmReleases whose HelmRepositories name upstream
// URLs, unchanged, from the twin's chart mirror: an https:// Helm repository and an oci:// registry
// resolve through the mirror's proxy (the controllers get its Env), and a URL nobody mirrored leaves its
// HelmRepository not Ready with a message naming spec.charts, at once.
func TestFluxHelmReleaseFromMirroredRepositories(t *testing.T) {
	requireFluxTests(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	name := "flux-helm-" + suffix()
	info, cfg, kube := testCluster(ctx, t, name)
	reg, err := registry.Start(ctx, registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Stop(context.Background()) }()
	chart := filepath.Join("testdata", "charts", "hello")
	mirror, err := chartmirror.Start(ctx, chartmirror.Options{Dir: t.TempDir(), Registry: reg.Host(), Sources: []chartmirror.Source{
		{URL: "https://stefanprodan.github.io/podinfo", Charts: []string{chart}},
		{URL: "oci://ghcr.io/stefanprodan/charts", Charts: []string{chart}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mirror.Stop(context.Background()) }()

	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: info.Kubeconfig, StateDir: t.TempDir(), Env: mirror.Env()})
	if err != nil {
		t.Fatalf("start flux: %v", err)
	}
	defer func() { _ = ctl.Stop() }()
	procs := ctl.Processes()
	g.Expect(procs).To(HaveLen(3))
	g.Expect(procs[2].Name).To(Equal("helm-controller"))

	ns := "helm-" + suffix()
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	dyn := dynamic.NewForConfigOrDie(cfg)
	create := func(gvr schema.GroupVersionResource, doc string) {
		t.Helper()
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, &obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	repository := func(name, url, typ string) string {
		return fmt.Sprintf("apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: %s}\nspec: {url: %q, type: %s, interval: 1m}\n", name, url, typ)
	}
	// disableWait: the release's ConfigMap needs no waiting, and helm-controller's wait would poll
	// resources' readiness the test does not look at.
	release := func(name, repo, greeting string) string {
		return fmt.Sprintf(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: %s}
spec:
  interval: 1m
  chart:
    spec:
      chart: hello
      version: "0.1.0"
      interval: 1m
      sourceRef: {kind: HelmRepository, name: %s}
  install: {disableWait: true}
  upgrade: {disableWait: true}
  values: {greeting: %s}
`, name, repo, greeting)
	}
	ready := func(gvr schema.GroupVersionResource, name string) func() string {
		return func() string { return readyCondition(ctx, dyn, gvr, ns, name) }
	}
	greeting := func(release string) func() string {
		return func() string {
			cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, release+"-hello", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			return cm.Data["greeting"]
		}
	}

	create(helmRepositories, repository("podinfo", "https://stefanprodan.github.io/podinfo", "default"))
	create(helmRepositories, repository("podinfo-oci", "oci://ghcr.io/stefanprodan/charts", "oci"))
	create(helmRepositories, repository("bitnami", "https://charts.bitnami.com/bitnami", "default"))
	create(helmReleases, release("from-https", "podinfo", "https"))
	create(helmReleases, release("from-oci", "podinfo-oci", "oci"))

	// The https:// repository: source-controller fetched the mirrored index at the unchanged URL, and
	// helm-controller installed the chart with the release's values.
	g.Eventually(ready(helmRepositories, "podinfo")).WithTimeout(settle).WithPolling(poll).Should(HavePrefix("True"), "logs: %s", logsHint(procs))
	g.Eventually(ready(helmReleases, "from-https")).WithTimeout(settle).WithPolling(poll).Should(HavePrefix("True"), "logs: %s", logsHint(procs))
	g.Expect(greeting("from-https")()).To(Equal("https"))
	// The oci:// repository: the chart pulled from the twin's registry at ghcr.io's name.
	g.Eventually(ready(helmReleases, "from-oci")).WithTimeout(settle).WithPolling(poll).Should(HavePrefix("True"), "logs: %s", logsHint(procs))
	g.Expect(greeting("from-oci")()).To(Equal("oci"))
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "from-oci-hello", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(managers(cm.ManagedFields)).To(ContainElement("helm-controller"))

	// The repository nobody mirrored fails with the mirror's message, not a network timeout.
	g.Eventually(ready(helmRepositories, "bitnami")).WithTimeout(settle).WithPolling(poll).Should(And(
		HavePrefix("False"), ContainSubstring("https://charts.bitnami.com is not mirrored"), ContainSubstring("spec.charts")))
}

// readyCondition is "True", or "False: <reason>: <message>", of an object's Ready condition.
func readyCondition(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) string {
	obj, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			return fmt.Sprintf("%v: %v: %v", m["status"], m["reason"], m["message"])
		}
	}
	return "no Ready condition yet"
}
