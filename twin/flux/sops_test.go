package flux_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"filippo.io/age"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/flux"
)

// Real kustomize-controller decrypts SOPS with nothing from the twin but the objects: no environment
// (SOPS_AGE_KEY_FILE and the like) and no flag, the age keys coming from the Secret spec.decryption names.
// The Ready messages it gives for a missing key Secret, a key that cannot decrypt and an encrypted Secret
// without decryption are the ones reconciler.TestSOPSDecryption expects of the twin's engine.
func TestFluxDecryptsSOPS(t *testing.T) {
	requireFluxTests(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	info, cfg, _ := testCluster(ctx, t, "sops-"+suffix())
	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: info.Kubeconfig, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start flux: %v", err)
	}
	defer func() { _ = ctl.Stop() }()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, sourcev1.AddToScheme, kustomizev1.AddToScheme} {
		g.Expect(add(scheme)).To(Succeed())
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	id, other := newAgeIdentity(t), newAgeIdentity(t)
	ns := flux.RuntimeNamespace
	// The Secrets keep their value in stringData, but one: db-nodec has it base64-encoded in data.
	secret := func(name string) string {
		field, value := "stringData", "pw-"+name
		if name == "db-nodec" {
			field, value = "data", base64.StdEncoding.EncodeToString([]byte(value))
		}
		out, err := testenv.SOPSEncrypt(id.Recipient().String(), "yaml", "^(data|stringData)$",
			fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n%s:\n  password: %s\n", name, ns, field, value))
		g.Expect(err).NotTo(HaveOccurred())
		return out
	}
	git := testenv.Git(t, "fleet-reader", "s3cret-token")
	repo, _ := testenv.SeededRepo(t, git, "sops-"+suffix(), map[string]string{
		"ok/db.sops.yaml": secret("db"), "nokey/db.sops.yaml": secret("db-nokey"),
		"wrongkey/db.sops.yaml": secret("db-wrongkey"), "nodec/db.sops.yaml": secret("db-nodec"),
		"nodecstring/db.sops.yaml": secret("db-nodecstring"),
	})
	for name, data := range map[string]map[string]string{
		"git-auth":   {"username": "fleet-reader", "password": "s3cret-token"},
		"sops-age":   {"identity.agekey": id.String()},
		"sops-other": {"identity.agekey": other.String()},
	} {
		g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data})).To(Succeed())
	}
	g.Expect(c.Create(ctx, &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &meta.LocalObjectReference{Name: "git-auth"}}})).To(Succeed())
	ks := func(name, keySecret string) *kustomizev1.Kustomization {
		k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: kustomizev1.KustomizationSpec{Path: "./" + name, Prune: true, Interval: metav1.Duration{Duration: 10 * time.Minute},
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}}}
		if keySecret != "" {
			k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: keySecret}}
		}
		return k
	}
	for _, k := range []*kustomizev1.Kustomization{ks("ok", "sops-age"), ks("nokey", "absent"), ks("wrongkey", "sops-other"), ks("nodec", ""), ks("nodecstring", "")} {
		g.Expect(c.Create(ctx, k)).To(Succeed())
	}
	ready := func(name string) func() string {
		return func() string {
			var k kustomizev1.Kustomization
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &k); err != nil {
				return err.Error()
			}
			cond := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
			if cond == nil {
				return "no Ready condition"
			}
			return fmt.Sprintf("%s/%s: %s", cond.Status, cond.Reason, cond.Message)
		}
	}
	procs := ctl.Processes()
	g.Eventually(ready("ok")).WithTimeout(settle).WithPolling(poll).Should(HavePrefix("True/ReconciliationSucceeded"), "logs: %s", logsHint(procs))
	var s corev1.Secret
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db"}, &s)).To(Succeed())
	g.Expect(string(s.Data["password"])).To(Equal("pw-db"))
	g.Eventually(ready("nokey")).WithTimeout(settle).WithPolling(poll).Should(Equal(`False/BuildFailed: secrets "absent" not found`))
	g.Eventually(ready("wrongkey")).WithTimeout(settle).WithPolling(poll).Should(And(
		HavePrefix("False/BuildFailed: decryption failed for 'Secret.v1.[noGrp]/db-wrongkey': failed to decrypt and format '"+ns+"/db-wrongkey' Secret data: cannot get sops data key: "),
		ContainSubstring(id.Recipient().String()+": FAILED"), ContainSubstring("identity did not match any of the recipients")))
	g.Eventually(ready("nodec")).WithTimeout(settle).WithPolling(poll).Should(Equal(
		"False/ReconciliationFailed: Secret/" + ns + "/db-nodec is SOPS encrypted, configuring decryption is required for this secret to be reconciled"))
	// Encrypted stringData without decryption: kustomize-controller normalizes the Secret through its typed
	// form before that check, which drops the sops field, and applies the ENC[...] text as the value.
	g.Eventually(ready("nodecstring")).WithTimeout(settle).WithPolling(poll).Should(HavePrefix("True/ReconciliationSucceeded"))
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-nodecstring"}, &s)).To(Succeed())
	g.Expect(string(s.Data["password"])).To(HavePrefix("ENC[AES256_GCM,"))
}

func newAgeIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
