package api

import (
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/hardware"
)

// LifecycleStep is one stage of a cluster operation: when it was done and how long after the start.
type LifecycleStep struct {
	Step   StepName      `json:"step"`
	At     time.Time     `json:"at"`
	After  time.Duration `json:"after"`
	Detail string        `json:"detail,omitempty"`
}

// VMPlacement is a VM a cluster operation placed or released, and its host.
type VMPlacement struct {
	VM      string        `json:"vm"`
	Cluster string        `json:"cluster"`
	Pool    string        `json:"pool,omitempty"`
	Role    hardware.Role `json:"role"`
	Host    string        `json:"host"`
	IP      string        `json:"ip,omitempty"`
}

// ClusterReport says what a cluster operation did.
type ClusterReport struct {
	Op      Op              `json:"op"`
	Cluster string          `json:"cluster"`
	Pool    string          `json:"pool,omitempty"`
	From    int             `json:"from,omitempty"` // the pool's VM count before (scale)
	To      int             `json:"to,omitempty"`   // and after
	Started time.Time       `json:"started"`
	Took    time.Duration   `json:"took"`
	Steps   []LifecycleStep `json:"steps"`
	// Placed and Released are the VMs the operation added to or took from the hardware model; no other
	// VM moved.
	Placed   []VMPlacement `json:"placed,omitempty"`
	Released []VMPlacement `json:"released,omitempty"`
	// Configurations are the fluxConfigurations on the cluster once it is connected: the spec's and any a
	// policy assignment deployed.
	Configurations []string `json:"configurations,omitempty"`
	// Capacity is the hardware model's verdict on the estate after the operation.
	Capacity string `json:"capacity,omitempty"`

	// OnStep, when set, hears each stage as it is done (the control socket streams them).
	OnStep func(LifecycleStep) `json:"-"`
}

// Stage records a stage done at at, and tells OnStep.
func (r *ClusterReport) Stage(name StepName, at time.Time, detail string) {
	s := LifecycleStep{Step: name, At: at, After: at.Sub(r.Started), Detail: detail}
	r.Steps = append(r.Steps, s)
	if r.OnStep != nil {
		r.OnStep(s)
	}
}

// StepAt returns when a stage was done, and whether it was.
func (r *ClusterReport) StepAt(name StepName) (time.Time, bool) {
	for _, s := range r.Steps {
		if s.Step == name {
			return s.At, true
		}
	}
	return time.Time{}, false
}

// Describe says an operation in words, for messages.
func Describe(op Op, clusterName, pool string, count int) string {
	switch op {
	case OpScalePool:
		return fmt.Sprintf("scale node pool %s of cluster %s to %d VM(s)", pool, clusterName, count)
	case OpAddCluster:
		return "add cluster " + clusterName
	case OpRecreateCluster:
		return "recreate cluster " + clusterName
	case OpRemoveCluster:
		return "remove cluster " + clusterName
	}
	return string(op) + " " + clusterName
}
