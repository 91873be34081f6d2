package reconciler

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/reconciler"
	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sizes are the Kustomization counts.
var sizes = []int{100, 500, 1000}

// fluxSeconds are flux-benchmark's figures on 2 CPUs quoted in the issue (Flux v2, one ConfigMap per
// Kustomization): 28 s, 2m2s, 4m16s.
var fluxSeconds = map[int]float64{100: 28, 500: 122, 1000: 256}

// scaleTimeout bounds one run: four times Flux's figure, so a regression fails instead of hanging.
func scaleTimeout(n int) time.Duration { return time.Duration(4*fluxSeconds[n]) * time.Second }

type benchRepoT struct {
	url, rev string
}

var (
	reposMu sync.Mutex
	repos   = map[int]benchRepoT{}
)

// benchRepo is a repository with n app directories (flux-benchmark's shape: one app per
// Kustomization), created once per size.
// workRoot holds the benchmark repositories' working copies; TestMain removes it.
var workRoot string

func benchRepo(tb testing.TB, n int) (string, string) {
	reposMu.Lock()
	defer reposMu.Unlock()
	if r, ok := repos[n]; ok {
		return r.url, r.rev
	}
	dir, err := os.MkdirTemp(workRoot, "bench-work-")
	if err != nil {
		tb.Fatal(err)
	}
	r, err := gitSrv.CreateRepo(fmt.Sprintf("scale-%d-%s", n, randHex(3)), dir)
	if err != nil {
		tb.Fatal(err)
	}
	sha, err := r.Commit("main", "apps", layout(n, "v1"))
	if err != nil {
		tb.Fatal(err)
	}
	repos[n] = benchRepoT{r.URL, "main@sha1:" + sha}
	return r.URL, "main@sha1:" + sha
}

// BenchmarkScale reconciles N one-ConfigMap Kustomizations from scratch and reports the time until all
// are Ready.
func BenchmarkScale(b *testing.B) {
	c, err := client.New(apiCfg, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range sizes {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			url, rev := benchRepo(b, n)
			var secs []float64
			load := loadAvg()
			for i := 0; i < b.N; i++ {
				s, err := scaleOnce(b, c, url, rev, n)
				if err != nil {
					b.Fatal(err)
				}
				secs = append(secs, s)
			}
			b.ReportMetric(percentile(secs, 0.5), "s/all-ready")
			b.ReportMetric(float64(n)/percentile(secs, 0.5), "kustomizations/s")
			b.ReportMetric(0, "ns/op")
			m := result.NewMetric(fmt.Sprintf("reconciler.scale.%d.allReadySeconds", n), "s", result.Lower, secs)
			m.Anchor = &result.Anchor{Value: fluxSeconds[n], Source: "flux-benchmark, Flux v2 on 2 CPUs (issue 7)"}
			if n == 1000 {
				m.Goal = &result.Goal{Op: "<", Value: 60, Source: "issue 7: 1000 in < 60 s"}
			}
			record(m)
			rate := make([]float64, len(secs))
			for i, s := range secs {
				rate[i] = float64(n) / s
			}
			record(result.NewMetric(fmt.Sprintf("reconciler.scale.%d.objectsPerSecond", n), "objects/s", result.Higher, rate))
			note(fmt.Sprintf("scale N=%d: %d runs; load average at start %s", n, len(secs), load))
		})
	}
}

func scaleOnce(b *testing.B, c client.Client, url, rev string, n int) (float64, error) {
	ns := newNamespace(b, c, fmt.Sprintf("scale-%d", n))
	tr := newReadyTracker(n)
	tr.expect(rev, n)
	r, err := reconciler.New(apiCfg, reconciler.Options{Cluster: ns, WorkDir: b.TempDir(), OnEvent: tr.onEvent})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout(n))
	defer cancel()
	if err := r.Start(ctx); err != nil {
		return 0, err
	}
	defer r.Stop()
	b.ResetTimer()
	start := time.Now()
	if err := r.ApplyGitRepository(gitRepository(ns, url, 10*time.Minute)); err != nil {
		return 0, err
	}
	for i := 0; i < n; i++ {
		if err := r.ApplyKustomization(appKustomization(ns, i)); err != nil {
			return 0, err
		}
	}
	if err := tr.wait(ctx); err != nil {
		evs := r.Events()
		if len(evs) > 5 {
			evs = evs[len(evs)-5:]
		}
		return 0, fmt.Errorf("%w; last events: %v", err, evs)
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	// Check the outcome, not just the events: every ConfigMap is in the cluster.
	var list corev1.ConfigMapList
	if err := c.List(context.Background(), &list, client.InNamespace(ns), client.HasLabels{"kustomize.toolkit.fluxcd.io/name"}); err != nil {
		return 0, err
	}
	if len(list.Items) != n {
		return 0, fmt.Errorf("%d ConfigMaps in %s, want %d", len(list.Items), ns, n)
	}
	b.StartTimer()
	return elapsed, nil
}

// BenchmarkRawSSA server-side applies the same N ConfigMaps (same content and labels, same field
// manager) with a bare client loop: sequentially, and with as many goroutines as the reconciler has
// Kustomization workers. Its rate is the limit the reconciler is measured against.
func BenchmarkRawSSA(b *testing.B) {
	c, err := client.New(apiCfg, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	workers := reconciler.DefaultProfile().KustomizationWorkers
	for _, n := range sizes {
		for _, par := range []int{1, workers} {
			name := fmt.Sprintf("N=%d/goroutines=%d", n, par)
			b.Run(name, func(b *testing.B) {
				var rates []float64
				for i := 0; i < b.N; i++ {
					ns := newNamespace(b, c, fmt.Sprintf("raw-%d", n))
					objs := rawObjects(ns, n)
					b.ResetTimer()
					start := time.Now()
					if err := applyAll(c, objs, par); err != nil {
						b.Fatal(err)
					}
					rates = append(rates, float64(n)/time.Since(start).Seconds())
				}
				b.ReportMetric(percentile(rates, 0.5), "objects/s")
				b.ReportMetric(0, "ns/op")
				record(result.NewMetric(fmt.Sprintf("reconciler.rawssa.%d.goroutines%d.objectsPerSecond", n, par), "objects/s", result.Higher, rates))
			})
		}
	}
}

func rawObjects(ns string, n int) []*corev1ac.ConfigMapApplyConfiguration {
	out := make([]*corev1ac.ConfigMapApplyConfiguration, n)
	for i := range out {
		name := fmt.Sprintf("app-%04d", i)
		out[i] = corev1ac.ConfigMap(name, ns).
			WithLabels(map[string]string{"kustomize.toolkit.fluxcd.io/name": name, "kustomize.toolkit.fluxcd.io/namespace": ns}).
			WithData(map[string]string{"index": fmt.Sprintf("%dapp", i), "value": "v1"})
	}
	return out
}

func applyAll(c client.Client, objs []*corev1ac.ConfigMapApplyConfiguration, par int) error {
	ch := make(chan *corev1ac.ConfigMapApplyConfiguration)
	errs := make(chan error, par)
	var wg sync.WaitGroup
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range ch {
				if err := c.Apply(context.Background(), o, client.ForceOwnership, client.FieldOwner("kustomize-controller")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, o := range objs {
		ch <- o
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
