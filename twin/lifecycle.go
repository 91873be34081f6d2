package twin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/hostops"
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

// LifecycleOp names a cluster operation.
type LifecycleOp string

// Cluster operations.
const (
	OpRemoveCluster   LifecycleOp = "remove-cluster"
	OpAddCluster      LifecycleOp = "add-cluster"
	OpRecreateCluster LifecycleOp = "recreate-cluster"
	OpScalePool       LifecycleOp = "scale-pool"
)

// LifecycleStepName names a stage of a cluster operation.
type LifecycleStepName string

// Stages of the cluster operations, in the order they happen.
const (
	StepPlaced           LifecycleStepName = "VMs placed"               // the hardware model placed the new VMs
	StepControlPlaneUp   LifecycleStepName = "control plane up"         // the API server answers /readyz
	StepNodesReady       LifecycleStepName = "nodes Ready"              // every VM-node Ready
	StepConnected        LifecycleStepName = "connected to Arc"         // the connectedCluster provisioned
	StepEngineStarted    LifecycleStepName = "reconciler started"       // GitOps engine and Arc agent running
	StepConfigured       LifecycleStepName = "configurations created"   // the spec's fluxConfigurations for it
	StepCompliant        LifecycleStepName = "configurations Compliant" // every one on the cluster (AddClusterFile)
	StepAgentStopped     LifecycleStepName = "reconciler and agent stopped"
	StepDisconnected     LifecycleStepName = "Arc connectedCluster deleted"
	StepControlPlaneDown LifecycleStepName = "control plane down"
	StepReleased         LifecycleStepName = "VMs released"
	StepNodesAdded       LifecycleStepName = "nodes added"   // new VM-nodes Ready
	StepNodesDrained     LifecycleStepName = "nodes drained" // cordoned, pods evicted
	StepNodesRemoved     LifecycleStepName = "nodes removed"
)

// ErrLifecycle is wrapped by a cluster operation that failed part-way (an *OpError); what it had started
// was stopped again.
var ErrLifecycle = errors.New("cluster operation failed")

// CapacityError is the hardware model's no: the plan with the change does not fit. Nothing was changed.
// errors.Is(err, ErrRefused) holds, and in-process also errors.Is for the model's sentinels (e.g.
// hardware.ErrInsufficientCapacity, hardware.ErrLimitExceeded).
type CapacityError struct {
	Op      LifecycleOp `json:"op"`
	Cluster string      `json:"cluster"`
	Pool    string      `json:"pool,omitempty"`
	Count   int         `json:"count,omitempty"`
	// Reasons are the model's error findings, each "check: message": which resource, how much short.
	Reasons []string `json:"reasons"`
	err     error
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("%s: the hardware model says it does not fit: %s; nothing was changed", describe(e.Op, e.Cluster, e.Pool, e.Count), strings.Join(e.Reasons, "; "))
}

// Unwrap returns ErrRefused and the model's typed findings.
func (e *CapacityError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, e.err}
}

// OpError is a cluster operation that failed part-way. errors.Is(err, ErrLifecycle) holds, and so does
// errors.Is for the cause (e.g. context.Canceled).
type OpError struct {
	Op      LifecycleOp
	Cluster string
	Step    LifecycleStepName // the stage that failed
	Err     error
	// Undone lists what was stopped again, in order; UndoErr is set when undoing failed too.
	Undone  []string
	UndoErr error
}

func (e *OpError) Error() string {
	msg := fmt.Sprintf("%s %s: %q failed: %v", e.Op, e.Cluster, e.Step, e.Err)
	if len(e.Undone) > 0 {
		msg += fmt.Sprintf("; undone: %s", strings.Join(e.Undone, ", "))
	}
	if e.UndoErr != nil {
		msg += fmt.Sprintf("; undoing failed too: %v", e.UndoErr)
	}
	return msg
}

// Unwrap returns ErrLifecycle and the cause.
func (e *OpError) Unwrap() []error { return []error{ErrLifecycle, e.Err} }

