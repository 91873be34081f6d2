package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
)

// appNamespaces are the namespaces whose workloads "the apps" are: the cluster-wide layer's ingress
// controller and the applications (examples/repos: dir-per-env).
var appNamespaces = []string{"ingress-system", "apps"}

// failoverSpecs: HCI host faults under the twin. The crash and the drain are measured by package
// twin/faultphases, the same code the failover benchmark (bench/failover) runs; the specs add the timeline,
// the report's figures and notes. The other two drive their faults themselves, with the same checks.
func failoverSpecs() {
	Describe("failover", Label("failover"), func() {
		It("restarts a crashed host's VMs elsewhere with the reserve met: nodes return, pods run, apps healthy again", func(ctx SpecContext) {
			f := newFaultSpec(ctx, Experiment("failover: host crash"), map[string]string{
				faultphases.PhaseNodesNotReady: "host down to nodes NotReady",
				faultphases.PhaseNodesReady:    "host down to nodes Ready elsewhere",
				faultphases.PhaseHealthy:       "time to healthy",
			})
			s, err := f.runner.Crash(ctx, f.host, f.workers)
			Expect(err).NotTo(HaveOccurred(), "crash of host %s", f.host)

			// The hardware side, from the bridge's records: which VM went where.
			for _, r := range f.recorded(ctx, s.Start, hardware.VMRestarted) {
				f.tl.Add(r.At, "vm restarted", r.Event.VM+" on "+r.Event.Host)
			}
			Note("Host %s crashed with %d worker VM(s); failover clustering restarted %s; apps healthy and every configuration Compliant after %s.",
				f.host, len(f.workers), strings.Join(s.Restarts, ", "), s.Compliant.Round(100*time.Millisecond))
		})

		It("drains a host for planned maintenance by live migration without disrupting a pod", func(ctx SpecContext) {
			f := newFaultSpec(ctx, Experiment("failover: planned drain"), map[string]string{
				faultphases.PhaseDrainFinished: "drain to maintenance",
			})
			// Drain fails if a worker node leaves Ready on any poll or a pod of the apps is replaced.
			s, err := f.runner.Drain(ctx, f.host, f.workers)
			Expect(err).NotTo(HaveOccurred(), "drain of host %s", f.host)
			for _, r := range f.recorded(ctx, s.Start, hardware.VMMigrated) {
				f.tl.Add(r.At, "vm migrated", fmt.Sprintf("%s %s->%s (blackout %s)", r.Event.VM, r.Event.From, r.Event.To, r.Event.Blackout))
			}
			Note("Host %s drained: %d VM(s) live-migrated (%s); %d pods kept their identity, worker nodes stayed Ready.",
				f.host, len(s.VMs), strings.Join(s.VMs, ", "), s.Pods)
		})

		It("loses two hosts of the default estate at once: records what restarts, what is stranded and compliance, then repairs both", twoHostsLost)

		It("strands the VMs an estate that fails N-1 has no room for: their nodes stay NotReady, their pods go Pending, the report says which and why", failingEstate)
	})
}

// faultSpec is a crash or drain spec on the shared twin: the Up host running the most worker VMs and a
// runner for the apps whose phases go on the spec's timeline and, under the names timings gives them, into
// its experiment. The timeline starts when the fault takes effect, which also arranges the host's repair
// (hosts Up, apps healthy, every configuration Compliant) for the next spec.
type faultSpec struct {
	host    string
	workers []twin.VMState
	runner  *faultphases.Runner
	tl      *Timeline
}

func newFaultSpec(ctx context.Context, exp *gmeasure.Experiment, timings map[string]string) *faultSpec {
	st, err := env.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	f := &faultSpec{runner: env.faultRunner(appNamespaces)}
	f.host, f.workers = faultphases.BusiestHost(st)
	Expect(f.workers).NotTo(BeEmpty(), "no Up host runs a worker VM; hosts: %v", hostStates(st))
	f.runner.Observe = func(p faultphases.Phase) {
		if p.Name == faultphases.PhaseHostDown || p.Name == faultphases.PhaseDrainStarted {
			f.tl = NewTimeline(p.At)
			DeferCleanup(func(ctx context.Context) { env.repairAndWait(ctx, appNamespaces, f.host) })
		}
		if name, ok := timings[p.Name]; ok {
			recordTiming(exp, name, p.Since)
		}
		f.tl.Add(p.At, p.Name, p.Detail)
	}
	return f
}

// recorded are the bridge's records of events of type t applied since start.
func (f *faultSpec) recorded(ctx context.Context, start time.Time, t hardware.EventType) []twin.BridgeRecord {
	st, err := env.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	var out []twin.BridgeRecord
	for _, r := range faultphases.RecordsSince(st, start) {
		if r.Event.Type == t {
			out = append(out, r)
		}
	}
	return out
}

