package failover

import (
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
)

// Metric names.
const (
	MetricNotReady   = "failover.crash.notready.seconds"
	MetricNodesReady = "failover.crash.nodes_ready.seconds"
	MetricHealthy    = "failover.crash.apps_healthy.seconds"
	MetricCompliant  = "failover.crash.compliant.seconds"
	MetricDrain      = "failover.drain.seconds"
)

// Metrics turns the samples into bench/result metrics, each with the figure it is read against:
//
//   - NotReady against --node-monitor-grace-period of the time profile (the node-lifecycle controller
//     marks a node whose lease stopped Unknown after it: fast 10 s, RECIPES.md "Eviction timing,
//     shortened"; real 50 s, Kubernetes v1.33 default, RECIPES.md measured +45-51 s);
//   - NodesReady against the hardware model's failover (Failover Clustering declares a host down after
//     SameSubnetThreshold 10 missed heartbeats SameSubnetDelay 1 s apart, then restarts its VMs:
//     hardware/profiles.go; the fast run profile stretches it to 1.5 x the node grace, twin.RunProfile),
//     the median of the model's own restart delays;
//   - AppsHealthy against the eviction time of a pod on a dead node, grace period plus
//     --default-unreachable-toleration-seconds (fast 10 + 10 s, RECIPES.md measured eviction at +20 s;
//     real 50 + 300 s, measured +349 s): apps back sooner means the VM restart beat eviction;
//   - Drain against the hardware model's live-migration time of the same drain (10 GbE, two at a time,
//     500 ms blackout: "Optimizing Hyper-V Live Migrations on an Hyperconverged Infrastructure",
//     hardware/profiles.go), the median of the model's drain durations.
//
// No issue sets a goal for these figures, so none has a Goal. A phase without samples is left out.
func Metrics(crashes []faultphases.CrashSample, drains []faultphases.DrainSample, tp cluster.TimeProfile) []result.Metric {
	var out []result.Metric
	secs := func(get func(faultphases.CrashSample) time.Duration) []float64 {
		var s []float64
		for _, c := range crashes {
			s = append(s, get(c).Seconds())
		}
		return s
	}
	if len(crashes) > 0 {
		grace := tp.NodeMonitorGracePeriod.Seconds()
		notReady := result.NewMetric(MetricNotReady, "s", result.Lower, secs(func(c faultphases.CrashSample) time.Duration { return c.NotReady }))
		notReady.Anchor = &result.Anchor{Value: grace, Source: fmt.Sprintf(
			"--node-monitor-grace-period of time profile %s (%s): a node whose lease stopped is Unknown after it (RECIPES.md 'Eviction timing')", tp.Name, cluster.ProfilesVersion)}
		out = append(out, notReady)

		nodes := result.NewMetric(MetricNodesReady, "s", result.Lower, secs(func(c faultphases.CrashSample) time.Duration { return c.NodesReady }))
		model := result.NewMetric("model", "s", result.Lower, secs(func(c faultphases.CrashSample) time.Duration { return c.ModelRestart }))
		nodes.Anchor = &result.Anchor{Value: model.Median, Source: "hardware model's failover delay, the time Failover Clustering restarts a crashed host's VMs elsewhere " +
			"(SameSubnetDelay 1 s x SameSubnetThreshold 10 = 10 s, hardware/profiles.go; the fast run profile's 1.5 x node grace, twin.RunProfile)"}
		out = append(out, nodes)

		healthy := result.NewMetric(MetricHealthy, "s", result.Lower, secs(func(c faultphases.CrashSample) time.Duration { return c.AppsHealthy }))
		eviction := grace + float64(tp.DefaultUnreachableTolerationSeconds)
		healthy.Anchor = &result.Anchor{Value: eviction, Source: fmt.Sprintf(
			"eviction of a pod on a dead node: node grace %.0f s + --default-unreachable-toleration-seconds %d (time profile %s; RECIPES.md measured +20 s fast, +349 s real)",
			grace, tp.DefaultUnreachableTolerationSeconds, tp.Name)}
		out = append(out, healthy)

		out = append(out, result.NewMetric(MetricCompliant, "s", result.Lower, secs(func(c faultphases.CrashSample) time.Duration { return c.Compliant })))
	}
	if len(drains) > 0 {
		var measured, model []float64
		for _, d := range drains {
			measured = append(measured, d.Drained.Seconds())
			model = append(model, d.ModelDrain.Seconds())
		}
		drain := result.NewMetric(MetricDrain, "s", result.Lower, measured)
		drain.Anchor = &result.Anchor{Value: result.NewMetric("model", "s", result.Lower, model).Median,
			Source: "hardware model's live-migration time of the same drains (10 GbE, 2 simultaneous, 500 ms blackout: 'Optimizing Hyper-V Live Migrations on an Hyperconverged Infrastructure', hardware/profiles.go)"}
		out = append(out, drain)
	}
	return out
}
