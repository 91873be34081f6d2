package reconciler_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
)

var (
	crdOnce sync.Once
	crdErr  error
)

// inClusterEnv is a test world whose reconciler runs on Flux's objects in the API server (Flux's CRDs
// from the pinned modules, installed once for the package), with a client that reads them.
func inClusterEnv(t *testing.T, opts ...func(*reconciler.Options)) (*env, client.Client) {
	t.Helper()
	crdOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, crdErr = fluxcrd.Install(ctx, testenv.SharedAPIServer(t), nil, nil)
	})
	if crdErr != nil {
		t.Fatalf("install Flux's CRDs: %v", crdErr)
	}
	e := newEnv(t, append([]func(*reconciler.Options){func(o *reconciler.Options) { o.ObjectsInCluster = true }}, opts...)...)
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, sourcev1.AddToScheme, kustomizev1.AddToScheme} {
		e.g.Expect(add(s)).To(Succeed())
	}
	c, err := client.New(e.cfg, client.Options{Scheme: s})
	e.g.Expect(err).NotTo(HaveOccurred())
	return e, c
}

// fluxKustomization is a Kustomization object as a repository holds it.
func fluxKustomization(ns, name, path string, extra string) string {
	return fmt.Sprintf(`apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: %s
  namespace: %s
spec:
  interval: 10m
  retryInterval: 1h
  path: %s
  prune: true
  sourceRef:
    kind: GitRepository
    name: repo
%s`, name, ns, path, extra)
}

// clusterReady reads a Kustomization from the API server: "Status/Reason" of its Ready condition once it
// is for the object's generation, the revision it applied.
func clusterReady(c client.Client, ns, name string) func() string {
	return func() string {
		var k kustomizev1.Kustomization
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &k); err != nil {
			return err.Error()
		}
		r := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
		if r == nil || r.ObservedGeneration != k.Generation {
			return "not observed"
		}
		return fmt.Sprintf("%s/%s %s", r.Status, r.Reason, k.Status.LastAppliedRevision)
	}
}