// faultRunner measures host faults on e's twin with package twin/faultphases (as bench/failover does), the apps
// being the namespaces' workloads, within e's Waits; it waits with Gomega (eventually).
func (e *Env) faultRunner(namespaces []string) *faultphases.Runner {
	return &faultphases.Runner{
		Twin:  e.Twin,
		Probe: e.probe(namespaces),
		Bounds: faultphases.Bounds{Poll: e.Waits.Poll, NotReady: e.Waits.NodeNotReady, NodesBack: e.Waits.NodeBack,
			Healthy: e.Waits.Healthy, Compliant: e.Waits.Converge, Drain: e.Waits.Migration},
		Wait: e.eventually,
	}
}

// probe reads e's clusters, the apps being the namespaces' workloads.
func (e *Env) probe(namespaces []string) faultphases.Probe {
	return faultphases.Probe{Kube: e.Kube, Namespaces: namespaces}
}

// eventually is a faultphases.Wait on Gomega: the spec fails naming what was awaited and the check's last
// error; a check error that wraps faultphases.ErrPhase (a stranded VM, a worker node that left Ready during a
// live migration) fails it at once.
func (e *Env) eventually(ctx context.Context, what string, bound time.Duration, check func(context.Context) error) error {
	ok := Eventually(func(ctx context.Context) error {
		err := check(ctx)
		if errors.Is(err, faultphases.ErrPhase) {
			return StopTrying(what).Wrap(err)
		}
		return err
	}).WithOffset(1).WithContext(ctx).WithTimeout(bound).WithPolling(e.Waits.Poll).Should(Succeed(), what)
	if !ok {
		return fmt.Errorf("%w: %s: not within %s (%s)", faultphases.ErrPhase, what, bound, e.Waits.Version)
	}
	return nil
}

// repairAndWait brings hosts back and waits until they are Up, the apps of the namespaces are healthy and
// every configuration is Compliant, for the next spec.
func (e *Env) repairAndWait(ctx context.Context, namespaces []string, hosts ...string) {
	Expect(e.faultRunner(namespaces).Repair(ctx, hosts...)).To(Succeed(), "repair hosts %v", hosts)
}

// twoHostsLost crashes the two Up hosts that run the most worker VMs at the same moment (a shared power
// feed or top-of-rack switch), records what failover clustering restarts on the survivors and what it
// strands, whether the apps come back and the configurations stay Compliant, and repairs both hosts.
//
// Whether anything may be stranded is decided before the crash from the hardware model's own figures
// (each host's capacity and what its VMs use now, in the twin's status): when the two hosts'
// VMs fit in the free room of the emptiest-looking survivor, every one of them must restart, whatever
// order failover clustering takes them in.
func twoHostsLost(ctx SpecContext) {
	exp := Experiment("failover: two hosts lost")
	st, err := env.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	victims := busiestHosts(st, 2)
	Expect(victims).To(HaveLen(2), "two hosts lost needs two Up hosts running worker VMs; hosts: %v", hostStates(st))
	down := vmsOn(st, victims...)
	workers := workersOf(down)
	room := survivorsRoom(st, victims)
	before, err := env.podsByNode(ctx, appNamespaces)
	Expect(err).NotTo(HaveOccurred())

	start := time.Now()
	tl := NewTimeline(start)
	for _, h := range victims {
		_, err := env.Twin.Host(ctx, twin.HostFail, h)
		Expect(err).NotTo(HaveOccurred(), "crash host %s", h)
	}
	DeferCleanup(func(ctx context.Context) { env.repairAndWait(ctx, appNamespaces, victims...) })
	tl.Add(start, "hosts down", fmt.Sprintf("%s (%d VMs, %d of them worker nodes)", strings.Join(victims, " and "), len(down), len(workers)))
	seen := newComplianceLog(env, appNamespaces)
	probe := env.probe(appNamespaces)

	out := env.waitCrashSettled(ctx, probe, victims, down, start, seen, tl, exp, "hosts down to nodes NotReady")
	for vm, h := range out.restarted {
		Expect(victims).NotTo(ContainElement(h), "VM %s was restarted on %s, which is down", vm, h)
	}
	if room.sure {
		Expect(out.stranded).To(BeEmpty(), "the survivors had room for every VM of %v (%s), yet the model stranded: %s",
			victims, room.why, out.strandedText())
	}
	recordTiming(exp, "hosts down to every VM restarted or stranded", out.settled.Sub(start))
	restartedWorkers, strandedWorkers := out.split(workers)
	env.waitRestartedReady(ctx, probe, victims, restartedWorkers, seen)
	tl.Add(time.Now(), "nodes Ready", fmt.Sprintf("%d restarted worker(s) on the surviving hosts", len(restartedWorkers)))
	recordTiming(exp, "hosts down to restarted nodes Ready", time.Since(start))

	var outcome string
	if len(strandedWorkers) == 0 {
		env.eventually(ctx, "apps healthy with the two hosts down", env.Waits.Healthy, seen.and(probe.AppsHealthy))
		tl.Add(time.Now(), "pods running", "every app replica Ready on a Ready node")
		env.eventually(ctx, "every configuration Compliant with the two hosts down", env.Waits.Converge, seen.and(env.Compliance))
		healthy := time.Since(start)
		tl.Add(time.Now(), "healthy", "every configuration Compliant")
		recordTiming(exp, "time to healthy", healthy)
		outcome = fmt.Sprintf("nothing was stranded (%s); apps healthy and every configuration Compliant after %s", room.why, healthy.Round(100*time.Millisecond))
	} else {
		// Only reached when the survivors might lack room (room.sure is false): the estate has changed.
		env.eventually(ctx, "stranded workers' nodes NotReady", env.Waits.NodeNotReady, func(ctx context.Context) error {
			return probe.NodesAre(ctx, strandedWorkers, faultphases.IsNotReady, "NotReady (stranded)")
		})
		evicted := env.waitEvicted(ctx, strandedWorkers, before, seen, tl)
		pending, err := env.pendingPods(ctx, appNamespaces)
		Expect(err).NotTo(HaveOccurred())
		outcome = fmt.Sprintf("stranded: %s; %d pod(s) evicted from their nodes (%s); Pending now: %s",
			out.strandedText(), len(evicted), strings.Join(evicted, ", "), pendingText(pending))
	}
	Note("Hosts %s crashed together, taking %d VMs down (workers: %s). Failover clustering restarted %s; %s. Pods seen Pending at any poll during the outage: %s. Configurations seen during the outage: %s. "+
		"The hardware model's failover places VMs by compute (vCPU, memory) only: whether the storage (volumes: %s) and the failover cluster's quorum survive two lost servers is not part of it.",
		strings.Join(victims, " and "), len(down), strings.Join(faultphases.WorkerNames(workers), ", "), out.restartedText(), outcome, seen.pendingText(), seen.text(),
		volumesText(env.Twin.Spec().Inventory))
}

