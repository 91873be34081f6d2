package fluxcmp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reconciler/reconcilertest"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/flux"
)

// resultsPath defaults to flux-compare.json in the run directory of $HYBRIDTWIN_BENCH_DIR, or in
// bench/results/ (result.OutPath).
var resultsPath = flag.String("results", result.OutPathFlag("flux-compare.json"),
	"where the results are merged (bench/result schema); empty disables writing")

// sizesFlag picks the scale runs: the 100 / 500 / 1000 Kustomizations by default;
// HYBRIDTWIN_FLUXCMP_SIZES or -sizes (e.g. "100") narrows them.
var sizesFlag = flag.String("sizes", envOr("HYBRIDTWIN_FLUXCMP_SIZES", "100,500,1000"),
	"comma-separated numbers of Kustomizations for BenchmarkScale (issue 12: 100,500,1000)")

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// fluxBenchmarkSeconds are flux-benchmark's figures on 2 CPUs quoted in issue 7 and README's
// Performance table (Flux v2, one ConfigMap per Kustomization): 28 s, 2m2s, 4m16s.
var fluxBenchmarkSeconds = map[int]float64{100: 28, 500: 122, 1000: 256}

// readyPoll is how often the driver reads the Kustomizations' status through the Target, the same for
// both engines; it bounds the figures' resolution (50 ms: our 100 finish within one 500 ms tick, the
// first increment's period, so that figure was the tick, not the reconciler).
const readyPoll = 50 * time.Millisecond

// scaleTimeout bounds one run: RECIPES.md measured Flux at 16-24 s for 100 here, the brief ~2 min for
// 500 and ~4 min for 1000 on this loaded machine; ten minutes plus a minute per 100 means a hang, not a
// slow run.
func scaleTimeout(n int) time.Duration { return 10*time.Minute + time.Duration(n/100)*time.Minute }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-sizes / HYBRIDTWIN_FLUXCMP_SIZES %q: %q is not a positive number of Kustomizations (use e.g. 100,500,1000)", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// env is one API server, one Git server and Flux's two controllers running against it.
type env struct {
	api    *reconcilertest.APIServer
	git    *reconcilertest.GitServer
	ctl    *flux.Controllers
	target *arcagent.ClusterTarget
	kube   kubernetes.Interface
}

func newEnv(b *testing.B) *env {
	b.Helper()
	ctx := context.Background()
	api, err := reconcilertest.StartAPIServer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = api.Stop() })
	gitSrv, err := reconcilertest.StartGitServer(b.TempDir(), "flux", "pw-"+randHex(8))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gitSrv.Close() })
	// Kustomizations only: helm-controller would add its idle CPU and memory to Flux's figures.
	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: writeKubeconfig(b, api.Config), StateDir: b.TempDir(), NoHelmController: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ctl.Stop() })
	fluxTarget, err := arcagent.NewClusterTarget(api.Config)
	if err != nil {
		b.Fatal(err)
	}
	return &env{api: api, git: gitSrv, ctl: ctl, target: fluxTarget, kube: kubernetes.NewForConfigOrDie(api.Config)}
}

// newRepo creates a repository with n flux-benchmark apps (one ConfigMap each, data.value=value).
func (e *env) newRepo(b *testing.B, prefix string, n int, value string) *reconcilertest.Repo {
	b.Helper()
	repo, err := e.git.CreateRepo(prefix+"-"+randHex(3), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := repo.Commit("main", "apps", appFiles(n, value)); err != nil {
		b.Fatal(err)
	}
	return repo
}

func appFiles(n int, value string) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("apps/app-%04d/cm.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%04d\ndata:\n  value: %s\n", i, value)
	}
	return files
}

// fluxPIDs are the two controllers' process ids (their CPU and RSS are the Flux figures).
func (e *env) fluxPIDs() []int {
	var pids []int
	for _, p := range e.ctl.Processes() {
		pids = append(pids, p.PID)
	}
	return pids
}