// LifecycleStep is one stage of a cluster operation: when it was done and how long after the start.
type LifecycleStep struct {
	Step   LifecycleStepName `json:"step"`
	At     time.Time         `json:"at"`
	After  time.Duration     `json:"after"`
	Detail string            `json:"detail,omitempty"`
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
	Op      LifecycleOp     `json:"op"`
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

	// onStep, when set, hears each stage as it is done (the control socket streams them).
	onStep func(LifecycleStep)
}

func (r *ClusterReport) step(name LifecycleStepName, at time.Time, detail string) {
	s := LifecycleStep{Step: name, At: at, After: at.Sub(r.Started), Detail: detail}
	r.Steps = append(r.Steps, s)
	if r.onStep != nil {
		r.onStep(s)
	}
}

// StepAt returns when a stage was done, and whether it was.
func (r *ClusterReport) StepAt(name LifecycleStepName) (time.Time, bool) {
	for _, s := range r.Steps {
		if s.Step == name {
			return s.At, true
		}
	}
	return time.Time{}, false
}

func describe(op LifecycleOp, clusterName, pool string, count int) string {
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

// Clusters are the workload clusters the twin runs now, in plan order (Spec().ClusterNames() is what it
// started with).
func (t *Twin) Clusters() []string { return t.clusterNames() }

// Plan is a copy of the ClusterPlan the twin runs now.
func (t *Twin) Plan() *hardware.Plan {
	t.cmu.RLock()
	defer t.cmu.RUnlock()
	return t.plan.Clone()
}

// MoreWorkers is how many more workers a node pool of the running twin takes before the hardware model
// refuses: the capacity planner's what-if on the estate as it runs (every VM where it is). ScaleNodePool
// to Current+More is accepted, one more is refused for LimitedBy (while nothing else changes).
func (t *Twin) MoreWorkers(clusterName, pool string) (hardware.MoreWorkers, error) {
	return t.bridge.MoreWorkers(clusterName, pool)
}

// RemoveCluster is the disaster: a workload cluster is lost. Its Arc agent and GitOps engine stop, its
// connectedCluster is deleted as `az connectedk8s delete` does ("Delete a connected kubernetes cluster
// along with connected cluster agents", Azure CLI connectedk8s reference; ARM deletes the nested
// extensions and fluxConfigurations with it), its control plane and kubelets stop and their state is
// removed, and its VMs are released in the hardware model. The twin's last cluster cannot be removed.
//
// Once the cluster is taken out of the twin, the teardown runs to the end even if a step fails or ctx
// ends; the error then names every step that failed.
func (t *Twin) RemoveCluster(ctx context.Context, name string) (*ClusterReport, error) {
	rep := &ClusterReport{Op: OpRemoveCluster, Cluster: name, Started: time.Now()}
	_, done, err := t.beginOp(ctx, OpRemoveCluster, name)
	if err != nil {
		return nil, err
	}
	defer done()
	rc, err := t.runningOrRefuse(OpRemoveCluster, name)
	if err != nil {
		return nil, err
	}
	next := t.Plan()
	if len(next.Spec.WorkloadClusters) == 1 {
		return nil, fmt.Errorf("%s: %w: it is the twin's last workload cluster; a twin runs at least one (use `hybridtwin down` instead)", describe(OpRemoveCluster, name, "", 0), ErrRefused)
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
	if err := t.bridge.Settled(); err != nil {
		return nil, fmt.Errorf("%s: %w: the estate is not at rest: %v", describe(OpRemoveCluster, name, "", 0), ErrRefused, err)
	}
	if _, err := t.bridge.Releasing(next); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", describe(OpRemoveCluster, name, "", 0), ErrRefused, err)
	}
	t.progress("remove cluster %s", name)
	// Out of the twin first, so status and the bridge stop looking at it.
	t.cmu.Lock()
	delete(t.clusters, name)
	t.plan = next
	t.cmu.Unlock()

	// The teardown is not bound to ctx: a cluster half torn down is worse than a slow request.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.prof.StopTimeout)
	defer cancel()
	var errs []error
	fail := func(step LifecycleStepName, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", step, err))
	}
	if _, err := t.runCleanups(tctx, "arc agent "+name, "engine "+name); err != nil {
		fail(StepAgentStopped, err)
	}
	rep.step(StepAgentStopped, time.Now(), t.spec.ReconcilerFor(name).String()+" and Arc agent")
	if err := t.disconnect(tctx, name); err != nil {
		fail(StepDisconnected, err)
	}
	rep.step(StepDisconnected, time.Now(), rc.arcID)
	if _, err := t.runCleanups(tctx, "cluster "+name); err != nil {
		fail(StepControlPlaneDown, err)
	}
	if err := t.removeEngineState(name); err != nil {
		fail(StepControlPlaneDown, err)
	}
	rep.step(StepControlPlaneDown, time.Now(), fmt.Sprintf("%d process(es) stopped, state removed", len(rc.info.Processes)))
	if ch, err := t.bridge.ReleaseVMs(tctx, next); err != nil {
		fail(StepReleased, err)
	} else {
		rep.Released = placements(ch.Released)
		rep.Capacity = ch.Result.Summary()
		rep.step(StepReleased, time.Now(), vmList(rep.Released))
	}
	if err := t.afterChange(); err != nil {
		fail(StepReleased, err)
	}
	rep.Took = time.Since(rep.Started)
	t.progress("remove cluster %s: done in %s", name, rep.Took.Round(10*time.Millisecond))
	if len(errs) > 0 {
		return rep, &OpError{Op: OpRemoveCluster, Cluster: name, Step: StepControlPlaneDown, Err: errors.Join(errs...)}
	}
	return rep, nil
}

// AddCluster onboards a new workload cluster: the hardware model places its VMs (or the operation is
// refused with the model's reason, starting nothing), its control plane and simulated kubelets start, its
// context is merged into the twin's kubeconfig, it is connected to Arc -- where policy assignments
// covering it deploy their configurations, as Azure Policy's DeployIfNotExists does for clusters created
// after the assignment -- and its GitOps engine and Arc agent start; the spec's fluxConfigurations that
// target it (by name, or "*") are created through ARM. A failure part-way stops what was started again.
func (t *Twin) AddCluster(ctx context.Context, wc hardware.WorkloadCluster) (*ClusterReport, error) {
	return t.addCluster(ctx, OpAddCluster, wc, addOptions{})
}

// RecreateCluster brings back a workload cluster of the spec's plan (after RemoveCluster), as the spec
// plans it, and it converges from Git again. It is AddCluster with the spec's definition.
func (t *Twin) RecreateCluster(ctx context.Context, name string) (*ClusterReport, error) {
	for _, wc := range t.spec.Plan.Spec.WorkloadClusters {
		if wc.Name == name {
			wc.NodePools = append([]hardware.NodePool(nil), wc.NodePools...)
			return t.addCluster(ctx, OpRecreateCluster, wc, addOptions{})
		}
	}
	return nil, fmt.Errorf("%s: %w: %q is not a workload cluster of the spec's plan (have: %s); AddCluster onboards a new one",
		describe(OpRecreateCluster, name, "", 0), ErrRefused, name, strings.Join(t.spec.ClusterNames(), ", "))
}

// addOptions are what AddClusterFile adds to an add: a check of the fragment against the running twin
// (under the operation lock, before anything starts), its own configurations, waiting for them to be
// Compliant, and a listener for the stages.
type addOptions struct {
	check         func(next *hardware.Plan, at int) error
	gitops        []GitOpsConfig
	waitCompliant bool
	onStep        func(LifecycleStep)
}

func (t *Twin) addCluster(ctx context.Context, op LifecycleOp, wc hardware.WorkloadCluster, opts addOptions) (*ClusterReport, error) {
	name := wc.Name
	rep := &ClusterReport{Op: op, Cluster: name, Started: time.Now(), onStep: opts.onStep}
	ctx, done, err := t.beginOp(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer done()
	if _, running := t.cluster(name); running && opts.check == nil {
		return nil, fmt.Errorf("%s: %w: cluster %q already runs; remove it first", describe(op, name, "", 0), ErrRefused, name)
	}
	before := t.Plan()
	next := before.Clone()
	at := t.insertAt(next.Spec.WorkloadClusters, name)
	wcs := append([]hardware.WorkloadCluster(nil), next.Spec.WorkloadClusters[:at]...)
	wcs = append(wcs, wc)
	next.Spec.WorkloadClusters = append(wcs, next.Spec.WorkloadClusters[at:]...)
	if opts.check != nil {
		if err := opts.check(next, at); err != nil {
			return nil, err
		}
	}
	ch, err := t.place(ctx, op, name, "", 0, next)
	if err != nil {
		return nil, err
	}
	rep.Placed = placements(ch.Placed)
	rep.step(StepPlaced, time.Now(), vmList(rep.Placed))
	t.progress("%s: %s", describe(op, name, "", 0), vmList(rep.Placed))
	vms := t.bridge.VMs()

	var rc *runningCluster
	fail := func(step LifecycleStepName, cause error) (*ClusterReport, error) {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.prof.StopTimeout)
		defer cancel()
		oe := &OpError{Op: op, Cluster: name, Step: step, Err: cause}
		oe.Undone, oe.UndoErr = t.dismantle(uctx, name, rc)
		t.unplace(uctx, before, oe)
		t.progress("%s failed at %q: %v; undone: %v", describe(op, name, "", 0), step, cause, oe.Undone)
		return nil, oe
	}
	cs, err := clusterSpec(t.spec, name, vms)
	if err != nil {
		return fail(StepPlaced, err)
	}
	began := time.Now()
	rc, err = t.startCluster(ctx, cs)
	if err != nil {
		return fail(StepNodesReady, err)
	}
	// The provider reports its phases: the API server is ready after etcd and its own start.
	st := rc.info.Start
	rep.step(StepControlPlaneUp, began.Add(st.Took(cluster.PhaseEtcd)+st.Took(cluster.PhaseAPIServer)), rc.info.Server)
	rep.step(StepNodesReady, began.Add(st.Total), fmt.Sprintf("%d VM-node(s)", len(rc.info.Nodes)))
	// Each stage first checks ctx: a cancelled add (Ctrl-C, Down) stops between stages, not only inside
	// the ones that make requests.
	if err := ctx.Err(); err != nil {
		return fail(StepConnected, err)
	}
	if err := t.connectCluster(ctx, name, rc, vms); err != nil {
		return fail(StepConnected, err)
	}
	rep.step(StepConnected, time.Now(), rc.arcID)
	if err := ctx.Err(); err != nil {
		return fail(StepEngineStarted, err)
	}
	if err := t.startEngine(ctx, name, rc); err != nil {
		return fail(StepEngineStarted, err)
	}
	rep.step(StepEngineStarted, time.Now(), string(t.spec.ReconcilerFor(name)))
	if err := ctx.Err(); err != nil {
		return fail(StepConfigured, err)
	}
	n, err := t.createGitOpsFor(ctx, name)
	if err != nil {
		return fail(StepConfigured, err)
	}
	own, err := t.createConfigurations(ctx, name, opts.gitops)
	if err != nil {
		return fail(StepConfigured, err)
	}
	for _, fc := range t.arcSrv.FluxConfigurations(rc.arcID) {
		rep.Configurations = append(rep.Configurations, fc.Name)
	}
	detail := fmt.Sprintf("%d from the spec", n)
	if len(opts.gitops) > 0 {
		detail += fmt.Sprintf(", %d from the cluster file", own)
	}
	rep.step(StepConfigured, time.Now(), fmt.Sprintf("%s; on the cluster: %s", detail, strings.Join(rep.Configurations, ", ")))
	if opts.waitCompliant && len(rep.Configurations) > 0 {
		if err := t.waitCompliant(ctx, rc.arcID); err != nil {
			return fail(StepCompliant, err)
		}
		rep.step(StepCompliant, time.Now(), strings.Join(rep.Configurations, ", "))
	}
	// The merged kubeconfig with the new context, written before the commit (the last step that can fail).
	names := planClusterNames(next)
	if err := t.writeKubeconfigFor(names, map[string]*runningCluster{name: rc}); err != nil {
		return fail(StepConfigured, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(StepConfigured, err)
	}
	// Commit: the cluster is part of the twin (its VMs are already in the hardware model).
	t.cmu.Lock()
	t.clusters[name] = rc
	t.plan = next
	t.cmu.Unlock()
	if err := t.afterChange(); err != nil {
		t.log.Warn("record the twin's state", "err", err)
	}
	rep.Capacity = ch.Result.Summary()
	rep.Took = time.Since(rep.Started)
	t.progress("%s: done in %s", describe(op, name, "", 0), rep.Took.Round(10*time.Millisecond))
	return rep, nil
}

// ScaleNodePool sets the VM count of a node pool, as `az aksarc nodepool scale --node-count` does. The
// hardware model decides first: if count VMs do not fit with the reserve and N-1 the estate is planned
// with, the error is a *CapacityError carrying the model's reason and nothing changes. Growing adds the
// VMs in the model and their Nodes (Ready) in the cluster; shrinking drains the highest-numbered VMs'
// nodes (cordon, evict, as `kubectl drain` does), removes them and releases the VMs.
func (t *Twin) ScaleNodePool(ctx context.Context, clusterName, pool string, count int) (*ClusterReport, error) {
	rep := &ClusterReport{Op: OpScalePool, Cluster: clusterName, Pool: pool, To: count, Started: time.Now()}
	what := describe(OpScalePool, clusterName, pool, count)
	ctx, done, err := t.beginOp(ctx, OpScalePool, clusterName)
	if err != nil {
		return nil, err
	}
	defer done()
	rc, err := t.runningOrRefuse(OpScalePool, clusterName)
	if err != nil {
		return nil, err
	}
	nodes, ok := t.provider.(cluster.NodePools)
	if !ok {
		return nil, fmt.Errorf("%s: %w: provider %s cannot add or remove nodes of a running cluster: %w", what, ErrRefused, t.provider.Name(), cluster.ErrUnsupported)
	}
	if count < 0 {
		return nil, fmt.Errorf("%s: %w: the count must be zero or more", what, ErrRefused)
	}
	before := t.Plan()
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
		return nil, fmt.Errorf("%s: %w: cluster %s has no node pool %q (have: %s)", what, ErrRefused, clusterName, pool, strings.Join(have, ", "))
	}
	rep.From = np.Count
	if np.Count == count {
		rep.Took = time.Since(rep.Started)
		return rep, nil
	}
	np.Count = count
	undoCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), t.prof.StopTimeout)
	}
	var result *hardware.Result
	if count > rep.From {
		ch, err := t.place(ctx, OpScalePool, clusterName, pool, count, next)
		if err != nil {
			return nil, err
		}
		t.progress("%s (from %d)", what, rep.From)
		result = ch.Result
		rep.Placed = placements(ch.Placed)
		rep.step(StepPlaced, time.Now(), vmList(rep.Placed))
		var added []string
		for _, vm := range ch.Placed {
			if err := nodes.AddNode(ctx, clusterName, nodeSpecOf(vm)); err != nil {
				uctx, cancel := undoCtx()
				defer cancel()
				oe := &OpError{Op: OpScalePool, Cluster: clusterName, Step: StepNodesAdded, Err: err}
				for i := len(added) - 1; i >= 0; i-- {
					if rerr := nodes.RemoveNode(uctx, clusterName, added[i]); rerr != nil {
						oe.UndoErr = errors.Join(oe.UndoErr, rerr)
					} else {
						oe.Undone = append(oe.Undone, "node "+added[i])
					}
				}
				t.unplace(uctx, before, oe)
				return nil, oe
			}
			added = append(added, vm.Name)
		}
		rep.step(StepNodesAdded, time.Now(), strings.Join(added, ", "))
	} else {
		if err := t.bridge.Settled(); err != nil {
			return nil, fmt.Errorf("%s: %w: the estate is not at rest: %v", what, ErrRefused, err)
		}
		// The VMs go last, after their nodes: the model says which first, changing nothing.
		released, err := t.bridge.Releasing(next)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", what, ErrRefused, err)
		}
		t.progress("%s (from %d)", what, rep.From)
		var drained []string
		undrain := func(cause error, step LifecycleStepName) (*ClusterReport, error) {
			uctx, cancel := undoCtx()
			defer cancel()
			oe := &OpError{Op: OpScalePool, Cluster: clusterName, Step: step, Err: cause}
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
			dctx, cancel := context.WithTimeout(ctx, t.prof.DrainTimeout)
			err := hostops.DrainNode(dctx, rc.client, rc.info.NodeName(vm.Name), t.prof.DrainPoll)
			cancel()
			if err != nil {
				return undrain(err, StepNodesDrained)
			}
		}
		rep.step(StepNodesDrained, time.Now(), strings.Join(drained, ", "))
		for i, vm := range released {
			if err := nodes.RemoveNode(ctx, clusterName, vm.Name); err != nil {
				// Put back what was already removed: the pool is as it was, its nodes empty and schedulable.
				uctx, cancel := undoCtx()
				defer cancel()
				oe := &OpError{Op: OpScalePool, Cluster: clusterName, Step: StepNodesRemoved, Err: err}
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
		rep.step(StepNodesRemoved, time.Now(), strings.Join(drained, ", "))
		ch, err := t.bridge.ReleaseVMs(ctx, next)
		if err != nil {
			// Cannot happen while the operation lock is held (nothing else changes the model); if it does,
			// the nodes are gone and the model still has their VMs: say so.
			return nil, &OpError{Op: OpScalePool, Cluster: clusterName, Step: StepReleased, Err: err}
		}
		result = ch.Result
		rep.Released = placements(ch.Released)
		rep.step(StepReleased, time.Now(), vmList(rep.Released))
	}
	t.cmu.Lock()
	t.plan = next
	t.cmu.Unlock()
	nodesN, cores := workerTotals(t.bridge.VMs(), clusterName)
	if err := t.arcSrv.SetConnectivity(rc.arcID, "Connected", rc.info.KubernetesVersion, nodesN, cores); err != nil {
		t.log.Warn("report the cluster's size to Arc", "cluster", clusterName, "err", err)
	}
	if err := t.afterChange(); err != nil {
		t.log.Warn("record the twin's state", "err", err)
	}
	rep.Capacity = result.Summary()
	rep.Took = time.Since(rep.Started)
	t.progress("%s: done in %s", what, rep.Took.Round(10*time.Millisecond))
	return rep, nil
}

