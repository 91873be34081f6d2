package reconciler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/registry"
	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// hrEvents returns a HelmRelease's events with the given reason, as "type: message".
func (e *env) hrEvents(name, reason string) func() []string {
	return func() []string {
		var out []string
		for _, ev := range e.r.Events() {
			if ev.Kind == reconciler.KindHelmRelease && ev.Namespace == e.ns && ev.Name == name && ev.Reason == reason {
				out = append(out, string(ev.Type)+": "+ev.Message)
			}
		}
		return out
	}
}

// hrDump prints a HelmRelease's events and status, for a failure message.
func (e *env) hrDump(name string) func() string {
	return func() string {
		var b strings.Builder
		for _, ev := range e.r.Events() {
			if ev.Kind == reconciler.KindHelmRelease && ev.Name == name {
				fmt.Fprintf(&b, "%s %s: %s\n", ev.Type, ev.Reason, ev.Message)
			}
		}
		hr, _ := e.r.HelmRelease(e.ns, name)
		for _, c := range hr.Status.Conditions {
			fmt.Fprintf(&b, "%s %s/%s: %s (gen %d)\n", c.Type, c.Status, c.Reason, c.Message, c.ObservedGeneration)
		}
		fmt.Fprintf(&b, "history %v failures %d/%d/%d", e.hrHistory(name)(), hr.Status.Failures, hr.Status.InstallFailures, hr.Status.UpgradeFailures)
		return b.String()
	}
}

// hrCondition returns one condition of a HelmRelease as "Status/Reason: message".
func (e *env) hrCondition(name, typ string) func() string {
	return func() string {
		hr, ok := e.r.HelmRelease(e.ns, name)
		if !ok {
			return "absent"
		}
		return condition(hr.Status.Conditions, typ)
	}
}

// requestReconcile is `flux reconcile hr`: a new reconcile.fluxcd.io/requestedAt annotation.
func (e *env) requestReconcile(hr *helmv2.HelmRelease, at string) {
	e.t.Helper()
	hr = hr.DeepCopy()
	hr.Annotations = map[string]string{meta.ReconcileRequestAnnotation: at}
	e.applyHelm(hr)
	e.g.Eventually(func() string {
		got, _ := e.r.HelmRelease(e.ns, hr.Name)
		return got.Status.LastHandledReconcileAt
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal(at))
}

// testKubelet stands in for the kubelet the tests' API server lacks, for `helm test` pods only: a
// watch on the namespace's pods moves each new test hook pod to the phase its reconciler.test/phase
// annotation names, with its container terminated (exit 0, or 1 when Failed), as a kubelet reports
// a test container that ran. In a twin, the simulated kubelets (twin/cluster/internal/simkubelet)
// run the pods.
func (e *env) testKubelet() {
	e.t.Helper()
	cs, err := kubernetes.NewForConfig(e.cfg)
	e.g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	w, err := cs.CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{})
	e.g.Expect(err).NotTo(HaveOccurred())
	done := make(chan struct{})
	e.t.Cleanup(func() { cancel(); w.Stop(); <-done })
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type != watch.Added || pod.Annotations["helm.sh/hook"] != "test" {
				continue
			}
			phase, code := corev1.PodSucceeded, int32(0)
			if pod.Annotations["reconciler.test/phase"] == string(corev1.PodFailed) {
				phase, code = corev1.PodFailed, 1
			}
			now := metav1.Now()
			pod.Status.Phase = phase
			pod.Status.StartTime = &now
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "test", Image: pod.Spec.Containers[0].Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, StartedAt: now, FinishedAt: now}}}}
			_, _ = cs.CoreV1().Pods(e.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		}
	}()
}

