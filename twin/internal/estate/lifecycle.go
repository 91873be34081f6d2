package estate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/hostops"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// Cluster lifecycle at runtime: a workload cluster removed (the disaster), recreated or newly onboarded,
// and a node pool scaled, on a running twin. Growing asks the hardware model first: the running estate
// with the new VMs is evaluated as the capacity planner evaluates a plan (N-1, the reserve, the limit
// profile, the IP and VIP pools), and the operation is refused with the model's reason, changing
// nothing, when it does not fit (hardware.Sim.PlaceVMs). Then the clusters follow; a failure part-way
// releases the VMs again. Shrinking drains and stops first, then releases the VMs in the model
// (hardware.Sim.ReleaseVMs), which never needs capacity.
//
// As on a real HCI cluster, no running VM moves because another cluster was created or deleted: new VMs
// go where there is room now and keep their host and address; released VMs free theirs. The estate must
// be at rest (every host Up, nothing pending; an estate mid-failover is refused). A cluster of the spec
// goes back to its place in the plan order (so status lists clusters as the spec does), a new one after
// all the others; its VMs are placed on the capacity left at that moment.

// Clusters are the workload clusters the twin runs now, in plan order (Spec().ClusterNames() is what it
// started with).
func (e *Estate) Clusters() []string { return e.clusterNames() }

// Plan is a copy of the ClusterPlan the twin runs now.
func (e *Estate) Plan() *hardware.Plan {
	e.cmu.RLock()
	defer e.cmu.RUnlock()
	return e.plan.Clone()
}

// MoreWorkers is how many more workers a node pool of the running twin takes before the hardware model
// refuses: the capacity planner's what-if on the estate as it runs (every VM where it is). ScaleNodePool
// to Current+More is accepted, one more is refused for LimitedBy (while nothing else changes).
func (e *Estate) MoreWorkers(clusterName, pool string) (hardware.MoreWorkers, error) {
	return e.bridge.MoreWorkers(clusterName, pool)
}

// RemoveCluster is the disaster: a workload cluster is lost. Its Arc agent and GitOps engine stop, its
// connectedCluster is deleted as `az connectedk8s delete` does ("Delete a connected kubernetes cluster
// along with connected cluster agents", Azure CLI connectedk8s reference; ARM deletes the nested
// extensions and fluxConfigurations with it), its control plane and kubelets stop and their state is
// removed, and its VMs are released in the hardware model. The twin's last cluster cannot be removed.
//
// Once the cluster is taken out of the twin, the teardown runs to the end even if a step fails or ctx
// ends; the error then names every step that failed.
func (e *Estate) RemoveCluster(ctx context.Context, name string) (*api.ClusterReport, error) {
	rep := &api.ClusterReport{Op: api.OpRemoveCluster, Cluster: name, Started: time.Now()}
	_, done, err := e.beginOp(ctx, api.OpRemoveCluster, name)
	if err != nil {
		return nil, err
	}
	defer done()
	rc, err := e.runningOrRefuse(api.OpRemoveCluster, name)
	if err != nil {
		return nil, err
	}
	next := e.Plan()
	if len(next.Spec.WorkloadClusters) == 1 {
		return nil, fmt.Errorf("%s: %w: it is the twin's last workload cluster; a twin runs at least one (use `hybridtwin down` instead)", api.Describe(api.OpRemoveCluster, name, "", 0), api.ErrRefused)
	}
	kept := next.Spec.WorkloadClusters[:0]
	for _, wc := range next.Spec.WorkloadClusters {
		if wc.Name != name {
			kept = append(kept, wc)
		}
	}
	next.Spec.WorkloadClusters = kept
	// Releasing VMs never needs capacity: the change is not gated on the verdict, only on the estate at
	// rest, checked here so the release at the end cannot be refused.
	if err := e.bridge.Settled(); err != nil {
		return nil, fmt.Errorf("%s: %w: the estate is not at rest: %v", api.Describe(api.OpRemoveCluster, name, "", 0), api.ErrRefused, err)
	}
	if _, err := e.bridge.Releasing(next); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", api.Describe(api.OpRemoveCluster, name, "", 0), api.ErrRefused, err)
	}
	e.progress("remove cluster %s", name)
	// Out of the twin first, so status and the bridge stop looking at it.
	e.cmu.Lock()
	delete(e.clusters, name)
	e.plan = next
	e.cmu.Unlock()

	// The teardown is not bound to ctx: a cluster half torn down is worse than a slow request.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.prof.StopTimeout)
	defer cancel()
	var errs []error
	fail := func(step api.StepName, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", step, err))
	}
	// Its cleanups, newest first: Arc agent and engine, connectedCluster, control plane.
	if _, err := e.undoCluster(tctx, name, func(st api.StepName) {
		rep.Stage(st, time.Now(), removalDetail(st, e.spec.ReconcilerFor(name).String(), rc))
	}); err != nil {
		fail(api.StepControlPlaneDown, err)
	}
	if ch, err := e.bridge.ReleaseVMs(tctx, next); err != nil {
		fail(api.StepReleased, err)
	} else {
		rep.Released = placements(ch.Released)
		rep.Capacity = ch.Result.Summary()
		rep.Stage(api.StepReleased, time.Now(), vmList(rep.Released))
	}
	if err := e.afterChange(); err != nil {
		fail(api.StepReleased, err)
	}
	rep.Took = time.Since(rep.Started)
	e.progress("remove cluster %s: done in %s", name, rep.Took.Round(10*time.Millisecond))
	if len(errs) > 0 {
		return rep, &api.StepError{Op: api.OpRemoveCluster, Cluster: name, Step: api.StepControlPlaneDown, Err: errors.Join(errs...)}
	}
	return rep, nil
}