// TestInClusterBootstrapLayout: the layout every `flux bootstrap` writes -- a cluster folder of
// Kustomization objects (infrastructure, and apps depending on it) synced by one root Kustomization --
// converges when the reconciler works on the objects in the cluster: the nested Kustomizations that
// the root applies are reconciled too, each object's status is in Flux's shape on the API server,
// events are Kubernetes Events from kustomize-controller, and deleting the root prunes everything
// through Flux's finalizer.
func TestInClusterBootstrapLayout(t *testing.T) {
	e, c := inClusterEnv(t)
	ctx := context.Background()
	sha := e.commit(map[string]string{
		"clusters/staging/infrastructure.yaml": fluxKustomization(e.ns, "infrastructure", "./infrastructure", "  wait: true\n"),
		"clusters/staging/apps.yaml": fluxKustomization(e.ns, "apps", "./apps/staging",
			"  dependsOn:\n    - name: infrastructure\n"),
		"infrastructure/settings.yaml": configMap(e.ns, "infra-settings", map[string]string{"tier": "infra"}),
		"apps/staging/app.yaml":        configMap(e.ns, "app", map[string]string{"env": "staging"}),
	})
	e.g.Expect(c.Create(ctx, e.gitRepository("repo"))).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("root", "./clusters/staging"))).To(Succeed())

	want := "True/ReconciliationSucceeded main@sha1:" + sha
	for _, name := range []string{"root", "infrastructure", "apps"} {
		e.g.Eventually(clusterReady(c, e.ns, name)).WithTimeout(eventually).WithPolling(poll).Should(Equal(want), name)
	}
	e.g.Expect(e.configMapData(e.ns, "infra-settings")()).To(HaveKeyWithValue("tier", "infra"))
	e.g.Expect(e.configMapData(e.ns, "app")()).To(HaveKeyWithValue("env", "staging"))

	// Status in Flux's shape on the API server: the source's artifact, the root's inventory holding the
	// nested Kustomizations, Flux's finalizer on every object.
	var repo sourcev1.GitRepository
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "repo"}, &repo)).To(Succeed())
	e.g.Expect(repo.Status.Artifact).NotTo(BeNil())
	e.g.Expect(repo.Status.Artifact.Revision).To(Equal("main@sha1:" + sha))
	e.g.Expect(repo.Status.ObservedGeneration).To(Equal(repo.Generation))
	e.g.Expect(apimeta.IsStatusConditionTrue(repo.Status.Conditions, sourcev1.ArtifactInStorageCondition)).To(BeTrue())
	e.g.Expect(repo.Finalizers).To(ContainElement("finalizers.fluxcd.io"))
	var root kustomizev1.Kustomization
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "root"}, &root)).To(Succeed())
	e.g.Expect(root.Finalizers).To(ContainElement("finalizers.fluxcd.io"))
	e.g.Expect(root.Status.LastAttemptedRevision).To(Equal("main@sha1:" + sha))
	e.g.Expect(root.Status.Inventory).NotTo(BeNil())
	var ids []string
	for _, en := range root.Status.Inventory.Entries {
		ids = append(ids, en.ID)
	}
	e.g.Expect(ids).To(ConsistOf(
		e.ns+"_apps_kustomize.toolkit.fluxcd.io_Kustomization",
		e.ns+"_infrastructure_kustomize.toolkit.fluxcd.io_Kustomization"))

	// Kubernetes Events from kustomize-controller with Flux's reasons and revision annotation.
	e.g.Eventually(func() []string {
		var evs corev1.EventList
		e.g.Expect(c.List(ctx, &evs, client.InNamespace(e.ns))).To(Succeed())
		var got []string
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "Kustomization" && ev.Source.Component == "kustomize-controller" &&
				ev.Annotations["kustomize.toolkit.fluxcd.io/revision"] == "main@sha1:"+sha {
				got = append(got, ev.InvolvedObject.Name+"/"+ev.Reason)
			}
		}
		return got
	}).WithTimeout(eventually).WithPolling(poll).Should(ContainElements(
		"root/ReconciliationSucceeded", "infrastructure/ReconciliationSucceeded", "apps/ReconciliationSucceeded"))

	// `flux reconcile ks apps`: the requestedAt annotation is handled and recorded in status.
	var apps kustomizev1.Kustomization
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "apps"}, &apps)).To(Succeed())
	patch := client.MergeFrom(apps.DeepCopy())
	apps.Annotations = map[string]string{meta.ReconcileRequestAnnotation: "2026-12-07T11:00:00Z"}
	e.g.Expect(c.Patch(ctx, &apps, patch)).To(Succeed())
	e.g.Eventually(func() string {
		var k kustomizev1.Kustomization
		e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "apps"}, &k)).To(Succeed())
		return k.Status.LastHandledReconcileAt
	}).WithTimeout(eventually).WithPolling(poll).Should(Equal("2026-12-07T11:00:00Z"))

	// Deleting the root (prune: true) deletes the nested Kustomizations, which prune their objects; each
	// object goes once Flux's finalizer is removed.
	e.g.Expect(c.Delete(ctx, &root)).To(Succeed())
	for _, name := range []string{"root", "infrastructure", "apps"} {
		e.g.Eventually(func() bool {
			err := c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, &kustomizev1.Kustomization{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue(), "Kustomization %s still exists", name)
	}
	e.g.Eventually(e.configMapData(e.ns, "infra-settings")).WithTimeout(eventually).WithPolling(poll).Should(BeNil())
	e.g.Eventually(e.configMapData(e.ns, "app")).WithTimeout(eventually).WithPolling(poll).Should(BeNil())
}

// TestInClusterRefusalIsStatus: an object the twin's reconciler does not implement is not dropped
// silently: its status says Ready False, Stalled True with reason UnsupportedByTwin naming the field, and
// a Warning event says the same.
func TestInClusterRefusalIsStatus(t *testing.T) {
	e, c := inClusterEnv(t)
	ctx := context.Background()
	k := e.kustomization("spoke", "./apps")
	k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops"}
	e.g.Expect(c.Create(ctx, k)).To(Succeed())
	e.g.Eventually(func() []string {
		var got kustomizev1.Kustomization
		e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "spoke"}, &got)).To(Succeed())
		var out []string
		for _, cond := range got.Status.Conditions {
			if cond.ObservedGeneration == got.Generation && slices.Contains([]string{meta.ReadyCondition, meta.StalledCondition}, cond.Type) {
				out = append(out, fmt.Sprintf("%s=%s/%s", cond.Type, cond.Status, cond.Reason))
				e.g.Expect(cond.Message).To(ContainSubstring("spec.decryption"))
			}
		}
		return out
	}).WithTimeout(eventually).WithPolling(poll).Should(ConsistOf("Ready=False/UnsupportedByTwin", "Stalled=True/UnsupportedByTwin"))
	e.g.Eventually(func() []string {
		var evs corev1.EventList
		e.g.Expect(c.List(ctx, &evs, client.InNamespace(e.ns))).To(Succeed())
		var got []string
		for _, ev := range evs.Items {
			got = append(got, ev.Type+"/"+ev.Reason)
		}
		return got
	}).WithTimeout(eventually).WithPolling(poll).Should(ContainElement("Warning/UnsupportedByTwin"))

	// An accepted Kustomization updated to an unsupported spec: the refusal stands for the new generation
	// (the previous spec is not reconciled on and does not overwrite it), and what was applied stays.
	sha := e.commit(map[string]string{"apps/cm.yaml": configMap(e.ns, "kept", map[string]string{"k": "v"})})
	e.g.Expect(c.Create(ctx, e.gitRepository("repo"))).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("hub", "./apps"))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "hub")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha))
	var hub kustomizev1.Kustomization
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "hub"}, &hub)).To(Succeed())
	patch := client.MergeFrom(hub.DeepCopy())
	hub.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops"}
	e.g.Expect(c.Patch(ctx, &hub, patch)).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "hub")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/UnsupportedByTwin"))
	e.g.Expect(e.r.RequestReconcile("Kustomization", e.ns, "hub")).To(MatchError(reconciler.ErrNotFound))
	e.waitIdle()
	e.g.Expect(clusterReady(c, e.ns, "hub")()).To(HavePrefix("False/UnsupportedByTwin"))
	e.g.Expect(e.configMapData(e.ns, "kept")()).To(HaveKeyWithValue("k", "v"))
}