// TestHelmReleaseDriftDetection: with driftDetection enabled, a hand edit of a release's ConfigMap,
// a deleted Service and a scaled Deployment are found at the next reconciliation (DriftDetected) and
// put back (DriftCorrected), except what an ignore rule excludes (the Deployment's replicas); in warn
// mode a drift is only reported (Drifted True, a warning), Ready stays True and the edit stays.
func TestHelmReleaseDriftDetection(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	url := serveCharts(t, "1.0.0")
	drift := func(mode helmv2.DriftDetectionMode) func(*helmv2.HelmRelease) {
		return func(h *helmv2.HelmRelease) {
			h.Spec.DriftDetection = &helmv2.DriftDetection{Mode: mode, Ignore: []helmv2.IgnoreRule{
				{Paths: []string{"/spec/replicas"}, Target: &kustomize.Selector{Kind: "Deployment"}}}}
		}
	}
	hr := e.helmRelease("app", "1.0.0", map[string]any{"greeting": "hello"}, drift(helmv2.DriftDetectionEnabled))
	e.applyHelm(e.helmRepository("charts", url), hr)
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"))
	e.g.Expect(e.hrCondition("app", helmv2.DriftedCondition)()).To(BeEmpty(), "no drift check before the first reconciliation after install")
	// The reconciliations the install set off (the HelmChart's status waking its HelmRelease) are done
	// before the edits, so the one requested below sees all three edits at once.
	e.g.Eventually(e.r.Idle).WithTimeout(eventually).WithPolling(poll).Should(BeTrue())

	// Hand edits: the ConfigMap's data, the Deployment's replicas (ignored), the Service deleted.
	var cm corev1.ConfigMap
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app-config"}, &cm)).To(Succeed())
	cm.Data["greeting"] = "edited by hand"
	e.g.Expect(e.c.Update(ctx, &cm)).To(Succeed())
	var dep appsv1.Deployment
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &dep)).To(Succeed())
	dep.Spec.Replicas = ptr.To[int32](5)
	e.g.Expect(e.c.Update(ctx, &dep)).To(Succeed())
	e.g.Expect(e.c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "app"}})).To(Succeed())

	e.requestReconcile(hr, "1")
	rel := e.ns + "/app.v1"
	e.g.Eventually(e.hrEvents("app", "DriftDetected")).WithTimeout(eventually).WithPolling(poll).Should(ConsistOf(
		"Warning: Cluster state of release " + rel + " has drifted from the desired state:\n" +
			"ConfigMap/" + e.ns + "/app-config changed (0 additions, 1 changes, 0 removals)\n" +
			"Service/" + e.ns + "/app removed"))
	e.g.Eventually(e.hrEvents("app", "DriftCorrected")).WithTimeout(eventually).WithPolling(poll).Should(ConsistOf(
		"Normal: Cluster state of release " + rel + " has been corrected:\n" +
			"Service/" + e.ns + "/app created\nConfigMap/" + e.ns + "/app-config configured"))
	e.g.Eventually(e.hrCondition("app", helmv2.DriftedCondition)).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"False/NoDriftDetected: No drift detected against the cluster state"))
	e.g.Expect(e.hrReady("app")()).To(HavePrefix("True/InstallSucceeded"))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(HaveKeyWithValue("greeting", "hello"))
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &corev1.Service{})).To(Succeed())
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &dep)).To(Succeed())
	e.g.Expect(*dep.Spec.Replicas).To(Equal(int32(5)), "the ignore rule leaves the replicas alone")
	e.g.Expect(e.hrHistory("app")()).To(Equal([]string{"v1 app@1.0.0 deployed"}), "drift is corrected without a new release")

	// warn: reported, not corrected.
	hr = e.helmRelease("app", "1.0.0", map[string]any{"greeting": "hello"}, drift(helmv2.DriftDetectionWarn))
	e.applyHelm(hr)
	e.g.Eventually(func() int64 {
		got, _ := e.r.HelmRelease(e.ns, "app")
		return got.Status.ObservedGeneration
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal(int64(2)))
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app-config"}, &cm)).To(Succeed())
	cm.Data["greeting"] = "edited again"
	e.g.Expect(e.c.Update(ctx, &cm)).To(Succeed())
	e.requestReconcile(hr, "2")
	e.g.Eventually(e.hrCondition("app", helmv2.DriftedCondition)).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/DriftDetected: Cluster state of release " + rel + " has drifted from the desired state:\n" +
			"ConfigMap/" + e.ns + "/app-config changed (0 additions, 1 changes, 0 removals)"))
	e.g.Expect(e.hrEvents("app", "DriftDetected")()).To(HaveLen(2))
	e.g.Expect(e.hrEvents("app", "DriftCorrected")()).To(HaveLen(1))
	e.g.Expect(e.hrReady("app")()).To(HavePrefix("True/"))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(HaveKeyWithValue("greeting", "edited again"))
}