// AddCluster onboards a new workload cluster: the hardware model places its VMs (or the operation is
// refused with the model's reason, starting nothing), its control plane and simulated kubelets start, its
// context is merged into the twin's kubeconfig, it is connected to Arc -- where policy assignments
// covering it deploy their configurations, as Azure Policy's DeployIfNotExists does for clusters created
// after the assignment -- and its GitOps engine and Arc agent start; the spec's fluxConfigurations that
// target it (by name, or "*") are created through ARM. A failure part-way stops what was started again.
func (e *Estate) AddCluster(ctx context.Context, wc hardware.WorkloadCluster) (*api.ClusterReport, error) {
	return e.addCluster(ctx, api.OpAddCluster, wc, addOptions{})
}

// RecreateCluster brings back a workload cluster of the spec's plan (after RemoveCluster), as the spec
// plans it, and it converges from Git again. It is AddCluster with the spec's definition.
func (e *Estate) RecreateCluster(ctx context.Context, name string) (*api.ClusterReport, error) {
	for _, wc := range e.spec.Plan.Spec.WorkloadClusters {
		if wc.Name == name {
			wc.NodePools = append([]hardware.NodePool(nil), wc.NodePools...)
			return e.addCluster(ctx, api.OpRecreateCluster, wc, addOptions{})
		}
	}
	return nil, fmt.Errorf("%s: %w: %q is not a workload cluster of the spec's plan (have: %s); AddCluster onboards a new one",
		api.Describe(api.OpRecreateCluster, name, "", 0), api.ErrRefused, name, strings.Join(e.spec.ClusterNames(), ", "))
}

// addOptions are what AddClusterFile adds to an add: a check of the fragment against the running twin
// (under the operation lock, before anything starts), its own configurations, waiting for them to be
// Compliant, and a listener for the stages.
type addOptions struct {
	check         func(next *hardware.Plan, at int) error
	gitops        []spec.GitOpsConfig
	waitCompliant bool
	onStep        func(api.LifecycleStep)
}