// TestInClusterRestartPrunesFromTheInventory: a reconciler that starts on a cluster where another one
// (a twin before a restart, or real Flux) already applied a Kustomization takes over its status.inventory,
// as Flux does: an object removed from Git while no reconciler ran is pruned at the next apply.
func TestInClusterRestartPrunesFromTheInventory(t *testing.T) {
	e, c := inClusterEnv(t)
	ctx := context.Background()
	sha := e.commit(map[string]string{
		"apps/a.yaml": configMap(e.ns, "a", map[string]string{"k": "a"}),
		"apps/b.yaml": configMap(e.ns, "b", map[string]string{"k": "b"}),
	})
	e.g.Expect(c.Create(ctx, e.gitRepository("repo"))).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("apps", "./apps"))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "apps")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha))
	e.r.Stop()

	sha2 := e.commit(nil, "apps/b.yaml")
	next, err := reconciler.New(e.cfg, reconciler.Options{Cluster: e.ns, WorkDir: t.TempDir(), Clock: e.clk, ObjectsInCluster: true})
	e.g.Expect(err).NotTo(HaveOccurred())
	rctx, cancel := context.WithCancel(context.Background())
	e.g.Expect(next.Start(rctx)).To(Succeed())
	t.Cleanup(func() { cancel(); next.Stop() })

	e.g.Eventually(clusterReady(c, e.ns, "apps")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha2))
	e.g.Eventually(e.configMapData(e.ns, "b")).WithTimeout(eventually).WithPolling(poll).Should(BeNil(), "b, removed from Git while no reconciler ran, was not pruned")
	e.g.Expect(e.configMapData(e.ns, "a")()).To(HaveKeyWithValue("k", "a"))
}

// TestInClusterWatchLabelSelector: with a watch label selector the reconciler takes only the Flux objects
// whose labels match, as Flux's controllers do with --watch-label-selector (sharding); the others get
// neither a finalizer nor a status from it.
func TestInClusterWatchLabelSelector(t *testing.T) {
	e, c := inClusterEnv(t, func(o *reconciler.Options) { o.WatchLabelSelector = "sharding.fluxcd.io/key=twin" })
	ctx := context.Background()
	sha := e.commit(map[string]string{"app/cm.yaml": configMap(e.ns, "mine", map[string]string{"shard": "twin"})})
	mine := map[string]string{"sharding.fluxcd.io/key": "twin"}
	repo := e.gitRepository("repo")
	repo.Labels = mine
	e.g.Expect(c.Create(ctx, repo)).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("mine", "./app", func(k *kustomizev1.Kustomization) { k.Labels = mine }))).To(Succeed())
	other := e.gitRepository("other-repo")
	other.Labels = map[string]string{"sharding.fluxcd.io/key": "flux"}
	e.g.Expect(c.Create(ctx, other)).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("other", "./app", func(k *kustomizev1.Kustomization) { k.Spec.SourceRef.Name = "other-repo" }))).To(Succeed())

	e.g.Eventually(clusterReady(c, e.ns, "mine")).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha))
	untouched := func() string {
		var k kustomizev1.Kustomization
		var r sourcev1.GitRepository
		e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "other"}, &k)).To(Succeed())
		e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "other-repo"}, &r)).To(Succeed())
		return fmt.Sprintf("ks finalizers %v conditions %d; repo finalizers %v conditions %d", k.Finalizers, len(k.Status.Conditions), r.Finalizers, len(r.Status.Conditions))
	}
	e.g.Consistently(untouched).WithTimeout(time.Second).WithPolling(poll).Should(Equal("ks finalizers [] conditions 0; repo finalizers [] conditions 0"))
}