// TestHelmReleasePostRenderers: spec.postRenderers' kustomize patches (strategic merge, and JSON 6902
// with a target) and images change the rendered manifest before Helm applies it; every object
// carries helm-controller's origin labels and spec.commonMetadata; a change of the post-renderers
// alone upgrades the release.
func TestHelmReleasePostRenderers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	url := serveCharts(t, "1.0.0")
	renderers := func(tag string) func(*helmv2.HelmRelease) {
		return func(h *helmv2.HelmRelease) {
			h.Spec.CommonMetadata = &helmv2.CommonMetadata{Labels: map[string]string{"team": "platform"},
				Annotations: map[string]string{"owner": "sre"}}
			h.Spec.PostRenderers = []helmv2.PostRenderer{{Kustomize: &helmv2.Kustomize{
				Patches: []kustomize.Patch{
					{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  labels:\n    patched: strategic\n"},
					{Patch: "- op: add\n  path: /data/extra\n  value: from-json6902\n", Target: &kustomize.Selector{Kind: "ConfigMap", Name: "app-config"}},
				},
				Images: []kustomize.Image{{Name: "registry.example.com/app", NewName: "mirror.example.com/app", NewTag: tag}},
			}}}
		}
	}
	e.applyHelm(e.helmRepository("charts", url), e.helmRelease("app", "1.0.0", nil, renderers("2.0")))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"))

	var dep appsv1.Deployment
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &dep)).To(Succeed())
	e.g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("mirror.example.com/app:2.0"))
	e.g.Expect(dep.Labels).To(And(HaveKeyWithValue("patched", "strategic"), HaveKeyWithValue("team", "platform"),
		HaveKeyWithValue("helm.toolkit.fluxcd.io/name", "app"), HaveKeyWithValue("helm.toolkit.fluxcd.io/namespace", e.ns)))
	e.g.Expect(dep.Annotations).To(HaveKeyWithValue("owner", "sre"))
	e.g.Expect(e.configMapData(e.ns, "app-config")()).To(HaveKeyWithValue("extra", "from-json6902"))
	got, _ := e.r.HelmRelease(e.ns, "app")
	e.g.Expect(got.Status.ObservedPostRenderersDigest).To(HavePrefix("sha256:"))
	e.g.Expect(got.Status.ObservedCommonMetadataDigest).To(HavePrefix("sha256:"))

	// Only the post-renderers change: a new generation, an upgrade.
	e.applyHelm(e.helmRelease("app", "1.0.0", nil, renderers("2.1")))
	e.g.Eventually(e.hrHistory("app")).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		[]string{"v2 app@1.0.0 deployed", "v1 app@1.0.0 superseded"}))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/UpgradeSucceeded"))
	e.g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "app"}, &dep)).To(Succeed())
	e.g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("mirror.example.com/app:2.1"))

	// A patch kustomize cannot apply fails the upgrade, naming the post-renderer.
	e.applyHelm(e.helmRelease("app", "1.0.0", nil, func(h *helmv2.HelmRelease) {
		h.Spec.PostRenderers = []helmv2.PostRenderer{{Kustomize: &helmv2.Kustomize{Patches: []kustomize.Patch{
			{Patch: "- op: replace\n  path: /spec/absent/field\n  value: 1\n", Target: &kustomize.Selector{Kind: "Deployment"}}}}}}
	}))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/UpgradeFailed"), ContainSubstring("kustomize post-renderer")), e.hrDump("app"))
}

