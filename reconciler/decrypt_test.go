package reconciler_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"filippo.io/age"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sopsEncrypt encrypts plain (format: yaml, json, dotenv, binary) for an age recipient with the SOPS library.
func sopsEncrypt(t *testing.T, recipient string, format string, regex string, plain string) string {
	t.Helper()
	out, err := testenv.SOPSEncrypt(recipient, format, regex, plain)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ageIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) secretData(name string) func() map[string]string {
	return func() map[string]string {
		var s corev1.Secret
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, &s); err != nil {
			return nil
		}
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out
	}
}

func withDecryption(secret string) func(*kustomizev1.Kustomization) {
	return func(k *kustomizev1.Kustomization) {
		k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: secret}}
	}
}

// TestSOPSDecryption: a Kustomization with spec.decryption and an age key Secret applies, decrypted,
// an in-place encrypted Secret (data and stringData), a Secret whose data value is an encrypted YAML
// file, and the Secret a secretGenerator makes from an encrypted .env file and an encrypted binary
// file; a missing key Secret, a key that cannot decrypt, and an encrypted Secret under a Kustomization
// without decryption leave it not Ready with kustomize-controller's reason and message; encrypted
// stringData without decryption is applied as the ENC[...] text, as kustomize-controller does.
func TestSOPSDecryption(t *testing.T) {
	e := newEnv(t)
	id, other := ageIdentity(t), ageIdentity(t)
	rcpt := id.Recipient().String()
	ctx := context.Background()
	for name, key := range map[string]*age.X25519Identity{"sops-age": id, "sops-other": other} {
		e.g.Expect(e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			// A non-key entry is ignored, as kustomize-controller ignores it.
			StringData: map[string]string{"identity.agekey": key.String(), "README": "age key of the test"}})).To(Succeed())
	}
	e.g.Expect(e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sops-empty", Namespace: e.ns},
		StringData: map[string]string{"README": "no key here"}})).To(Succeed())
	inPlace := sopsEncrypt(t, rcpt, "yaml", "^(data|stringData)$",
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: "+e.ns+"\ntype: Opaque\nstringData:\n  password: s3cr3t\ndata:\n  user: "+
			base64.StdEncoding.EncodeToString([]byte("admin"))+"\n")
	fileValue := sopsEncrypt(t, rcpt, "yaml", "", "endpoint: https://db.internal\nport: 5432\n")
	dataFile := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: dbconfig\n  namespace: " + e.ns + "\ndata:\n  config.yaml: " +
		base64.StdEncoding.EncodeToString([]byte(fileValue)) + "\n"
	env := sopsEncrypt(t, rcpt, "dotenv", "", "API_TOKEN=tok-123\nREGION=west\n")
	bin := sopsEncrypt(t, rcpt, "binary", "", "-----BEGIN CERT-----\nbinary\n")
	sha := e.commit(map[string]string{
		"app/secret.sops.yaml":   inPlace,
		"app/dbconfig.yaml":      dataFile,
		"app/api.env":            env,
		"app/ca.crt.enc":         bin,
		"app/kustomization.yaml": "resources: [secret.sops.yaml, dbconfig.yaml]\nsecretGenerator:\n  - name: api\n    envs: [api.env]\n    files: [ca.crt=ca.crt.enc]\ngeneratorOptions:\n  disableNameSuffixHash: true\nnamespace: " + e.ns + "\n",
		"bare/secret.sops.yaml":  inPlace,
		"string/secret.sops.yaml": sopsEncrypt(t, rcpt, "yaml", "^(data|stringData)$",
			"apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: "+e.ns+"\nstringData:\n  token: t0k3n\n"),
	})
	e.apply(e.gitRepository("repo"), e.kustomization("app", "./app", withDecryption("sops-age")))
	e.waitApplied("app", sha)
	e.g.Expect(e.secretData("db")()).To(Equal(map[string]string{"password": "s3cr3t", "user": "admin"}))
	e.g.Expect(e.secretData("dbconfig")()).To(HaveKeyWithValue("config.yaml", "endpoint: https://db.internal\nport: 5432\n"))
	e.g.Expect(e.secretData("api")()).To(Equal(map[string]string{"API_TOKEN": "tok-123", "REGION": "west",
		"ca.crt": "-----BEGIN CERT-----\nbinary\n"}))

	cases := []struct {
		name, path string
		mutate     func(*kustomizev1.Kustomization)
		want       string
	}{
		{"missing-key", "./bare", withDecryption("absent"), `False/BuildFailed: secrets "absent" not found`},
		{"wrong-key", "./bare", withDecryption("sops-other"),
			"False/BuildFailed: decryption failed for 'Secret.v1.[noGrp]/db': failed to decrypt and format '" + e.ns + "/db' Secret data: cannot get sops data key: "},
		// No .agekey entry: nothing to decrypt with (and never the host's own age or SSH keys).
		{"no-age-entry", "./bare", withDecryption("sops-empty"),
			"False/BuildFailed: decryption failed for 'Secret.v1.[noGrp]/db': failed to decrypt and format '" + e.ns + "/db' Secret data: cannot get sops data key: "},
		{"wrong-key-sources", "./app", withDecryption("sops-other"),
			"False/BuildFailed: error decrypting sources: cannot get sops data key: "},
		{"no-decryption", "./bare", func(*kustomizev1.Kustomization) {},
			"False/ReconciliationFailed: Secret/" + e.ns + "/db is SOPS encrypted, configuring decryption is required for this secret to be reconciled"},
	}
	for _, c := range cases {
		e.apply(e.kustomization(c.name, c.path, c.mutate))
	}
	// Encrypted stringData only, without decryption: normalized through the typed Secret (which drops the
	// sops field) before the check, it is applied with the ENC[...] text as its value, as real Flux does
	// (twin/flux TestFluxDecryptsSOPS).
	e.apply(e.kustomization("no-decryption-stringdata", "./string"))
	e.g.Eventually(e.ready("no-decryption-stringdata")).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/ReconciliationSucceeded"))
	e.g.Expect(e.secretData("token")()).To(HaveKeyWithValue("token", HavePrefix("ENC[AES256_GCM,")))
	for _, c := range cases {
		e.g.Eventually(e.ready(c.name)).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix(c.want), c.name)
		if strings.Contains(c.name, "wrong-key") {
			// SOPS's own account of the failed key group, as kustomize-controller reports it.
			e.g.Expect(e.ready(c.name)()).To(ContainSubstring(rcpt + ": FAILED"))
			e.g.Expect(e.ready(c.name)()).To(ContainSubstring("identity did not match any of the recipients"))
		}
		if c.name == "no-age-entry" {
			e.g.Expect(e.ready(c.name)()).To(ContainSubstring("failed to load age identities: the decryption Secret has no"))
		}
	}
}
