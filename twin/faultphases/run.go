package faultphases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin"
)

// Twin is what a Runner needs of a running twin; *twin.Twin has it.
type Twin interface {
	Status(ctx context.Context) (*twin.Status, error)
	Host(ctx context.Context, op twin.HostOp, host string) ([]twin.BridgeRecord, error)
}

var _ Twin = (*twin.Twin)(nil)

// Bounds are how long each phase may take before it fails, and how often it is looked at. The callers
// derive them from the twin's time profile, each with its own slack (scenarios/profile.go Waits,
// bench/failover BoundsFor); they only stop a phase that hangs and are never the measurement.
type Bounds struct {
	// Poll is how often a phase is looked at; it is the measured figures' resolution.
	Poll time.Duration
	// NotReady bounds a crashed host's worker nodes turning NotReady.
	NotReady time.Duration
	// NodesBack bounds their VMs restarting elsewhere and their nodes reporting Ready there; also a
	// repaired host coming Up and a drained host's nodes being relabelled.
	NodesBack time.Duration
	// Healthy bounds the apps being healthy again after their nodes returned (or after a repair).
	Healthy time.Duration
	// Compliant bounds every configuration being Compliant again after the apps are.
	Compliant time.Duration
	// Drain bounds a drained host reaching maintenance with no VM left.
	Drain time.Duration
}

// Wait polls check until it succeeds; it fails when bound passes (naming what was awaited and the last
// failure), when ctx ends, or at once when check fails with an error wrapping ErrPhase. Poll is one; the
// scenario suite's is Gomega's Eventually.
type Wait func(ctx context.Context, what string, bound time.Duration, check func(context.Context) error) error

// Poll returns a Wait for programs: it looks every poll and names bounds (the bounds' version) when a
// bound passes. A bound passing wraps ErrPhase; ctx ending wraps ctx's error.
func Poll(poll time.Duration, bounds string) Wait {
	return func(parent context.Context, what string, bound time.Duration, check func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(parent, bound)
		defer cancel()
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			err := check(ctx)
			if err == nil {
				return nil
			}
			if errors.Is(err, ErrPhase) {
				return err
			}
			select {
			case <-ctx.Done():
				if parent.Err() != nil {
					return fmt.Errorf("waiting for %s: %w (last: %v)", what, parent.Err(), err)
				}
				return fmt.Errorf("%w: %s: not within %s (%s): %v", ErrPhase, what, bound, bounds, err)
			case <-tick.C:
			}
		}
	}
}

// Phase names of the moments a Runner reports.
const (
	PhaseHostDown      = "host down"
	PhaseNodesNotReady = "nodes NotReady"
	PhaseNodesReady    = "nodes Ready"
	PhasePodsRunning   = "pods rescheduled"
	PhaseHealthy       = "healthy"
	PhaseDrainStarted  = "drain started"
	PhaseDrainFinished = "drain finished"
)

// Phase is a moment of a fault the Runner saw: the fault call returning, or a phase's wait succeeding.
type Phase struct {
	Name   string
	Host   string
	At     time.Time
	Since  time.Duration // from the fault call
	Detail string
}

// Runner drives host faults on a running twin and measures their phases.
type Runner struct {
	Twin   Twin
	Probe  Probe
	Bounds Bounds
	Wait   Wait
	// Observe, if set, is told each phase as it is reached; PhaseHostDown and PhaseDrainStarted come as
	// soon as the fault is in effect, so a caller can arrange the repair before any wait can fail.
	Observe func(Phase)
	// Now is the clock the phases are measured with; nil means time.Now.
	Now func() time.Time
}

// CrashSample is one host crash, each phase measured from the host operation fail.
type CrashSample struct {
	Host    string    `json:"host"`
	Workers []string  `json:"workers"` // cluster/node of the worker VMs the host ran
	Start   time.Time `json:"start"`   // when the host operation fail was called
	// NotReady: every one of those nodes is NotReady (Ready is False or Unknown).
	NotReady time.Duration `json:"notReady"`
	// NodesReady: every one of them is Ready again, labelled with another host.
	NodesReady time.Duration `json:"nodesReady"`
	// AppsHealthy: every Deployment of the probed namespaces has its replicas ready and no pod is
	// unscheduled or on a NotReady node.
	AppsHealthy time.Duration `json:"appsHealthy"`
	// Compliant: every GitOps configuration is Compliant again, as ARM reports it.
	Compliant time.Duration `json:"compliant"`
	// ModelRestart is the hardware model's failover: from the crash to the last VM restart event.
	ModelRestart time.Duration `json:"modelRestart"`
	// Restarts are the model's VM restarts, "vm -> host".
	Restarts []string `json:"restarts"`
}