func (e *Estate) addCluster(ctx context.Context, op api.Op, wc hardware.WorkloadCluster, opts addOptions) (*api.ClusterReport, error) {
	name := wc.Name
	rep := &api.ClusterReport{Op: op, Cluster: name, Started: time.Now(), OnStep: opts.onStep}
	ctx, done, err := e.beginOp(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer done()
	if _, running := e.cluster(name); running && opts.check == nil {
		return nil, fmt.Errorf("%s: %w: cluster %q already runs; remove it first", api.Describe(op, name, "", 0), api.ErrRefused, name)
	}
	before := e.Plan()
	next := before.Clone()
	at := e.insertAt(next.Spec.WorkloadClusters, name)
	wcs := append([]hardware.WorkloadCluster(nil), next.Spec.WorkloadClusters[:at]...)
	wcs = append(wcs, wc)
	next.Spec.WorkloadClusters = append(wcs, next.Spec.WorkloadClusters[at:]...)
	if opts.check != nil {
		if err := opts.check(next, at); err != nil {
			return nil, err
		}
	}
	ch, err := e.place(ctx, op, name, "", 0, next)
	if err != nil {
		return nil, err
	}
	rep.Placed = placements(ch.Placed)
	rep.Stage(api.StepPlaced, time.Now(), vmList(rep.Placed))
	e.progress("%s: %s", api.Describe(op, name, "", 0), vmList(rep.Placed))
	b := &bringing{name: name, vms: e.bridge.VMs(), rep: rep, gitops: opts.gitops}
	fail := func(step api.StepName, cause error) (*api.ClusterReport, error) {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.prof.StopTimeout)
		defer cancel()
		oe := &api.StepError{Op: op, Cluster: name, Step: step, Err: cause}
		oe.Undone, oe.UndoErr = e.undoCluster(uctx, name, nil)
		e.unplace(uctx, before, oe)
		e.progress("%s failed at %q: %v; undone: %v", api.Describe(op, name, "", 0), step, cause, oe.Undone)
		return nil, oe
	}
	// The same per-cluster steps Up runs (pipeline.go).
	if step, err := e.bringUp(ctx, b); err != nil {
		return fail(step, err)
	}
	rc := b.rc
	if opts.waitCompliant && len(rep.Configurations) > 0 {
		if err := e.waitCompliant(ctx, rc.arcID); err != nil {
			return fail(api.StepCompliant, err)
		}
		rep.Stage(api.StepCompliant, time.Now(), strings.Join(rep.Configurations, ", "))
	}
	// The merged kubeconfig with the new context, written before the commit (the last step that can fail).
	names := planClusterNames(next)
	if err := e.writeKubeconfigFor(names, map[string]*Cluster{name: rc}); err != nil {
		return fail(api.StepConfigured, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(api.StepConfigured, err)
	}
	// Commit: the cluster is part of the twin (its VMs are already in the hardware model).
	e.cmu.Lock()
	e.clusters[name] = rc
	e.plan = next
	e.cmu.Unlock()
	if err := e.afterChange(); err != nil {
		e.log.Warn("record the twin's state", "err", err)
	}
	rep.Capacity = ch.Result.Summary()
	rep.Took = time.Since(rep.Started)
	e.progress("%s: done in %s", api.Describe(op, name, "", 0), rep.Took.Round(10*time.Millisecond))
	return rep, nil
}

// ScaleNodePool sets the VM count of a node pool, as `az aksarc nodepool scale --node-count` does. The
// hardware model decides first: if count VMs do not fit with the reserve and N-1 the estate is planned
// with, the error is a *CapacityError carrying the model's reason and nothing changes. Growing adds the
// VMs in the model and their Nodes (Ready) in the cluster; shrinking drains the highest-numbered VMs'
// nodes (cordon, evict, as `kubectl drain` does), removes them and releases the VMs.
func (e *Estate) ScaleNodePool(ctx context.Context, clusterName, pool string, count int) (*api.ClusterReport, error) {
	rep := &api.ClusterReport{Op: api.OpScalePool, Cluster: clusterName, Pool: pool, To: count, Started: time.Now()}
	what := api.Describe(api.OpScalePool, clusterName, pool, count)
	ctx, done, err := e.beginOp(ctx, api.OpScalePool, clusterName)
	if err != nil {
		return nil, err
	}
	defer done()
	rc, err := e.runningOrRefuse(api.OpScalePool, clusterName)
	if err != nil {
		return nil, err
	}
	nodes, ok := e.provider.(cluster.NodePools)
	if !ok {
		return nil, fmt.Errorf("%s: %w: provider %s cannot add or remove nodes of a running cluster: %w", what, api.ErrRefused, e.provider.Name(), cluster.ErrUnsupported)
	}
	if count < 0 {
		return nil, fmt.Errorf("%s: %w: the count must be zero or more", what, api.ErrRefused)
	}
	before := e.Plan()
	next := before.Clone()
	var np *hardware.NodePool
	var have []string
	for i := range next.Spec.WorkloadClusters {
		wc := &next.Spec.WorkloadClusters[i]
		if wc.Name != clusterName {
			continue
		}
		for j := range wc.NodePools {
			have = append(have, wc.NodePools[j].Name)
			if wc.NodePools[j].Name == pool {
				np = &wc.NodePools[j]
			}
		}
	}
	if np == nil {
		return nil, fmt.Errorf("%s: %w: cluster %s has no node pool %q (have: %s)", what, api.ErrRefused, clusterName, pool, strings.Join(have, ", "))
	}
	rep.From = np.Count
	if np.Count == count {
		rep.Took = time.Since(rep.Started)
		return rep, nil
	}
	np.Count = count
	undoCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), e.prof.StopTimeout)
	}
	var result *hardware.Result
	if count > rep.From {
		ch, err := e.place(ctx, api.OpScalePool, clusterName, pool, count, next)
		if err != nil {
			return nil, err
		}
		e.progress("%s (from %d)", what, rep.From)
		result = ch.Result
		rep.Placed = placements(ch.Placed)
		rep.Stage(api.StepPlaced, time.Now(), vmList(rep.Placed))
		var added []string
		for _, vm := range ch.Placed {
			if err := nodes.AddNode(ctx, clusterName, nodeSpecOf(vm)); err != nil {
				uctx, cancel := undoCtx()
				defer cancel()
				oe := &api.StepError{Op: api.OpScalePool, Cluster: clusterName, Step: api.StepNodesAdded, Err: err}
				for i := len(added) - 1; i >= 0; i-- {
					if rerr := nodes.RemoveNode(uctx, clusterName, added[i]); rerr != nil {
						oe.UndoErr = errors.Join(oe.UndoErr, rerr)
					} else {
						oe.Undone = append(oe.Undone, "node "+added[i])
					}
				}
				e.unplace(uctx, before, oe)
				return nil, oe
			}
			added = append(added, vm.Name)
		}
		rep.Stage(api.StepNodesAdded, time.Now(), strings.Join(added, ", "))
	} else {
		if err := e.bridge.Settled(); err != nil {
			return nil, fmt.Errorf("%s: %w: the estate is not at rest: %v", what, api.ErrRefused, err)
		}
		// The VMs go last, after their nodes: the model says which first, changing nothing.
		released, err := e.bridge.Releasing(next)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", what, api.ErrRefused, err)
		}
		e.progress("%s (from %d)", what, rep.From)
		var drained []string
		undrain := func(cause error, step api.StepName) (*api.ClusterReport, error) {
			uctx, cancel := undoCtx()
			defer cancel()
			oe := &api.StepError{Op: api.OpScalePool, Cluster: clusterName, Step: step, Err: cause}
			for _, n := range drained {
				if uerr := hostops.CordonNode(uctx, rc.client, n, false); uerr != nil {
					oe.UndoErr = errors.Join(oe.UndoErr, uerr)
				} else {
					oe.Undone = append(oe.Undone, "uncordoned "+n)
				}
			}
			return nil, oe
		}
		for _, vm := range released {
			drained = append(drained, rc.info.NodeName(vm.Name))
			dctx, cancel := context.WithTimeout(ctx, e.prof.DrainTimeout)
			err := hostops.DrainNode(dctx, rc.client, rc.info.NodeName(vm.Name), e.prof.DrainPoll)
			cancel()
			if err != nil {
				return undrain(err, api.StepNodesDrained)
			}
		}
		rep.Stage(api.StepNodesDrained, time.Now(), strings.Join(drained, ", "))
		for i, vm := range released {
			if err := nodes.RemoveNode(ctx, clusterName, vm.Name); err != nil {
				// Put back what was already removed: the pool is as it was, its nodes empty and schedulable.
				uctx, cancel := undoCtx()
				defer cancel()
				oe := &api.StepError{Op: api.OpScalePool, Cluster: clusterName, Step: api.StepNodesRemoved, Err: err}
				for _, back := range released[:i] {
					if aerr := nodes.AddNode(uctx, clusterName, nodeSpecOf(back)); aerr != nil {
						oe.UndoErr = errors.Join(oe.UndoErr, aerr)
					} else {
						oe.Undone = append(oe.Undone, "node "+back.Name+" re-added")
					}
				}
				for _, n := range drained[i:] {
					if uerr := hostops.CordonNode(uctx, rc.client, n, false); uerr != nil {
						oe.UndoErr = errors.Join(oe.UndoErr, uerr)
					}
				}
				return nil, oe
			}
		}
		rep.Stage(api.StepNodesRemoved, time.Now(), strings.Join(drained, ", "))
		ch, err := e.bridge.ReleaseVMs(ctx, next)
		if err != nil {
			// Cannot happen while the operation lock is held (nothing else changes the model); if it does,
			// the nodes are gone and the model still has their VMs: say so.
			return nil, &api.StepError{Op: api.OpScalePool, Cluster: clusterName, Step: api.StepReleased, Err: err}
		}
		result = ch.Result
		rep.Released = placements(ch.Released)
		rep.Stage(api.StepReleased, time.Now(), vmList(rep.Released))
	}
	e.cmu.Lock()
	e.plan = next
	e.cmu.Unlock()
	nodesN, cores := workerTotals(e.bridge.VMs(), clusterName)
	if err := e.arcSrv.SetConnectivity(rc.arcID, "Connected", rc.info.KubernetesVersion, nodesN, cores); err != nil {
		e.log.Warn("report the cluster's size to Arc", "cluster", clusterName, "err", err)
	}
	if err := e.afterChange(); err != nil {
		e.log.Warn("record the twin's state", "err", err)
	}
	rep.Capacity = result.Summary()
	rep.Took = time.Since(rep.Started)
	e.progress("%s: done in %s", what, rep.Took.Round(10*time.Millisecond))
	return rep, nil
}

