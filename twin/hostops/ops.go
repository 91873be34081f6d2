// Package hostops is the twin's room for operations on HCI hosts: one table of operations (fail, drain,
// repair; a network partition would be one more entry) that the bridge, the control API, `hybridtwin
// host` and the scenarios read; the Bridge that runs them on the hardware model and turns the model's
// events into Kubernetes node state; and the node actions themselves (cut a node off, restore it,
// relabel its host, cordon and drain it).
//
// It imports the hardware model, twin/cluster (providers' node faults and labels) and client-go; never
// the root package twin.
package hostops

import (
	"slices"

	"github.com/hybridtwin/hybridtwin/hardware"
)

// Op names a host operation.
type Op string

// Host operations.
const (
	Fail   Op = "fail"
	Drain  Op = "drain"
	Repair Op = "repair"
)

// Operation is one host operation: what it does in the hardware model. The bridge turns the model's
// events into node actions (stepsFor), whatever the operation.
type Operation struct {
	Op Op
	// Doc says what the operation is, for help texts.
	Doc string
	// Model runs it in the hardware simulation and returns the events it caused now (later ones, such as
	// failover restarts, come due on the simulation's clock).
	Model func(sim *hardware.Sim, host string) ([]hardware.Event, error)
}

// Operations are every host operation, in the order help texts list them.
var Operations = []Operation{
	{Op: Fail, Doc: "crash the host: its VMs go down, failover clustering restarts them elsewhere after the failover delay (or they stay stranded)", Model: (*hardware.Sim).FailHost},
	{Op: Drain, Doc: "planned maintenance: the host's VMs live-migrate away; their nodes stay Ready", Model: (*hardware.Sim).DrainHost},
	{Op: Repair, Doc: "bring the host back; stranded VMs restart", Model: (*hardware.Sim).RepairHost},
}

// Lookup returns an operation by name.
func Lookup(op Op) (Operation, bool) {
	i := slices.IndexFunc(Operations, func(o Operation) bool { return o.Op == op })
	if i < 0 {
		return Operation{}, false
	}
	return Operations[i], true
}

// Names are the operations' names, in table order.
func Names() []string {
	out := make([]string, len(Operations))
	for i, o := range Operations {
		out[i] = string(o.Op)
	}
	return out
}