// TestHelmReleaseTest: with spec.test enabled, the chart's `helm test` hooks run after the install
// (TestSuccess True, the history entry records each hook's phase); filters leave a hook out; a failing
// test after an upgrade counts as the upgrade's failure and the upgrade remediation rolls it back
// (Remediated True, Ready False); with ignoreFailures a failing test leaves Ready True.
func TestHelmReleaseTest(t *testing.T) {
	e := newEnv(t)
	e.testKubelet()
	url := serveCharts(t, "1.0.0", "1.1.0")
	rollback := helmv2.RollbackRemediationStrategy
	withTest := func(h *helmv2.HelmRelease) {
		h.Spec.Test = &helmv2.Test{Enable: true}
		h.Spec.Upgrade.Remediation = &helmv2.UpgradeRemediation{Strategy: &rollback, RemediateLastFailure: ptr.To(true)}
	}
	e.applyHelm(e.helmRepository("charts", url), e.helmRelease("app", "1.0.0", nil, withTest))
	rel := e.ns + "/app.v1"
	e.g.Eventually(e.hrCondition("app", helmv2.TestSuccessCondition)).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/TestSucceeded: Helm test succeeded for release " + rel + " with chart app@1.0.0: 2 test hooks completed successfully"))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/TestSucceeded: Helm test succeeded for release " + rel + " with chart app@1.0.0: 2 test hooks completed successfully"))
	got, _ := e.r.HelmRelease(e.ns, "app")
	hooks := got.Status.History.Latest().GetTestHooks()
	e.g.Expect(hooks).To(HaveLen(2))
	for _, n := range []string{"app-test-smoke", "app-test-api"} {
		e.g.Expect(hooks).To(HaveKey(n))
		e.g.Expect(hooks[n].Phase).To(Equal("Succeeded"), n)
	}
	e.g.Expect(e.hrEvents("app", helmv2.TestSucceededReason)()).To(HaveLen(1))

	// An upgrade whose api test fails, with the api test filtered out: it passes.
	failAPI := map[string]any{"testPhases": map[string]any{"api": "Failed"}}
	e.applyHelm(e.helmRelease("app", "1.1.0", failAPI, withTest, func(h *helmv2.HelmRelease) {
		h.Spec.Test.Filters = &[]helmv2.Filter{{Name: "app-test-api", Exclude: true}}
	}))
	e.g.Eventually(e.hrCondition("app", helmv2.TestSuccessCondition)).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/TestSucceeded: Helm test succeeded for release " + e.ns + "/app.v2 with chart app@1.1.0: 1 test hook completed successfully"))

	// Without the filter the failing test is the upgrade's failure: rolled back to v2.
	e.applyHelm(e.helmRelease("app", "1.1.0", map[string]any{"testPhases": map[string]any{"api": "Failed"}, "greeting": "v3"}, withTest))
	e.g.Eventually(e.hrCondition("app", helmv2.RemediatedCondition)).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/RollbackSucceeded: Helm rollback to previous release " + e.ns + "/app.v2 with chart app@1.1.0 succeeded"))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/RollbackSucceeded"))
	e.g.Expect(e.hrCondition("app", helmv2.TestSuccessCondition)()).To(And(HavePrefix(
		"False/TestFailed: Helm test failed for release "+e.ns+"/app.v3 with chart app@1.1.0:"), ContainSubstring("app-test-api")))
	e.g.Expect(e.hrHistory("app")()).To(HaveExactElements("v4 app@1.1.0 deployed", "v3 app@1.1.0 superseded", "v2 app@1.1.0 superseded"))
	e.g.Expect(e.hrEvents("app", helmv2.TestFailedReason)()).To(HaveLen(1))
	e.g.Expect(e.hrEvents("app", helmv2.RollbackSucceededReason)()).To(HaveLen(1))
	got, _ = e.r.HelmRelease(e.ns, "app")
	e.g.Expect(got.Status.History[1].GetTestHooks()["app-test-api"].Phase).To(Equal("Failed"))
	e.g.Expect(got.Status.UpgradeFailures).To(Equal(int64(1)))

	// ignoreFailures: the failing test is reported, the release stays Ready.
	e.applyHelm(e.helmRelease("app", "1.1.0", map[string]any{"testPhases": map[string]any{"smoke": "Failed"}}, withTest,
		func(h *helmv2.HelmRelease) { h.Spec.Test.IgnoreFailures = true }))
	e.g.Eventually(e.hrCondition("app", helmv2.TestSuccessCondition)).WithTimeout(eventually).WithPolling(poll).Should(
		HavePrefix("False/TestFailed: Helm test failed for release " + e.ns + "/app.v5"))
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/UpgradeSucceeded"))
}

