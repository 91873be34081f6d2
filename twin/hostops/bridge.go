package hostops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/hybridtwin/hybridtwin/hardware"
)

// NodeControl is what the bridge needs from the clusters: fail a VM-node the way its VM failing does,
// bring it back, and move its host label.
type NodeControl interface {
	CutOff(ctx context.Context, cluster, node string) error
	Restore(ctx context.Context, cluster, node string) error
	SetHost(ctx context.Context, cluster, node, host string) error
}

// NodeAction is what the bridge does to a Kubernetes node for a hardware event.
type NodeAction string

// Node actions.
const (
	ActionCutOff  NodeAction = "cut-off"  // the VM died: its kubelet falls silent
	ActionRestore NodeAction = "restore"  // the VM runs again: the kubelet reports Ready
	ActionSetHost NodeAction = "set-host" // the VM now runs on another host: relabel the node
)

// nodeStep is one action on one node.
type nodeStep struct {
	Action NodeAction
	Host   string // for ActionSetHost
}

// stepsFor maps one hardware event to node actions. Only worker VMs are Nodes; control-plane,
// load-balancer and management VMs count in capacity but have no Node (the twin runs one API server per
// cluster whatever its control-plane VM count).
//   - VMDown (host crash): the node's kubelet falls silent -> cut off.
//   - VMRestarted (failover clustering restarted it elsewhere, or after repair): relabel, then restore.
//   - VMMigrated (live migration, no downtime beyond the blackout): relabel only; the node stays Ready.
//   - VMStranded: nothing; the node stays cut off, which is the point.
func stepsFor(ev hardware.Event) []nodeStep {
	if ev.VM == "" || ev.Role != hardware.RoleWorker {
		return nil
	}
	switch ev.Type {
	case hardware.VMDown:
		return []nodeStep{{Action: ActionCutOff}}
	case hardware.VMRestarted:
		return []nodeStep{{Action: ActionSetHost, Host: ev.Host}, {Action: ActionRestore}}
	case hardware.VMMigrated:
		host := ev.To
		if host == "" {
			host = ev.Host
		}
		return []nodeStep{{Action: ActionSetHost, Host: host}}
	}
	return nil
}

// Record is one hardware event and what it did to Kubernetes, for status and scenario timelines.
type Record struct {
	Event   hardware.Event `json:"event"`
	Cluster string         `json:"cluster,omitempty"`
	Node    string         `json:"node,omitempty"`
	Actions []NodeAction   `json:"actions,omitempty"`
	Error   string         `json:"error,omitempty"`
	At      time.Time      `json:"at"` // wall time the actions were applied
}

// Bridge drives a hardware simulation and turns its events into node state.
type Bridge struct {
	mu      sync.Mutex
	sim     *hardware.Sim
	nodes   NodeControl
	clk     clock.Clock
	records []Record
	wake    chan struct{}
}

// NewBridge ties a simulation to the clusters. The simulation must use clk.
func NewBridge(sim *hardware.Sim, nodes NodeControl, clk clock.Clock) *Bridge {
	return &Bridge{sim: sim, nodes: nodes, clk: clk, wake: make(chan struct{}, 1)}
}

// ErrHost is wrapped when a host operation is refused (unknown operation or host, host already down...).
var ErrHost = errors.New("host operation refused")

// Do runs a host operation (Operations) on the hardware model and applies its events to the nodes.
func (b *Bridge) Do(ctx context.Context, op Op, host string) ([]Record, error) {
	o, ok := Lookup(op)
	if !ok {
		return nil, fmt.Errorf("host operation %q: %w; use one of %s", op, ErrHost, strings.Join(Names(), ", "))
	}
	b.mu.Lock()
	evs, err := o.Model(b.sim, host)
	b.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s host %q: %w: %v", op, host, ErrHost, err)
	}
	recs := b.apply(ctx, evs)
	select {
	case b.wake <- struct{}{}: // new timers (restarts, migrations) may be due earlier than the loop thinks
	default:
	}
	return recs, nil
}

// Advance processes the events that became due and applies them.
func (b *Bridge) Advance(ctx context.Context) []Record {
	b.mu.Lock()
	evs := b.sim.Advance()
	b.mu.Unlock()
	return b.apply(ctx, evs)
}