// beginOp takes the operation lock and returns a context that also ends when Down starts.
func (t *Twin) beginOp(ctx context.Context, op LifecycleOp, name string) (context.Context, func(), error) {
	t.opMu.Lock()
	t.mu.Lock()
	down := t.down
	t.mu.Unlock()
	if down {
		t.opMu.Unlock()
		return nil, nil, fmt.Errorf("%s: %w: the twin is going down", describe(op, name, "", 0), ErrRefused)
	}
	octx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.opsCtx, cancel)
	return octx, func() { stop(); cancel(); t.opMu.Unlock() }, nil
}

func (t *Twin) runningOrRefuse(op LifecycleOp, name string) (*runningCluster, error) {
	rc, ok := t.cluster(name)
	if !ok {
		return nil, fmt.Errorf("%s: %w: cluster %q is not running (have: %s): %w", describe(op, name, "", 0), ErrRefused, name,
			strings.Join(t.clusterNames(), ", "), cluster.ErrNotFound)
	}
	return rc, nil
}

// insertAt is where a cluster goes in the plan: a cluster of the spec at its place in the spec's order
// (so recreating it restores the original placement), any other after all the clusters.
func (t *Twin) insertAt(cur []hardware.WorkloadCluster, name string) int {
	specIndex := map[string]int{}
	for i, wc := range t.spec.Plan.Spec.WorkloadClusters {
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
// ErrRefused; either way nothing changed.
func (t *Twin) place(ctx context.Context, op LifecycleOp, clusterName, pool string, count int, next *hardware.Plan) (*hardware.Change, error) {
	what := describe(op, clusterName, pool, count)
	if err := t.bridge.Settled(); err != nil {
		return nil, fmt.Errorf("%s: %w: the estate is not at rest: %v", what, ErrRefused, err)
	}
	ch, err := t.bridge.PlaceVMs(ctx, next, hardware.PlaceOptions{AllowUnfit: t.spec.Spec.Hardware.AllowUnfit})
	var ue *hardware.UnfitError
	switch {
	case errors.As(err, &ue):
		return nil, &CapacityError{Op: op, Cluster: clusterName, Pool: pool, Count: count, Reasons: ue.Reasons(), err: ue}
	case err != nil:
		return nil, fmt.Errorf("%s: %w: %w", what, ErrRefused, err)
	}
	return ch, nil
}

// unplace undoes place for an operation that failed part-way: the VMs it placed are released, so the
// model runs before again (nothing else moved, so it is exactly as it was).
func (t *Twin) unplace(ctx context.Context, before *hardware.Plan, oe *OpError) {
	ch, err := t.bridge.ReleaseVMs(ctx, before)
	if err != nil {
		oe.UndoErr = errors.Join(oe.UndoErr, fmt.Errorf("release the VMs placed for it: %w", err))
		return
	}
	oe.Undone = append(oe.Undone, "VMs released: "+vmList(placements(ch.Released)))
}

// dismantle stops whatever of a cluster runs -- Arc agent, GitOps engine, its connectedCluster, its
// control plane -- and removes its engine state. It undoes a failed add and does most of a removal.
func (t *Twin) dismantle(ctx context.Context, name string, rc *runningCluster) ([]string, error) {
	var errs []error
	stopped, err := t.runCleanups(ctx, "arc agent "+name, "engine "+name)
	if err != nil {
		errs = append(errs, err)
	}
	if rc != nil && rc.arcID != "" {
		if err := t.disconnect(ctx, name); err != nil {
			errs = append(errs, err)
		} else {
			stopped = append(stopped, "connectedCluster "+name)
		}
	}
	more, err := t.runCleanups(ctx, "cluster "+name)
	stopped = append(stopped, more...)
	if err != nil {
		errs = append(errs, err)
	}
	if err := t.removeEngineState(name); err != nil {
		errs = append(errs, err)
	}
	return stopped, errors.Join(errs...)
}

// runCleanups takes the named cleanups out of the teardown list and runs them now, newest first.
func (t *Twin) runCleanups(ctx context.Context, names ...string) ([]string, error) {
	t.mu.Lock()
	var take, keep []cleanup
	for _, c := range t.cleanups {
		if slices.Contains(names, c.name) {
			take = append(take, c)
		} else {
			keep = append(keep, c)
		}
	}
	t.cleanups = keep
	t.mu.Unlock()
	var stopped []string
	var errs []error
	for i := len(take) - 1; i >= 0; i-- {
		if err := take[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", take[i].name, err))
		}
		stopped = append(stopped, take[i].name)
	}
	return stopped, errors.Join(errs...)
}

// disconnect deletes the cluster's connectedCluster through ARM and waits for the deletion.
func (t *Twin) disconnect(ctx context.Context, name string) error {
	az := t.spec.Spec.Azure
	c, err := armhybridkubernetes.NewConnectedClusterClient(az.SubscriptionID, arcsdk.Credential{}, arcsdk.ClientOptions(t.arcEP))
	if err != nil {
		return err
	}
	p, err := c.BeginDelete(ctx, az.ResourceGroup, name, nil)
	if err != nil {
		return fmt.Errorf("delete connected cluster %s: %w", name, err)
	}
	if _, err := arcsdk.Poll(ctx, p, t.prof.ARMPoll); err != nil {
		return fmt.Errorf("wait for connected cluster %s to be deleted: %w", name, err)
	}
	return nil
}

// removeEngineState removes a cluster's engine directory, so a cluster of the same name later starts clean.
func (t *Twin) removeEngineState(name string) error { return os.RemoveAll(t.engineDir(name)) }

// afterChange rewrites the merged kubeconfig and twin.json for the clusters the twin runs now.
func (t *Twin) afterChange() error {
	return errors.Join(t.writeKubeconfig(), t.writeInfo())
}

// writeKubeconfigFor writes the merged kubeconfig for names, taking clusters not yet in the twin from extra.
func (t *Twin) writeKubeconfigFor(names []string, extra map[string]*runningCluster) error {
	paths := map[string]string{}
	t.cmu.RLock()
	for _, n := range names {
		if rc, ok := extra[n]; ok {
			paths[n] = rc.info.Kubeconfig
		} else if rc, ok := t.clusters[n]; ok {
			paths[n] = rc.info.Kubeconfig
		}
	}
	t.cmu.RUnlock()
	merged, err := mergeKubeconfigs(names, func(n string) string { return paths[n] })
	if err != nil {
		return err
	}
	return writeKubeconfigFile(merged, filepath.Join(t.stateDir, KubeconfigFile))
}

func planClusterNames(p *hardware.Plan) []string {
	out := make([]string, 0, len(p.Spec.WorkloadClusters))
	for _, wc := range p.Spec.WorkloadClusters {
		out = append(out, wc.Name)
	}
	return out
}

func placements(vms []hardware.VMStatus) []VMPlacement {
	out := make([]VMPlacement, 0, len(vms))
	for _, vm := range vms {
		p := VMPlacement{VM: vm.Name, Cluster: vm.Cluster, Pool: vm.Pool, Role: vm.Role, Host: vm.Host}
		if vm.IP.IsValid() {
			p.IP = vm.IP.String()
		}
		out = append(out, p)
	}
	return out
}

func vmList(ps []VMPlacement) string {
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
// (an *OpError).
func (t *Twin) AddClusterFile(ctx context.Context, f *ClusterFragment, onStep func(LifecycleStep)) (*ClusterReport, error) {
	if f == nil || f.Name == "" {
		return nil, fmt.Errorf("add cluster: %w: no cluster file; use ParseClusterFragment", ErrRefused)
	}
	return t.addCluster(ctx, OpAddCluster, f.WorkloadCluster(), addOptions{
		check:         func(next *hardware.Plan, at int) error { return t.checkFragment(f, next, at) },
		gitops:        f.GitOps,
		waitCompliant: true,
		onStep:        onStep,
	})
}

// createConfigurations creates a cluster file's own fluxConfigurations on the cluster through ARM, each
// as Up creates the spec's (putConfiguration): a Git source through the generated client, an OCI source at
// api-version 2025-04-01.
func (t *Twin) createConfigurations(ctx context.Context, clusterName string, gs []GitOpsConfig) (int, error) {
	n := 0
	for _, g := range gs {
		if err := t.putConfiguration(ctx, clusterName, g); err != nil {
			return n, fmt.Errorf("create fluxConfiguration %s on %s: %w", g.Name, clusterName, err)
		}
		n++
	}
	return n, nil
}

// waitCompliant waits until every fluxConfiguration on the cluster reports Compliant (the Arc agent
// reports its reconciler's state), polling as ARM clients poll; ctx bounds it. The error names each
// configuration's last state.
func (t *Twin) waitCompliant(ctx context.Context, arcID string) error {
	tick := time.NewTicker(t.prof.ARMPoll)
	defer tick.Stop()
	for {
		var waiting []string
		for _, fc := range t.arcSrv.FluxConfigurations(arcID) {
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
func (t *Twin) checkFragment(f *ClusterFragment, next *hardware.Plan, at int) error {
	running := t.clusterNames()
	version := ""
	for _, n := range running {
		if rc, ok := t.cluster(n); ok && rc.info.KubernetesVersion != "" {
			version = rc.info.KubernetesVersion
			break
		}
	}
	return t.spec.CheckFragment(f, running, version, next, at)
}