// startOurs runs the twin's reconciler in-process for one namespace until the returned stop.
func (e *env) startOurs(b *testing.B, ns string) (*reconciler.Reconciler, func()) {
	b.Helper()
	rec, err := reconciler.New(e.api.Config, reconciler.Options{Cluster: ns, WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	if err := rec.Start(rctx); err != nil {
		cancel()
		b.Fatal(err)
	}
	return rec, func() { rec.Stop(); cancel() }
}

// BenchmarkScale reconciles N one-ConfigMap Kustomizations (flux-benchmark's shape) from scratch for
// each selected N, first with the twin's reconciler, then with real Flux, each in its own namespace of
// one API server, and records the time until all are Ready, the ratio, and each engine's CPU seconds and
// peak RSS during its run.
func BenchmarkScale(b *testing.B) {
	sizes, err := parseSizes(*sizesFlag)
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b)
	self := os.Getpid()
	var ms []result.Metric
	resetOK := true
	for _, n := range sizes {
		// A repository of exactly n apps, as flux-benchmark's: every Flux Kustomization downloads and
		// unpacks the whole artifact, so sharing the largest size's repository made each of the 100
		// Kustomizations unpack 1000 apps (1.3 CPU-s each instead of ~0.2).
		repo := e.newRepo(b, fmt.Sprintf("scale%d", n), n, "v1")
		var ours, theirs, ratio, ourCPU, theirCPU, ourRSS, theirRSS []float64
		for i := 0; i < b.N; i++ {
			ns := newNamespace(b, e.kube, fmt.Sprintf("ours%d", n), e.git)
			u, err := startUsage(self)
			if err != nil {
				b.Fatal(err)
			}
			rec, stop := e.startOurs(b, ns)
			s, err := scaleOnce(rec, ns, repo.URL, n, time.Hour)
			cpu, rss, uerr := u.end()
			stop()
			if err != nil {
				b.Fatalf("twin reconciler, %d Kustomizations: %v", n, err)
			}
			if uerr != nil {
				b.Fatal(uerr)
			}
			resetOK = resetOK && u.reset
			ours, ourCPU, ourRSS = append(ours, s), append(ourCPU, cpu), append(ourRSS, rss)

			ns = newNamespace(b, e.kube, fmt.Sprintf("flux%d", n), e.git)
			u, err = startUsage(e.fluxPIDs()...)
			if err != nil {
				b.Fatal(err)
			}
			s, err = scaleOnce(e.target, ns, repo.URL, n, time.Hour)
			if err != nil {
				b.Fatalf("flux, %d Kustomizations: %v (logs: %v)", n, err, e.ctl.Processes())
			}
			cpu, rss, err = u.end()
			if err != nil {
				b.Fatal(err)
			}
			resetOK = resetOK && u.reset
			theirs, theirCPU, theirRSS = append(theirs, s), append(theirCPU, cpu), append(theirRSS, rss)
			ratio = append(ratio, theirs[i]/ours[i])
		}
		b.ReportMetric(median(ours), fmt.Sprintf("s/hybridtwin-%d-ready", n))
		b.ReportMetric(median(theirs), fmt.Sprintf("s/flux-%d-ready", n))
		b.ReportMetric(median(ratio), fmt.Sprintf("flux/hybridtwin-%d", n))
		p := fmt.Sprintf("fluxcmp.scale.%d.", n)
		m := result.NewMetric(p+"hybridtwin.allReadySeconds", "s", result.Lower, ours)
		f := result.NewMetric(p+"flux.allReadySeconds", "s", result.Lower, theirs)
		if a, ok := fluxBenchmarkSeconds[n]; ok {
			f.Anchor = &result.Anchor{Value: a, Source: "flux-benchmark, Flux v2 on 2 CPUs (issue 7; README Performance)"}
			if n == 100 {
				f.Anchor.Source += "; RECIPES.md 'Real Flux outside a cluster' measured 16-24 s here"
			}
		}
		ms = append(ms, m, f,
			result.NewMetric(p+"fluxOverHybridtwin", "ratio", result.Higher, ratio),
			result.NewMetric(p+"hybridtwin.cpuSeconds", "s", result.Lower, ourCPU),
			result.NewMetric(p+"flux.cpuSeconds", "s", result.Lower, theirCPU),
			result.NewMetric(p+"hybridtwin.rssMiB", "MiB", result.Lower, ourRSS),
			result.NewMetric(p+"flux.rssMiB", "MiB", result.Lower, theirRSS))
	}
	b.ReportMetric(0, "ns/op")
	notes := []string{
		"scale: each size in fresh namespaces of the same API server, ours first, then Flux; earlier sizes' Flux objects stay (interval 1 h, idle)",
		"scale cpuSeconds: hybridtwin = utime+stime of the whole bench process during the run (reconciler, plus the driver's status polling and the in-process Git HTTP front end; git http-backend children are not counted); flux = source-controller + kustomize-controller utime+stime (/proc/<pid>/stat)",
		"scale rssMiB: peak RSS (VmHWM) during the run; hybridtwin = the whole bench process (Go heap of driver, reconciler and clients), flux = sum of the two controllers' peaks",
	}
	if !resetOK {
		notes = append(notes, "scale rssMiB: /proc/<pid>/clear_refs could not reset VmHWM, so rssMiB is each process's lifetime peak up to that run")
	}
	if err := writeResults(notes, ms...); err != nil {
		b.Fatal(err)
	}
}

// scaleOnce applies one GitRepository and n Kustomizations through the Target and returns the
// seconds until every Kustomization reports Ready=True for its current generation.
func scaleOnce(t arcagent.Target, ns, url string, n int, interval time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout(n))
	defer cancel()
	start := time.Now()
	if err := t.ApplyGitRepository(gitRepository(ns, url)); err != nil {
		return 0, err
	}
	for i := range n {
		if err := t.ApplyKustomization(kustomization(ns, i, interval, nil)); err != nil {
			return 0, err
		}
	}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	// ready carries over between polls: a Kustomization applied once stays Ready for its generation, so
	// each poll reads from the first one not yet seen Ready (n reads in all, not n per poll, which would
	// load the API server the Flux figures share).
	ready := 0
	for {
		for ; ready < n; ready++ {
			k, ok := t.Kustomization(ns, fmt.Sprintf("app-%04d", ready))
			if !ok || !apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition) {
				break
			}
		}
		if ready == n {
			return time.Since(start).Seconds(), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d Kustomizations Ready after %s: %w", ready, n, scaleTimeout(n), ctx.Err())
		case <-tick.C:
		}
	}
}

