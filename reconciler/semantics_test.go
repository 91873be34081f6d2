package reconciler_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestNamespaceScopedCannotLeaveItsNamespace: a Kustomization applying as a service account with full
// rights in its own namespace only (an Arc namespace-scoped configuration) cannot create an object in
// another namespace; it is not Ready, the message names the object and its file, and nothing of the
// revision is applied -- not even the objects it may create.
func TestNamespaceScopedCannotLeaveItsNamespace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.g.Expect(e.c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "flux-applier", Namespace: e.ns}})).To(Succeed())
	// A Role rather than the aggregated `admin` ClusterRole: this API server runs no controller-manager,
	// so aggregated roles have no rules.
	e.g.Expect(e.c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "flux-applier", Namespace: e.ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}})).To(Succeed())
	e.g.Expect(e.c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "flux-applier", Namespace: e.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flux-applier"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "flux-applier", Namespace: e.ns}}})).To(Succeed())
	outside := "out-" + e.ns
	e.commit(map[string]string{
		"apps/in.yaml":  configMap(e.ns, "in", map[string]string{"k": "v"}),
		"apps/out.yaml": configMap("default", outside, map[string]string{"k": "v"}),
	})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) {
		k.Spec.ServiceAccountName = "flux-applier"
	}))
	e.g.Eventually(e.ready("apps")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/ReconciliationFailed"), ContainSubstring("forbidden"),
		ContainSubstring("ConfigMap/default/"+outside), ContainSubstring("apps/out.yaml")))
	e.g.Expect(e.configMapData(e.ns, "in")()).To(BeNil(), "nothing half-applied")
	e.g.Expect(e.configMapData("default", outside)()).To(BeNil())

	sha := e.commit(nil, "apps/out.yaml")
	e.stepInterval()
	e.waitApplied("apps", sha)
	e.g.Expect(e.configMapData(e.ns, "in")()).To(Equal(map[string]string{"k": "v"}))
}

// TestCrossNamespaceSourceBlocked: with NoCrossNamespaceRefs (Arc multi-tenancy), a sourceRef into
// another namespace stalls the Kustomization.
func TestCrossNamespaceSourceBlocked(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.NoCrossNamespaceRefs = true })
	e.apply(e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) { k.Spec.SourceRef.Namespace = "flux-system" }))
	e.g.Eventually(e.ready("apps")).WithTimeout(eventually).WithPolling(poll).
		Should(Equal("False/AccessDenied: can't access 'GitRepository/flux-system/repo', cross-namespace references have been blocked"))
	k, _ := e.r.Kustomization(e.ns, "apps")
	e.g.Expect(apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.StalledCondition)).To(BeTrue())
}

// TestBrokenManifestNothingApplied: a manifest kustomize cannot parse, or one the API server rejects,
// makes the Kustomization not Ready with a message naming the file, and no object of it is applied.
func TestBrokenManifestNothingApplied(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		body   string
		reason string
	}{
		{name: "YAML", file: "apps/bad.yaml", body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n", reason: "BuildFailed"},
		{name: "rejected by the API server", file: "apps/svc.yaml", reason: "ReconciliationFailed",
			body: "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 70000\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			good := configMap("", "good", map[string]string{"k": "v"})
			e.commit(map[string]string{"apps/good.yaml": good, tc.file: tc.body})
			e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) {
				k.Spec.TargetNamespace = e.ns
			}))
			e.g.Eventually(e.ready("apps")).WithTimeout(eventually).WithPolling(poll).Should(And(
				HavePrefix("False/"+tc.reason), ContainSubstring(tc.file)))
			e.waitIdle()
			e.g.Expect(e.configMapData(e.ns, "good")()).To(BeNil(), "nothing half-applied")
			k, _ := e.r.Kustomization(e.ns, "apps")
			e.g.Expect(k.Status.LastAttemptedRevision).To(HavePrefix("main@sha1:"))
			e.g.Expect(k.Status.LastAppliedRevision).To(BeEmpty())
			e.g.Expect(eventMessages(e, "apps")).To(ContainElement(ContainSubstring(tc.file)))
		})
	}
}

