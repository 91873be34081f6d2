package faultphases

import (
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// BoundsVersion names the derivation of BoundsFor; change it whenever a factor or a source changes, so
// the callers' versions (scenarios.WaitsVersion, bench/failover BoundsVersion) can say which they used.
const BoundsVersion = "failover-bounds/v1"

// DrainVMs is how many VMs' failover a drain bound allows for: live migrations run two at a time
// (hardware profile, "Optimizing Hyper-V Live Migrations": 2 simultaneous) and take seconds each on the
// twin's estate; examples/twin.yaml places at most three VMs on one host, and the fourth is headroom for
// an estate placed more densely.
const DrainVMs = 4

// BoundsFor derives the phases' bounds from a twin's time profile: each is an expected duration times
// slack, the caller's allowance for its machine (the scenario suite and the benchmark run on a loaded
// 2-core runner; RECIPES.md: "Times were taken under load"). The bounds only stop a phase that hangs;
// they are never the measurement. A slack below 1 is an error.
func BoundsFor(profile cluster.TimeProfileName, slack int) (Bounds, error) {
	if slack < 1 {
		return Bounds{}, fmt.Errorf("failover bounds: slack %d: it multiplies the expected durations, so it must be at least 1", slack)
	}
	tp, err := cluster.Profile(profile)
	if err != nil {
		return Bounds{}, fmt.Errorf("failover bounds: %w", err)
	}
	rp, err := twin.RunProfileFor(tp.Name)
	if err != nil {
		return Bounds{}, fmt.Errorf("failover bounds: %w", err)
	}
	failover := rp.FailoverDelay
	if failover == 0 {
		// The run profile keeps the hardware model's figure (twin.RunProfile.FailoverDelay), which the
		// twin's inventory picks: the longest of the hardware profiles' (Failover Clustering's
		// SameSubnetDelay 1 s x SameSubnetThreshold 10, hardware/profiles.go).
		failover = modelFailoverDelay()
	}
	rec := reconciler.DefaultProfile()
	k := time.Duration(slack)
	b := Bounds{
		// The Arc agent's status cadence (arcagent.DefaultPollInterval, 250 ms), so a compliance change
		// is seen within one poll. It is the figures' resolution.
		Poll: arcagent.DefaultPollInterval,
		// --node-monitor-grace-period plus two --node-monitor-period ticks (cluster.TimeProfile).
		NotReady: k * (tp.NodeMonitorGracePeriod + 2*tp.NodeMonitorPeriod),
		// The failover delay (above) plus the kubelet's status update frequency, from the crash.
		NodesBack: k * (failover + tp.NodeStatusUpdateFrequency),
		// The unreachable toleration (after which pods are evicted) plus the node grace and one
		// reconciler health-check interval, from the nodes' return.
		Healthy: k * (time.Duration(tp.DefaultUnreachableTolerationSeconds)*time.Second + tp.NodeMonitorGracePeriod + rec.HealthCheckInterval),
		// The reconciler's stage wait (reconciler.Profile.StageWaitTimeout, fluxcd/pkg/ssa 60 s) plus one
		// health-check interval, from the apps' return: a failover changes nothing in Git, so no source
		// interval is waited for.
		Compliant: k * (rec.StageWaitTimeout + rec.HealthCheckInterval),
	}
	// NodesBack (slack included) for each of DrainVMs VMs on the drained host.
	b.Drain = DrainVMs * b.NodesBack
	return b, nil
}

// modelFailoverDelay is the longest failover delay of the hardware profiles.
func modelFailoverDelay() time.Duration {
	var d time.Duration
	for _, name := range hardware.ProfileNames() {
		if p, ok := hardware.LookupProfile(name); ok && p.Timing.FailoverDelay > d {
			d = p.Timing.FailoverDelay
		}
	}
	return d
}