// beginOp takes the operation lock and returns a context that also ends when Down starts.
func (e *Estate) beginOp(ctx context.Context, op api.Op, name string) (context.Context, func(), error) {
	e.opMu.Lock()
	e.mu.Lock()
	down := e.down
	e.mu.Unlock()
	if down {
		e.opMu.Unlock()
		return nil, nil, fmt.Errorf("%s: %w: the twin is going down", api.Describe(op, name, "", 0), api.ErrRefused)
	}
	octx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.opsCtx, cancel)
	return octx, func() { stop(); cancel(); e.opMu.Unlock() }, nil
}

func (e *Estate) runningOrRefuse(op api.Op, name string) (*Cluster, error) {
	rc, ok := e.cluster(name)
	if !ok {
		return nil, fmt.Errorf("%s: %w: cluster %q is not running (have: %s): %w", api.Describe(op, name, "", 0), api.ErrRefused, name,
			strings.Join(e.clusterNames(), ", "), cluster.ErrNotFound)
	}
	return rc, nil
}

// insertAt is where a cluster goes in the plan: a cluster of the spec at its place in the spec's order
// (so recreating it restores the original placement), any other after all the clusters.
func (e *Estate) insertAt(cur []hardware.WorkloadCluster, name string) int {
	specIndex := map[string]int{}
	for i, wc := range e.spec.Plan.Spec.WorkloadClusters {
		specIndex[wc.Name] = i
	}
	mine, inSpec := specIndex[name]
	if !inSpec {
		return len(cur)
	}
	for i, wc := range cur {
		if j, ok := specIndex[wc.Name]; !ok || j > mine {
			return i
		}
	}
	return len(cur)
}