// TestPostBuildAndTargetNamespace: variables from spec.postBuild.substitute and a substituteFrom
// ConfigMap (plus an optional Secret that does not exist) are substituted; targetNamespace places
// objects without a namespace.
func TestPostBuildAndTargetNamespace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.g.Expect(e.c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-vars", Namespace: e.ns},
		Data: map[string]string{"REGION": "hci-west", "SIZE": "from-configmap"}})).To(Succeed())
	sha := e.commit(map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n" +
		"  region: ${REGION}\n  size: ${SIZE}\n  tier: ${TIER:=default}\n  cluster: ${CLUSTER_NAME}\n"})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) {
		k.Spec.TargetNamespace = e.ns
		k.Spec.PostBuild = &kustomizev1.PostBuild{
			Substitute: map[string]string{"CLUSTER_NAME": "aks-1", "SIZE": "inline-wins"},
			SubstituteFrom: []kustomizev1.SubstituteReference{
				{Kind: "ConfigMap", Name: "cluster-vars"},
				{Kind: "Secret", Name: "absent", Optional: true},
			},
		}
	}))
	e.waitApplied("apps", sha)
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{
		"region": "hci-west", "size": "inline-wins", "tier": "default", "cluster": "aks-1"}))

	// A missing, non-optional substituteFrom fails the build.
	e.apply(e.kustomization("other", "apps", func(k *kustomizev1.Kustomization) {
		k.Spec.TargetNamespace = e.ns
		k.Spec.PostBuild = &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "absent"}}}
	}))
	e.g.Eventually(e.ready("other")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/BuildFailed"), ContainSubstring("Secret/absent")))
}

// TestForceRecreatesOnImmutableChange: an immutable field change fails without force, with a hint,
// and recreates the object with spec.force.
func TestForceRecreatesOnImmutableChange(t *testing.T) {
	e := newEnv(t)
	immutable := func(v string) string {
		return configMap(e.ns, "frozen", map[string]string{"v": v}) + "immutable: true\n"
	}
	sha := e.commit(map[string]string{"apps/a.yaml": immutable("1")})
	apps := e.kustomization("apps", "apps")
	e.apply(e.gitRepository("repo"), apps)
	e.waitApplied("apps", sha)
	var before corev1.ConfigMap
	e.g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "frozen"}, &before)).To(Succeed())

	sha2 := e.commit(map[string]string{"apps/a.yaml": immutable("2")})
	e.stepInterval()
	e.g.Eventually(e.ready("apps")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/ReconciliationFailed"), ContainSubstring("immutable"), ContainSubstring("spec.force")))

	apps.Spec.Force = true
	e.apply(apps)
	e.waitApplied("apps", sha2)
	var after corev1.ConfigMap
	e.g.Expect(e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "frozen"}, &after)).To(Succeed())
	e.g.Expect(after.Data).To(Equal(map[string]string{"v": "2"}))
	e.g.Expect(after.UID).NotTo(Equal(before.UID), "recreated")
}

// TestWebhookTriggersFetch: a signed Gitea push payload fetches the source at once (the fake clock
// never moves); a bad signature is refused.
func TestWebhookTriggersFetch(t *testing.T) {
	secret := []byte("hook-" + randHex(4))
	e := newEnv(t, func(o *reconciler.Options) { o.WebhookSecret = secret })
	sha := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"v": "1"})})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps"))
	e.waitApplied("apps", sha)
	srv := httptest.NewServer(e.r.WebhookHandler())
	defer srv.Close()

	sha2 := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"v": "2"})})
	payload, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "after": sha2,
		"repository": map[string]any{"clone_url": e.repo.URL, "full_name": "twin/" + e.ns}})
	post := func(sig string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(payload))
		req.Header.Set("X-Gitea-Event", "push")
		req.Header.Set("X-Gitea-Signature", sig)
		resp, err := srv.Client().Do(req)
		e.g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		return resp
	}
	e.g.Expect(post("00ff").StatusCode).To(Equal(http.StatusUnauthorized))
	mac := hmac.New(sha256.New, secret)
	mac.Write(payload)
	e.g.Expect(post(hex.EncodeToString(mac.Sum(nil))).StatusCode).To(Equal(http.StatusOK))
	e.waitApplied("apps", sha2)
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"v": "2"}))
}