// TestInClusterKubeConfigRemoteCluster: the hub-and-spoke layout. A Kustomization on the hub with
// spec.kubeConfig applies to the spoke whose kubeconfig the Secret holds (key "value", as Flux reads it):
// its objects land on the spoke and not on the hub, its status and inventory stay on the hub, and
// deleting it prunes them from the spoke. A missing Secret is a failure that names it.
func TestInClusterKubeConfigRemoteCluster(t *testing.T) {
	e, c := inClusterEnv(t)
	ctx := context.Background()
	spoke := testenv.APIServer(t)
	spokeKube := kubernetes.NewForConfigOrDie(spoke)
	_, err := spokeKube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{})
	e.g.Expect(err).NotTo(HaveOccurred())
	sha := e.commit(map[string]string{"spoke/cm.yaml": configMap(e.ns, "on-spoke", map[string]string{"cluster": "spoke"})})
	e.g.Expect(c.Create(ctx, e.gitRepository("repo"))).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("spoke", "./spoke", func(k *kustomizev1.Kustomization) {
		k.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "spoke-kubeconfig"}}
	}))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "spoke")).WithTimeout(eventually).WithPolling(poll).
		Should(HavePrefix("False/ReconciliationFailed"))
	var k kustomizev1.Kustomization
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "spoke"}, &k)).To(Succeed())
	e.g.Expect(apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition).Message).To(ContainSubstring("kubeconfig secret '" + e.ns + "/spoke-kubeconfig'"))

	e.g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "spoke-kubeconfig", Namespace: e.ns},
		Data: map[string][]byte{"value": testenv.Kubeconfig(t, spoke)}})).To(Succeed())
	e.g.Expect(e.r.RequestReconcile("Kustomization", e.ns, "spoke")).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "spoke")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha))
	cm, err := spokeKube.CoreV1().ConfigMaps(e.ns).Get(ctx, "on-spoke", metav1.GetOptions{})
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(cm.Data).To(HaveKeyWithValue("cluster", "spoke"))
	e.g.Expect(e.configMapData(e.ns, "on-spoke")()).To(BeNil(), "applied to the hub too")
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "spoke"}, &k)).To(Succeed())
	e.g.Expect(k.Status.Inventory.Entries).To(ConsistOf(HaveField("ID", e.ns+"_on-spoke__ConfigMap")))

	e.g.Expect(c.Delete(ctx, &k)).To(Succeed())
	e.g.Eventually(func() bool {
		_, err := spokeKube.CoreV1().ConfigMaps(e.ns).Get(ctx, "on-spoke", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue(), "not pruned from the spoke")
}

// TestInClusterCELExpressions: dependsOn[].readyExpr decides a dependency's readiness in place of the
// built-in check (CEL over self and dep, Flux's library), an invalid expression stalls the dependent
// with InvalidCELExpression, and spec.healthCheckExprs make a health check fail or pass by the
// expressions given for a kind.
func TestInClusterCELExpressions(t *testing.T) {
	e, c := inClusterEnv(t)
	ctx := context.Background()
	sha := e.commit(map[string]string{
		"infra/cm.yaml":  configMap(e.ns, "infra", map[string]string{"k": "v"}),
		"apps/cm.yaml":   configMap(e.ns, "apps", map[string]string{"k": "v"}),
		"health/cm.yaml": configMap(e.ns, "health", map[string]string{"state": "broken"}),
	})
	e.g.Expect(c.Create(ctx, e.gitRepository("repo"))).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("infra", "./infra"))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "infra")).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha))

	// Ready by the built-in check, but not by the expression: the dependent waits, saying why.
	e.g.Expect(c.Create(ctx, e.kustomization("apps", "./apps", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "infra", ReadyExpr: "dep.metadata.?labels.tier.orValue('') == 'ready' && self.metadata.name == 'apps'"}}
	}))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "apps")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/DependencyNotReady"))
	var apps kustomizev1.Kustomization
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "apps"}, &apps)).To(Succeed())
	e.g.Expect(apimeta.FindStatusCondition(apps.Status.Conditions, meta.ReadyCondition).Message).To(ContainSubstring("is not ready according to readyExpr eval"))
	var infra kustomizev1.Kustomization
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "infra"}, &infra)).To(Succeed())
	patch := client.MergeFrom(infra.DeepCopy())
	infra.Labels = map[string]string{"tier": "ready"}
	e.g.Expect(c.Patch(ctx, &infra, patch)).To(Succeed())
	e.g.Eventually(func() error { return e.r.RequestReconcile("Kustomization", e.ns, "apps") }).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha))

	// An expression that does not compile: terminal, Stalled.
	e.g.Expect(c.Create(ctx, e.kustomization("bad", "./apps", func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "infra", ReadyExpr: "dep.status.conditions.filter("}}
	}))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "bad")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/InvalidCELExpression"))
	var bad kustomizev1.Kustomization
	e.g.Expect(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "bad"}, &bad)).To(Succeed())
	e.g.Expect(apimeta.IsStatusConditionTrue(bad.Status.Conditions, meta.StalledCondition)).To(BeTrue())
	e.g.Expect(apimeta.FindStatusCondition(bad.Status.Conditions, meta.ReadyCondition).Message).To(HavePrefix("Reconciliation failed terminally due to configuration error: "))

	// A custom health check for ConfigMaps: Failed while data.state is broken.
	e.g.Expect(c.Create(ctx, e.kustomization("health", "./health", func(k *kustomizev1.Kustomization) {
		k.Spec.Wait = true
		k.Spec.HealthCheckExprs = []kustomize.CustomHealthCheck{{APIVersion: "v1", Kind: "ConfigMap",
			HealthCheckExpressions: kustomize.HealthCheckExpressions{Current: "data.state == 'ok'", Failed: "data.state == 'broken'"}}}
	}))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "health")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/HealthCheckFailed"))
	sha2 := e.commit(map[string]string{"health/cm.yaml": configMap(e.ns, "health", map[string]string{"state": "ok"})})
	e.g.Eventually(func() error { return e.r.RequestReconcile("GitRepository", e.ns, "repo") }).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "health")).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha2))
}