// place puts the VMs next adds into the hardware model, on the estate as it runs. A plan the model says
// does not fit is refused with a *CapacityError carrying its reasons, any other refusal wraps
// api.ErrRefused; either way nothing changed.
func (e *Estate) place(ctx context.Context, op api.Op, clusterName, pool string, count int, next *hardware.Plan) (*hardware.Change, error) {
	what := api.Describe(op, clusterName, pool, count)
	if err := e.bridge.Settled(); err != nil {
		return nil, fmt.Errorf("%s: %w: the estate is not at rest: %v", what, api.ErrRefused, err)
	}
	ch, err := e.bridge.PlaceVMs(ctx, next, hardware.PlaceOptions{AllowUnfit: e.spec.Spec.Hardware.AllowUnfit})
	var ue *hardware.UnfitError
	switch {
	case errors.As(err, &ue):
		return nil, &api.CapacityError{Op: op, Cluster: clusterName, Pool: pool, Count: count, Reasons: ue.Reasons(), Cause: ue}
	case err != nil:
		return nil, fmt.Errorf("%s: %w: %w", what, api.ErrRefused, err)
	}
	return ch, nil
}

// unplace undoes place for an operation that failed part-way: the VMs it placed are released, so the
// model runs before again (nothing else moved, so it is exactly as it was).
func (e *Estate) unplace(ctx context.Context, before *hardware.Plan, oe *api.StepError) {
	ch, err := e.bridge.ReleaseVMs(ctx, before)
	if err != nil {
		oe.UndoErr = errors.Join(oe.UndoErr, fmt.Errorf("release the VMs placed for it: %w", err))
		return
	}
	oe.Undone = append(oe.Undone, "VMs released: "+vmList(placements(ch.Released)))
}

// afterChange rewrites the merged kubeconfig and twin.json for the clusters the twin runs now.
func (e *Estate) afterChange() error {
	return errors.Join(e.writeKubeconfig(context.Background()), e.writeInfo())
}