// Run advances the simulation as its timers come due, until ctx ends.
func (b *Bridge) Run(ctx context.Context) {
	for {
		b.mu.Lock()
		next, ok := b.sim.NextAt()
		b.mu.Unlock()
		var timer clock.Timer
		var due <-chan time.Time
		if ok {
			timer = b.clk.NewTimer(max(next.Sub(b.clk.Now()), 0))
			due = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-b.wake:
		case <-due:
			b.Advance(ctx)
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (b *Bridge) apply(ctx context.Context, evs []hardware.Event) []Record {
	var out []Record
	for _, ev := range evs {
		rec := Record{Event: ev, Cluster: ev.Cluster, Node: ev.VM, At: b.clk.Now()}
		var errs []error
		for _, st := range stepsFor(ev) {
			var err error
			switch st.Action {
			case ActionCutOff:
				err = b.nodes.CutOff(ctx, ev.Cluster, ev.VM)
			case ActionRestore:
				err = b.nodes.Restore(ctx, ev.Cluster, ev.VM)
			case ActionSetHost:
				err = b.nodes.SetHost(ctx, ev.Cluster, ev.VM, st.Host)
			}
			rec.Actions = append(rec.Actions, st.Action)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s node %s/%s: %w", st.Action, ev.Cluster, ev.VM, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			rec.Error = err.Error()
		}
		out = append(out, rec)
	}
	b.mu.Lock()
	b.records = append(b.records, out...)
	b.mu.Unlock()
	return out
}

// Records returns every event applied so far, in order.
func (b *Bridge) Records() []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Record(nil), b.records...)
}

// Hosts and VMs are snapshots of the simulation, for status.
func (b *Bridge) Hosts() []hardware.HostStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sim.Hosts()
}

// VMs is a snapshot of every VM's state and host.
func (b *Bridge) VMs() []hardware.VMStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sim.VMs()
}

// Settled returns nil when the estate is at rest: every host Up and no live migration or failover
// restart pending. A cluster operation changes the running estate in the hardware model, which places
// new VMs on a whole estate; an estate mid-failover or in maintenance is refused until its hosts are
// repaired.
func (b *Bridge) Settled() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var notUp []string
	for _, h := range b.sim.Hosts() {
		if h.State != hardware.HostUp {
			notUp = append(notUp, fmt.Sprintf("%s is %s", h.Name, h.State))
		}
	}
	if len(notUp) > 0 {
		return fmt.Errorf("host %s; repair it first (`hybridtwin host repair NAME`)", strings.Join(notUp, ", host "))
	}
	if at, ok := b.sim.NextAt(); ok {
		return fmt.Errorf("a live migration or failover restart is still pending (due %s); wait for it", at.Format(time.RFC3339))
	}
	return nil
}

// PlaceVMs places the VMs next adds on the estate as it runs (hardware.Sim.PlaceVMs: no running VM
// moves) and records the VMPlaced events. A refusal changes nothing.
func (b *Bridge) PlaceVMs(ctx context.Context, next *hardware.Plan, opts hardware.PlaceOptions) (*hardware.Change, error) {
	b.mu.Lock()
	ch, err := b.sim.PlaceVMs(next, opts)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b.apply(ctx, ch.Events)
	return ch, nil
}

// ReleaseVMs removes the VMs next no longer has (hardware.Sim.ReleaseVMs) and records the VMReleased
// events.
func (b *Bridge) ReleaseVMs(ctx context.Context, next *hardware.Plan) (*hardware.Change, error) {
	b.mu.Lock()
	ch, err := b.sim.ReleaseVMs(next)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b.apply(ctx, ch.Events)
	return ch, nil
}

// Releasing is what ReleaseVMs(next) would release, changing nothing.
func (b *Bridge) Releasing(next *hardware.Plan) ([]hardware.VMStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sim.Releasing(next)
}

// MoreWorkers is how many more workers a node pool of the running estate takes (hardware.Sim.MoreWorkers).
func (b *Bridge) MoreWorkers(clusterName, pool string) (hardware.MoreWorkers, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sim.MoreWorkers(clusterName, pool)
}
