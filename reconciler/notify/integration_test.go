package notify_test

import (
	"context"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/alerts"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reconciler/notify"
)

// A Kustomization that keeps failing -- the real reconciler retrying against a real API server and real
// Git -- produces exactly one alert at the sink, naming the object and the reason.
func TestFailingReconcileProducesExactlyOneAlert(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := testenv.APIServer(t)
	git := testenv.Git(t, "reader", "pw")
	repo, _ := testenv.SeededRepo(t, git, "fleet", map[string]string{"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n"})

	sink := startSink(t, alerts.Generic, nil) // the generic payload is Flux's event: object and reason
	d := notify.New()
	g.Expect(d.SetProvider(notify.Provider{Name: "hook", Type: notify.Generic, Address: sink.URL()})).To(Succeed())
	g.Expect(d.SetAlert(notify.Alert{Name: "errors", Namespace: "flux-system", ProviderRef: "hook", EventSeverity: "error",
		EventSources: []notify.EventSource{{Kind: "Kustomization", Name: "*"}}})).To(Succeed())

	rec, err := reconciler.New(api, reconciler.Options{Cluster: "workload-1", WorkDir: t.TempDir(),
		OnEvent: notify.Forwarder(ctx, d, nil)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rec.Start(ctx) }()
	defer rec.Stop()

	// The Git server asks for basic auth: the credentials go in a Secret, as Flux reads them.
	kube := kubernetes.NewForConfigOrDie(api)
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = kube.CoreV1().Secrets("flux-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "fleet-auth"},
		Data: map[string][]byte{"username": []byte("reader"), "password": []byte("pw")}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rec.ApplyGitRepository(&sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet", Namespace: "flux-system"},
		Spec: sourcev1.GitRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &meta.LocalObjectReference{Name: "fleet-auth"}},
	})).To(Succeed())
	retry := metav1.Duration{Duration: time.Second}
	g.Expect(rec.ApplyKustomization(&kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: "flux-system"},
		Spec: kustomizev1.KustomizationSpec{SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "fleet"},
			Path: "./does-not-exist", Interval: metav1.Duration{Duration: time.Minute}, RetryInterval: &retry},
	})).To(Succeed())

	// Wait until the failure has been retried and dispatched several times...
	g.Eventually(func() int {
		n := 0
		for _, r := range d.Records() {
			if r.Object == "kustomization/apps.flux-system" {
				n++
			}
		}
		return n
	}).WithTimeout(90*time.Second).WithPolling(100*time.Millisecond).Should(BeNumerically(">=", 3),
		"the reconciler should have retried the broken Kustomization at least 3 times (events: %v)", rec.Events())
	// ...and still exactly one alert arrived, naming the object and the reason.
	got := sink.Deliveries()
	g.Expect(got).To(HaveLen(1), "a failing reconcile must alert once per rate-limit interval, got %d", len(got))
	g.Expect(got[0].Object).To(Equal("kustomization/apps.flux-system"))
	g.Expect(got[0].Severity).To(Equal("error"))
	g.Expect(got[0].Message).NotTo(BeEmpty())
	var reason string
	for _, ev := range rec.Events() {
		if ev.Kind == reconciler.KindKustomization && ev.Type == reconciler.EventWarning {
			reason = ev.Reason
		}
	}
	g.Expect(reason).NotTo(BeEmpty())
	g.Expect(got[0].Fields["reason"]).To(Equal(reason))
	g.Expect(got[0].Header.Get("gotk-component")).To(Equal("kustomize-controller"))
}
