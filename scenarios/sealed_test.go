package scenarios

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/sealedsecrets"
)

// The sealed-secrets twin (examples/twins/sealed-secrets.yaml): one cluster, dev, with the sealed-secrets
// controller (spec.sealedSecrets) and one configuration syncing apps/dev of its repository.
var sealedSpecPath = filepath.Join("..", "examples", "twins", "sealed-secrets.yaml")

const (
	sealedCluster = "dev"
	sealedNS      = "sealed-demo"
	sealedAppDir  = "apps/dev"
	// sealedKeyLabel marks the controller's key Secrets; "active" the ones it seals with
	// (pkg/controller/keyregistry.go of sealed-secrets v0.40.0, SealedSecretsKeyLabel).
	sealedKeyLabel = "sealedsecrets.bitnami.com/sealed-secrets-key=active"
)

// sealedSpecs: a Secret committed to Git as a SealedSecret -- sealed in the test with the public
// certificate the twin's own sealed-secrets controller generated, so no ciphertext is copied anywhere -- is
// unsealed by the controller into a Secret, which a Deployment of the same commit reads (envFrom). On the
// twin's engine (label sealed) and on real Flux (labels sealed and flux). The controller is an optional
// tool, so CI's filter leaves the label out; the nightly run takes it.
func sealedSpecs() {
	Describe("sealed", Label("sealed"), Ordered, func() {
		var se *Env
		BeforeAll(func(ctx SpecContext) { se = upOwnTwin(ctx, sealedSpecPath, nil, true) }, NodeTimeout(ownTwinTimeout))
		It("unseals a SealedSecret from Git into a Secret a pod reads", func(ctx SpecContext) { sealedStep(ctx, se) })
	})
	Describe("sealed on real Flux", Label("sealed", "flux", "slow"), Ordered, func() {
		var se *Env
		BeforeAll(func(ctx SpecContext) {
			se = upOwnTwin(ctx, sealedSpecPath, func(s *twin.Spec) {
				s.Metadata.Name += "-flux"
				s.Spec.Reconciler = twin.ReconcilerFlux
			}, true)
		}, NodeTimeout(ownTwinTimeout))
		It("unseals a SealedSecret from Git into a Secret a pod reads", func(ctx SpecContext) { sealedStep(ctx, se) })
	})
}

func sealedStep(ctx SpecContext, se *Env) {
	engine := string(se.Twin.Spec().ReconcilerFor(sealedCluster))
	kube := se.Kube[sealedCluster]
	Expect(kube).NotTo(BeNil(), "the twin has no %s cluster", sealedCluster)

	By("finding the sealed-secrets controller in the twin's status")
	st, err := se.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	var up []string
	for _, c := range st.Components {
		if c.Name == sealedCluster+"/sealed-secrets-controller" {
			up = append(up, fmt.Sprintf("up=%v ports=%d", c.Up, len(c.Ports)))
		}
	}
	Expect(up).To(Equal([]string{"up=true ports=2"}), "hybridtwin status does not show the sealed-secrets controller of %s up", sealedCluster)

	By("reading the controller's public certificate from its key Secret in kube-system")
	keys, err := kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: sealedKeyLabel})
	Expect(err).NotTo(HaveOccurred())
	Expect(keys.Items).To(HaveLen(1), "the controller generates one active key on its first start")
	cert := keys.Items[0].Data[corev1.TLSCertKey]
	Expect(string(cert)).To(HavePrefix("-----BEGIN CERTIFICATE-----"))

	By("sealing a Secret with kubeseal and that certificate, and committing it with a Deployment that reads it")
	seed := GinkgoRandomSeed()
	name, password := fmt.Sprintf("db-%d", seed%100000), fmt.Sprintf("pw-%d", seed)
	plain := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\nstringData:\n  password: %s\n", name, sealedNS, password)
	sealed, err := sealedsecrets.Seal(ctx, nil, cert, []byte(plain))
	Expect(err).NotTo(HaveOccurred())
	Expect(string(sealed)).To(ContainSubstring("kind: SealedSecret"))
	Expect(string(sealed)).NotTo(ContainSubstring(password), "the sealed manifest holds the password in plain text")
	dir := se.WorkingCopy()
	writeFile(dir, sealedAppDir+"/"+name+".yaml", string(sealed))
	writeFile(dir, sealedAppDir+"/app.yaml", sealedApp(name, se.Twin.RegistryHost()))
	appendResource(dir, sealedAppDir+"/kustomization.yaml", name+".yaml")
	appendResource(dir, sealedAppDir+"/kustomization.yaml", "app.yaml")
	start := time.Now()
	commit := se.Push(ctx, "main", dir, "apps/dev: a SealedSecret and the app that reads it")

	Eventually(func(ctx context.Context) (map[string]string, error) {
		s, err := kube.CoreV1().Secrets(sealedNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		for _, o := range s.OwnerReferences {
			out["owner"] = o.Kind + "/" + o.Name
		}
		return out, nil
	}).WithContext(ctx).WithTimeout(se.Waits.Converge).WithPolling(se.Waits.Poll).Should(
		Equal(map[string]string{"password": password, "owner": "SealedSecret/" + name}),
		"Secret %s/%s was not unsealed from the SealedSecret of commit %.12s", sealedNS, name, commit)
	recordTiming(Experiment("sealed: push to unsealed Secret ("+engine+")"), "push to unsealed Secret", time.Since(start))

	Eventually(func(ctx context.Context) (int32, error) {
		d, err := kube.AppsV1().Deployments(sealedNS).Get(ctx, "reader", metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		return d.Status.AvailableReplicas, nil
	}).WithContext(ctx).WithTimeout(se.Waits.Converge).WithPolling(se.Waits.Poll).Should(Equal(int32(1)), "Deployment %s/reader is not available", sealedNS)
	pods, err := kube.CoreV1().Pods(sealedNS).List(ctx, metav1.ListOptions{LabelSelector: "app=reader"})
	Expect(err).NotTo(HaveOccurred())
	Expect(pods.Items).To(HaveLen(1))
	Expect(pods.Items[0].Spec.Containers[0].EnvFrom).To(ContainElement(HaveField("SecretRef.Name", name)))
	Eventually(se.Compliance).WithContext(ctx).WithTimeout(se.Waits.Converge).WithPolling(se.Waits.Poll).Should(Succeed())
	Note("%s engine: commit %.12s holds SealedSecret %s/%s, sealed with kubeseal and the certificate of the cluster's own controller "+
		"(key Secret kube-system/%s); the controller unsealed it into Secret %s/%s (owned by the SealedSecret), read by pod %s "+
		"(envFrom). The twin's simulated kubelets do not run containers, so the pod's environment is its spec, not a process's.",
		engine, commit, sealedNS, name, keys.Items[0].Name, sealedNS, name, pods.Items[0].Name)
}

// sealedApp is a Deployment whose container takes its environment from the Secret name.
func sealedApp(name, registry string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: reader
  namespace: %s
spec:
  replicas: 1
  selector:
    matchLabels: {app: reader}
  template:
    metadata:
      labels: {app: reader}
    spec:
      containers:
        - name: reader
          image: %s/apps/podinfo:6.5.0
          envFrom:
            - secretRef:
                name: %s
`, sealedNS, registry, name)
}
