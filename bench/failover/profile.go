package failover

import (
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/faults"
)

// BoundsVersion names the derivation below; change it whenever a factor or a source changes. Results
// record it.
const BoundsVersion = "failover-bench/v1"

// Slack multiplies every expected duration into a bound. The bounds only stop a sample that hangs; they
// are never the measurement (RECIPES.md: the machine is a loaded 2-core runner, "Times were taken under
// load").
const Slack = 4

// Bounds are the phases' bounds (faults.Bounds) with the version of their derivation, which results
// record.
type Bounds struct {
	Version string
	faults.Bounds
}

// BoundsFor derives the bounds from a twin's time profile.
func BoundsFor(profile cluster.TimeProfileName) (Bounds, error) {
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
		// The failover delay: twin.RunProfile.FailoverDelay, or the hardware model's 10 s.
		failover = 10 * time.Second // hardware/profiles.go: SameSubnetDelay 1 s x SameSubnetThreshold 10
	}
	rec := reconciler.DefaultProfile()
	b := Bounds{Version: BoundsVersion}
	// Poll: the Arc agent's status cadence (arcagent.DefaultPollInterval, 250 ms), so a compliance change
	// is seen within one poll. It is the figures' resolution.
	b.Poll = arcagent.DefaultPollInterval
	// NotReady: --node-monitor-grace-period plus two --node-monitor-period ticks (cluster.TimeProfile).
	b.NotReady = Slack * (tp.NodeMonitorGracePeriod + 2*tp.NodeMonitorPeriod)
	// NodesBack: the failover delay (above) plus the kubelet's status update frequency, from the crash.
	b.NodesBack = Slack * (failover + tp.NodeStatusUpdateFrequency)
	// Healthy: the unreachable toleration (after which pods are evicted) plus the node grace and one
	// reconciler health-check interval, from the nodes' return.
	b.Healthy = Slack * (time.Duration(tp.DefaultUnreachableTolerationSeconds)*time.Second + tp.NodeMonitorGracePeriod + rec.HealthCheckInterval)
	// Compliant: the reconciler's stage wait (reconciler.Profile.StageWaitTimeout, fluxcd/pkg/ssa 60 s)
	// plus one health-check interval, from the apps' return.
	b.Compliant = Slack * (rec.StageWaitTimeout + rec.HealthCheckInterval)
	// Drain: live migrations run two at a time (hardware profile, "Optimizing Hyper-V Live Migrations":
	// 2 simultaneous) and take seconds each on the twin's estate; NodesBack for each of up to four VMs on
	// the drained host (examples/twin.yaml places at most three on one host).
	b.Drain = 4 * b.NodesBack
	return b, nil
}