// TestHealthChecks: with wait, a Deployment that reports a failed rollout fails the health check
// (kstatus Failed); once it reports available the Kustomization is Ready and Healthy. The test writes
// the Deployment status a controller would (this API server runs no controllers).
func TestHealthChecks(t *testing.T) {
	e := newEnv(t)
	dep := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: " + e.ns + "\nspec:\n" +
		"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n" +
		"    spec: {containers: [{name: web, image: nginx}]}\n"
	sha := e.commit(map[string]string{"apps/web.yaml": dep})
	e.apply(e.gitRepository("repo"), e.kustomization("apps", "apps", func(k *kustomizev1.Kustomization) { k.Spec.Wait = true }))
	ctx := context.Background()
	setStatus := func(mutate func(*appsv1.Deployment)) {
		e.g.Eventually(func() error {
			var d appsv1.Deployment
			if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "web"}, &d); err != nil {
				return err
			}
			mutate(&d)
			return e.c.Status().Update(ctx, &d)
		}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	}
	setStatus(func(d *appsv1.Deployment) {
		d.Status.ObservedGeneration = d.Generation
		d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: "rollout stuck"}}
	})
	e.g.Eventually(e.ready("apps")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/HealthCheckFailed"), ContainSubstring("Deployment/"+e.ns+"/web")))
	k, _ := e.r.Kustomization(e.ns, "apps")
	e.g.Expect(apimeta.IsStatusConditionFalse(k.Status.Conditions, meta.HealthyCondition)).To(BeTrue())

	setStatus(func(d *appsv1.Deployment) {
		one := int32(1)
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = one, one, one, one
		d.Status.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}}
	})
	e.g.Expect(e.r.RequestReconcile(reconciler.KindKustomization, e.ns, "apps")).To(Succeed())
	e.waitApplied("apps", sha)
	k, _ = e.r.Kustomization(e.ns, "apps")
	e.g.Expect(apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.HealthyCondition)).To(BeTrue())
}

// TestSourceFailures: wrong credentials and a missing branch make the GitRepository not Ready with
// Flux's reasons; the Kustomization waits for an artifact; fixing the secret recovers.
func TestSourceFailures(t *testing.T) {
	e := newEnv(t)
	sha := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"v": "1"})})
	ctx := context.Background()
	e.g.Expect(e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wrong", Namespace: e.ns},
		StringData: map[string]string{"username": "flux", "password": "nope"}})).To(Succeed())
	repo := e.gitRepository("repo")
	repo.Spec.SecretRef.Name = "wrong"
	e.apply(repo, e.kustomization("apps", "apps"))
	srcReady := func() string {
		r, _ := e.r.GitRepository(e.ns, "repo")
		c := apimeta.FindStatusCondition(r.Status.Conditions, meta.ReadyCondition)
		if c == nil {
			return ""
		}
		return string(c.Status) + "/" + c.Reason + ": " + c.Message
	}
	e.g.Eventually(srcReady).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/"+sourcev1.AuthenticationFailedReason), ContainSubstring("secretRef")))
	e.g.Eventually(e.ready("apps")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("False/ArtifactFailed"))

	branch := e.gitRepository("repo")
	branch.Spec.Reference.Branch = "nope"
	e.apply(branch)
	e.g.Eventually(srcReady).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/"+sourcev1.GitOperationFailedReason), ContainSubstring("branch 'nope'")))

	e.apply(e.gitRepository("repo"))
	e.waitApplied("apps", sha)
}

