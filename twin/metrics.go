package twin

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// ErrNoReconcilerMetrics is wrapped when a cluster runs Flux's controllers (spec.reconciler: flux) rather
// than the twin's reconciler: the controllers serve their own metrics.
var ErrNoReconcilerMetrics = errors.New("the cluster runs no reconciler of the twin")

// ReconcilerMetrics gathers the Prometheus metrics of one cluster's reconciler (hybridtwin_reconciler_*,
// labelled cluster=<name>) from the cluster's own registry, so scenarios and benchmarks read one
// cluster's figures without the others'. A cluster on Flux's controllers has none (ErrNoReconcilerMetrics:
// the controllers serve theirs on their metrics ports, listed by Status).
func (t *Twin) ReconcilerMetrics(clusterName string) (prometheus.Gatherer, error) {
	rc, ok := t.cluster(clusterName)
	if !ok {
		return nil, fmt.Errorf("reconciler metrics of cluster %q: %w (have: %v)", clusterName, cluster.ErrNotFound, t.clusterNames())
	}
	m := rc.engine.Metrics()
	if m == nil {
		return nil, fmt.Errorf("reconciler metrics of cluster %q: %w: it runs %s (spec.reconciler); read the controllers' /metrics endpoints",
			clusterName, ErrNoReconcilerMetrics, t.spec.ReconcilerFor(clusterName))
	}
	return m, nil
}