// DrainSample is one planned drain, measured from the host operation drain.
type DrainSample struct {
	Host  string    `json:"host"`
	VMs   []string  `json:"vms"`   // the VMs the model live-migrated
	Start time.Time `json:"start"` // when the host operation drain was called
	// Drained: the host is in maintenance with no VM left, as the twin's status reports it.
	Drained time.Duration `json:"drained"`
	// ModelDrain is the hardware model's drain: from HostDraining to HostDrained (its live-migration
	// figures: bandwidth, two at a time, blackout).
	ModelDrain time.Duration `json:"modelDrain"`
	// Pods is how many pods kept their identity through the drain.
	Pods int `json:"pods"`
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) observe(p Phase, start time.Time) {
	if r.Observe != nil {
		p.Since = p.At.Sub(start)
		r.Observe(p)
	}
}

// Crash crashes host, which runs workers (BusiestHost), and measures each phase: its worker nodes
// NotReady, the same nodes Ready on other hosts (failing at once if the model strands a VM: that is a
// capacity finding, not a failover time), the apps healthy, every configuration Compliant, then the
// model's restarts. It leaves the host down: the caller repairs it (Repair).
func (r *Runner) Crash(ctx context.Context, host string, workers []twin.VMState) (CrashSample, error) {
	s := CrashSample{Host: host, Workers: WorkerNames(workers)}
	if len(workers) == 0 {
		return s, fmt.Errorf("crash %s: %w: it runs no worker VM, so there is no node to watch", host, ErrPhase)
	}
	start := r.now()
	s.Start = start
	if _, err := r.Twin.Host(ctx, twin.HostFail, host); err != nil {
		return s, err
	}
	r.observe(Phase{Name: PhaseHostDown, Host: host, At: start, Detail: host}, start)
	since := func() time.Duration { return r.now().Sub(start) }
	err := r.Wait(ctx, "nodes of crashed host "+host+" NotReady", r.Bounds.NotReady, func(ctx context.Context) error {
		return r.Probe.NodesAre(ctx, workers, IsNotReady, "NotReady")
	})
	if err != nil {
		return s, err
	}
	s.NotReady = since()
	r.observe(Phase{Name: PhaseNodesNotReady, Host: host, At: start.Add(s.NotReady), Detail: strings.Join(s.Workers, ", ")}, start)
	err = r.Wait(ctx, "nodes of "+host+" Ready on surviving hosts", r.Bounds.NodesBack, func(ctx context.Context) error {
		if err := r.stranded(ctx, start); err != nil {
			return err
		}
		return r.Probe.NodesAre(ctx, workers, ReadyOffHosts(host), "Ready on another host")
	})
	if err != nil {
		return s, err
	}
	s.NodesReady = since()
	r.observe(Phase{Name: PhaseNodesReady, Host: host, At: start.Add(s.NodesReady), Detail: "on surviving hosts"}, start)
	if err := r.Wait(ctx, "apps healthy after "+host+" crashed", r.Bounds.Healthy, r.Probe.AppsHealthy); err != nil {
		return s, err
	}
	s.AppsHealthy = since()
	r.observe(Phase{Name: PhasePodsRunning, Host: host, At: start.Add(s.AppsHealthy), Detail: "every app replica Ready on a Ready node"}, start)
	if err := r.Wait(ctx, "every configuration Compliant after "+host+" crashed", r.Bounds.Compliant, r.compliant); err != nil {
		return s, err
	}
	s.Compliant = since()
	r.observe(Phase{Name: PhaseHealthy, Host: host, At: start.Add(s.Compliant), Detail: "every configuration Compliant"}, start)
	s.ModelRestart, s.Restarts, err = r.restarts(ctx, host, start)
	return s, err
}

// Drain drains host, which runs workers, by live migration and measures until it is in maintenance and
// empty; it fails if a worker node left Ready on any poll, if the nodes are not relabelled off the host or
// a pod of the probed namespaces was replaced, or if the model recorded no complete drain. It leaves the
// host in maintenance: the caller repairs it (Repair).
func (r *Runner) Drain(ctx context.Context, host string, workers []twin.VMState) (DrainSample, error) {
	s := DrainSample{Host: host}
	before, err := r.Probe.PodUIDs(ctx)
	if err != nil {
		return s, err
	}
	start := r.now()
	s.Start = start
	if _, err := r.Twin.Host(ctx, twin.HostDrain, host); err != nil {
		return s, err
	}
	r.observe(Phase{Name: PhaseDrainStarted, Host: host, At: start, Detail: host}, start)
	var disruptions []string
	err = r.Wait(ctx, host+" drained (in maintenance, no VM left)", r.Bounds.Drain, func(ctx context.Context) error {
		// Every poll while the VMs move: no worker node leaves Ready.
		if err := r.Probe.NodesAre(ctx, workers, IsReady, "Ready"); err != nil {
			disruptions = append(disruptions, fmt.Sprintf("%.1fs: %v", r.now().Sub(start).Seconds(), err))
		}
		st, err := r.Twin.Status(ctx)
		if err != nil {
			return err
		}
		return Drained(st, host)
	})
	if err != nil {
		return s, err
	}
	s.Drained = r.now().Sub(start)
	r.observe(Phase{Name: PhaseDrainFinished, Host: host, At: start.Add(s.Drained), Detail: host + " in maintenance"}, start)
	if len(disruptions) > 0 {
		return s, fmt.Errorf("drain %s: %w: worker nodes left Ready during a live migration: %s", host, ErrPhase, strings.Join(disruptions, "; "))
	}
	err = r.Wait(ctx, "nodes relabelled off "+host, r.Bounds.NodesBack, func(ctx context.Context) error {
		return r.Probe.NodesAre(ctx, workers, OffHosts(host), "relabelled off "+host)
	})
	if err != nil {
		return s, err
	}
	after, err := r.Probe.PodUIDs(ctx)
	if err != nil {
		return s, err
	}
	if diff := PodChanges(before, after); len(diff) > 0 {
		return s, fmt.Errorf("drain %s: %w: pods were replaced during a live migration (no pod may be disrupted): %s", host, ErrPhase, strings.Join(diff, ", "))
	}
	s.Pods = len(before)
	s.ModelDrain, s.VMs, err = r.migrations(ctx, host, start)
	return s, err
}

