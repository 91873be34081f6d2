package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// StepName names a step of the twin's bring-up pipeline or a stage of a cluster operation: one
// vocabulary for Up and for adding, recreating, removing and scaling a cluster.
type StepName string

// The shared steps of Up, in order (gitea, registry, arc and the clusters' control planes run in
// parallel).
const (
	StepPlan       StepName = "plan"
	StepState      StepName = "state"
	StepGitea      StepName = "gitea"
	StepRegistry   StepName = "registry"
	StepArc        StepName = "arc"
	StepS3         StepName = "s3" // the S3 server, only when the spec has buckets
	StepImages     StepName = "images"
	StepArtifacts  StepName = "artifacts"
	StepBuckets    StepName = "buckets" // spec.buckets published to the S3 server
	StepCharts     StepName = "charts"
	StepSeed       StepName = "seed"
	StepKubeconfig StepName = "kubeconfig"
	StepBridge     StepName = "bridge"
)

// The per-cluster steps, which Up runs for every cluster of the spec and a cluster operation for the one
// it adds, and the stages of cluster operations, in the order they happen.
const (
	StepPlaced           StepName = "VMs placed"               // the hardware model placed the new VMs
	StepControlPlaneUp   StepName = "control plane up"         // the API server answers /readyz
	StepNodesReady       StepName = "nodes Ready"              // every VM-node Ready: the cluster step
	StepConnected        StepName = "connected to Arc"         // the connectedCluster provisioned
	StepEngineStarted    StepName = "reconciler started"       // GitOps engine and Arc agent running
	StepAddons           StepName = "add-ons started"          // the spec's add-ons (sealed-secrets controller)
	StepConfigured       StepName = "configurations created"   // the spec's fluxConfigurations for it
	StepCompliant        StepName = "configurations Compliant" // every one on the cluster (AddClusterFile)
	StepAgentStopped     StepName = "reconciler and agent stopped"
	StepDisconnected     StepName = "Arc connectedCluster deleted"
	StepControlPlaneDown StepName = "control plane down"
	StepReleased         StepName = "VMs released"
	StepNodesAdded       StepName = "nodes added"   // new VM-nodes Ready
	StepNodesDrained     StepName = "nodes drained" // cordoned, pods evicted
	StepNodesRemoved     StepName = "nodes removed"
)

// Op names what the twin was doing: bringing itself up, or a cluster operation.
type Op string

// Operations.
const (
	OpUp              Op = "up"
	OpRemoveCluster   Op = "remove-cluster"
	OpAddCluster      Op = "add-cluster"
	OpRecreateCluster Op = "recreate-cluster"
	OpScalePool       Op = "scale-pool"
)

// ErrUp is wrapped by every failed Up; what had started has been stopped again.
var ErrUp = errors.New("twin up failed")

// ErrLifecycle is wrapped by a cluster operation that failed part-way; what it had started was stopped
// again.
var ErrLifecycle = errors.New("cluster operation failed")

// StepError is the one error of the bring-up pipeline: which operation, which step (and the cluster,
// repository or image concerned) failed and why, and what was undone. errors.Is(err, ErrUp) holds for
// Up, errors.Is(err, ErrLifecycle) for a cluster operation, and errors.Is for the cause (e.g.
// context.Canceled after Ctrl-C).
type StepError struct {
	Op      Op
	Cluster string // the cluster of a cluster operation
	Step    StepName
	Target  string // in Up: the cluster, repository or image concerned, if any
	Err     error
	// Undone lists what was stopped or released again, in order; UndoErr is set when undoing failed too.
	Undone  []string
	UndoErr error
}

func (e *StepError) Error() string {
	var msg string
	if e.Op == OpUp || e.Op == "" {
		what := string(e.Step)
		if e.Target != "" {
			what += " " + e.Target
		}
		msg = fmt.Sprintf("twin up: step %q failed: %v", what, e.Err)
	} else {
		msg = fmt.Sprintf("%s %s: %q failed: %v", e.Op, e.Cluster, e.Step, e.Err)
	}
	if len(e.Undone) > 0 {
		msg += fmt.Sprintf("; undone: %s", strings.Join(e.Undone, ", "))
	}
	if e.UndoErr != nil {
		msg += fmt.Sprintf("; undoing failed too: %v", e.UndoErr)
	}
	return msg
}

// Unwrap returns ErrUp or ErrLifecycle, and the cause.
func (e *StepError) Unwrap() []error {
	if e.Op == OpUp || e.Op == "" {
		return []error{ErrUp, e.Err}
	}
	return []error{ErrLifecycle, e.Err}
}

// ErrRefused is wrapped when a cluster operation is refused before anything changed (spec.ErrRefused).
var ErrRefused = spec.ErrRefused

// CapacityError is the hardware model's no: the plan with the change does not fit. Nothing was changed.
// errors.Is(err, ErrRefused) holds, and in-process also errors.Is for the model's sentinels (e.g.
// hardware.ErrInsufficientCapacity, hardware.ErrLimitExceeded).
type CapacityError struct {
	Op      Op     `json:"op"`
	Cluster string `json:"cluster"`
	Pool    string `json:"pool,omitempty"`
	Count   int    `json:"count,omitempty"`
	// Reasons are the model's error findings, each "check: message": which resource, how much short.
	Reasons []string `json:"reasons"`
	// Cause is the model's typed error (e.g. wrapping hardware.ErrInsufficientCapacity); it is not sent
	// over the control socket.
	Cause error `json:"-"`
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("%s: the hardware model says it does not fit: %s; nothing was changed", Describe(e.Op, e.Cluster, e.Pool, e.Count), strings.Join(e.Reasons, "; "))
}

// Unwrap returns ErrRefused and the model's typed findings.
func (e *CapacityError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, e.Cause}
}
