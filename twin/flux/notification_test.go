package flux_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/hybridtwin/hybridtwin/fakes/alerts"
	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler/notify"
	"github.com/hybridtwin/hybridtwin/twin/flux"
)

var (
	gitRepoGVR  = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	receiverGVR = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1", Resource: "receivers"}
	providerGVR = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "providers"}
	alertGVR    = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "alerts"}
)

// Real notification-controller against a twin cluster (no Git server, no other controller): a push
// delivery signed as Gitea signs it (X-Hub-Signature-256, X-GitHub-Event: push) reaches a github Receiver
// and annotates its GitRepository with reconcile.fluxcd.io/requestedAt; a wrongly signed one does not;
// an error event posted in Flux's shape (reconciler/notify.Post) reaches a generic Provider's alert sink
// once, its repeat within the rate-limit interval not at all; every listener is on 127.0.0.1; Stop ends
// the process.
func TestNotificationControllerReceiversAndAlerts(t *testing.T) {
	testenv.RequireNotificationController(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	info, cfg, kube := testCluster(ctx, t, "notify-"+suffix())
	if _, err := fluxcrd.Install(ctx, cfg, nil, nil); err != nil {
		t.Fatalf("install Flux CRDs: %v", err)
	}
	n, err := flux.StartNotification(ctx, flux.NotificationOptions{Kubeconfig: info.Kubeconfig, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start notification-controller: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = n.Stop()
		}
	}()
	p := n.Process()
	g.Expect(p.Ports).To(HaveLen(4))
	g.Expect(n.EventsURL()).To(HavePrefix("http://127.0.0.1:"))
	g.Expect(n.ReceiverURL()).To(HavePrefix("http://127.0.0.1:"))
	for _, port := range p.Ports {
		g.Expect(listeners(t, port)).To(Equal([]string{"0100007F"}), "notification-controller must listen on 127.0.0.1:%d only", port)
	}

	dyn := dynamic.NewForConfigOrDie(cfg)
	ns := flux.RuntimeNamespace
	apply := func(gvr schema.GroupVersionResource, obj map[string]any) {
		t.Helper()
		u := &unstructured.Unstructured{Object: obj}
		if _, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	token := "receiver-token-" + suffix()
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns},
		StringData: map[string]string{"token": token}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apply(gitRepoGVR, map[string]any{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"name": "app", "namespace": ns},
		"spec":     map[string]any{"url": "http://127.0.0.1:1/org/app.git", "interval": "10m"}})
	apply(receiverGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
		"metadata": map[string]any{"name": "gitea", "namespace": ns},
		"spec": map[string]any{"type": "github", "events": []any{"push"}, "secretRef": map[string]any{"name": "hook"},
			"resources": []any{map[string]any{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "app"}}}})
	var path string
	g.Eventually(func() string {
		r, err := dyn.Resource(receiverGVR).Namespace(ns).Get(ctx, "gitea", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		path, _, _ = unstructured.NestedString(r.Object, "status", "webhookPath")
		return path
	}).WithTimeout(settle).WithPolling(poll).Should(HavePrefix("/hook/"))

	requestedAt := func() string {
		r, err := dyn.Resource(gitRepoGVR).Namespace(ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return r.GetAnnotations()["reconcile.fluxcd.io/requestedAt"]
	}
	deliver := func(key string) int {
		body := `{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}`
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(body))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.ReceiverURL()+path, strings.NewReader(body))
		// The headers Gitea's "gitea" webhooks carry next to their own X-Gitea-* ones.
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("deliver the push: %v", err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	g.Expect(deliver("not-the-token")).NotTo(Equal(http.StatusOK), "a delivery signed with another key is refused")
	g.Expect(requestedAt()).To(BeEmpty())
	g.Expect(deliver(token)).To(Equal(http.StatusOK))
	g.Eventually(requestedAt).WithTimeout(settle).WithPolling(poll).ShouldNot(BeEmpty(),
		"the Receiver did not annotate the GitRepository after a signed push")

	// Alerts: a generic Provider to the alert sink, an Alert on Kustomization errors.
	sink, err := alerts.Start(alerts.Generic, alerts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sink.Close(context.Background()) }()
	apply(providerGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
		"metadata": map[string]any{"name": "team", "namespace": ns},
		"spec":     map[string]any{"type": "generic", "address": sink.URL()}})
	apply(alertGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
		"metadata": map[string]any{"name": "team", "namespace": ns},
		"spec": map[string]any{"providerRef": map[string]any{"name": "team"}, "eventSeverity": "error",
			"eventSources": []any{map[string]any{"kind": "Kustomization", "name": "*"}}}})
	ev := eventv1.Event{
		InvolvedObject: corev1.ObjectReference{APIVersion: "kustomize.toolkit.fluxcd.io/v1", Kind: "Kustomization", Name: "apps", Namespace: ns},
		Severity:       eventv1.EventSeverityError, Timestamp: metav1.Now(), Reason: "BuildFailed",
		Message:             "kustomization path not found: stat /tmp/apps: no such file or directory",
		ReportingController: "kustomize-controller",
		Metadata:            map[string]string{"kustomize.toolkit.fluxcd.io/revision": "main@sha1:0123456789abcdef0123456789abcdef01234567"},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	// notification-controller reads Alerts from its cache: post until the first alert arrives.
	g.Eventually(func() int {
		g.Expect(notify.Post(ctx, client, n.EventsURL()+"/", ev)).To(Succeed())
		return len(sink.Deliveries())
	}).WithTimeout(settle).WithPolling(time.Second).Should(BeNumerically(">=", 1))
	g.Expect(notify.Post(ctx, client, n.EventsURL()+"/", ev)).To(Succeed())
	g.Consistently(func() int { return len(sink.Deliveries()) }).WithTimeout(3*time.Second).WithPolling(poll).Should(Equal(1),
		"the same failure within the rate-limit interval must alert once")
	d := sink.Deliveries()[0]
	g.Expect(d.Severity).To(Equal("error"))
	g.Expect(d.Message).To(Equal(ev.Message))

	g.Expect(n.Stop()).To(Succeed())
	stopped = true
	g.Expect(syscall.Kill(p.PID, 0)).To(MatchError(syscall.ESRCH), "notification-controller still running after Stop")
	g.Expect(syscall.Kill(-p.PID, 0)).To(MatchError(syscall.ESRCH), "its process group still has members")
	for _, port := range p.Ports {
		g.Expect(listeners(t, port)).To(BeEmpty(), "port %d still listened on after Stop", port)
	}
}

// listeners are the local addresses (hex, as /proc/net/tcp and tcp6 print them) listening on a TCP port.
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, p, ok := strings.Cut(fields[1], ":")
			if v, err := strconv.ParseInt(p, 16, 32); ok && err == nil && int(v) == port {
				out = append(out, addr)
			}
		}
	}
	return out
}