// TestHelmReleaseRemediation: install remediation (retries 1, uninstall, as install remediation always
// is; the last failure kept) and
// upgrade remediation with strategy uninstall, with helm-controller's conditions, history, events
// and failure counters; once the retries are used up the HelmRelease stalls (RetriesExceeded).
func TestHelmReleaseRemediation(t *testing.T) {
	e := newEnv(t)
	url := serveCharts(t, "1.0.0")
	bad := map[string]any{"configName": "Not_A_Valid_Name"}
	e.applyHelm(e.helmRepository("charts", url), e.helmRelease("app", "1.0.0", bad, func(h *helmv2.HelmRelease) {
		h.Spec.Install.Remediation = &helmv2.InstallRemediation{Retries: 1}
	}))
	e.g.Eventually(e.hrCondition("app", helmv2.RemediatedCondition)).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/UninstallSucceeded: Helm uninstall remediation for release " + e.ns + "/app.v1 with chart app@1.0.0 succeeded"))
	e.g.Expect(e.hrCondition("app", meta.ReconcilingCondition)()).To(HavePrefix("True/ProgressingWithRetry"))
	got, _ := e.r.HelmRelease(e.ns, "app")
	e.g.Expect(got.Status.InstallFailures).To(Equal(int64(1)))
	// The retry comes after the backoff (the fake clock is stepped past it).
	e.g.Eventually(func() string {
		e.stepInterval()
		return e.hrCondition("app", meta.StalledCondition)()
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/RetriesExceeded: Failed to install after 2 attempt(s)"), e.hrDump("app"))
	got, _ = e.r.HelmRelease(e.ns, "app")
	e.g.Expect(got.Status.InstallFailures).To(Equal(int64(2)))
	e.g.Expect(condition(got.Status.Conditions, helmv2.RemediatedCondition)).To(HavePrefix("True/UninstallSucceeded"))
	e.g.Expect(readyOf(got.Status.Conditions)).To(HavePrefix("False/UninstallSucceeded"))
	e.g.Expect(condition(got.Status.Conditions, helmv2.ReleasedCondition)).To(HavePrefix(
		"False/InstallFailed: Helm install failed for release " + e.ns + "/app with chart app@1.0.0"))
	e.g.Expect(e.hrEvents("app", helmv2.InstallFailedReason)()).To(HaveLen(2))
	// The last failure is not remediated (install.remediation.remediateLastFailure is unset): the
	// failed release stays for inspection.
	e.g.Expect(e.hrEvents("app", helmv2.UninstallSucceededReason)()).To(HaveLen(1))
	e.g.Expect(e.hrHistory("app")()).To(HaveExactElements("v1 app@1.0.0 failed"))
	e.g.Expect(e.releaseSecrets("app")()).To(ConsistOf("sh.helm.release.v1.app.v1"))

	// Then an upgrade remediated by uninstall.
	uninstall := helmv2.UninstallRemediationStrategy
	e.applyHelm(e.helmRelease("app", "1.0.0", map[string]any{"greeting": "ok"}, func(h *helmv2.HelmRelease) {
		h.Spec.Upgrade.Remediation = &helmv2.UpgradeRemediation{Strategy: &uninstall, RemediateLastFailure: ptr.To(true)}
	}))
	// A good spec: the failed release is upgraded (its failure counters start again with the new spec).
	e.g.Eventually(e.hrReady("app")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/UpgradeSucceeded"))
	e.applyHelm(e.helmRelease("app", "1.0.0", bad, func(h *helmv2.HelmRelease) {
		h.Spec.Upgrade.Remediation = &helmv2.UpgradeRemediation{Strategy: &uninstall, RemediateLastFailure: ptr.To(true)}
	}))
	e.g.Eventually(e.hrCondition("app", helmv2.RemediatedCondition)).WithTimeout(eventually).WithPolling(poll).Should(MatchRegexp(
		`^True/UninstallSucceeded: Helm uninstall remediation for release %s/app\.v\d+ with chart app@1\.0\.0 succeeded$`, e.ns), e.hrDump("app"))
	// Helm's uninstall deletes the objects of the failed release's manifest (the Deployment; not the
	// ConfigMap the failed upgrade renamed) and its storage.
	e.g.Eventually(func() bool {
		return apierrors.IsNotFound(e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "app"}, &appsv1.Deployment{}))
	}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue())
	e.g.Expect(e.releaseSecrets("app")()).To(BeEmpty())
	e.g.Expect(e.hrEvents("app", helmv2.UpgradeFailedReason)()).NotTo(BeEmpty())
}

// TestHelmReleaseCRDPolicies: install.crds Create installs the chart's crds/ (Helm's own install);
// upgrade.crds Skip (the default) leaves the CRD as it is, Create adds only missing CRDs, and
// CreateReplace replaces the CRD with the new chart version's.
func TestHelmReleaseCRDPolicies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	group := e.ns + ".reconciler.test"
	url := serveChartDir(t, "crds", []string{"1.0.0", "1.1.0", "1.2.0"}, func(data []byte, version string) []byte {
		s := strings.ReplaceAll(string(data), "WIDGETVERSION", "wv"+strings.ReplaceAll(version, ".", ""))
		return []byte(strings.ReplaceAll(s, "GROUP", group))
	})
	crd := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiextensions.k8s.io/v1")
		u.SetKind("CustomResourceDefinition")
		u.SetName("widgets." + group)
		return u
	}
	crdShortName := func() string {
		u := crd()
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			return err.Error()
		}
		names, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "names", "shortNames")
		return strings.Join(names, ",")
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), crd()) })
	policy := func(in, up helmv2.CRDsPolicy) func(*helmv2.HelmRelease) {
		return func(h *helmv2.HelmRelease) {
			h.Spec.Chart.Spec.Chart = "crds"
			values := map[string]any{}
			if h.Spec.Values != nil {
				e.g.Expect(json.Unmarshal(h.Spec.Values.Raw, &values)).To(Succeed())
			}
			values["group"] = group
			b, err := json.Marshal(values)
			e.g.Expect(err).NotTo(HaveOccurred())
			h.Spec.Values = &apiextensionsv1.JSON{Raw: b}
			h.Spec.Install.CRDs, h.Spec.Upgrade.CRDs = in, up
		}
	}
	e.applyHelm(e.helmRepository("charts", url), e.helmRelease("w", "1.0.0", nil, policy(helmv2.Create, "")))
	e.g.Eventually(e.hrReady("w")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"))
	e.g.Expect(crdShortName()).To(Equal("wv100"))

	e.applyHelm(e.helmRelease("w", "1.1.0", nil, policy(helmv2.Create, helmv2.Skip)))
	e.g.Eventually(e.hrReady("w")).WithTimeout(eventually).WithPolling(poll).Should(ContainSubstring("crds@1.1.0"))
	e.g.Expect(crdShortName()).To(Equal("wv100"), "Skip leaves the CRD alone")

	e.applyHelm(e.helmRelease("w", "1.1.0", map[string]any{"size": 2}, policy(helmv2.Create, helmv2.Create)))
	e.g.Eventually(e.hrHistory("w")).WithTimeout(eventually).WithPolling(poll).Should(HaveLen(2))
	e.g.Eventually(e.hrReady("w")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/UpgradeSucceeded"))
	e.g.Expect(crdShortName()).To(Equal("wv100"), "Create does not replace an existing CRD")

	e.applyHelm(e.helmRelease("w", "1.2.0", nil, policy(helmv2.Create, helmv2.CreateReplace)))
	e.g.Eventually(e.hrReady("w")).WithTimeout(eventually).WithPolling(poll).Should(ContainSubstring("crds@1.2.0"))
	e.g.Expect(crdShortName()).To(Equal("wv120"), "CreateReplace replaces it")
}

// TestHelmReleaseValidation: bad values of the honoured fields, and the fields still refused, are
// refused naming the field; the honoured fields together are accepted.
func TestHelmReleaseValidation(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		mutate func(*helmv2.HelmRelease)
		field  string
	}{
		"drift mode": {func(h *helmv2.HelmRelease) { h.Spec.DriftDetection = &helmv2.DriftDetection{Mode: "sometimes"} }, "spec.driftDetection.mode"},
		"ignore no paths": {func(h *helmv2.HelmRelease) {
			h.Spec.DriftDetection = &helmv2.DriftDetection{Ignore: []helmv2.IgnoreRule{{}}}
		}, "spec.driftDetection.ignore[0].paths"},
		"ignore bad regex": {func(h *helmv2.HelmRelease) {
			h.Spec.DriftDetection = &helmv2.DriftDetection{Ignore: []helmv2.IgnoreRule{{Paths: []string{"/a"}, Target: &kustomize.Selector{Name: "("}}}}
		}, "spec.driftDetection.ignore"},
		"empty patch": {func(h *helmv2.HelmRelease) {
			h.Spec.PostRenderers = []helmv2.PostRenderer{{Kustomize: &helmv2.Kustomize{Patches: []kustomize.Patch{{}}}}}
		}, "spec.postRenderers[0].kustomize.patches[0].patch"},
		"test filter":   {func(h *helmv2.HelmRelease) { h.Spec.Test = &helmv2.Test{Enable: true, Filters: &[]helmv2.Filter{{}}} }, "spec.test.filters[0].name"},
		"wait strategy": {func(h *helmv2.HelmRelease) { h.Spec.WaitStrategy = &helmv2.WaitStrategy{Name: "watcher"} }, "spec.waitStrategy.name"},
		"kubeConfig": {func(h *helmv2.HelmRelease) {
			h.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "spoke"}}
		}, "spec.kubeConfig"},
		"render strategy": {func(h *helmv2.HelmRelease) { h.Spec.PostRenderStrategy = "later" }, "spec.postRenderStrategy"},
	} {
		err := e.r.ApplyHelmRelease(e.helmRelease("v", "1.0.0", nil, tc.mutate))
		e.g.Expect(err).To(MatchError(reconciler.ErrInvalid), name)
		e.g.Expect(err.Error()).To(ContainSubstring(tc.field), name)
	}
	// Everything honoured is accepted.
	e.g.Expect(e.r.ApplyHelmRelease(e.helmRelease("ok", "1.0.0", nil, func(h *helmv2.HelmRelease) {
		h.Spec.DriftDetection = &helmv2.DriftDetection{Mode: helmv2.DriftDetectionWarn}
		h.Spec.Test = &helmv2.Test{Enable: true}
		h.Spec.PostRenderers = []helmv2.PostRenderer{{Kustomize: &helmv2.Kustomize{Images: []kustomize.Image{{Name: "a", NewTag: "b"}}}}}
		h.Spec.CommonMetadata = &helmv2.CommonMetadata{Labels: map[string]string{"a": "b"}}
		h.Spec.PostRenderStrategy = helmv2.PostRenderStrategySeparate
	}))).To(Succeed())
}