// Repair brings hosts back and waits until each is Up, the apps are healthy and every configuration is
// Compliant again, so what runs next starts from a healthy twin.
func (r *Runner) Repair(ctx context.Context, hosts ...string) error {
	for _, host := range hosts {
		if _, err := r.Twin.Host(ctx, twin.HostRepair, host); err != nil {
			return fmt.Errorf("repair host %s: %w", host, err)
		}
	}
	for _, host := range hosts {
		if err := r.Wait(ctx, "host "+host+" Up after its repair", r.Bounds.NodesBack, func(ctx context.Context) error {
			st, err := r.Twin.Status(ctx)
			if err != nil {
				return err
			}
			return HostIs(st, host, hardware.HostUp)
		}); err != nil {
			return err
		}
	}
	what := fmt.Sprintf("hosts %v repaired: ", hosts)
	if err := r.Wait(ctx, what+"apps healthy again", r.Bounds.Healthy, r.Probe.AppsHealthy); err != nil {
		return err
	}
	return r.Wait(ctx, what+"every configuration Compliant again", r.Bounds.Compliant, r.compliant)
}

func (r *Runner) compliant(ctx context.Context) error {
	st, err := r.Twin.Status(ctx)
	if err != nil {
		return err
	}
	return Compliant(st)
}

// stranded fails (wrapping ErrPhase) when the model could not restart a VM since start: its node would
// never come back.
func (r *Runner) stranded(ctx context.Context, start time.Time) error {
	st, err := r.Twin.Status(ctx)
	if err != nil {
		return err
	}
	for _, rec := range RecordsSince(st, start) {
		if rec.Event.Type == hardware.VMStranded {
			return fmt.Errorf("%w: VM %s stranded: %s; the estate does not survive this host's loss", ErrPhase, rec.Event.VM, rec.Event.Reason)
		}
	}
	return nil
}

// restarts reads the model's VM restarts since start: the last one's delay after the crash, and each
// VM's new host.
func (r *Runner) restarts(ctx context.Context, host string, start time.Time) (time.Duration, []string, error) {
	st, err := r.Twin.Status(ctx)
	if err != nil {
		return 0, nil, err
	}
	var down time.Time
	var last time.Duration
	var moves []string
	for _, rec := range RecordsSince(st, start) {
		switch rec.Event.Type {
		case hardware.HostDown:
			down = rec.Event.At
		case hardware.VMRestarted:
			moves = append(moves, rec.Event.VM+" -> "+rec.Event.Host)
			if !down.IsZero() && rec.Event.At.Sub(down) > last {
				last = rec.Event.At.Sub(down)
			}
		}
	}
	if len(moves) == 0 {
		return 0, nil, fmt.Errorf("%w: the bridge recorded no VM restart after %s crashed", ErrPhase, host)
	}
	return last, moves, nil
}

// migrations reads the model's drain of host since start: HostDraining to HostDrained, and the VMs moved.
func (r *Runner) migrations(ctx context.Context, host string, start time.Time) (time.Duration, []string, error) {
	st, err := r.Twin.Status(ctx)
	if err != nil {
		return 0, nil, err
	}
	var from, to time.Time
	var vms []string
	for _, rec := range RecordsSince(st, start) {
		switch {
		case rec.Event.Type == hardware.HostDraining && rec.Event.Host == host:
			from = rec.Event.At
		case rec.Event.Type == hardware.HostDrained && rec.Event.Host == host:
			to = rec.Event.At
		case rec.Event.Type == hardware.VMMigrated:
			vms = append(vms, rec.Event.VM)
		}
	}
	if from.IsZero() || to.IsZero() || len(vms) == 0 {
		return 0, vms, fmt.Errorf("%w: the bridge recorded no complete drain of %s (draining %v, drained %v, migrated %v)", ErrPhase, host, !from.IsZero(), !to.IsZero(), vms)
	}
	return to.Sub(from), vms, nil
}
