package failover

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
)

// Driver measures host faults on a running twin with the phases of package twin/faultphases, the same code
// the scenario suite's failover specs run; it picks the host and puts the twin back after each sample.
type Driver struct {
	tw faultphases.Twin
	r  *faultphases.Runner
}

// New drives tw; kube holds a client per workload cluster (by name), bounds come from BoundsFor. The
// apps are the Deployments and pods of every namespace.
func New(tw faultphases.Twin, kube map[string]kubernetes.Interface, bounds Bounds) *Driver {
	return &Driver{tw: tw, r: &faultphases.Runner{
		Twin:   tw,
		Probe:  faultphases.Probe{Kube: kube},
		Bounds: bounds.Bounds,
		Wait:   faultphases.Poll(bounds.Poll, bounds.Version),
	}}
}

// WaitCompliant waits until every GitOps configuration is Compliant (bounded by Bounds.Compliant).
func (d *Driver) WaitCompliant(ctx context.Context) error {
	return d.r.Wait(ctx, "every configuration Compliant", d.r.Bounds.Compliant, func(ctx context.Context) error {
		st, err := d.tw.Status(ctx)
		if err != nil {
			return err
		}
		return faultphases.Compliant(st)
	})
}

// Crash crashes the Up host that runs the most worker VMs, measures each phase (faultphases.Runner.Crash),
// then repairs the host and waits until it is Up and the apps are healthy and Compliant again, so the
// next sample starts from a healthy twin.
func (d *Driver) Crash(ctx context.Context) (faultphases.CrashSample, error) {
	host, workers, err := d.busiest(ctx, "crash")
	if err != nil {
		return faultphases.CrashSample{}, err
	}
	r := d.runner()
	s, err := r.Crash(ctx, host, workers)
	return s, d.repair(ctx, r, host, err)
}

// Drain drains the Up host that runs the most worker VMs by live migration, measures until it is in
// maintenance and empty, checks that no worker node left Ready and no pod was replaced
// (faultphases.Runner.Drain), then repairs it.
func (d *Driver) Drain(ctx context.Context) (faultphases.DrainSample, error) {
	host, workers, err := d.busiest(ctx, "drain")
	if err != nil {
		return faultphases.DrainSample{}, err
	}
	r := d.runner()
	s, err := r.Drain(ctx, host, workers)
	return s, d.repair(ctx, r, host, err)
}

func (d *Driver) busiest(ctx context.Context, what string) (string, []twin.VMState, error) {
	st, err := d.tw.Status(ctx)
	if err != nil {
		return "", nil, err
	}
	host, workers := faultphases.BusiestHost(st)
	if host == "" {
		return "", nil, fmt.Errorf("%s: %w: no Up host runs a worker VM", what, faultphases.ErrPhase)
	}
	return host, workers, nil
}

// faultedRunner is the driver's runner for one sample, noting whether the fault took effect.
type faultedRunner struct {
	*faultphases.Runner
	faulted bool
}

func (d *Driver) runner() *faultedRunner {
	r := &faultedRunner{}
	rr := *d.r
	rr.Observe = func(p faultphases.Phase) {
		if p.Name == faultphases.PhaseHostDown || p.Name == faultphases.PhaseDrainStarted {
			r.faulted = true
		}
	}
	r.Runner = &rr
	return r
}

// repair brings the sample's host back whatever the sample's outcome (a failed sample must not leave the
// host down for the next one), unless the fault never took effect (the fault call failed) or the run was
// interrupted: then the twin goes down anyway.
func (d *Driver) repair(ctx context.Context, r *faultedRunner, host string, err error) error {
	if !r.faulted || ctx.Err() != nil {
		return err
	}
	if rerr := r.Repair(ctx, host); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}
