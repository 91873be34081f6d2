package failover

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// Twin is what the driver needs of a running twin; *twin.Twin has it.
type Twin interface {
	Status(ctx context.Context) (*twin.Status, error)
	FailHost(ctx context.Context, host string) ([]twin.BridgeRecord, error)
	DrainHost(ctx context.Context, host string) ([]twin.BridgeRecord, error)
	RepairHost(ctx context.Context, host string) ([]twin.BridgeRecord, error)
}

var _ Twin = (*twin.Twin)(nil)

// ErrPhase is wrapped when a phase did not finish within its bound, or the twin did something a fault of
// this kind must not cause (a stranded VM, a pod replaced during a live migration).
var ErrPhase = errors.New("failover phase failed")

// Driver measures host faults on a running twin.
type Driver struct {
	tw     Twin
	kube   map[string]kubernetes.Interface
	bounds Bounds
	now    func() time.Time
}

// New drives tw; kube holds a client per workload cluster (by name), bounds come from BoundsFor.
func New(tw Twin, kube map[string]kubernetes.Interface, bounds Bounds) *Driver {
	return &Driver{tw: tw, kube: kube, bounds: bounds, now: time.Now}
}

// CrashSample is one host crash, each phase measured from the FailHost call.
type CrashSample struct {
	Host    string   `json:"host"`
	Workers []string `json:"workers"` // cluster/node of the worker VMs the host ran
	// NotReady: every one of those nodes is NotReady (Ready is False or Unknown).
	NotReady time.Duration `json:"notReady"`
	// NodesReady: every one of them is Ready again, labelled with another host.
	NodesReady time.Duration `json:"nodesReady"`
	// AppsHealthy: every Deployment of every cluster has its replicas ready and no pod is unscheduled or
	// on a NotReady node.
	AppsHealthy time.Duration `json:"appsHealthy"`
	// Compliant: every GitOps configuration is Compliant again, as ARM reports it.
	Compliant time.Duration `json:"compliant"`
	// ModelRestart is the hardware model's failover: from the crash to the last VM restart event.
	ModelRestart time.Duration `json:"modelRestart"`
	// Restarts are the model's VM restarts, "vm -> host".
	Restarts []string `json:"restarts"`
}

// DrainSample is one planned drain, measured from the DrainHost call.
type DrainSample struct {
	Host string   `json:"host"`
	VMs  []string `json:"vms"` // the VMs the model live-migrated
	// Drained: the host is in maintenance with no VM left, as the twin's status reports it.
	Drained time.Duration `json:"drained"`
	// ModelDrain is the hardware model's drain: from HostDraining to HostDrained (its live-migration
	// figures: bandwidth, two at a time, blackout).
	ModelDrain time.Duration `json:"modelDrain"`
	// Pods is how many pods kept their identity through the drain.
	Pods int `json:"pods"`
}

// WaitCompliant waits until every GitOps configuration is Compliant (bounded by Bounds.Compliant).
func (d *Driver) WaitCompliant(ctx context.Context) error {
	return d.wait(ctx, "every configuration Compliant", d.bounds.Compliant, d.compliance)
}