// TestDeleteKustomizationPrunes: deleting a Kustomization with prune deletes its objects (Flux's
// finalizer); with prune false they stay.
func TestDeleteKustomizationPrunes(t *testing.T) {
	e := newEnv(t)
	sha := e.commit(map[string]string{
		"a/cm.yaml": configMap(e.ns, "a", map[string]string{"k": "v"}),
		"b/cm.yaml": configMap(e.ns, "b", map[string]string{"k": "v"}),
	})
	e.apply(e.gitRepository("repo"), e.kustomization("a", "a"),
		e.kustomization("b", "b", func(k *kustomizev1.Kustomization) { k.Spec.Prune = false }))
	e.waitApplied("a", sha)
	e.waitApplied("b", sha)
	e.g.Expect(e.r.DeleteKustomization(context.Background(), e.ns, "a")).To(Succeed())
	e.g.Expect(e.r.DeleteKustomization(context.Background(), e.ns, "b")).To(Succeed())
	e.g.Eventually(e.configMapData(e.ns, "a")).WithTimeout(eventually).WithPolling(poll).Should(BeNil())
	e.g.Expect(e.configMapData(e.ns, "b")()).NotTo(BeNil())
	e.g.Expect(errors.Is(e.r.DeleteKustomization(context.Background(), e.ns, "a"), reconciler.ErrNotFound)).To(BeTrue())
}

// TestValidation: invalid specs are refused with the field named.
func TestValidation(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		apply func() error
		field string
	}{
		{"no interval", func() error {
			return e.r.ApplyKustomization(e.kustomization("k", "p", func(k *kustomizev1.Kustomization) { k.Spec.Interval = metav1.Duration{} }))
		}, "spec.interval"},
		{"ExternalArtifact source", func() error {
			return e.r.ApplyKustomization(e.kustomization("k", "p", func(k *kustomizev1.Kustomization) { k.Spec.SourceRef.Kind = "ExternalArtifact" }))
		}, "spec.sourceRef.kind"},
		{"OCI URL without oci://", func() error {
			return e.r.ApplyOCIRepository(e.ociRepository("o", "https://registry.example.com/apps"))
		}, "spec.url"},
		{"OCI URL with a tag", func() error {
			return e.r.ApplyOCIRepository(e.ociRepository("o", "oci://registry.example.com/apps:v1"))
		}, "spec.url"},
		{"OCI digest", func() error {
			o := e.ociRepository("o", "oci://registry.example.com/apps")
			o.Spec.Reference = &sourcev1.OCIRepositoryRef{Digest: "sha256:abc"}
			return e.r.ApplyOCIRepository(o)
		}, "spec.ref.digest"},
		{"OCI cosign verification", func() error {
			o := e.ociRepository("o", "oci://registry.example.com/apps")
			o.Spec.Verify = &sourcev1.OCIRepositoryVerification{Provider: "cosign"}
			return e.r.ApplyOCIRepository(o)
		}, "spec.verify"},
		{"bad ignore pointer", func() error {
			return e.r.ApplyKustomization(e.kustomization("k", "p", func(k *kustomizev1.Kustomization) {
				k.Spec.Ignore = []kustomizev1.IgnoreRule{{Paths: []string{"data/x"}}}
			}))
		}, "spec.ignore[0].paths[0]"},
		{"scp-like Git URL", func() error {
			r := e.gitRepository("r")
			r.Spec.URL = "git@example.com:x.git"
			return e.r.ApplyGitRepository(r)
		}, "spec.url"},
		{"substituteFrom kind", func() error {
			return e.r.ApplyKustomization(e.kustomization("k", "p", func(k *kustomizev1.Kustomization) {
				k.Spec.PostBuild = &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Pod", Name: "x"}}}
			}))
		}, "spec.postBuild.substituteFrom[0].kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.apply()
			if !errors.Is(err, reconciler.ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			NewWithT(t).Expect(err.Error()).To(ContainSubstring(tc.field))
		})
	}
}

var _ = time.Second