// writeKubeconfigFor writes the merged kubeconfig for names, taking clusters not yet in the twin from extra.
func (e *Estate) writeKubeconfigFor(names []string, extra map[string]*Cluster) error {
	paths := map[string]string{}
	e.cmu.RLock()
	for _, n := range names {
		if rc, ok := extra[n]; ok {
			paths[n] = rc.info.Kubeconfig
		} else if rc, ok := e.clusters[n]; ok {
			paths[n] = rc.info.Kubeconfig
		}
	}
	e.cmu.RUnlock()
	merged, err := mergeKubeconfigs(names, func(n string) string { return paths[n] })
	if err != nil {
		return err
	}
	return writeKubeconfigFile(merged, filepath.Join(e.stateDir, api.KubeconfigFile))
}

func planClusterNames(p *hardware.Plan) []string {
	out := make([]string, 0, len(p.Spec.WorkloadClusters))
	for _, wc := range p.Spec.WorkloadClusters {
		out = append(out, wc.Name)
	}
	return out
}

func placements(vms []hardware.VMStatus) []api.VMPlacement {
	out := make([]api.VMPlacement, 0, len(vms))
	for _, vm := range vms {
		p := api.VMPlacement{VM: vm.Name, Cluster: vm.Cluster, Pool: vm.Pool, Role: vm.Role, Host: vm.Host}
		if vm.IP.IsValid() {
			p.IP = vm.IP.String()
		}
		out = append(out, p)
	}
	return out
}

func vmList(ps []api.VMPlacement) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.VM + "@" + p.Host
	}
	return strings.Join(parts, ", ")
}

// AddClusterFile onboards the cluster a cluster file describes (ParseClusterFragment), as AddCluster
// does, after checking it against the running twin (a *ClusterFileError naming the file's fields, and
// nothing started); its own configurations are created with the spec's, and it waits until every
// configuration on the cluster is Compliant. onStep, if set, hears each stage when it is done. A refusal
// by the hardware model is a *CapacityError; a failure part-way, ctx ending included, undoes everything
// (an *api.StepError).
func (e *Estate) AddClusterFile(ctx context.Context, f *spec.ClusterFragment, onStep func(api.LifecycleStep)) (*api.ClusterReport, error) {
	if f == nil || f.Name == "" {
		return nil, fmt.Errorf("add cluster: %w: no cluster file; use ParseClusterFragment", api.ErrRefused)
	}
	return e.addCluster(ctx, api.OpAddCluster, f.WorkloadCluster(), addOptions{
		check:         func(next *hardware.Plan, at int) error { return e.checkFragment(f, next, at) },
		gitops:        f.GitOps,
		waitCompliant: true,
		onStep:        onStep,
	})
}

// waitCompliant waits until every fluxConfiguration on the cluster reports Compliant (the Arc agent
// reports its reconciler's state), polling as ARM clients poll; ctx bounds it. The error names each
// configuration's last state.
func (e *Estate) waitCompliant(ctx context.Context, arcID string) error {
	tick := time.NewTicker(e.prof.ARMPoll)
	defer tick.Stop()
	for {
		var waiting []string
		for _, fc := range e.arcSrv.FluxConfigurations(arcID) {
			if st := fc.Properties.ComplianceState; st != arc.Compliant {
				w := fmt.Sprintf("%s is %q", fc.Name, st)
				if fc.Properties.ErrorMessage != "" {
					w += " (" + fc.Properties.ErrorMessage + ")"
				}
				waiting = append(waiting, w)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("configurations not Compliant: %s: %w", strings.Join(waiting, "; "), ctx.Err())
		case <-tick.C:
		}
	}
}

// checkFragment checks a cluster file against the running twin (spec.Spec.CheckFragment), under the
// operation lock.
func (e *Estate) checkFragment(f *spec.ClusterFragment, next *hardware.Plan, at int) error {
	running := e.clusterNames()
	version := ""
	for _, n := range running {
		if rc, ok := e.cluster(n); ok && rc.info.KubernetesVersion != "" {
			version = rc.info.KubernetesVersion
			break
		}
	}
	return e.spec.CheckFragment(f, running, version, next, at)
}

// removalDetail is what a removal's report says of a stage its cleanups reached.
func removalDetail(stage api.StepName, engine string, rc *Cluster) string {
	switch stage {
	case api.StepAgentStopped:
		return engine + " and Arc agent"
	case api.StepDisconnected:
		return rc.arcID
	case api.StepControlPlaneDown:
		return fmt.Sprintf("%d process(es) stopped, state removed", len(rc.info.Processes))
	}
	return ""
}
