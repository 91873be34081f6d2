package reconciler

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func nowUTC() time.Time { return time.Now().UTC() }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// appPath is the directory of the i-th app in the benchmark repository.
func appPath(i int) string { return fmt.Sprintf("apps/app-%04d", i) }

// appConfigMap is one app: a ConfigMap whose data carries flux-benchmark's ${INDEX} substitution.
func appConfigMap(i int, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%04d\ndata:\n  index: ${INDEX}\n  value: %q\n", i, value)
}

// layout is flux-benchmark's shape: n directories with one ConfigMap each.
func layout(n int, value string) map[string]string {
	files := make(map[string]string, n)
	for i := 0; i < n; i++ {
		files[appPath(i)+"/cm.yaml"] = appConfigMap(i, value)
	}
	return files
}

// clients returns a controller-runtime client and a clientset for the package's API server.
func clients(tb testing.TB) (client.Client, kubernetes.Interface) {
	tb.Helper()
	cfg := testenv.SharedAPIServer(tb)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c, cs
}

func newNamespace(tb testing.TB, c client.Client, prefix string) string {
	tb.Helper()
	ns := prefix + "-" + randHex(3)
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		tb.Fatal(err)
	}
	if err := c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: ns},
		StringData: map[string]string{"username": gitSrv.Username, "password": gitSrv.Password}}); err != nil {
		tb.Fatal(err)
	}
	return ns
}

// clearNamespace deletes the ConfigMaps a run left in its namespace (untimed), so every run starts from
// the same cluster: without it each run's informers LIST, and the API server serves, every ConfigMap of
// the runs before it, and later samples measure more than earlier ones. The namespace itself stays
// (envtest runs no namespace controller to finish deleting it).
func clearNamespace(tb testing.TB, c client.Client, ns string) {
	tb.Helper()
	if err := c.DeleteAllOf(context.Background(), &corev1.ConfigMap{}, client.InNamespace(ns)); err != nil {
		tb.Fatalf("clear namespace %s: %v", ns, err)
	}
}

func gitRepository(ns, url string, interval time.Duration) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: interval},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &meta.LocalObjectReference{Name: "git-auth"}},
	}
}

// appKustomization follows flux-benchmark's Kustomization template (timoni/modules/flux-ks-bench:
// interval 60m, retryInterval 2m, prune, targetNamespace, postBuild.substitute INDEX), reading one app
// directory of a shared GitRepository instead of one OCIRepository per app, as RECIPES.md measured Flux.
func appKustomization(ns string, i int) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%04d", i), Namespace: ns},
		Spec: kustomizev1.KustomizationSpec{Path: appPath(i), Prune: true, TargetNamespace: ns,
			Interval:      metav1.Duration{Duration: time.Hour},
			RetryInterval: &metav1.Duration{Duration: 2 * time.Minute},
			PostBuild:     &kustomizev1.PostBuild{Substitute: map[string]string{"INDEX": fmt.Sprintf("%dapp", i)}},
			SourceRef:     kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}},
	}
}

// readyTracker counts Kustomizations whose reconciliation succeeded at a given revision, from the
// reconciler's event stream (cheaper than polling 1000 statuses).
type readyTracker struct {
	mu       sync.Mutex
	revision string
	ready    map[string]time.Time
	want     int
	done     chan struct{}
	// artifact is when the GitRepository published the expected revision (zero until then).
	artifact time.Time
}

func newReadyTracker(want int) *readyTracker {
	return &readyTracker{ready: map[string]time.Time{}, want: want, done: make(chan struct{})}
}

func (t *readyTracker) expect(revision string, want int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.revision, t.want, t.ready, t.done, t.artifact = revision, want, map[string]time.Time{}, make(chan struct{}), time.Time{}
}

func (t *readyTracker) onEvent(ev reconciler.Event) {
	if ev.Kind == reconciler.KindGitRepository && ev.Reason == "NewArtifact" {
		t.mu.Lock()
		if t.artifact.IsZero() && (t.revision == "" || ev.Revision == t.revision) {
			t.artifact = time.Now()
		}
		t.mu.Unlock()
		return
	}
	if ev.Kind != reconciler.KindKustomization || ev.Reason != meta.ReconciliationSucceededReason {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.revision != "" && ev.Revision != t.revision {
		return
	}
	if _, ok := t.ready[ev.Name]; ok {
		return
	}
	t.ready[ev.Name] = time.Now()
	if len(t.ready) == t.want {
		close(t.done)
	}
}

func (t *readyTracker) wait(ctx context.Context) error {
	t.mu.Lock()
	done := t.done
	t.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		defer t.mu.Unlock()
		return fmt.Errorf("%d of %d Kustomizations ready: %w", len(t.ready), t.want, ctx.Err())
	}
}

func percentile(samples []float64, q float64) float64 {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	pos := q * float64(len(s)-1)
	lo := int(pos)
	hi := lo
	if lo+1 < len(s) {
		hi = lo + 1
	}
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}
