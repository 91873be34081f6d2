package estate

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/hostops"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// examplePath is the embedded default twin spec.
var examplePath = filepath.Join("..", "..", "..", "examples", "twin.yaml")

// offlineTwin is the example twin's planning half -- spec, hardware simulation, bridge, a real embedded
// provider with no cluster -- without starting any process: enough for every refusal, which must
// happen before anything starts. The running half is proven by TestExampleTwinLifecycle and the
// scenarios.
func offlineTwin(t *testing.T) (*Estate, *embedded.Provider) {
	t.Helper()
	s, err := spec.LoadSpec(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	prof, err := api.RunProfileFor(s.Spec.TimeProfile)
	if err != nil {
		t.Fatal(err)
	}
	prov := embedded.New(embedded.Options{Dir: t.TempDir()})
	tw := &Estate{spec: s, prof: prof, log: slog.New(slog.DiscardHandler), clusters: map[string]*Cluster{},
		provider: prov, plan: s.Plan.Clone(), done: make(chan struct{})}
	tw.opsCtx, tw.opsCancel = context.WithCancel(context.Background())
	t.Cleanup(tw.opsCancel)
	tw.sim, err = hardware.NewSim(s.Inventory, tw.plan, hardware.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	tw.bridge = hostops.NewBridge(tw.sim, &hostops.Nodes{Faults: prov, Client: tw.clientOf}, clk)
	for _, n := range s.ClusterNames() {
		tw.clusters[n] = &Cluster{}
	}
	return tw, prov
}

// vmPlace compares VMs by where they run: name, host, address and state.
var vmPlace = cmp.Comparer(func(a, b hardware.VMStatus) bool {
	return a.Name == b.Name && a.Host == b.Host && a.IP == b.IP && a.State == b.State
})

// unchanged asserts that a refused operation left the twin as it was: the plan, the hardware model's
// VMs and hosts, no bridge record, no cluster started.
func unchanged(t *testing.T, g Gomega, tw *Estate, prov *embedded.Provider, vms []hardware.VMStatus) {
	t.Helper()
	g.Expect(cmp.Diff(tw.spec.Plan.Spec, tw.Plan().Spec)).To(BeEmpty(), "the plan changed")
	g.Expect(cmp.Diff(vms, tw.bridge.VMs(), vmPlace)).To(BeEmpty(), "the hardware model changed")
	g.Expect(tw.bridge.Records()).To(BeEmpty())
	infos, err := prov.List(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(infos).To(BeEmpty(), "a cluster was started")
}

// Growing a pool one VM past what the running estate takes is refused with the model's own reason --
// the what-if answer for that pool on the estate as it runs -- and changes nothing. At the limit the
// model places the VMs; here no cluster runs, so adding the nodes fails and the operation releases the
// VMs again: the model ends as it began, with the placement and the release on record.
func TestScaleBeyondTheHardwareIsRefusedWithItsReason(t *testing.T) {
	g := NewWithT(t)
	tw, prov := offlineTwin(t)
	vms := tw.bridge.VMs()
	mw, err := tw.MoreWorkers("dev", "linux")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mw.More).To(BeNumerically(">", 0), "the example estate has room to grow dev")
	limit := mw.Current + mw.More

	_, err = tw.ScaleNodePool(context.Background(), "dev", "linux", limit+1)
	var ce *api.CapacityError
	g.Expect(errors.As(err, &ce)).To(BeTrue(), "want a *api.CapacityError, got %v", err)
	g.Expect(errors.Is(err, api.ErrRefused)).To(BeTrue())
	g.Expect(errors.Is(err, hardware.ErrInsufficientCapacity)).To(BeTrue(), "the model's sentinel is kept: %v", err)
	g.Expect(ce.Reasons).NotTo(BeEmpty())
	g.Expect(ce.Reasons[0]).To(Equal(mw.LimitedBy), "the refusal gives the planner's reason")
	g.Expect(err.Error()).To(ContainSubstring("scale node pool linux of cluster dev to %d VM(s)", limit+1))
	g.Expect(err.Error()).To(ContainSubstring("nothing was changed"))
	unchanged(t, g, tw, prov, vms)

	_, err = tw.ScaleNodePool(context.Background(), "dev", "linux", limit)
	var oe *api.StepError
	g.Expect(errors.As(err, &oe)).To(BeTrue(), "at the limit the model accepts and adding a node to a cluster that does not run fails: got %v", err)
	g.Expect(oe.Step).To(Equal(api.StepNodesAdded))
	g.Expect(oe.UndoErr).NotTo(HaveOccurred())
	g.Expect(oe.Undone).To(ContainElement(HavePrefix("VMs released: dev-linux-3@")))
	recs := tw.bridge.Records()
	g.Expect(recs).To(HaveLen(2 * mw.More))
	for i, r := range recs {
		want := hardware.VMPlaced
		if i >= mw.More {
			want = hardware.VMReleased
		}
		g.Expect(r.Event.Type).To(Equal(want), "record %d: %v", i, r.Event)
		g.Expect(r.Event.Cluster).To(Equal("dev"))
		g.Expect(r.Actions).To(BeEmpty(), "placing or releasing a VM touches no running node")
	}
	g.Expect(cmp.Diff(tw.spec.Plan.Spec, tw.Plan().Spec)).To(BeEmpty(), "the plan changed")
	g.Expect(cmp.Diff(vms, tw.bridge.VMs(), vmPlace)).To(BeEmpty(), "the hardware model is not as it was")
}

// Onboarding a cluster places its VMs where there is room and moves none of the running ones, even
// though a fresh plan with it would (the re-planning the twin did before hardware.Sim.PlaceVMs).
func TestAddClusterMovesNoRunningVM(t *testing.T) {
	g := NewWithT(t)
	tw, prov := offlineTwin(t)
	before := tw.bridge.VMs()
	wc := hardware.WorkloadCluster{Name: "branch-new", ControlPlane: hardware.ControlPlaneSpec{Count: 1},
		NodePools: []hardware.NodePool{{Name: "linux", OSType: hardware.Linux, Count: 2}}}
	// With the new cluster first in the plan order, a fresh plan of the estate moves running VMs.
	next := tw.Plan()
	next.Spec.WorkloadClusters = append([]hardware.WorkloadCluster{wc}, next.Spec.WorkloadClusters...)
	fresh, err := hardware.Evaluate(tw.spec.Inventory, next)
	g.Expect(err).NotTo(HaveOccurred())
	host := map[string]string{}
	for _, vm := range fresh.VMs {
		host[vm.Name] = vm.Host
	}
	moved := 0
	for _, vm := range before {
		if host[vm.Name] != vm.Host {
			moved++
		}
	}
	g.Expect(moved).To(BeNumerically(">", 0), "precondition: a fresh plan with the new cluster first moves running VMs")

	ch, err := tw.place(context.Background(), api.OpAddCluster, wc.Name, "", 0, next)
	g.Expect(err).NotTo(HaveOccurred())
	after := map[string]hardware.VMStatus{}
	for _, vm := range tw.bridge.VMs() {
		after[vm.Name] = vm
	}
	for _, vm := range before {
		g.Expect(after[vm.Name].Host).To(Equal(vm.Host), "running VM %s moved", vm.Name)
		g.Expect(after[vm.Name].IP).To(Equal(vm.IP), "running VM %s changed address", vm.Name)
	}
	var names []string
	for _, vm := range ch.Placed {
		names = append(names, vm.Name)
		g.Expect(vm.Host).NotTo(BeEmpty())
		g.Expect(vm.IP.IsValid()).To(BeTrue(), "VM %s gets an address from the IP pool", vm.Name)
	}
	g.Expect(names).To(ConsistOf("branch-new-control-plane-0", "branch-new-lb-0", "branch-new-linux-0", "branch-new-linux-1"))
	cs, err := clusterSpec(tw.spec, "branch-new", tw.bridge.VMs())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cs.Nodes).To(HaveLen(2))
	g.Expect(cs.ControlPlane).To(HaveLen(1))
	for _, n := range cs.Nodes {
		g.Expect(strings.HasPrefix(n.IP, "10.30.0.")).To(BeTrue(), "node %s has the model's address, got %s", n.Name, n.IP)
		g.Expect(n.Host).To(HavePrefix("br-hci-"))
	}
	g.Expect(cs.Provider).To(Equal(cluster.ProviderEmbedded))
	infos, _ := prov.List(context.Background())
	g.Expect(infos).To(BeEmpty())
}

// Every refusal names what was wrong and what to do, wraps api.ErrRefused, and changes nothing.
func TestClusterOperationRefusals(t *testing.T) {
	big := hardware.WorkloadCluster{Name: "branch-big", ControlPlane: hardware.ControlPlaneSpec{Count: 1},
		NodePools: []hardware.NodePool{{Name: "linux", OSType: hardware.Linux, VMSize: "Standard_K8S3_v1", Count: 90}}}
	cases := []struct {
		name string
		op   func(ctx context.Context, tw *Estate) error
		want []string
	}{
		{"scale an unknown cluster", func(ctx context.Context, tw *Estate) error {
			_, err := tw.ScaleNodePool(ctx, "staging", "linux", 4)
			return err
		}, []string{`cluster "staging" is not running`, "have: dev, prod"}},
		{"scale an unknown pool", func(ctx context.Context, tw *Estate) error {
			_, err := tw.ScaleNodePool(ctx, "dev", "windows", 2)
			return err
		}, []string{`no node pool "windows"`, "have: linux"}},
		{"scale to a negative count", func(ctx context.Context, tw *Estate) error {
			_, err := tw.ScaleNodePool(ctx, "dev", "linux", -1)
			return err
		}, []string{"zero or more"}},
		{"remove an unknown cluster", func(ctx context.Context, tw *Estate) error {
			_, err := tw.RemoveCluster(ctx, "staging")
			return err
		}, []string{`cluster "staging" is not running`}},
		{"recreate a cluster the spec does not have", func(ctx context.Context, tw *Estate) error {
			_, err := tw.RecreateCluster(ctx, "branch-new")
			return err
		}, []string{`"branch-new" is not a workload cluster of the spec's plan`, "AddCluster"}},
		{"recreate a cluster that runs", func(ctx context.Context, tw *Estate) error {
			_, err := tw.RecreateCluster(ctx, "dev")
			return err
		}, []string{`cluster "dev" already runs`, "remove it first"}},
		{"add a cluster with a bad name", func(ctx context.Context, tw *Estate) error {
			_, err := tw.AddCluster(ctx, hardware.WorkloadCluster{Name: "Branch_01", NodePools: []hardware.NodePool{{Name: "linux", Count: 1}}})
			return err
		}, []string{"add cluster Branch_01", "spec.workloadClusters[2].name"}},
		{"add a cluster the hardware cannot hold", func(ctx context.Context, tw *Estate) error {
			_, err := tw.AddCluster(ctx, big)
			var ce *api.CapacityError
			if !errors.As(err, &ce) {
				return errors.New("not a *api.CapacityError: " + errString(err))
			}
			return err
		}, []string{"add cluster branch-big: the hardware model says it does not fit", "nothing was changed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			tw, prov := offlineTwin(t)
			vms := tw.bridge.VMs()
			err := c.op(context.Background(), tw)
			g.Expect(err).To(HaveOccurred())
			g.Expect(errors.Is(err, api.ErrRefused)).To(BeTrue(), "not refused: %v", err)
			for _, w := range c.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
			unchanged(t, g, tw, prov, vms)
		})
	}
}

// The last cluster cannot be removed: a twin runs at least one.
func TestRemoveTheLastClusterIsRefused(t *testing.T) {
	g := NewWithT(t)
	tw, prov := offlineTwin(t)
	tw.plan.Spec.WorkloadClusters = tw.plan.Spec.WorkloadClusters[:1]
	delete(tw.clusters, "prod")
	_, err := tw.RemoveCluster(context.Background(), "dev")
	g.Expect(errors.Is(err, api.ErrRefused)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("last workload cluster"))
	infos, _ := prov.List(context.Background())
	g.Expect(infos).To(BeEmpty())
}

// An estate mid-failover is not changed: the operation says which host to repair.
func TestOperationsWaitForAnEstateAtRest(t *testing.T) {
	g := NewWithT(t)
	tw, prov := offlineTwin(t)
	_, err := tw.Host(context.Background(), hostops.Fail, "br-hci-02")
	g.Expect(err).NotTo(HaveOccurred())
	vms := tw.bridge.VMs()
	records := len(tw.bridge.Records())
	_, err = tw.ScaleNodePool(context.Background(), "dev", "linux", 4)
	g.Expect(errors.Is(err, api.ErrRefused)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("br-hci-02 is Down"))
	g.Expect(err.Error()).To(ContainSubstring("hybridtwin host repair"))
	g.Expect(tw.bridge.VMs()).To(Equal(vms))
	g.Expect(tw.bridge.Records()).To(HaveLen(records))
	infos, _ := prov.List(context.Background())
	g.Expect(infos).To(BeEmpty())
}

// Scaling to the count a pool has is a no-op report, not an error.
func TestScaleToTheSameCountDoesNothing(t *testing.T) {
	g := NewWithT(t)
	tw, prov := offlineTwin(t)
	vms := tw.bridge.VMs()
	rep, err := tw.ScaleNodePool(context.Background(), "dev", "linux", 3)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.From).To(Equal(3))
	g.Expect(rep.To).To(Equal(3))
	g.Expect(rep.Steps).To(BeEmpty())
	unchanged(t, g, tw, prov, vms)
}

// A cluster of the spec goes back to its place in the spec's order, a new one after all of them.
func TestInsertAtKeepsTheSpecOrder(t *testing.T) {
	g := NewWithT(t)
	tw, _ := offlineTwin(t)
	without := tw.plan.Clone()
	without.Spec.WorkloadClusters = without.Spec.WorkloadClusters[1:] // dev removed
	g.Expect(tw.insertAt(without.Spec.WorkloadClusters, "dev")).To(Equal(0))
	g.Expect(tw.insertAt(without.Spec.WorkloadClusters, "branch-new")).To(Equal(1))
	g.Expect(tw.insertAt(tw.plan.Spec.WorkloadClusters, "branch-new")).To(Equal(2))
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
