package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin"
)

// The SOPS spec works on the dev cluster's cluster-wide configuration (examples/twin.yaml platform-dev:
// GitRepository platform-dev in flux-system, Kustomization path ./infrastructure/dev). The Arc API
// carries no decryption setting (fakes/arc KustomizationDefinition), so decryption lives in Git: the
// configuration's folder gains nested Flux Kustomizations with spec.decryption, as a repository that
// keeps SOPS-encrypted Secrets does.
const (
	sopsCluster  = "dev"
	sopsConfig   = "platform-dev"
	sopsNS       = "flux-system"
	sopsConfDir  = "infrastructure/dev"
	sopsSecretNS = "flux-system"
)

// sopsSpecs: an age-encrypted Secret committed to the layout repository arrives decrypted through a
// nested Kustomization with spec.decryption and the age key Secret in the cluster; a Kustomization
// whose key Secret is missing is not Ready with kustomize-controller's message, and the Arc
// configuration that applied it is not Compliant. The repository is put back afterwards.
func sopsSpecs() {
	Describe("sops", Label("sops"), func() {
		It("decrypts an age-encrypted Secret from Git, and reports a missing key", func(ctx SpecContext) {
			seed := GinkgoRandomSeed() % 100000
			keySecret, absent := fmt.Sprintf("sops-age-%d", seed), fmt.Sprintf("sops-age-absent-%d", seed)
			okKs, badKs := fmt.Sprintf("sops-secrets-%d", seed), fmt.Sprintf("sops-nokey-%d", seed)
			secretName, password := fmt.Sprintf("db-%d", seed), fmt.Sprintf("pw-%d", GinkgoRandomSeed())
			kube := env.Kube[sopsCluster]
			Expect(kube).NotTo(BeNil(), "the twin has no %s cluster", sopsCluster)

			By("creating the age key Secret " + sopsNS + "/" + keySecret + " on " + sopsCluster)
			id, err := age.GenerateX25519Identity()
			Expect(err).NotTo(HaveOccurred())
			_, err = kube.CoreV1().Secrets(sopsNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: keySecret, Namespace: sopsNS},
				StringData: map[string]string{"identity.agekey": id.String()}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx context.Context) {
				_ = kube.CoreV1().Secrets(sopsNS).Delete(ctx, keySecret, metav1.DeleteOptions{})
			})

			By("committing an encrypted Secret under a nested Kustomization with spec.decryption, and one whose key Secret is missing")
			dir := env.WorkingCopy()
			plain := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\nstringData:\n  password: %s\n",
				secretName, sopsSecretNS, password)
			enc := sopsEncryptYAML(id.Recipient().String(), plain)
			Expect(enc).NotTo(ContainSubstring(password), "the committed file holds the password in plain text")
			writeFile(dir, "secrets/dev/db.sops.yaml", enc)
			writeFile(dir, "secrets/dev-nokey/db.sops.yaml", sopsEncryptYAML(id.Recipient().String(),
				strings.Replace(plain, "name: "+secretName, "name: "+secretName+"-nokey", 1)))
			writeFile(dir, sopsConfDir+"/sops.yaml", nestedSOPSKustomization(okKs, "./secrets/dev", keySecret)+"---\n"+
				nestedSOPSKustomization(badKs, "./secrets/dev-nokey", absent))
			appendResource(dir, sopsConfDir+"/kustomization.yaml", "sops.yaml")
			restore := env.WorkingCopy() // made here: a cleanup cannot make the temporary folder
			start := time.Now()
			commit := env.Push(ctx, "main", dir, "infrastructure/dev: a SOPS-encrypted Secret and its Kustomization")
			DeferCleanup(func(ctx context.Context) {
				By("putting the repository back (the nested Kustomizations are pruned)")
				env.Push(ctx, "main", restore, "infrastructure/dev: remove the SOPS scenario's Kustomizations")
				Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			})

			Eventually(func(ctx context.Context) (map[string]string, error) {
				s, err := kube.CoreV1().Secrets(sopsSecretNS).Get(ctx, secretName, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				out := map[string]string{}
				for k, v := range s.Data {
					out[k] = string(v)
				}
				return out, nil
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Equal(map[string]string{"password": password}),
				"Secret %s/%s did not arrive decrypted (commit %.12s)", sopsSecretNS, secretName, commit)
			recordTiming(Experiment("sops: push to decrypted Secret"), "push to decrypted Secret applied", time.Since(start))

			want := fmt.Sprintf(`secrets %q not found`, absent)
			nokey := &unstructured.Unstructured{}
			nokey.SetAPIVersion("kustomize.toolkit.fluxcd.io/v1")
			nokey.SetKind("Kustomization")
			nokey.SetNamespace(sopsNS)
			nokey.SetName(badKs)
			Eventually(func(ctx context.Context) (string, error) {
				k, err := env.live(ctx, sopsCluster, nokey)
				if err != nil {
					return "", err
				}
				conds, _, _ := unstructured.NestedSlice(k.Object, "status", "conditions")
				for _, c := range conds {
					if m, _ := c.(map[string]any); m["type"] == "Ready" {
						return fmt.Sprintf("%v/%v: %v", m["status"], m["reason"], m["message"]), nil
					}
				}
				return "no Ready condition", nil
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Equal("False/BuildFailed: "+want),
				"Kustomization %s/%s (its key Secret %s is missing)", sopsNS, badKs, absent)
			// The configuration does not report Compliant: its Kustomization waits for the health of what it
			// applied (Arc's wait defaults to true), the nested Kustomization that cannot decrypt among them,
			// so it stays Pending ("Reconciliation in progress", measured) until its timeout (Arc's default
			// 10 min), when it fails its health check and the configuration turns Non-Compliant.
			Eventually(func(ctx context.Context) (twin.GitOpsStatus, error) {
				return env.GitOps(ctx, sopsCluster, sopsConfig)
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(
				HaveField("ComplianceState", BeElementOf("Pending", "Non-Compliant")),
				"configuration %s on %s must not be Compliant while %s cannot decrypt", sopsConfig, sopsCluster, badKs)
			_, err = kube.CoreV1().Secrets(sopsSecretNS).Get(ctx, secretName+"-nokey", metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Secret of the Kustomization without its key must not be applied, got %v", err)
			Note("Commit %.12s: Secret %s/%s decrypted with the age key in Secret %s/%s (nested Kustomization %s); Kustomization %s, whose key Secret %s is missing, is Ready=False BuildFailed %q and %s is not Compliant.",
				commit, sopsSecretNS, secretName, sopsNS, keySecret, okKs, badKs, absent, want, sopsConfig)

			// The fix a platform team makes: the missing key Secret, then `flux reconcile ks` (the
			// requestedAt annotation; neither engine watches the decryption Secret). The nested
			// Kustomization decrypts, the configuration's health wait ends, and it is Compliant again.
			By("adding the missing key Secret " + sopsNS + "/" + absent + " and requesting a reconcile of " + badKs)
			fixed := time.Now()
			_, err = kube.CoreV1().Secrets(sopsNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: absent, Namespace: sopsNS},
				StringData: map[string]string{"identity.agekey": id.String()}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx context.Context) {
				_ = kube.CoreV1().Secrets(sopsNS).Delete(ctx, absent, metav1.DeleteOptions{})
			})
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, fixed.Format(time.RFC3339Nano))
			_, err = env.api(sopsCluster).dyn.Resource(schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}).
				Namespace(sopsNS).Patch(ctx, badKs, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred())
			Eventually(func(ctx context.Context) error {
				_, err := kube.CoreV1().Secrets(sopsSecretNS).Get(ctx, secretName+"-nokey", metav1.GetOptions{})
				return err
			}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed(),
				"the Secret of %s after its key was added", badKs)
			Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
			recordTiming(Experiment("sops: missing key added"), "key Secret added and reconcile requested to Compliant", time.Since(fixed))
		})
	})
}

// nestedSOPSKustomization is a Flux Kustomization of the configuration's source, decrypting with the
// age keys of keySecret.
func nestedSOPSKustomization(name, path, keySecret string) string {
	return fmt.Sprintf(`apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: %s
  namespace: %s
spec:
  interval: 10m
  path: %s
  prune: true
  sourceRef:
    kind: GitRepository
    name: %s
  decryption:
    provider: sops
    secretRef:
      name: %s
`, name, sopsNS, path, sopsConfig, keySecret)
}

// sopsEncryptYAML encrypts a Secret manifest's data and stringData for an age recipient with the SOPS
// library, as `sops --encrypt --age R --encrypted-regex '^(data|stringData)$'` does.
func sopsEncryptYAML(recipient, plain string) string {
	out, err := testenv.SOPSEncrypt(recipient, "yaml", "^(data|stringData)$", plain)
	Expect(err).NotTo(HaveOccurred())
	return out
}