// gitRepository is the one source of a namespace: interval 10 min (Arc's default sync interval), so
// only a request brings a push early.
func gitRepository(ns, url string) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: 10 * time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &meta.LocalObjectReference{Name: "git-auth"}},
	}
}

func kustomization(ns string, i int, interval time.Duration, annotations map[string]string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%04d", i), Namespace: ns, Annotations: annotations},
		Spec: kustomizev1.KustomizationSpec{Path: fmt.Sprintf("apps/app-%04d", i), Prune: true, TargetNamespace: ns,
			Interval:  metav1.Duration{Duration: interval},
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}},
	}
}

func newNamespace(b *testing.B, kube kubernetes.Interface, prefix string, g *reconcilertest.GitServer) string {
	b.Helper()
	ns := prefix + "-" + randHex(3)
	ctx := context.Background()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: ns},
		StringData: map[string]string{"username": g.Username, "password": g.Password}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	return ns
}

// writeKubeconfig writes the API server's admin client configuration as a kubeconfig for the controllers.
func writeKubeconfig(b *testing.B, cfg *rest.Config) string {
	b.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["twin"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["twin"] = &clientcmdapi.Context{Cluster: "twin", AuthInfo: "admin"}
	kc.CurrentContext = "twin"
	path := filepath.Join(b.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		b.Fatal(err)
	}
	return path
}

func median(xs []float64) float64 {
	m := result.NewMetric("x", "", result.Lower, xs)
	return m.Median
}

func writeResults(notes []string, ms ...result.Metric) error {
	if *resultsPath == "" {
		return nil
	}
	run := &result.Run{}
	if prev, err := result.Read(*resultsPath); err == nil {
		run = prev
	}
	old := run.Env.Notes // the other benchmarks' notes of this file
	run.RunAt = time.Now().UTC()
	run.Env = result.CurrentEnvironment()
	run.Env.PinsVersion = toolcache.PinsVersion
	run.Env.Tools = map[string]string{"kube-apiserver": toolcache.KubeAPIServer.Version, "etcd": toolcache.Etcd.Version,
		"source-controller": toolcache.SourceController.Version, "kustomize-controller": toolcache.KustomizeController.Version}
	run.Env.Notes = []string{
		"reconciler profile " + reconciler.DefaultProfile().Name + "; " + flux.ProfileVersion,
		"one API server (kube-apiserver + etcd, no controllers); each engine in its own namespace, one after the other",
		fmt.Sprintf("both driven through arcagent.Target; status polled every %s (the figures' resolution)", readyPoll),
		"machine shared with other builders",
	}
	for _, n := range append(old, notes...) {
		if !slices.Contains(run.Env.Notes, n) {
			run.Env.Notes = append(run.Env.Notes, n)
		}
	}
	for _, m := range ms {
		run.Add(m)
	}
	return run.Write(*resultsPath)
}