// edgeN1Dir holds the failing estate's twin, plans and repository.
const edgeN1Dir = "testdata/edge-n1"

// edgeNamespaces are the namespaces of the edge twin's applications (testdata/edge-n1/repo).
var edgeNamespaces = []string{"store"}

// edgeN1Spec loads the edge twin, whose grown plan fails N-1 (spec.hardware.allowUnfit: true starts it
// anyway), and returns it with the capacity planner's verdict. It checks the story first: the approved
// plan fits, and without allowUnfit the spec is refused by the N-1 check.
func edgeN1Spec() (*twin.Spec, *hardware.Result) {
	path := filepath.Join(edgeN1Dir, "twin.yaml")
	spec, err := twin.LoadSpec(path)
	Expect(err).NotTo(HaveOccurred(), "the edge twin (allowUnfit) must load")
	Expect(spec.Spec.Hardware.AllowUnfit).To(BeTrue(), "%s must set spec.hardware.allowUnfit: true", path)
	res := spec.Capacity
	Expect(res.Failover.Fits).To(BeFalse(), "%s is meant to fail N-1 on %s, but the capacity planner says it fits", spec.Plan.File, spec.Inventory.File)

	approvedFile := filepath.Join(edgeN1Dir, "plan-approved.yaml")
	inv, approved, err := hardware.LoadFiles(spec.Inventory.File, approvedFile)
	Expect(err).NotTo(HaveOccurred())
	ok, err := hardware.Evaluate(inv, approved)
	Expect(err).NotTo(HaveOccurred())
	Expect(ok.Fits).To(BeTrue(), "%s is the plan the capacity review approved, but it does not fit: %s", approvedFile, ok.Summary())

	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	strict := bytes.Replace(data, []byte("allowUnfit: true"), []byte("allowUnfit: false"), 1)
	Expect(strict).NotTo(Equal(data), "%s must say allowUnfit: true", path)
	_, err = twin.ParseSpec(path, strict)
	Expect(err).To(MatchError(twin.ErrInvalidSpec), "the edge twin without allowUnfit must be refused")
	Expect(err.Error()).To(And(ContainSubstring("(n-1 check)"), ContainSubstring("no room on the surviving hosts"), ContainSubstring("allowUnfit")),
		"the refusal must name the N-1 check and the way out")
	return spec, res
}