// pushChart packages testdata/charts/app at version and pushes it to the registry as
// oci://<host>/<repo>/app:<version> with the Helm SDK's registry client, as `helm push` (and the
// twin's chart mirror) do.
func pushChart(t *testing.T, reg *registry.Registry, repo, version string) {
	t.Helper()
	ch, err := loader.LoadDir(filepath.Join("testdata", "charts", "app"))
	if err != nil {
		t.Fatal(err)
	}
	ch.Metadata.Version = version
	dir := t.TempDir()
	p, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP(), helmregistry.ClientOptWriter(io.Discard),
		helmregistry.ClientOptCredentialsFile(filepath.Join(dir, "registry-config.json")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(data, reg.Host()+"/"+repo+"/app:"+version, helmregistry.PushOptStrictMode(true)); err != nil {
		t.Fatal(err)
	}
}

// TestHelmChartSources: the chart of a HelmRelease from an OCI HelmRepository (type oci, the newest
// version in a semver range, from the twin's registry), from a GitRepository's chart folder (packaged,
// ChartPackageSucceeded), and from an OCIRepository by spec.chartRef (the chart layer copied).
func TestHelmChartSources(t *testing.T) {
	e := newEnv(t)
	reg, err := registry.Start(context.Background(), registry.Options{Dir: t.TempDir()})
	e.g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	repo := "charts/" + e.ns
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		pushChart(t, reg, repo, v)
	}

	// An OCI HelmRepository.
	e.applyHelm(&sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "oci", Namespace: e.ns},
		Spec: sourcev1.HelmRepositorySpec{Type: sourcev1.HelmRepositoryTypeOCI, URL: "oci://" + reg.Host() + "/" + repo, Insecure: true,
			Interval: metav1.Duration{Duration: 10 * time.Minute}},
	}, e.helmRelease("from-oci", "1.x", map[string]any{"greeting": "oci"}, func(h *helmv2.HelmRelease) {
		h.Spec.Chart.Spec.SourceRef.Name = "oci"
	}))
	e.g.Eventually(e.hrReady("from-oci")).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/InstallSucceeded: Helm install succeeded for release " + e.ns + "/from-oci.v1 with chart app@1.1.0"))
	e.g.Expect(e.configMapData(e.ns, "from-oci-config")()).To(HaveKeyWithValue("greeting", "oci"))
	hc, _ := e.r.HelmChart(e.ns, e.ns+"-from-oci")
	e.g.Expect(readyOf(hc.Status.Conditions)).To(Equal("True/ChartPullSucceeded: pulled 'app' chart with version '1.1.0'"))

	// A chart folder in Git.
	files := map[string]string{}
	root := filepath.Join("testdata", "charts", "app")
	e.g.Expect(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files["charts/app/"+filepath.ToSlash(rel)] = string(b)
		return err
	})).To(Succeed())
	e.commit(files)
	e.apply(e.gitRepository("repo"))
	e.applyHelm(e.helmRelease("from-git", "", map[string]any{"greeting": "git"}, func(h *helmv2.HelmRelease) {
		h.Spec.Chart.Spec.Chart = "./charts/app"
		h.Spec.Chart.Spec.SourceRef = helmv2.CrossNamespaceObjectReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}
	}))
	e.g.Eventually(e.hrReady("from-git")).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/InstallSucceeded: Helm install succeeded for release " + e.ns + "/from-git.v1 with chart app@1.0.0"))
	hc, _ = e.r.HelmChart(e.ns, e.ns+"-from-git")
	e.g.Expect(readyOf(hc.Status.Conditions)).To(Equal("True/ChartPackageSucceeded: packaged 'app' chart with version '1.0.0'"))
	e.g.Expect(e.configMapData(e.ns, "from-git-config")()).To(HaveKeyWithValue("greeting", "git"))

	// An OCIRepository of the chart, by chartRef.
	ocir := e.ociRepository("app-chart", "oci://"+reg.Host()+"/"+repo+"/app")
	ocir.Spec.Reference = &sourcev1.OCIRepositoryRef{SemVer: ">=2.0.0"}
	ocir.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
		Operation: sourcev1.OCILayerCopy}
	e.apply(ocir)
	e.applyHelm(e.helmRelease("from-ref", "", nil, func(h *helmv2.HelmRelease) {
		h.Spec.Chart = nil
		h.Spec.ChartRef = &helmv2.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "app-chart"}
	}))
	e.g.Eventually(e.hrReady("from-ref")).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		"True/InstallSucceeded: Helm install succeeded for release " + e.ns + "/from-ref.v1 with chart app@2.0.0"))
	got, _ := e.r.HelmRelease(e.ns, "from-ref")
	e.g.Expect(got.Status.HelmChart).To(BeEmpty())
	e.g.Expect(e.configMapData(e.ns, "from-ref-config")()).To(HaveKeyWithValue("chartVersion", "2.0.0"))
}

