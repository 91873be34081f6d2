package estate

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// ReconcilerMetrics gathers the Prometheus metrics of one cluster's reconciler (hybridtwin_reconciler_*,
// labelled cluster=<name>) from the cluster's own registry, so scenarios and benchmarks read one
// cluster's figures without the others'. A cluster on Flux's controllers has none (api.ErrNoReconcilerMetrics:
// the controllers serve theirs on their metrics ports, listed by Status).
func (e *Estate) ReconcilerMetrics(clusterName string) (prometheus.Gatherer, error) {
	rc, ok := e.cluster(clusterName)
	if !ok {
		return nil, fmt.Errorf("reconciler metrics of cluster %q: %w (have: %v)", clusterName, cluster.ErrNotFound, e.clusterNames())
	}
	m := rc.engine.Metrics()
	if m == nil {
		return nil, fmt.Errorf("reconciler metrics of cluster %q: %w: it runs %s (spec.reconciler); read the controllers' /metrics endpoints",
			clusterName, api.ErrNoReconcilerMetrics, e.spec.ReconcilerFor(clusterName))
	}
	return m, nil
}