// TestInClusterDeleteWithoutItsServiceAccount: a Kustomization whose service account is gone (its
// namespace being deleted takes the account first) is released without garbage collection, as
// kustomize-controller does when it cannot impersonate, so the namespace deletion is not blocked.
func TestInClusterDeleteWithoutItsServiceAccount(t *testing.T) {
	e, c := inClusterEnv(t)
	ctx := context.Background()
	e.g.Expect(c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: e.ns}})).To(Succeed())
	// A Role rather than the aggregated admin ClusterRole: this API server runs no controller-manager.
	e.g.Expect(c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: e.ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}})).To(Succeed())
	e.g.Expect(c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: e.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: e.ns}}})).To(Succeed())
	sha := e.commit(map[string]string{"apps/cm.yaml": configMap(e.ns, "kept", map[string]string{"k": "v"})})
	e.g.Expect(c.Create(ctx, e.gitRepository("repo"))).To(Succeed())
	e.g.Expect(c.Create(ctx, e.kustomization("apps", "./apps", func(k *kustomizev1.Kustomization) { k.Spec.ServiceAccountName = "deployer" }))).To(Succeed())
	e.g.Eventually(clusterReady(c, e.ns, "apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/ReconciliationSucceeded main@sha1:" + sha))

	e.g.Expect(c.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: e.ns}})).To(Succeed())
	e.g.Expect(c.Delete(ctx, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: e.ns}})).To(Succeed())
	e.g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "apps"}, &kustomizev1.Kustomization{}))
	}).WithTimeout(eventually).WithPolling(poll).Should(BeTrue(), "the finalizer was not released")
	e.g.Expect(e.configMapData(e.ns, "kept")()).To(HaveKeyWithValue("k", "v"), "pruned without its identity")
}
