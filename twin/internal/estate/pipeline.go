package estate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// The bring-up pipeline, in the shape of kind's cluster creation (a list of actions, each with one
// Execute, one loop): the shared steps start the parts every cluster uses, the per-cluster steps start
// one workload cluster. Up runs the shared steps and, for every cluster of the spec, the per-cluster
// steps; adding or recreating a cluster on a running twin runs the same per-cluster steps for it. Every
// step registers how to stop what it started (onStop, or a cluster's cleanup), which is the one undo
// path: Down, a failed Up, a removed cluster and a failed add all run it. Adding a component is one step
// function and one line in a list below.

// A sharedStep starts a part of the twin that every cluster uses.
type sharedStep struct {
	name api.StepName
	run  func(e *Estate, ctx context.Context) error
}

// A clusterStep brings one workload cluster a stage further. c.rc is set once the control plane runs.
type clusterStep struct {
	name api.StepName
	run  func(e *Estate, ctx context.Context, c *bringing) error
}

// bringing is a workload cluster being brought up.
type bringing struct {
	name string
	vms  []hardware.VMStatus // the estate's VMs once the cluster's are placed
	rc   *Cluster
	rep  *api.ClusterReport // nil in Up
	// gitops are configurations of a cluster file, created with the spec's.
	gitops []spec.GitOpsConfig
}

// services start in parallel with each other and with every cluster's first step (its control plane),
// which is the longest.
var services = []sharedStep{
	{api.StepGitea, (*Estate).startGitea},
	{api.StepRegistry, (*Estate).startRegistry},
	{api.StepArc, (*Estate).startArc},
	{api.StepS3, (*Estate).startS3},
}

// contents fill the services, once they and the clusters run.
var contents = []sharedStep{
	{api.StepImages, (*Estate).publishImages},
	{api.StepArtifacts, (*Estate).pushArtifacts},
	{api.StepBuckets, (*Estate).publishBuckets},
	{api.StepCharts, (*Estate).startCharts},
	{api.StepSeed, (*Estate).seed},
	{api.StepKubeconfig, (*Estate).writeKubeconfig},
}

// clusterSteps bring up one workload cluster, in order.
var clusterSteps = []clusterStep{
	{api.StepNodesReady, (*Estate).startControlPlane},
	{api.StepConnected, (*Estate).connect},
	{api.StepEngineStarted, (*Estate).startEngine},
	{api.StepAddons, (*Estate).startAddons},
	{api.StepConfigured, (*Estate).createGitOps},
}

// Up starts the twin a loaded spec describes (twin.Up). On any failure everything started is stopped
// again, in reverse order, the state directory is removed and the error is an *api.StepError naming the
// step.
func Up(ctx context.Context, s *spec.Spec, opts Options) (*Estate, error) {
	if s == nil || s.Inventory == nil || s.Plan == nil {
		return nil, fmt.Errorf("twin up: %w: the spec was not loaded; use LoadSpec", spec.ErrInvalidSpec)
	}
	e := &Estate{spec: s, opts: opts, start: time.Now(), clusters: map[string]*Cluster{},
		repoURLs: map[string]string{}, done: make(chan struct{}), specFile: s.File}
	// twin.json records the spec absolute: `validate --twin` and scripts read it from anywhere.
	if abs, err := filepath.Abs(s.File); err == nil {
		e.specFile = abs
	}
	e.log = opts.Logger
	if e.log == nil {
		e.log = slogDiscard()
	}
	e.clk = opts.Clock
	if e.clk == nil {
		e.clk = clock.RealClock{}
	}
	// The run context outlives ctx: ctx bounds the start, Down ends the run.
	e.runCtx, e.runCancel = context.WithCancel(context.WithoutCancel(ctx))
	e.opsCtx, e.opsCancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := e.up(ctx); err != nil {
		var se *api.StepError
		if !errors.As(err, &se) {
			se = &api.StepError{Op: api.OpUp, Step: "up", Err: err}
		}
		e.progress("failed: %v; stopping what started", se.Err)
		se.Undone, se.UndoErr = e.teardown(false)
		e.progress("stopped %d component(s); nothing is left running", len(se.Undone))
		return nil, se
	}
	e.ready = time.Since(e.start)
	e.progress("ready in %s", e.ready.Round(10*time.Millisecond))
	return e, nil
}

func stepErr(step api.StepName, target string, err error) error {
	return &api.StepError{Op: api.OpUp, Step: step, Target: target, Err: err}
}

// up is the pipeline: plan and state, then the services with every cluster's control plane, then the
// services' contents, then the clusters' remaining steps, then the bridge and twin.json.
func (e *Estate) up(ctx context.Context) error {
	if err := e.plan0(); err != nil {
		return stepErr(api.StepPlan, "", err)
	}
	if err := e.prepareState(); err != nil {
		return stepErr(api.StepState, e.stateDir, err)
	}
	e.progress("state: %s", e.stateDir)
	if err := e.initProvider(); err != nil {
		return stepErr(api.StepNodesReady, "", err)
	}
	names := e.spec.ClusterNames()
	bs := make([]*bringing, len(names))
	vms := e.sim.VMs()
	for i, n := range names {
		bs[i] = &bringing{name: n, vms: vms}
	}
	// Services and the clusters' first step, in parallel; if one fails, the others stop starting.
	var jobs []func(context.Context) error
	for _, s := range services {
		jobs = append(jobs, func(ctx context.Context) error {
			if err := s.run(e, ctx); err != nil {
				return stepErr(s.name, "", err)
			}
			return nil
		})
	}
	first := clusterSteps[0]
	for _, b := range bs {
		jobs = append(jobs, func(ctx context.Context) error {
			if err := first.run(e, ctx, b); err != nil {
				return stepErr(first.name, b.name, err)
			}
			e.cmu.Lock()
			e.clusters[b.name] = b.rc
			e.cmu.Unlock()
			return nil
		})
	}
	if err := parallel(ctx, jobs); err != nil {
		return err
	}
	for _, s := range contents {
		if err := s.run(e, ctx); err != nil {
			var se *api.StepError
			if errors.As(err, &se) {
				return err
			}
			return stepErr(s.name, "", err)
		}
	}
	for _, s := range clusterSteps[1:] {
		for _, b := range bs {
			if err := s.run(e, ctx, b); err != nil {
				return stepErr(s.name, b.name, err)
			}
		}
	}
	// The bridge: hardware events drive node state until Down.
	e.startBridge()
	if err := e.writeInfo(); err != nil {
		return stepErr(api.StepState, api.InfoFile, err)
	}
	return nil
}

// parallel runs jobs at once; the first failure cancels the others and is returned (the others are
// mostly "context canceled" from the stop it caused).
func parallel(ctx context.Context, jobs []func(context.Context) error) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := job(pctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, context.Canceled) || ctx.Err() != nil {
			return err
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// bringUp runs every per-cluster step for one cluster being added, recording each stage in its report.
// On failure the cluster's cleanups run (undoCluster) and the error names the step.
func (e *Estate) bringUp(ctx context.Context, b *bringing) (api.StepName, error) {
	for _, s := range clusterSteps {
		// Each step first checks ctx: a cancelled add (Ctrl-C, Down) stops between steps, not only
		// inside the ones that make requests.
		if err := ctx.Err(); err != nil {
			return s.name, err
		}
		if err := s.run(e, ctx, b); err != nil {
			return s.name, err
		}
	}
	return "", nil
}