// TestHelmReleaseCEL: a dependsOn entry's readyExpr replaces the built-in readiness check of that
// dependency (helm-controller without its AdditiveCELDependencyCheck gate); spec.healthCheckExprs
// decide the health of the kinds they name during Helm's wait (poller strategy); an invalid
// expression stalls the HelmRelease with InvalidCELExpression until its spec changes.
func TestHelmReleaseCEL(t *testing.T) {
	e := newEnv(t)
	url := serveCharts(t, "1.0.0")
	base := func(greeting string) *helmv2.HelmRelease {
		return e.helmRelease("base", "1.0.0", map[string]any{"greeting": greeting})
	}
	dependent := func(expr string) *helmv2.HelmRelease {
		return e.helmRelease("dependent", "1.0.0", nil, func(h *helmv2.HelmRelease) {
			h.Spec.DependsOn = []helmv2.DependencyReference{{Name: "base", ReadyExpr: expr}}
		})
	}
	ready := `dep.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True') && dep.spec.values.greeting == 'ready'`
	e.applyHelm(e.helmRepository("charts", url), base("hello"), dependent(ready))
	e.g.Eventually(e.hrReady("base")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"))
	// base is Ready, but the expression wants more than the built-in check.
	e.g.Eventually(e.hrReady("dependent")).WithTimeout(eventually).WithPolling(poll).Should(Equal(
		fmt.Sprintf("False/DependencyNotReady: dependency '%s/base' is not ready according to readyExpr eval", e.ns)))
	e.applyHelm(base("ready"))
	e.g.Eventually(e.hrReady("dependent")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"))

	// An expression that does not compile stalls the dependent, with helm-controller's terminal message.
	e.applyHelm(dependent("dep.status.nosuchfunction("))
	e.g.Eventually(e.hrCondition("dependent", meta.StalledCondition)).WithTimeout(eventually).WithPolling(poll).Should(
		HavePrefix("True/InvalidCELExpression: Reconciliation failed terminally due to configuration error: failed to evaluate dependency base: "))
	e.g.Expect(e.hrReady("dependent")()).To(HavePrefix("False/InvalidCELExpression: "))
	e.g.Expect(e.hrEvents("dependent", meta.InvalidCELExpressionReason)()).To(HaveLen(1))

	// Health checks: with the wait on, the chart's Deployment never becomes current in this API server
	// (no controller-manager), so a release waits for it -- unless a CEL health check says it is
	// current, or fails it at once.
	withChecks := func(name string, hc kustomize.HealthCheckExpressions) *helmv2.HelmRelease {
		return e.helmRelease(name, "1.0.0", nil, func(h *helmv2.HelmRelease) {
			h.Spec.Install = &helmv2.Install{}
			h.Spec.Timeout = &metav1.Duration{Duration: 20 * time.Second}
			h.Spec.HealthCheckExprs = []kustomize.CustomHealthCheck{{APIVersion: "apps/v1", Kind: "Deployment", HealthCheckExpressions: hc}}
		})
	}
	e.applyHelm(withChecks("healthy", kustomize.HealthCheckExpressions{Current: "metadata.name == 'healthy'"}))
	e.g.Eventually(e.hrReady("healthy")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"), e.hrDump("healthy"))
	e.applyHelm(withChecks("unhealthy", kustomize.HealthCheckExpressions{Current: "false", Failed: "metadata.name == 'unhealthy'"}))
	e.g.Eventually(e.hrCondition("unhealthy", helmv2.ReleasedCondition)).WithTimeout(eventually).WithPolling(poll).Should(
		HavePrefix("False/InstallFailed: Helm install failed for release "+e.ns+"/unhealthy with chart app@1.0.0"), e.hrDump("unhealthy"))
	e.applyHelm(withChecks("invalid", kustomize.HealthCheckExpressions{Current: "metadata.name =="}))
	e.g.Eventually(e.hrCondition("invalid", meta.StalledCondition)).WithTimeout(eventually).WithPolling(poll).Should(
		HavePrefix("True/InvalidCELExpression: Reconciliation failed terminally due to configuration error: "))

	// spec.waitStrategy: poller and legacy are accepted; anything else is refused with the field named.
	err := e.r.ApplyHelmRelease(e.helmRelease("strategy", "1.0.0", nil, func(h *helmv2.HelmRelease) {
		h.Spec.WaitStrategy = &helmv2.WaitStrategy{Name: "watcher"}
	}))
	e.g.Expect(err).To(MatchError(ContainSubstring(`spec.waitStrategy.name: "watcher" must be poller or legacy`)))
	e.applyHelm(e.helmRelease("legacy", "1.0.0", nil, func(h *helmv2.HelmRelease) {
		h.Spec.WaitStrategy = &helmv2.WaitStrategy{Name: helmv2.WaitStrategyLegacy}
	}))
	e.g.Eventually(e.hrReady("legacy")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/InstallSucceeded"))
}
