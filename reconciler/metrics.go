package reconciler

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names follow Flux's gotk_reconcile_duration_seconds where one exists, under the
// "hybridtwin_reconciler" namespace so twin and Flux metrics can be scraped side by side.
type metrics struct {
	registry    *prometheus.Registry
	gatherer    prometheus.Gatherer
	duration    *prometheus.HistogramVec
	total       *prometheus.CounterVec
	corrections prometheus.Counter
	correction  prometheus.Histogram
}

func newMetrics(cluster string, reg prometheus.Registerer, r *Reconciler) (*metrics, error) {
	m := &metrics{}
	if reg == nil {
		m.registry = prometheus.NewRegistry()
		reg = m.registry
		m.gatherer = m.registry
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	labels := prometheus.Labels{"cluster": cluster}
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "hybridtwin", Subsystem: "reconciler", Name: "reconcile_duration_seconds",
		Help:        "Duration of reconciliations (Flux: gotk_reconcile_duration_seconds).",
		ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"kind"})
	m.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "hybridtwin", Subsystem: "reconciler", Name: "reconciles_total",
		Help: "Reconciliations by kind and result.", ConstLabels: labels,
	}, []string{"kind", "result"})
	m.corrections = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "hybridtwin", Subsystem: "reconciler", Name: "drift_corrections_total",
		Help: "Objects restored after drift or deletion, between intervals.", ConstLabels: labels,
	})
	m.correction = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "hybridtwin", Subsystem: "reconciler", Name: "drift_correction_latency_seconds",
		Help:        "From the watch event of a drifted object to the corrected object accepted by the API server.",
		ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	depth := func(name string, f func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hybridtwin", Subsystem: "reconciler",
			Name: "queue_depth", Help: "Items waiting in a work queue.", ConstLabels: prometheus.Labels{"cluster": cluster, "queue": name}},
			func() float64 { return float64(f()) })
	}
	cs := []prometheus.Collector{m.duration, m.total, m.corrections, m.correction,
		depth("kustomization", r.ksQueue.Len), depth("source", r.srcQueue.Len), depth("drift", r.driftQueue.Len),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hybridtwin", Subsystem: "reconciler", Name: "scheduled",
			Help: "Objects waiting for their next interval or retry.", ConstLabels: labels},
			func() float64 { r.mu.Lock(); defer r.mu.Unlock(); return float64(r.sched.Len()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics of cluster %q: %w (two reconcilers with the same Options.Cluster share a Registerer?)", cluster, err)
		}
	}
	return m, nil
}

func (m *metrics) observeReconcile(kind Kind, o core.Outcome, d time.Duration) {
	m.duration.WithLabelValues(string(kind)).Observe(d.Seconds())
	m.total.WithLabelValues(string(kind), string(o)).Inc()
}

func (m *metrics) observeCorrection(d time.Duration) {
	m.corrections.Inc()
	m.correction.Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	if m.gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}
