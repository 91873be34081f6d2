package scenarios

import (
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
)

// WaitsVersion names the derivation below; change it whenever a factor or a source changes, so reports
// say which bounds a run used. The failover bounds are faultphases.BoundsFor's (faultphases.BoundsVersion).
const WaitsVersion = "scenario-waits/v3+" + faultphases.BoundsVersion

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
	// Poll is the polling interval, faultphases.BoundsFor's: the Arc agent's status cadence
	// (arcagent.DefaultPollInterval, 250 ms), so a compliance change is seen within one poll of being
	// reported.
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
	// NodeNotReady bounds a cut-off node turning Unknown: faultphases.BoundsFor's NotReady with Slack
	// (--node-monitor-grace-period plus two --node-monitor-period ticks, cluster.TimeProfile).
	NodeNotReady time.Duration
	// NodeBack bounds a crashed host's VMs restarting elsewhere and their nodes reporting Ready:
	// faultphases.BoundsFor's NodesBack with Slack (the failover delay plus the kubelet's status update
	// frequency).
	NodeBack time.Duration
	// Healthy bounds the applications being available: faultphases.BoundsFor's Healthy with Slack (the
	// unreachable toleration plus the node grace and a health-check interval, from the nodes' return),
	// plus Converge, because the suite also waits with it for apps that GitOps has yet to apply (the
	// apps of a twin a spec has just brought up of its own).
	Healthy time.Duration
	// Migration bounds a drained host reaching Maintenance: faultphases.BoundsFor's Drain with Slack
	// (NodeBack for each of faultphases.DrainVMs VMs on the host; live migrations run two at a time).
	Migration time.Duration
	// Restart bounds a crashed control-plane process being back and its cluster's nodes Ready: the
	// kubelet's first restart back-off (cluster.TimeProfile.RestartBackoffInitial, 10 s: Kubernetes' Pod
	// Lifecycle "Container restarts") plus one --node-monitor-grace-period (a node whose lease renewals
	// failed while the API server was down is Ready again within it), times Slack.
	Restart time.Duration
}

// WaitsFor derives the suite's bounds from a twin's time profile.
func WaitsFor(profile cluster.TimeProfileName) (Waits, error) {
	fb, err := faultphases.BoundsFor(profile, Slack)
	if err != nil {
		return Waits{}, fmt.Errorf("scenario waits: %w", err)
	}
	rec := reconciler.DefaultProfile()
	source := time.Duration(SourceIntervalSeconds) * time.Second
	w := Waits{Version: WaitsVersion, Poll: fb.Poll}
	w.Converge = Slack * (2*source + rec.StageWaitTimeout + rec.HealthCheckInterval)
	w.Drift = Slack * (10 * rec.DriftRetry)
	w.Hold = 3 * rec.DriftRetry
	w.NodeNotReady = fb.NotReady
	w.NodeBack = fb.NodesBack
	w.Healthy = fb.Healthy + w.Converge
	w.Migration = fb.Drain
	tp, err := cluster.Profile(profile)
	if err != nil {
		return Waits{}, fmt.Errorf("scenario waits: %w", err)
	}
	w.Restart = Slack * (tp.RestartBackoffInitial + tp.NodeMonitorGracePeriod)
	return w, nil
}