// failingEstate brings up the edge twin of testdata/edge-n1 on a plan that fails N-1, crashes the host the
// capacity planner calls the worst to lose, and checks the twin does what the planner predicted: the
// same VMs stranded, for the model's reason, their nodes NotReady, the pods that ran on them evicted and
// their replacements Pending because no Ready node has room. Repairing the host brings everything back.
func failingEstate(ctx SpecContext) {
	exp := Experiment("failover: estate that fails N-1")
	spec, res := edgeN1Spec()
	victim := res.Failover.WorstHost
	var predicted []string
	for _, f := range res.Failover.Failures {
		if f.Host == victim {
			predicted = f.Stranded
		}
	}
	Expect(predicted).NotTo(BeEmpty(), "the planner names %s the worst host to lose but strands nothing", victim)
	By("bringing up the edge twin on the grown plan (fails N-1)")
	e := ownTwin(ctx, spec)
	probe := e.probe(edgeNamespaces)
	Eventually(probe.AppsHealthy).WithContext(ctx).WithTimeout(e.Waits.Healthy).WithPolling(e.Waits.Poll).Should(Succeed(),
		"the edge twin's till Deployment never became available before the crash")
	st, err := e.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	down := vmsOn(st, victim)
	workers := workersOf(down)
	before, err := e.podsByNode(ctx, edgeNamespaces)
	Expect(err).NotTo(HaveOccurred())

	start := time.Now()
	tl := NewTimeline(start)
	_, err = e.Twin.Host(ctx, twin.HostFail, victim)
	Expect(err).NotTo(HaveOccurred())
	repaired := false
	DeferCleanup(func(ctx context.Context) {
		if !repaired { // the spec failed before its own repair: leave nothing half-done for Down
			_, _ = e.Twin.Host(ctx, twin.HostRepair, victim)
		}
	})
	tl.Add(start, "host down", fmt.Sprintf("%s (%d VMs, %d of them worker nodes)", victim, len(down), len(workers)))
	seen := newComplianceLog(e, edgeNamespaces)

	out := e.waitCrashSettled(ctx, probe, []string{victim}, down, start, seen, tl, exp, "host down to nodes NotReady")
	Expect(sortedMapKeys(out.stranded)).To(Equal(sortedCopy(predicted)),
		"losing %s: the twin's hardware model stranded %s, the capacity planner predicted %v", victim, out.strandedText(), predicted)
	recordTiming(exp, "host down to VMs stranded", out.settled.Sub(start))
	restartedWorkers, strandedWorkers := out.split(workers)
	Expect(strandedWorkers).NotTo(BeEmpty(), "the planner strands %v, none of them a worker: no node to watch", predicted)
	e.waitRestartedReady(ctx, probe, []string{victim}, restartedWorkers, seen)
	tl.Add(time.Now(), "nodes Ready", fmt.Sprintf("%d restarted worker(s): %s", len(restartedWorkers), strings.Join(faultphases.WorkerNames(restartedWorkers), ", ")))

	evicted := e.waitEvicted(ctx, strandedWorkers, before, seen, tl)
	var pending []pendingPod
	Eventually(func(ctx context.Context) error {
		seen.sample(ctx)
		pending, err = e.pendingPods(ctx, edgeNamespaces)
		if err != nil {
			return err
		}
		var unsched []pendingPod
		for _, p := range pending {
			if p.Unschedulable {
				unsched = append(unsched, p)
			}
		}
		if len(unsched) != len(evicted) {
			return fmt.Errorf("%d pod(s) were evicted from the stranded nodes (%s); want as many replacements Pending as unschedulable, see %d: %s",
				len(evicted), strings.Join(evicted, ", "), len(unsched), pendingText(pending))
		}
		return nil
	}).WithContext(ctx).WithTimeout(e.Waits.Healthy).WithPolling(e.Waits.Poll).Should(Succeed())
	pendingAt := time.Since(start)
	tl.Add(time.Now(), "pods Pending", pendingShort(pending))
	recordTiming(exp, "host down to pods Pending", pendingAt)

	// Stranded means stranded: the VMs are still down and their nodes NotReady now that the pods are gone.
	st, err = e.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	for _, v := range st.VMs {
		if why, ok := out.stranded[v.Name]; ok {
			Expect(v.State).To(Equal(string(hardware.VMIsStrand)), "VM %s after the failover", v.Name)
			Expect(v.Reason).To(Equal(why), "status gives stranded VM %s another reason than the model's event", v.Name)
		}
	}
	Expect(probe.NodesAre(ctx, strandedWorkers, faultphases.IsNotReady, "NotReady (stranded)")).To(Succeed())
	g, err := e.GitOps(ctx, "edge", "store")
	Expect(err).NotTo(HaveOccurred())
	seen.add(g)
	tl.Add(time.Now(), "configuration "+g.ComplianceState, strings.TrimSpace("store, with replicas Pending "+g.Message))
	Note("Estate %s with plan %s fails N-1 (capacity: %s). Host %s crashed (the planner's worst case): failover clustering restarted %s; it stranded %s -- as the planner predicted. "+
		"Stranded worker nodes stayed NotReady: %s. Evicted from them (left Terminating, no kubelet confirms): %s. Pending, unschedulable: %s. Configuration store while stranded: %s (seen during the outage: %s).",
		strings.TrimPrefix(spec.Inventory.File, "../"), filepath.Base(spec.Plan.File), capacityFinding(res, "n-1"), victim, out.restartedText(), out.strandedText(),
		strings.Join(faultphases.WorkerNames(strandedWorkers), ", "), strings.Join(evicted, ", "), pendingText(pending), g.ComplianceState, seen.text())

	By("repairing " + victim)
	repairAt := time.Now()
	_, err = e.Twin.Host(ctx, twin.HostRepair, victim)
	Expect(err).NotTo(HaveOccurred())
	repaired = true
	tl.Add(repairAt, "host repaired", victim)
	Eventually(func(ctx context.Context) error {
		st, err := e.Twin.Status(ctx)
		if err != nil {
			return err
		}
		back := map[string]bool{}
		for _, r := range faultphases.RecordsSince(st, repairAt) {
			if r.Event.Type == hardware.VMRestarted {
				back[r.Event.VM] = true
			}
		}
		var missing []string
		for vm := range out.stranded {
			if !back[vm] {
				missing = append(missing, vm)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return fmt.Errorf("host %s repaired, stranded VMs not restarted yet: %v", victim, missing)
		}
		return nil
	}).WithContext(ctx).WithTimeout(e.Waits.NodeBack).WithPolling(e.Waits.Poll).Should(Succeed())
	e.eventually(ctx, "stranded workers' nodes Ready after repairing "+victim, e.Waits.NodeBack, func(ctx context.Context) error {
		return probe.NodesAre(ctx, strandedWorkers, faultphases.IsReady, "Ready after the repair")
	})
	tl.Add(time.Now(), "nodes Ready", "stranded workers back: "+strings.Join(faultphases.WorkerNames(strandedWorkers), ", "))
	Eventually(probe.AppsHealthy).WithContext(ctx).WithTimeout(e.Waits.Healthy).WithPolling(e.Waits.Poll).Should(Succeed(),
		"host %s repaired, but the till replicas did not all run again", victim)
	tl.Add(time.Now(), "pods running", "every till replica Ready")
	Eventually(e.Compliance).WithContext(ctx).WithTimeout(e.Waits.Converge).WithPolling(e.Waits.Poll).Should(Succeed())
	tl.Add(time.Now(), "healthy", "configuration store Compliant")
	recordTiming(exp, "repair to healthy", time.Since(repairAt))
}

// ownTwin brings up a twin of the spec's own for one spec (with the suite's source interval where a
// configuration sets none, as BeforeSuite does), waits until every configuration is Compliant, and takes it
// down when the spec ends, checking that none of its processes is left.
func ownTwin(ctx context.Context, spec *twin.Spec) *Env {
	for i := range spec.Spec.GitOps {
		if spec.Spec.GitOps[i].SyncIntervalInSeconds == 0 {
			spec.Spec.GitOps[i].SyncIntervalInSeconds = SourceIntervalSeconds
		}
	}
	waits, err := WaitsFor(spec.Spec.TimeProfile)
	Expect(err).NotTo(HaveOccurred())
	// Not GinkgoT().TempDir(): the control socket's path must stay under the 108-byte limit of a Unix socket.
	tmp, err := os.MkdirTemp("", "hybridtwin-"+spec.Metadata.Name+"-")
	Expect(err).NotTo(HaveOccurred())
	stateDir := filepath.Join(tmp, "state")
	tw, err := twin.Up(ctx, spec, twin.Options{StateDir: stateDir, Progress: GinkgoWriter})
	if err != nil {
		_ = os.RemoveAll(tmp)
	}
	Expect(err).NotTo(HaveOccurred(), "bring up twin %s from %s", spec.Metadata.Name, spec.File)
	DeferCleanup(func() {
		By("taking twin " + spec.Metadata.Name + " down")
		err := tw.Down(context.Background(), false)
		left := processesUnder(stateDir)
		_ = os.RemoveAll(tmp)
		Expect(err).NotTo(HaveOccurred(), "take twin %s down", spec.Metadata.Name)
		Expect(left).To(BeEmpty(), "processes of twin %s still running after Down", spec.Metadata.Name)
	})
	e, err := NewEnv(ctx, tw, waits)
	Expect(err).NotTo(HaveOccurred())
	Eventually(e.Compliance).WithContext(ctx).WithTimeout(waits.Converge).WithPolling(waits.Poll).Should(Succeed(),
		"twin %s came up but its configurations did not converge", spec.Metadata.Name)
	return e
}

// busiestHosts are the n Up hosts running the most worker VMs (fewer if fewer run any), by name on ties.
func busiestHosts(st *twin.Status, n int) []string {
	role := map[string]string{}
	for _, v := range st.VMs {
		role[v.Name] = v.Role
	}
	type hw struct {
		name    string
		workers int
	}
	var hs []hw
	for _, h := range st.Hosts {
		if h.State != string(hardware.HostUp) {
			continue
		}
		c := 0
		for _, v := range h.VMs {
			if role[v] == string(hardware.RoleWorker) {
				c++
			}
		}
		if c > 0 {
			hs = append(hs, hw{h.Name, c})
		}
	}
	sort.SliceStable(hs, func(i, j int) bool {
		if hs[i].workers != hs[j].workers {
			return hs[i].workers > hs[j].workers
		}
		return hs[i].name < hs[j].name
	})
	var out []string
	for i := 0; i < n && i < len(hs); i++ {
		out = append(out, hs[i].name)
	}
	return out
}

func hostStates(st *twin.Status) []string {
	var out []string
	for _, h := range st.Hosts {
		out = append(out, fmt.Sprintf("%s %s %v", h.Name, h.State, h.VMs))
	}
	return out
}

// vmsOn are the VMs (every role) running on the hosts.
func vmsOn(st *twin.Status, hosts ...string) []twin.VMState {
	var out []twin.VMState
	for _, v := range st.VMs {
		if inList(hosts, v.Host) {
			out = append(out, v)
		}
	}
	return out
}

func workersOf(vms []twin.VMState) []twin.VMState {
	var out []twin.VMState
	for _, v := range vms {
		if v.Role == string(hardware.RoleWorker) {
			out = append(out, v)
		}
	}
	return out
}

// room says whether the surviving hosts are sure to take every VM of the lost ones.
type room struct {
	sure bool
	why  string
}

// survivorsRoom compares what the lost hosts' VMs use with the free room of the Up survivor that has the
// least of it, from the hardware model's books in the twin's status (used and capacity per host). If all
// the VMs fit there, every restart finds a host whatever the order (a sufficient condition, not a
// necessary one).
func survivorsRoom(st *twin.Status, lost []string) room {
	var needCPU, needMem int
	minCPU, minMem, least := math.Inf(1), math.Inf(1), ""
	for _, h := range st.Hosts {
		if inList(lost, h.Name) {
			needCPU, needMem = needCPU+h.VCPUUsed, needMem+h.MemoryUsedGiB
			continue
		}
		if h.State != string(hardware.HostUp) {
			continue
		}
		cpu, mem := h.VCPUCapacity-float64(h.VCPUUsed), h.MemoryCapacityGiB-float64(h.MemoryUsedGiB)
		if cpu < minCPU || (cpu == minCPU && mem < minMem) {
			minCPU, minMem, least = cpu, mem, h.Name
		}
	}
	if least == "" {
		return room{why: "no Up host survives"}
	}
	r := room{sure: float64(needCPU) <= minCPU && float64(needMem) <= minMem}
	r.why = fmt.Sprintf("the lost VMs need %d vCPU and %d GiB; the fullest survivor, %s, has %.0f vCPU and %.1f GiB free", needCPU, needMem, least, minCPU, minMem)
	return r
}

// outcome is what failover clustering did with the VMs of crashed hosts, from the bridge's records.
type outcome struct {
	restarted map[string]string // VM -> new host
	stranded  map[string]string // VM -> the model's reason
	records   []twin.BridgeRecord
	settled   time.Time // when the last of the VMs was restarted or stranded
}

// waitOutcome waits until every one of the down VMs has been restarted or stranded since start.
func (e *Env) waitOutcome(ctx context.Context, start time.Time, down []twin.VMState, seen *complianceLog) outcome {
	var out outcome
	Eventually(func(ctx context.Context) error {
		seen.sample(ctx)
		st, err := e.Twin.Status(ctx)
		if err != nil {
			return err
		}
		out = outcome{restarted: map[string]string{}, stranded: map[string]string{}}
		for _, r := range faultphases.RecordsSince(st, start) {
			switch r.Event.Type {
			case hardware.VMRestarted:
				out.restarted[r.Event.VM] = r.Event.Host
			case hardware.VMStranded:
				out.stranded[r.Event.VM] = r.Event.Reason
			default:
				continue
			}
			out.records = append(out.records, r)
			if r.At.After(out.settled) {
				out.settled = r.At
			}
		}
		var open []string
		for _, v := range down {
			_, a := out.restarted[v.Name]
			_, b := out.stranded[v.Name]
			if !a && !b {
				open = append(open, v.Name)
			}
		}
		if len(open) > 0 {
			return fmt.Errorf("VMs neither restarted nor stranded yet: %v", open)
		}
		return nil
	}).WithContext(ctx).WithTimeout(e.Waits.NodeBack).WithPolling(e.Waits.Poll).Should(Succeed())
	return out
}

// waitCrashSettled follows hosts that crashed at start taking the down VMs with them: their worker nodes
// turn NotReady (on the timeline, recorded as timing), then every down VM is restarted or stranded (each
// on the timeline). seen is sampled on every poll.
func (e *Env) waitCrashSettled(ctx context.Context, probe faultphases.Probe, hosts []string, down []twin.VMState, start time.Time,
	seen *complianceLog, tl *Timeline, exp *gmeasure.Experiment, timing string) outcome {
	workers := workersOf(down)
	e.eventually(ctx, fmt.Sprintf("the worker nodes of crashed host(s) %s NotReady", strings.Join(hosts, " and ")), e.Waits.NodeNotReady,
		seen.and(func(ctx context.Context) error {
			return probe.NodesAre(ctx, workers, faultphases.IsNotReady, "NotReady")
		}))
	tl.Add(time.Now(), "nodes NotReady", strings.Join(faultphases.WorkerNames(workers), ", "))
	recordTiming(exp, timing, time.Since(start))
	out := e.waitOutcome(ctx, start, down, seen)
	out.addTo(tl)
	return out
}

// waitRestartedReady waits until the nodes of the workers failover clustering restarted report Ready on a
// host that is not lost. seen is sampled on every poll.
func (e *Env) waitRestartedReady(ctx context.Context, probe faultphases.Probe, lost []string, restarted []twin.VMState, seen *complianceLog) {
	e.eventually(ctx, fmt.Sprintf("the restarted workers of %s Ready on a surviving host", strings.Join(lost, " and ")), e.Waits.NodeBack,
		seen.and(func(ctx context.Context) error {
			return probe.NodesAre(ctx, restarted, faultphases.ReadyOffHosts(lost...), "Ready on a surviving host")
		}))
}

func (o outcome) addTo(tl *Timeline) {
	for _, r := range o.records {
		if r.Event.Type == hardware.VMRestarted {
			tl.Add(r.At, "vm restarted", r.Event.VM+" on "+r.Event.Host)
		} else {
			tl.Add(r.At, "vm stranded", r.Event.VM+": "+r.Event.Reason)
		}
	}
}

// split divides workers into those restarted and those stranded.
func (o outcome) split(workers []twin.VMState) (restarted, stranded []twin.VMState) {
	for _, w := range workers {
		if _, ok := o.stranded[w.Name]; ok {
			stranded = append(stranded, w)
		} else {
			restarted = append(restarted, w)
		}
	}
	return restarted, stranded
}

func (o outcome) restartedText() string {
	if len(o.restarted) == 0 {
		return "nothing"
	}
	var out []string
	for _, vm := range sortedMapKeys(o.restarted) {
		out = append(out, vm+" -> "+o.restarted[vm])
	}
	return strings.Join(out, ", ")
}

func (o outcome) strandedText() string {
	if len(o.stranded) == 0 {
		return "nothing"
	}
	var out []string
	for _, vm := range sortedMapKeys(o.stranded) {
		out = append(out, vm+" ("+o.stranded[vm]+")")
	}
	return strings.Join(out, "; ")
}

// podsByNode lists the live pods of the namespaces by cluster/node.
func (e *Env) podsByNode(ctx context.Context, namespaces []string) (map[string][]string, error) {
	out := map[string][]string{}
	err := e.probe(namespaces).EachPod(ctx, func(c string, p *corev1.Pod) {
		if p.Spec.NodeName != "" {
			k := c + "/" + p.Spec.NodeName
			out[k] = append(out[k], p.Namespace+"/"+p.Name)
		}
	})
	return out, err
}

// waitEvicted waits until every pod that ran on the stranded workers' nodes before the crash has been
// evicted (it carries a deletion timestamp, or is gone) and returns them as cluster/namespace/name. Each
// eviction goes on the timeline at the moment the taint manager deleted the pod: its deletion timestamp
// less its grace period (to the second: metav1.Time). The node-lifecycle controller taints unreachable
// nodes at --node-eviction-rate (Kubernetes default 0.1 nodes/s), so the evictions of several lost nodes
// come about ten seconds apart.
func (e *Env) waitEvicted(ctx context.Context, stranded []twin.VMState, before map[string][]string, seen *complianceLog, tl *Timeline) []string {
	var evicted []string
	at := map[string]time.Time{}
	Eventually(func(ctx context.Context) error {
		seen.sample(ctx)
		evicted = nil
		var left []string
		for _, w := range stranded {
			for _, nsName := range before[w.Cluster+"/"+w.Name] {
				ns, name, _ := strings.Cut(nsName, "/")
				p, err := e.Kube[w.Cluster].CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
				case err != nil:
					return err
				case p.DeletionTimestamp == nil:
					left = append(left, fmt.Sprintf("%s/%s on %s", w.Cluster, nsName, w.Name))
					continue
				default:
					if _, ok := at[w.Cluster+"/"+nsName]; !ok {
						t := p.DeletionTimestamp.Time
						if p.DeletionGracePeriodSeconds != nil {
							t = t.Add(-time.Duration(*p.DeletionGracePeriodSeconds) * time.Second)
						}
						at[w.Cluster+"/"+nsName] = t
						tl.Add(t, "pod evicted", fmt.Sprintf("%s from %s, left Terminating", nsName, w.Name))
					}
				}
				evicted = append(evicted, w.Cluster+"/"+nsName)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("pods on stranded nodes not evicted yet: %v", left)
		}
		return nil
	}).WithContext(ctx).WithTimeout(e.Waits.Healthy).WithPolling(e.Waits.Poll).Should(Succeed())
	sort.Strings(evicted)
	return evicted
}

// pendingPod is a live pod no node runs, with the scheduler's verdict.
type pendingPod struct {
	Name          string // cluster/namespace/name
	Unschedulable bool
	Reason        string // the PodScheduled condition's message
}

// pendingPods lists the live, unbound pods of the namespaces.
func (e *Env) pendingPods(ctx context.Context, namespaces []string) ([]pendingPod, error) {
	var out []pendingPod
	err := e.probe(namespaces).EachPod(ctx, func(c string, p *corev1.Pod) {
		if p.Spec.NodeName != "" {
			return
		}
		pp := pendingPod{Name: c + "/" + p.Namespace + "/" + p.Name}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
				pp.Unschedulable = cond.Reason == corev1.PodReasonUnschedulable
				pp.Reason = cond.Message
			}
		}
		out = append(out, pp)
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func pendingText(ps []pendingPod) string {
	if len(ps) == 0 {
		return "none"
	}
	var out []string
	for _, p := range ps {
		why := p.Reason
		if why == "" {
			why = "not scheduled yet"
		}
		out = append(out, fmt.Sprintf("%s (%s)", p.Name, why))
	}
	return strings.Join(out, "; ")
}

// pendingShort names the pending pods and the scheduler's distinct verdicts without the preemption
// detail, short enough for a timeline label.
func pendingShort(ps []pendingPod) string {
	var names, why []string
	for _, p := range ps {
		_, n, _ := strings.Cut(p.Name, "/")
		names = append(names, n)
		r, _, _ := strings.Cut(p.Reason, ". preemption:")
		if r != "" && !inList(why, r) {
			why = append(why, r)
		}
	}
	if len(why) == 0 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names, ", ") + ": " + strings.Join(why, "; ")
}

// complianceLog collects, while a spec polls, the compliance states the configurations pass through and
// the pods of the namespaces that are seen Pending (live, on no node).
type complianceLog struct {
	e          *Env
	namespaces []string
	seen       map[string][]string // cluster/configuration -> states in the order first seen
	pending    []string            // cluster/namespace/pod, in the order first seen
}

func newComplianceLog(e *Env, namespaces []string) *complianceLog {
	return &complianceLog{e: e, namespaces: namespaces, seen: map[string][]string{}}
}

func (l *complianceLog) sample(ctx context.Context) {
	st, err := l.e.Twin.Status(ctx)
	if err != nil {
		return // a status error shows in the spec's own checks
	}
	for _, g := range st.GitOps {
		l.add(g)
	}
	ps, err := l.e.pendingPods(ctx, l.namespaces)
	if err != nil {
		return
	}
	for _, p := range ps {
		if !inList(l.pending, p.Name) {
			l.pending = append(l.pending, p.Name)
		}
	}
}

// and returns check preceded by a sample, for a wait that keeps the log while it polls.
func (l *complianceLog) and(check func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		l.sample(ctx)
		return check(ctx)
	}
}

