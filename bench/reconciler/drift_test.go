package reconciler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// driftApps is how many Kustomizations the drift benchmark runs, and driftSamples how many edits it
// makes; the deletions are a quarter of that.
const (
	driftApps    = 100
	driftSamples = 200
)

// BenchmarkDriftCorrection edits (like `kubectl edit`) and deletes (like `kubectl delete`) managed
// ConfigMaps one at a time and measures, with its own watch, the time from the edit being accepted by
// the API server to the restored object being visible. The fake clock is not used: intervals are 1 h,
// so only the reconciler's watch can correct within the run.
func BenchmarkDriftCorrection(b *testing.B) {
	c, cs := clients(b)
	url, rev := benchRepo(b, driftApps)
	var edits, deletes, internal []float64
	load := loadAvg()
	for i := 0; i < b.N; i++ {
		ns := newNamespace(b, c, "drift")
		tr := newReadyTracker(driftApps)
		tr.expect(rev, driftApps)
		r, err := reconciler.New(testenv.SharedAPIServer(b), reconciler.Options{Cluster: ns, WorkDir: b.TempDir(), OnEvent: tr.onEvent})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := r.ApplyGitRepository(gitRepository(ns, url, time.Hour)); err != nil {
			b.Fatal(err)
		}
		for k := 0; k < driftApps; k++ {
			if err := r.ApplyKustomization(appKustomization(ns, k)); err != nil {
				b.Fatal(err)
			}
		}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
		if err := tr.wait(wctx); err != nil {
			b.Fatal(err)
		}
		wcancel()
		b.ResetTimer()
		for s := 0; s < driftSamples; s++ {
			d, err := editAndWait(ctx, c, cs, ns, fmt.Sprintf("app-%04d", s%driftApps), fmt.Sprintf("drift-%d", s))
			if err != nil {
				b.Fatal(err)
			}
			edits = append(edits, d.Seconds()*1000)
		}
		for s := 0; s < driftSamples/4; s++ {
			d, err := deleteAndWait(ctx, c, cs, ns, fmt.Sprintf("app-%04d", s%driftApps))
			if err != nil {
				b.Fatal(err)
			}
			deletes = append(deletes, d.Seconds()*1000)
		}
		b.StopTimer()
		for _, cr := range r.Corrections() {
			internal = append(internal, cr.Latency.Seconds()*1000)
		}
		cancel()
		r.Stop()
	}
	b.ReportMetric(percentile(edits, 0.5), "p50-ms")
	b.ReportMetric(percentile(edits, 0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
	record(result.NewMetric("reconciler.drift.edit.latencyMs", "ms", result.Lower, edits))
	p99 := result.NewMetric("reconciler.drift.edit.p99Ms", "ms", result.Lower, []float64{percentile(edits, 0.99)})
	p99.Goal = &result.Goal{Op: "<", Value: 1000, Source: "issue 7: drift p99 < 1 s"}
	p99.Anchor = &result.Anchor{Value: 3600 * 1000, Source: "Flux corrects drift only at spec.interval (here 1 h; RECIPES.md: 'Drift is not corrected until the interval')"}
	record(p99)
	record(result.NewMetric("reconciler.drift.delete.latencyMs", "ms", result.Lower, deletes))
	record(result.NewMetric("reconciler.drift.internal.latencyMs", "ms", result.Lower, internal))
	note(fmt.Sprintf("drift: %d Kustomizations, %d sequential edits and %d deletions per run (%d runs), measured by a separate watch from the accepted edit to the restored object; load average %s",
		driftApps, driftSamples, driftSamples/4, b.N, load))
}

func editAndWait(ctx context.Context, c client.Client, cs kubernetes.Interface, ns, name, value string) (time.Duration, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		return 0, err
	}
	want := cm.Data["value"]
	cm.Data["value"] = value
	if err := c.Update(ctx, &cm, client.FieldOwner("kubectl-edit")); err != nil {
		return 0, err
	}
	t0 := time.Now()
	return waitFor(ctx, cs, ns, name, cm.ResourceVersion, t0, func(ev watch.Event, o *corev1.ConfigMap) bool {
		return ev.Type == watch.Modified && o.Data["value"] == want
	})
}

func deleteAndWait(ctx context.Context, c client.Client, cs kubernetes.Interface, ns, name string) (time.Duration, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		return 0, err
	}
	rv := cm.ResourceVersion
	if err := c.Delete(ctx, &cm); err != nil {
		return 0, err
	}
	t0 := time.Now()
	return waitFor(ctx, cs, ns, name, rv, t0, func(ev watch.Event, o *corev1.ConfigMap) bool {
		return ev.Type == watch.Added
	})
}

// waitFor watches one ConfigMap from resourceVersion rv until match, and returns the time from t0.
func waitFor(ctx context.Context, cs kubernetes.Interface, ns, name, rv string, t0 time.Time, match func(watch.Event, *corev1.ConfigMap) bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, FieldSelector: "metadata.name=" + name})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if o, ok := ev.Object.(*corev1.ConfigMap); ok && match(ev, o) {
			return time.Since(t0), nil
		}
	}
	return 0, fmt.Errorf("ConfigMap %s/%s not restored within 30 s", ns, name)
}