// Crash crashes the Up host that runs the most worker VMs, measures each phase, then repairs the host
// and waits until it is Up and the apps are healthy and Compliant again, so the next sample starts from
// a healthy twin.
func (d *Driver) Crash(ctx context.Context) (CrashSample, error) {
	st, err := d.tw.Status(ctx)
	if err != nil {
		return CrashSample{}, err
	}
	host, workers := busiestHost(st)
	if host == "" {
		return CrashSample{}, fmt.Errorf("crash: %w: no Up host runs a worker VM", ErrPhase)
	}
	s := CrashSample{Host: host, Workers: workerNames(workers)}
	start := d.now()
	if _, err := d.tw.FailHost(ctx, host); err != nil {
		return s, err
	}
	since := func() time.Duration { return d.now().Sub(start) }
	err = d.wait(ctx, "nodes of "+host+" NotReady", d.bounds.NotReady, func(ctx context.Context) error {
		return d.nodesAre(ctx, workers, func(n *corev1.Node) bool { return nodeReady(n) != corev1.ConditionTrue }, "NotReady")
	})
	if err == nil {
		s.NotReady = since()
		err = d.wait(ctx, "nodes Ready off "+host, d.bounds.NodesBack, func(ctx context.Context) error {
			if err := d.stranded(ctx, start); err != nil {
				return err
			}
			return d.nodesAre(ctx, workers, func(n *corev1.Node) bool {
				return nodeReady(n) == corev1.ConditionTrue && n.Labels[cluster.LabelHCIHost] != host
			}, "Ready on another host")
		})
	}
	if err == nil {
		s.NodesReady = since()
		err = d.wait(ctx, "apps healthy", d.bounds.Healthy, d.appsHealthy)
	}
	if err == nil {
		s.AppsHealthy = since()
		err = d.wait(ctx, "every configuration Compliant", d.bounds.Compliant, d.compliance)
	}
	if err == nil {
		s.Compliant = since()
		s.ModelRestart, s.Restarts, err = d.restarts(ctx, start)
	}
	// Repair in any case (a failed sample must not leave the host down for the next one), unless the run
	// was interrupted: then the twin goes down anyway.
	if ctx.Err() == nil {
		if rerr := d.repair(ctx, host); rerr != nil {
			return s, errors.Join(err, rerr)
		}
	}
	return s, err
}

// Drain drains the Up host that runs the most worker VMs by live migration, measures until it is in
// maintenance and empty, checks that no worker node left Ready and no pod was replaced, then repairs it.
func (d *Driver) Drain(ctx context.Context) (DrainSample, error) {
	st, err := d.tw.Status(ctx)
	if err != nil {
		return DrainSample{}, err
	}
	host, workers := busiestHost(st)
	if host == "" {
		return DrainSample{}, fmt.Errorf("drain: %w: no Up host runs a worker VM", ErrPhase)
	}
	s := DrainSample{Host: host}
	before, err := d.podUIDs(ctx)
	if err != nil {
		return s, err
	}
	start := d.now()
	if _, err := d.tw.DrainHost(ctx, host); err != nil {
		return s, err
	}
	var disruptions []string
	err = d.wait(ctx, host+" drained", d.bounds.Drain, func(ctx context.Context) error {
		if err := d.nodesAre(ctx, workers, func(n *corev1.Node) bool { return nodeReady(n) == corev1.ConditionTrue }, "Ready"); err != nil {
			disruptions = append(disruptions, fmt.Sprintf("%.1fs: %v", d.now().Sub(start).Seconds(), err))
		}
		st, err := d.tw.Status(ctx)
		if err != nil {
			return err
		}
		for _, h := range st.Hosts {
			if h.Name == host && (h.State != string(hardware.HostMaintenance) || len(h.VMs) > 0) {
				return fmt.Errorf("host %s is %s with VMs %v", host, h.State, h.VMs)
			}
		}
		return nil
	})
	if err == nil {
		s.Drained = d.now().Sub(start)
		if len(disruptions) > 0 {
			err = fmt.Errorf("drain %s: %w: worker nodes left Ready during a live migration: %s", host, ErrPhase, strings.Join(disruptions, "; "))
		}
	}
	if err == nil {
		err = d.wait(ctx, "nodes relabelled off "+host, d.bounds.NodesBack, func(ctx context.Context) error {
			return d.nodesAre(ctx, workers, func(n *corev1.Node) bool { return n.Labels[cluster.LabelHCIHost] != host }, "relabelled off "+host)
		})
	}
	if err == nil {
		var after map[string]string
		if after, err = d.podUIDs(ctx); err == nil {
			if diff := podChanges(before, after); len(diff) > 0 {
				err = fmt.Errorf("drain %s: %w: pods were replaced during a live migration: %s", host, ErrPhase, strings.Join(diff, ", "))
			}
			s.Pods = len(before)
		}
	}
	if err == nil {
		s.ModelDrain, s.VMs, err = d.migrations(ctx, host, start)
	}
	if ctx.Err() == nil {
		if rerr := d.repair(ctx, host); rerr != nil {
			return s, errors.Join(err, rerr)
		}
	}
	return s, err
}