// pendingText names the pods seen Pending, "none" if none was.
func (l *complianceLog) pendingText() string {
	if len(l.pending) == 0 {
		return "none"
	}
	return strings.Join(l.pending, ", ")
}

func (l *complianceLog) add(g twin.GitOpsStatus) {
	k := g.Cluster + "/" + g.Name
	if !inList(l.seen[k], g.ComplianceState) {
		l.seen[k] = append(l.seen[k], g.ComplianceState)
	}
}

func (l *complianceLog) text() string {
	var out []string
	for _, k := range sortedMapKeys(l.seen) {
		out = append(out, k+": "+strings.Join(l.seen[k], " -> "))
	}
	return strings.Join(out, "; ")
}

// volumesText lists an inventory's volumes with their resiliency.
func volumesText(inv *hardware.Inventory) string {
	var out []string
	for _, v := range inv.Spec.Storage.Volumes {
		out = append(out, fmt.Sprintf("%s %s", v.Name, v.Resiliency))
	}
	if len(out) == 0 {
		return "none declared"
	}
	return strings.Join(out, ", ")
}

// capacityFinding is the message of the capacity result's first error finding of a check.
func capacityFinding(res *hardware.Result, check string) string {
	for _, f := range res.Findings {
		if f.Check == check && f.Severity == hardware.SeverityError {
			return f.Message
		}
	}
	return "no " + check + " finding"
}

func inList(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedCopy(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}
