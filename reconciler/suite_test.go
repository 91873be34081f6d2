package reconciler_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// One API server (testenv.SharedAPIServer) and one Git server for the package (TestMain); every test
// has its own namespace, repository, work directory and reconciler.
var gitSrv *testenv.GitServer

// Polling bounds for Eventually. They are generous deadlines for a loaded 2-core machine, not speed
// claims: speed is measured by bench/reconciler.
const (
	eventually = 60 * time.Second
	poll       = 20 * time.Millisecond
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	gitRoot, err := os.MkdirTemp("", "reconciler-git-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(gitRoot)
	gitSrv, err = testenv.StartGitServer(gitRoot, "flux", "pw-"+randHex(8))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start Git server:", err)
		return 1
	}
	defer gitSrv.Close()
	return testenv.Run(m)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// env is one test's world.
type env struct {
	t    *testing.T
	g    Gomega
	ns   string
	r    *reconciler.Reconciler
	clk  *clocktesting.FakeClock
	repo *testenv.Repo
	c    client.Client
	cfg  *rest.Config // the package's API server (testenv.SharedAPIServer)
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

func newEnv(t *testing.T, mutate ...func(*reconciler.Options)) *env {
	t.Helper()
	g := NewWithT(t)
	name := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	ns := strings.Trim(name, "-") + "-" + randHex(3)
	cfg := testenv.SharedAPIServer(t)
	c, err := client.New(cfg, client.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: ns},
		StringData: map[string]string{"username": gitSrv.Username, "password": gitSrv.Password}})).To(Succeed())
	t.Cleanup(func() { _ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })

	repo, err := gitSrv.CreateRepo(ns, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	clk := clocktesting.NewFakeClock(time.Now())
	opts := reconciler.Options{Cluster: ns, WorkDir: t.TempDir(), Clock: clk}
	for _, m := range mutate {
		m(&opts)
	}
	r, err := reconciler.New(cfg, opts)
	g.Expect(err).NotTo(HaveOccurred())
	rctx, cancel := context.WithCancel(context.Background())
	g.Expect(r.Start(rctx)).To(Succeed())
	t.Cleanup(func() { cancel(); r.Stop() })
	return &env{t: t, g: g, ns: ns, r: r, clk: clk, repo: repo, c: c, cfg: cfg}
}

func (e *env) commit(files map[string]string, remove ...string) string {
	e.t.Helper()
	sha, err := e.repo.Commit("main", "change", files, remove...)
	e.g.Expect(err).NotTo(HaveOccurred())
	return sha
}

// gitRepository is a GitRepository on branch main with the test's credentials, interval 1m.
func (e *env) gitRepository(name string) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: sourcev1.GitRepositorySpec{URL: e.repo.URL, Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			SecretRef: &meta.LocalObjectReference{Name: "git-auth"}},
	}
}

// ociRepository is an OCIRepository of url (plain HTTP, as the twin's registry speaks), interval 1m.
func (e *env) ociRepository(name, url string) *sourcev1.OCIRepository {
	return &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec:       sourcev1.OCIRepositorySpec{URL: url, Insecure: true, Interval: metav1.Duration{Duration: time.Minute}},
	}
}

// kustomization reads GitRepository "repo" at path, prunes, interval 10m, retry 1h (so with the fake
// clock nothing retries unless a test steps it or triggers it).
func (e *env) kustomization(name, path string, mutate ...func(*kustomizev1.Kustomization)) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: kustomizev1.KustomizationSpec{Path: path, Prune: true,
			Interval:      metav1.Duration{Duration: 10 * time.Minute},
			RetryInterval: &metav1.Duration{Duration: time.Hour},
			Timeout:       &metav1.Duration{Duration: 30 * time.Second},
			SourceRef:     kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}},
	}
	for _, m := range mutate {
		m(k)
	}
	return k
}

func (e *env) apply(objs ...any) {
	e.t.Helper()
	for _, o := range objs {
		switch v := o.(type) {
		case *sourcev1.GitRepository:
			e.g.Expect(e.r.ApplyGitRepository(v)).To(Succeed())
		case *sourcev1.OCIRepository:
			e.g.Expect(e.r.ApplyOCIRepository(v)).To(Succeed())
		case *kustomizev1.Kustomization:
			e.g.Expect(e.r.ApplyKustomization(v)).To(Succeed())
		default:
			e.t.Fatalf("cannot apply %T", o)
		}
	}
}

// ready returns the Kustomization's Ready condition as "Status/Reason: message".
func (e *env) ready(name string) func() string {
	return func() string {
		k, ok := e.r.Kustomization(e.ns, name)
		if !ok {
			return "absent"
		}
		return readyOf(k.Status.Conditions)
	}
}

// appliedRevision returns status.lastAppliedRevision once Ready is True, else "".
func (e *env) appliedRevision(name string) func() string {
	return func() string {
		k, ok := e.r.Kustomization(e.ns, name)
		if !ok || !apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition) {
			return ""
		}
		return k.Status.LastAppliedRevision
	}
}

func (e *env) waitApplied(name, sha string) {
	e.t.Helper()
	e.g.Eventually(e.appliedRevision(name)).WithTimeout(eventually).WithPolling(poll).Should(Equal("main@sha1:"+sha),
		func() string { return e.ready(name)() })
}

func (e *env) waitIdle() {
	e.t.Helper()
	e.g.Eventually(e.r.Idle).WithTimeout(eventually).WithPolling(poll).Should(BeTrue())
}

// configMapData returns a ConfigMap's data, or nil with "NotFound" semantics.
func (e *env) configMapData(ns, name string) func() map[string]string {
	return func() map[string]string {
		var cm corev1.ConfigMap
		err := e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cm)
		if apierrors.IsNotFound(err) {
			return nil
		}
		e.g.Expect(err).NotTo(HaveOccurred())
		return cm.Data
	}
}

// stepInterval moves the fake clock past a GitRepository interval (1m plus the 5% jitter).
func (e *env) stepInterval() { e.clk.Step(2 * time.Minute) }

func configMap(ns, name string, data map[string]string, annotations ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
	if ns != "" {
		fmt.Fprintf(&b, "  namespace: %s\n", ns)
	}
	if len(annotations) > 0 {
		b.WriteString("  annotations:\n")
		for i := 0; i+1 < len(annotations); i += 2 {
			fmt.Fprintf(&b, "    %s: %q\n", annotations[i], annotations[i+1])
		}
	}
	if len(data) > 0 {
		b.WriteString("data:\n")
		for _, k := range sortedKeys(data) {
			fmt.Fprintf(&b, "  %s: %q\n", k, data[k])
		}
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

var reconcilerErrDependencyCycle = reconciler.ErrDependencyCycle