// wait polls check every Bounds.Poll until it succeeds, the bound passes (an error naming what was
// awaited and the last failure) or ctx ends.
func (d *Driver) wait(parent context.Context, what string, bound time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, bound)
	defer cancel()
	tick := time.NewTicker(d.bounds.Poll)
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
			return fmt.Errorf("%w: %s: not within %s (%s): %v", ErrPhase, what, bound, d.bounds.Version, err)
		case <-tick.C:
		}
	}
}

// repair brings a host back and waits until it is Up and the apps are healthy and Compliant.
func (d *Driver) repair(ctx context.Context, host string) error {
	if _, err := d.tw.RepairHost(ctx, host); err != nil {
		return fmt.Errorf("repair host %s: %w", host, err)
	}
	if err := d.wait(ctx, host+" Up", d.bounds.NodesBack, func(ctx context.Context) error {
		st, err := d.tw.Status(ctx)
		if err != nil {
			return err
		}
		for _, h := range st.Hosts {
			if h.Name == host && h.State != string(hardware.HostUp) {
				return fmt.Errorf("host %s is %s", host, h.State)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := d.wait(ctx, "apps healthy after repairing "+host, d.bounds.Healthy, d.appsHealthy); err != nil {
		return err
	}
	return d.wait(ctx, "every configuration Compliant after repairing "+host, d.bounds.Compliant, d.compliance)
}

// busiestHost is the Up host running the most worker VMs, and those VMs; ties go to the first host in
// the status order (the inventory's).
func busiestHost(st *twin.Status) (string, []twin.VMState) {
	byName := map[string]twin.VMState{}
	for _, v := range st.VMs {
		byName[v.Name] = v
	}
	best, workers := "", []twin.VMState(nil)
	for _, h := range st.Hosts {
		if h.State != string(hardware.HostUp) {
			continue
		}
		var ws []twin.VMState
		for _, v := range h.VMs {
			if byName[v].Role == string(hardware.RoleWorker) {
				ws = append(ws, byName[v])
			}
		}
		if len(ws) > len(workers) {
			best, workers = h.Name, ws
		}
	}
	return best, workers
}

func workerNames(ws []twin.VMState) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Cluster+"/"+w.Name)
	}
	return out
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// nodesAre fails naming every worker's node for which ok is false.
func (d *Driver) nodesAre(ctx context.Context, workers []twin.VMState, ok func(*corev1.Node) bool, want string) error {
	var bad []string
	for _, w := range workers {
		k, found := d.kube[w.Cluster]
		if !found {
			return fmt.Errorf("%w: no client for cluster %s", ErrPhase, w.Cluster)
		}
		n, err := k.CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !ok(n) {
			bad = append(bad, fmt.Sprintf("%s/%s (Ready=%s on host %s)", w.Cluster, w.Name, nodeReady(n), n.Labels[cluster.LabelHCIHost]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("nodes not %s: %s", want, strings.Join(bad, ", "))
	}
	return nil
}

// appsHealthy fails unless every Deployment of every cluster has all its replicas ready for its current
// generation and every live pod is scheduled on a Ready node; it names what is missing.
func (d *Driver) appsHealthy(ctx context.Context) error {
	var bad []string
	for _, c := range sortedClusters(d.kube) {
		k := d.kube[c]
		nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := map[string]bool{}
		for i := range nodes.Items {
			ready[nodes.Items[i].Name] = nodeReady(&nodes.Items[i]) == corev1.ConditionTrue
		}
		deps, err := k.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, dep := range deps.Items {
			want := int32(1)
			if dep.Spec.Replicas != nil {
				want = *dep.Spec.Replicas
			}
			if dep.Status.ReadyReplicas < want || dep.Status.ObservedGeneration < dep.Generation {
				bad = append(bad, fmt.Sprintf("%s: Deployment %s/%s %d/%d ready", c, dep.Namespace, dep.Name, dep.Status.ReadyReplicas, want))
			}
		}
		pods, err := k.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			if p.Spec.NodeName == "" {
				bad = append(bad, fmt.Sprintf("%s: pod %s/%s Pending (unscheduled)", c, p.Namespace, p.Name))
			} else if !ready[p.Spec.NodeName] {
				bad = append(bad, fmt.Sprintf("%s: pod %s/%s on NotReady node %s", c, p.Namespace, p.Name, p.Spec.NodeName))
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return errors.New("apps not healthy: " + strings.Join(bad, "; "))
	}
	return nil
}

// compliance fails unless every GitOps configuration is Compliant, naming those that are not.
func (d *Driver) compliance(ctx context.Context) error {
	st, err := d.tw.Status(ctx)
	if err != nil {
		return err
	}
	if len(st.GitOps) == 0 {
		return errors.New("no GitOps configuration reported yet")
	}
	var bad []string
	for _, g := range st.GitOps {
		if g.ComplianceState != "Compliant" {
			bad = append(bad, fmt.Sprintf("%s/%s is %s: %s", g.Cluster, g.Name, g.ComplianceState, g.Message))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not every configuration is Compliant: %s", strings.Join(bad, "; "))
	}
	return nil
}

// stranded fails the sample when the model could not restart a VM since start: its node would never
// come back, which is a capacity finding (the scenario suite's N-1 spec), not a failover time.
func (d *Driver) stranded(ctx context.Context, start time.Time) error {
	st, err := d.tw.Status(ctx)
	if err != nil {
		return err
	}
	for _, r := range st.Events {
		if !r.At.Before(start) && r.Event.Type == hardware.VMStranded {
			return fmt.Errorf("%w: VM %s stranded: %s; the estate does not survive this host's loss", ErrPhase, r.Event.VM, r.Event.Reason)
		}
	}
	return nil
}

// restarts reads the model's VM restarts since start: the last one's delay after the crash, and each
// VM's new host.
func (d *Driver) restarts(ctx context.Context, start time.Time) (time.Duration, []string, error) {
	st, err := d.tw.Status(ctx)
	if err != nil {
		return 0, nil, err
	}
	var down time.Time
	var last time.Duration
	var moves []string
	for _, r := range st.Events {
		if r.At.Before(start) {
			continue
		}
		switch r.Event.Type {
		case hardware.HostDown:
			down = r.Event.At
		case hardware.VMRestarted:
			moves = append(moves, r.Event.VM+" -> "+r.Event.Host)
			if !down.IsZero() && r.Event.At.Sub(down) > last {
				last = r.Event.At.Sub(down)
			}
		}
	}
	if len(moves) == 0 {
		return 0, nil, fmt.Errorf("%w: the bridge recorded no VM restart after the crash", ErrPhase)
	}
	return last, moves, nil
}

// migrations reads the model's drain of host since start: HostDraining to HostDrained, and the VMs moved.
func (d *Driver) migrations(ctx context.Context, host string, start time.Time) (time.Duration, []string, error) {
	st, err := d.tw.Status(ctx)
	if err != nil {
		return 0, nil, err
	}
	var from, to time.Time
	var vms []string
	for _, r := range st.Events {
		if r.At.Before(start) {
			continue
		}
		switch {
		case r.Event.Type == hardware.HostDraining && r.Event.Host == host:
			from = r.Event.At
		case r.Event.Type == hardware.HostDrained && r.Event.Host == host:
			to = r.Event.At
		case r.Event.Type == hardware.VMMigrated:
			vms = append(vms, r.Event.VM)
		}
	}
	if from.IsZero() || to.IsZero() || len(vms) == 0 {
		return 0, vms, fmt.Errorf("%w: the bridge recorded no complete drain of %s (draining %v, drained %v, migrated %v)", ErrPhase, host, !from.IsZero(), !to.IsZero(), vms)
	}
	return to.Sub(from), vms, nil
}

// podUIDs maps every live pod of every cluster to its UID.
func (d *Driver) podUIDs(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range sortedClusters(d.kube) {
		pods, err := d.kube[c].CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				out[c+"/"+p.Namespace+"/"+p.Name] = string(p.UID)
			}
		}
	}
	return out, nil
}

// podChanges names the pods that disappeared, appeared or changed UID.
func podChanges(before, after map[string]string) []string {
	var out []string
	for k, uid := range before {
		switch a, ok := after[k]; {
		case !ok:
			out = append(out, k+" gone")
		case a != uid:
			out = append(out, k+" replaced")
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k+" new")
		}
	}
	sort.Strings(out)
	return out
}

func sortedClusters(m map[string]kubernetes.Interface) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
