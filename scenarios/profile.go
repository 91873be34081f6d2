package scenarios

import (
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// WaitsVersion names the derivation below; change it whenever a factor or a source changes, so reports
// say which bounds a run used.
const WaitsVersion = "scenario-waits/v1"

// SourceIntervalSeconds is the GitRepository interval (fluxConfiguration syncIntervalInSeconds) the suite
// gives every configuration of the twin that sets none. Azure's default is 600 s (fakes/arc
// DefaultSyncIntervalSeconds, from the fluxConfigurations REST reference and `az k8s-configuration flux
// create --interval`). The twin's own reconcilers fetch on Gitea's push webhook at once (twin/webhooks.go,
// as a Flux Receiver would); this interval is the fallback for what a webhook does not cover (a branch
// created by hand, a dropped delivery) and the only trigger of clusters running real Flux, which the twin
// runs without notification-controller.
const SourceIntervalSeconds = 10

// Slack multiplies every expected duration into a timeout: the bounds are for a loaded 2-core runner
// shared by several builders (RECIPES.md: "Times were taken under load"), and say nothing about speed
// (the measured figures go to the report; speed claims live in bench/).
const Slack = 4

// Waits are the Eventually/Consistently bounds of the suite, each derived from the twin's profiles.
type Waits struct {
	Version string
	// Poll is the polling interval: the Arc agent's status cadence (arcagent.DefaultPollInterval, 250 ms),
	// so a compliance change is seen within one poll of being reported.
	Poll time.Duration
	// Converge bounds every configuration reaching Compliant after a change in Git: two source intervals
	// (the change may land just after a fetch), plus the reconciler's stage wait for namespaces
	// (reconciler.Profile.StageWaitTimeout, fluxcd/pkg/ssa: 60 s) and one health-check interval, times Slack.
	Converge time.Duration
	// Drift bounds a watch-driven drift correction: the reconciler corrects "within a second"
	// (reconciler package doc) and retries a failed correction after DriftRetry (1 s); ten retries, times
	// Slack... bounded at Converge.
	Drift time.Duration
	// Hold is how long a field the reconciler must leave alone is watched to stay as it was: three drift
	// retries, well past the sub-second watch-driven correction it would otherwise get.
	Hold time.Duration
	// NodeNotReady bounds a cut-off node turning Unknown: --node-monitor-grace-period plus two
	// --node-monitor-period ticks (cluster.TimeProfile), times Slack.
	NodeNotReady time.Duration
	// NodeBack bounds a crashed host's VMs restarting elsewhere and their nodes reporting Ready: the
	// failover delay (twin.RunProfile.FailoverDelay; the fast profile's 15 s) plus the kubelet's status
	// update frequency, times Slack.
	NodeBack time.Duration
	// Healthy bounds the applications being available again after their nodes return: the unreachable
	// toleration (pods are evicted after it, cluster.TimeProfile) plus the node grace and a health-check
	// interval, times Slack, plus Converge for compliance.
	Healthy time.Duration
	// Migration bounds a drained host reaching Maintenance: live migrations run one after the other
	// (hardware model), each a few seconds on the fast profile; NodeBack per VM is a generous bound.
	Migration time.Duration
}

// WaitsFor derives the suite's bounds from a twin's time profile.
func WaitsFor(profile cluster.TimeProfileName) (Waits, error) {
	tp, err := cluster.Profile(profile)
	if err != nil {
		return Waits{}, fmt.Errorf("scenario waits: %w", err)
	}
	rp, err := twin.RunProfileFor(profile)
	if err != nil {
		return Waits{}, fmt.Errorf("scenario waits: %w", err)
	}
	rec := reconciler.DefaultProfile()
	failover := rp.FailoverDelay
	if failover == 0 {
		// The real profile keeps the hardware model's figure: Failover Clustering's SameSubnetDelay 1 s x
		// SameSubnetThreshold 10 (hardware/profiles.go).
		failover = 10 * time.Second
	}
	source := time.Duration(SourceIntervalSeconds) * time.Second
	w := Waits{Version: WaitsVersion, Poll: arcagent.DefaultPollInterval}
	w.Converge = Slack * (2*source + rec.StageWaitTimeout + rec.HealthCheckInterval)
	w.Drift = Slack * (10 * rec.DriftRetry)
	w.Hold = 3 * rec.DriftRetry
	w.NodeNotReady = Slack * (tp.NodeMonitorGracePeriod + 2*tp.NodeMonitorPeriod)
	w.NodeBack = Slack * (failover + tp.NodeStatusUpdateFrequency)
	w.Healthy = Slack*(time.Duration(tp.DefaultUnreachableTolerationSeconds)*time.Second+tp.NodeMonitorGracePeriod+rec.HealthCheckInterval) + w.Converge
	w.Migration = w.NodeBack * 3
	return w, nil
}
