package api

import (
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// RunProfileVersion names the set of timings below; change it whenever a value changes, so reports can
// say which values a run used.
const RunProfileVersion = "twinrun/v3"

// RunProfile holds every timing the composition of a twin uses (the components' own timings live in
// their packages' profiles: cluster.TimeProfile, gitserver.Profile, registry.Profile, reconciler.Profile).
type RunProfile struct {
	Version string `json:"version"`
	// FailoverDelay is the hardware simulation's delay from a host crash to its VMs restarting elsewhere.
	// Zero means the hardware profile's documented figure (hardware/profiles.go: Failover Clustering's
	// SameSubnetDelay 1 s x SameSubnetThreshold 10 = 10 s), or the inventory's planning.failoverDelay.
	FailoverDelay time.Duration `json:"failoverDelay,omitempty"`
	// ArcProvisioningDelay is how long the Arc fake keeps a PUT or DELETE in progress (fakes/arc
	// DefaultProvisioningDelay, 500 ms: the asynchronous ARM shape without Azure's tens of seconds).
	ArcProvisioningDelay time.Duration `json:"arcProvisioningDelay"`
	// ARMPoll is how often `up` polls a long-running ARM operation of the Arc fake. The SDK's default
	// (azcore runtime.PollUntilDoneOptions.Frequency, 30 s) is Azure's pace; the fake finishes after
	// ArcProvisioningDelay, so polling at a fifth of it adds at most 100 ms.
	ARMPoll time.Duration `json:"armPoll"`
	// StopTimeout bounds the whole teardown; each component also has its own grace
	// (cluster.DefaultStopGrace 10 s, gitserver Profile.StopTimeout), so this only catches a hang.
	StopTimeout time.Duration `json:"stopTimeout"`
	// ControlTimeout bounds one request on the control socket other than down (status, host ops):
	// they touch in-process state and the local API servers only.
	ControlTimeout time.Duration `json:"controlTimeout"`
	// ReadyTimeout bounds how long a --detach'ed `up` may take to become ready before the parent gives
	// up and stops it: the sum of the parts' own bounds (cluster.DefaultStartTimeout 3 min, Gitea's
	// start, seeding) rounded up.
	ReadyTimeout time.Duration `json:"readyTimeout"`
	// ReadyPoll is how often the --detach'ed parent checks whether the child's control socket answers.
	ReadyPoll time.Duration `json:"readyPoll"`
	// LifecycleTimeout bounds one cluster operation requested on the control socket (delete, recreate,
	// scale): a cluster start (cluster.DefaultStartTimeout, 3 min) plus, if it fails, the undo
	// (StopTimeout, 2 min).
	LifecycleTimeout time.Duration `json:"lifecycleTimeout"`
	// DrainTimeout bounds draining one node when a pool shrinks. AKS waits 30 minutes per node (the
	// agent pool's upgradeSettings.drainTimeoutInMinutes: "The amount of time (in minutes) to wait on
	// eviction of pods and graceful termination per node. This eviction wait time honors waiting on pod
	// disruption budgets ... If not specified, the default is 30 minutes", Microsoft.ContainerService
	// AgentPoolUpgradeSettings reference); the real profile keeps that. On the fast profile the simulated kubelet confirms an evicted pod's deletion at once, so
	// only a PodDisruptionBudget can hold a drain up; two minutes reports that instead of waiting half an hour.
	DrainTimeout time.Duration `json:"drainTimeout"`
	// DrainPoll is how often a drain retries evictions and checks that the node is empty: the Arc agent's
	// status cadence (arcagent.DefaultPollInterval, 250 ms).
	DrainPoll time.Duration `json:"drainPoll"`
	// UndoWait bounds how long `hybridtwin cluster add` waits, after Ctrl-C, for the twin to confirm it
	// undid the add: the twin's own undo is bounded by StopTimeout; a minute more lets the twin's answer,
	// not the client's patience, decide.
	UndoWait time.Duration `json:"undoWait"`
	// UndoPoll is how often it asks the twin's status meanwhile (answered from memory and one list per
	// cluster): the Arc agent's status cadence (arcagent.DefaultPollInterval, 250 ms).
	UndoPoll time.Duration `json:"undoPoll"`
}

// RunProfileFor returns the composition timings for a twin's time profile.
//
// The fast profile's failover delay is longer than the fast cluster profile's node-monitor grace period
// (10 s, RECIPES.md "Eviction timing, shortened") by half: a crashed host's nodes are seen NotReady before
// failover clustering restarts their VMs, as on a real estate where the failover delay plus the VM's boot
// outlast the node-lifecycle controller's grace. The real profile keeps the hardware model's figure.
func RunProfileFor(name cluster.TimeProfileName) (RunProfile, error) {
	tp, err := cluster.Profile(name)
	if err != nil {
		return RunProfile{}, err
	}
	p := RunProfile{
		Version:              RunProfileVersion,
		ArcProvisioningDelay: 500 * time.Millisecond, // fakes/arc.DefaultProvisioningDelay
		ARMPoll:              100 * time.Millisecond,
		StopTimeout:          2 * time.Minute,
		ControlTimeout:       30 * time.Second,
		ReadyTimeout:         10 * time.Minute,
		ReadyPoll:            200 * time.Millisecond,
		LifecycleTimeout:     cluster.DefaultStartTimeout + 2*time.Minute,
		DrainPoll:            arcagent.DefaultPollInterval,
		UndoWait:             2*time.Minute + time.Minute, // StopTimeout + 1 min
		UndoPoll:             arcagent.DefaultPollInterval,
	}
	switch tp.Name {
	case cluster.ProfileFast:
		p.FailoverDelay = tp.NodeMonitorGracePeriod * 3 / 2
		p.DrainTimeout = 2 * time.Minute
	case cluster.ProfileReal:
		p.FailoverDelay = 0 // the hardware profile's figure
		p.DrainTimeout = 30 * time.Minute
	default:
		return RunProfile{}, fmt.Errorf("no twin run profile for time profile %q", tp.Name)
	}
	return p, nil
}
