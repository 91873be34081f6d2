package fluxcmp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"path/filepath"
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

// scaleN is the first size of the 100 / 500 / 1000 (the lead's first increment: 100).
const scaleN = 100

// readyPoll is how often the driver reads the N Kustomizations' status through the Target, the same
// for both engines; it bounds the figures' resolution. scaleTimeout bounds one run: RECIPES.md measured
// Flux at 16-24 s for 100 here, so ten minutes means a hang, not a slow run.
const (
	readyPoll    = 500 * time.Millisecond
	scaleTimeout = 10 * time.Minute
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// BenchmarkScale100 reconciles 100 one-ConfigMap Kustomizations (flux-benchmark's shape) from scratch,
// first with the twin's reconciler, then with real Flux, each in its own namespace of one API server,
// and records the time until all are Ready and the ratio.
func BenchmarkScale100(b *testing.B) {
	ctx := context.Background()
	api, err := reconcilertest.StartAPIServer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer api.Stop()
	gitSrv, err := reconcilertest.StartGitServer(b.TempDir(), "flux", "pw-"+randHex(8))
	if err != nil {
		b.Fatal(err)
	}
	defer gitSrv.Close()
	repo, err := gitSrv.CreateRepo("scale-"+randHex(3), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{}
	for i := range scaleN {
		files[fmt.Sprintf("apps/app-%04d/cm.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%04d\ndata:\n  value: v1\n", i)
	}
	if _, err := repo.Commit("main", "apps", files); err != nil {
		b.Fatal(err)
	}
	kubeconfig := writeKubeconfig(b, api.Config)
	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: kubeconfig, StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Stop()
	fluxTarget, err := flux.NewTarget(api.Config)
	if err != nil {
		b.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(api.Config)

	var ours, theirs []float64
	for i := 0; i < b.N; i++ {
		ns := newNamespace(b, kube, "ours", gitSrv)
		rec, err := reconciler.New(api.Config, reconciler.Options{Cluster: ns, WorkDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		if err := rec.Start(rctx); err != nil {
			cancel()
			b.Fatal(err)
		}
		s, err := scaleOnce(rec, ns, repo.URL)
		rec.Stop()
		cancel()
		if err != nil {
			b.Fatalf("twin reconciler: %v", err)
		}
		ours = append(ours, s)

		ns = newNamespace(b, kube, "flux", gitSrv)
		s, err = scaleOnce(fluxTarget, ns, repo.URL)
		if err != nil {
			b.Fatalf("flux: %v (logs: %v)", err, ctl.Processes())
		}
		theirs = append(theirs, s)
	}
	ratio := make([]float64, len(ours))
	for i := range ours {
		ratio[i] = theirs[i] / ours[i]
	}
	b.ReportMetric(median(ours), "s/hybridtwin-all-ready")
	b.ReportMetric(median(theirs), "s/flux-all-ready")
	b.ReportMetric(median(ratio), "flux/hybridtwin")
	b.ReportMetric(0, "ns/op")
	anchor := &result.Anchor{Value: 20, Source: "RECIPES.md 'Real Flux outside a cluster': 100 Kustomizations Ready in 16-24 s"}
	m := result.NewMetric(fmt.Sprintf("fluxcmp.scale.%d.hybridtwin.allReadySeconds", scaleN), "s", result.Lower, ours)
	f := result.NewMetric(fmt.Sprintf("fluxcmp.scale.%d.flux.allReadySeconds", scaleN), "s", result.Lower, theirs)
	f.Anchor = anchor
	r := result.NewMetric(fmt.Sprintf("fluxcmp.scale.%d.fluxOverHybridtwin", scaleN), "ratio", result.Higher, ratio)
	if err := writeResults(m, f, r); err != nil {
		b.Fatal(err)
	}
}

// scaleOnce applies one GitRepository and scaleN Kustomizations through the Target and returns the
// seconds until every Kustomization reports Ready=True for its current generation.
func scaleOnce(t arcagent.Target, ns, url string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
	defer cancel()
	start := time.Now()
	if err := t.ApplyGitRepository(&sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: 10 * time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &meta.LocalObjectReference{Name: "git-auth"}},
	}); err != nil {
		return 0, err
	}
	for i := range scaleN {
		if err := t.ApplyKustomization(&kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%04d", i), Namespace: ns},
			Spec: kustomizev1.KustomizationSpec{Path: fmt.Sprintf("apps/app-%04d", i), Prune: true, TargetNamespace: ns,
				Interval:  metav1.Duration{Duration: time.Hour},
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}},
		}); err != nil {
			return 0, err
		}
	}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		ready := 0
		for i := range scaleN {
			k, ok := t.Kustomization(ns, fmt.Sprintf("app-%04d", i))
			if !ok || !apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition) {
				break
			}
			ready++
		}
		if ready == scaleN {
			return time.Since(start).Seconds(), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d Kustomizations Ready after %s: %w", ready, scaleN, scaleTimeout, ctx.Err())
		case <-tick.C:
		}
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

func writeResults(ms ...result.Metric) error {
	if *resultsPath == "" {
		return nil
	}
	run := &result.Run{}
	if old, err := result.Read(*resultsPath); err == nil {
		run = old
	}
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
	for _, m := range ms {
		run.Add(m)
	}
	return run.Write(*resultsPath)
}
