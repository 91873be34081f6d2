package hardware

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// lightCluster is a workload cluster of the default twin (examples/twin.yaml): one control plane, a
// load balancer, two LoadBalancer Services and one Linux pool.
func lightCluster(name string, workers int) WorkloadCluster {
	return WorkloadCluster{Name: name, ControlPlane: ControlPlaneSpec{Count: 1, VMSize: "Standard_A4_v2"}, LoadBalancerServices: 2,
		NodePools: []NodePool{{Name: "linux", OSType: Linux, VMSize: "Standard_K8S3_v1", Count: workers}}}
}

// twinEstate is the default twin's estate: examples/hardware/branch-4node.yaml with the plan of
// examples/twin.yaml (dev and prod, three workers each).
func twinEstate(t *testing.T) (*Inventory, *Plan) {
	t.Helper()
	i, _, err := LoadFiles("../examples/hardware/branch-4node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := plan(lightCluster("dev", 3), lightCluster("prod", 3))
	p.Spec.Management.StorageGB = 200
	return i, p
}

// snapshot is what a refused change must leave alone.
type snapshot struct {
	VMs   []VMStatus
	Hosts []HostStatus
	Plan  *Plan
	Next  int
}

func snap(s *Sim) snapshot {
	return snapshot{VMs: s.VMs(), Hosts: s.Hosts(), Plan: s.Plan(), Next: s.events}
}

func sameSnapshot(t *testing.T, what string, a, b snapshot) {
	t.Helper()
	if d := cmp.Diff(a, b, cmp.AllowUnexported(Plan{}, VM{}), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); d != "" {
		t.Fatalf("%s changed the Sim (-before +after):\n%s", what, d)
	}
}

// where maps VM name -> host and address.
func where(vms []VMStatus) map[string]spot {
	out := map[string]spot{}
	for _, v := range vms {
		out[v.Name] = spot{Host: v.Host, IP: v.IP.String()}
	}
	return out
}

// spot is a test-side copy of a VM's place, comparable with ==.
type spot struct {
	Host string
	IP   string
}

// Growing a pool on a running estate places the new VM on the capacity left and moves nothing that runs,
// where planning the grown estate afresh would have put VMs of both clusters on other hosts.
func TestPlaceVMsKeepsRunningVMs(t *testing.T) {
	i, p := twinEstate(t)
	s, clk := newSim(t, i, p)
	before := where(s.VMs())
	next := withPoolCount(p, "dev", "linux", 4)

	fresh, err := Evaluate(i, next)
	if err != nil {
		t.Fatal(err)
	}
	var wouldMove []string
	for _, vm := range fresh.VMs {
		if b, ok := before[vm.Name]; ok && b.Host != vm.Host {
			wouldMove = append(wouldMove, vm.Name)
		}
	}
	if len(wouldMove) == 0 {
		t.Fatal("precondition: a fresh plan of the grown estate moves no running VM, so this test proves nothing; pick another estate")
	}

	clk.Step(42 * time.Second)
	ch, err := s.PlaceVMs(next, PlaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after := where(s.VMs())
	for name, b := range before {
		if after[name] != b {
			t.Errorf("running VM %s moved from %v to %v (a fresh plan would have moved %v)", name, b, after[name], wouldMove)
		}
	}
	if len(ch.Placed) != 1 || ch.Placed[0].Name != "dev-linux-3" || ch.Placed[0].Host == "" || ch.Placed[0].State != VMRunning {
		t.Fatalf("placed %+v, want dev-linux-3 Running on a host", ch.Placed)
	}
	ip := ch.Placed[0].IP
	if !ip.IsValid() {
		t.Fatal("dev-linux-3 got no address from the node IP pool")
	}
	for name, b := range before {
		if b.IP == ip.String() {
			t.Fatalf("dev-linux-3 got %s, the address of running VM %s", ip, name)
		}
	}
	expect(t, "place", ch.Events, []ev{{42 * time.Second, VMPlaced, "dev-linux-3", ch.Placed[0].Host, "", ch.Placed[0].Host}})
	if !ch.Result.Fits {
		t.Fatalf("the grown estate fits: %s", ch.Result.Summary())
	}
	if got := s.Plan().Spec.WorkloadClusters[0].NodePools[0].Count; got != 4 {
		t.Fatalf("the Sim's plan has %d dev workers, want 4", got)
	}
	checkBooks(t, s)
	// The placement rule still spreads the pool: the new worker is not on a host with another dev worker
	// while a host without one has room.
	hosts := map[string]bool{}
	for _, v := range s.VMs() {
		if v.Cluster == "dev" && v.Pool == "linux" && v.Name != "dev-linux-3" {
			hosts[v.Host] = true
		}
	}
	if hosts[ch.Placed[0].Host] && len(hosts) < len(s.Hosts()) {
		t.Fatalf("dev-linux-3 went to %s, which already has a dev worker, while a host without one had room", ch.Placed[0].Host)
	}
}

// Appending a cluster at the end of the plan order places exactly as the planner does for the whole new
// plan, so PlaceVMs' verdict is Evaluate's, finding for finding: one truth, not two.
func TestPlaceVMsVerdictIsThePlanners(t *testing.T) {
	cases := []struct {
		name    string
		add     WorkloadCluster
		fits    bool
		failing string
	}{
		{"fits", lightCluster("branch", 2), true, ""},
		{"breaks N-1", WorkloadCluster{Name: "big", ControlPlane: ControlPlaneSpec{Count: 1}, LoadBalancer: LoadBalancerSpec{Disabled: true},
			NodePools: []NodePool{{Name: "linux", VMSize: "Standard_K8S3_v1", Count: 40}}}, false, "n-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, p := twinEstate(t)
			s, _ := newSim(t, i, p)
			next := p.Clone()
			next.Spec.WorkloadClusters = append(next.Spec.WorkloadClusters, c.add)
			fresh := mustEval(t, i, next)
			if fresh.Fits != c.fits {
				t.Fatalf("precondition: the planner says fits=%v: %s", fresh.Fits, fresh.Summary())
			}
			before := snap(s)
			ch, err := s.PlaceVMs(next, PlaceOptions{})
			var got *Result
			if c.fits {
				if err != nil {
					t.Fatal(err)
				}
				got = ch.Result
			} else {
				var ue *UnfitError
				if !errors.As(err, &ue) {
					t.Fatalf("want an *UnfitError, got %v", err)
				}
				if !errors.Is(err, ErrInsufficientCapacity) {
					t.Fatalf("the refusal does not carry the model's sentinel: %v", err)
				}
				if len(findings(ue.Result, SeverityError, c.failing)) == 0 || !strings.Contains(err.Error(), c.failing+": ") {
					t.Fatalf("the refusal does not name the %s check: %v", c.failing, err)
				}
				if !strings.Contains(err.Error(), "nothing was changed") {
					t.Fatalf("the refusal does not say nothing changed: %v", err)
				}
				sameSnapshot(t, "a refused placement", before, snap(s))
				got = ue.Result
			}
			if d := cmp.Diff(fresh.Findings, got.Findings, cmp.AllowUnexported(Finding{}), cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) })); d != "" {
				t.Fatalf("PlaceVMs' verdict differs from Evaluate's (-planner +PlaceVMs):\n%s", d)
			}
			if d := cmp.Diff(where(statuses(fresh.VMs)), where(statuses(got.VMs))); d != "" {
				t.Fatalf("PlaceVMs placed or addressed differently from the planner (-planner +PlaceVMs):\n%s", d)
			}
		})
	}
}

func statuses(vms []VM) []VMStatus {
	out := make([]VMStatus, len(vms))
	for i, vm := range vms {
		out[i] = VMStatus{VM: vm}
	}
	return out
}

// The running estate's own what-if answer is exact: the limit it names is accepted, one more is refused
// with the reason it gives, and the refusal changes nothing.
func TestPlaceVMsAtTheLimit(t *testing.T) {
	i, p := twinEstate(t)
	s, _ := newSim(t, i, p)
	mw, err := s.MoreWorkers("dev", "linux")
	if err != nil {
		t.Fatal(err)
	}
	if mw.More <= 0 || mw.LimitedBy == "" {
		t.Fatalf("the example estate has room to grow dev: %+v", mw)
	}
	before := snap(s)
	_, err = s.PlaceVMs(withPoolCount(p, "dev", "linux", mw.Current+mw.More+1), PlaceOptions{})
	var ue *UnfitError
	if !errors.As(err, &ue) {
		t.Fatalf("one worker past the limit: want an *UnfitError, got %v", err)
	}
	if r := ue.Reasons(); len(r) == 0 || r[0] != mw.LimitedBy {
		t.Fatalf("refused for %q, the what-if answer says %q", r, mw.LimitedBy)
	}
	if len(ue.VMs) != mw.More+1 || len(ue.Unplaced) != 0 {
		t.Fatalf("the refusal lists %d VMs to place (%d unplaced), want %d and 0", len(ue.VMs), len(ue.Unplaced), mw.More+1)
	}
	sameSnapshot(t, "a refused placement", before, snap(s))

	ch, err := s.PlaceVMs(withPoolCount(p, "dev", "linux", mw.Current+mw.More), PlaceOptions{})
	if err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if len(ch.Placed) != mw.More {
		t.Fatalf("placed %d, want %d", len(ch.Placed), mw.More)
	}
	checkBooks(t, s)
	// Growing in steps lands where growing at once does: placement is greedy in plan order and never
	// moves what runs.
	s2, _ := newSim(t, i, p)
	for n := mw.Current + 5; ; n += 5 {
		n = min(n, mw.Current+mw.More)
		if _, err := s2.PlaceVMs(withPoolCount(p, "dev", "linux", n), PlaceOptions{}); err != nil {
			t.Fatalf("step to %d: %v", n, err)
		}
		if n == mw.Current+mw.More {
			break
		}
	}
	if d := cmp.Diff(where(s.VMs()), where(s2.VMs())); d != "" {
		t.Fatalf("growing in steps placed differently (-at once +in steps):\n%s", d)
	}
}

// Deleting a cluster frees its hosts' capacity and its addresses and moves nothing else; the addresses
// are reused by the next placement.
func TestReleaseVMsFreesCapacityAndAddresses(t *testing.T) {
	i, p := twinEstate(t)
	// A node IP pool exactly as large as the estate needs: a third cluster does not fit until one is gone.
	full := mustEval(t, i, p)
	last, err := netip.ParseAddr(i.Spec.Network.IPPools[0].Start)
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k < full.Network.NodePool.Need; k++ {
		last = last.Next()
	}
	i.Spec.Network.IPPools = []IPRange{{Start: i.Spec.Network.IPPools[0].Start, End: last.String()}}
	i.valid = false
	s, clk := newSim(t, i, p)
	third := p.Clone()
	third.Spec.WorkloadClusters = append(third.Spec.WorkloadClusters, lightCluster("branch", 3))
	_, err = s.PlaceVMs(third, PlaceOptions{})
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("a third cluster with a full IP pool: want ErrPoolExhausted, got %v", err)
	}

	before := where(s.VMs())
	used := map[string]int{}
	for _, h := range s.Hosts() {
		used[h.Name] = h.MemoryUsedGiB
	}
	clk.Step(time.Minute)
	next := p.Clone()
	next.Spec.WorkloadClusters = next.Spec.WorkloadClusters[1:] // dev deleted
	snapBefore := snap(s)
	preview, err := s.Releasing(next)
	if err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "Releasing (a preview)", snapBefore, snap(s))
	ch, err := s.ReleaseVMs(next)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(where(preview), where(ch.Released)); d != "" {
		t.Fatalf("Releasing previewed other VMs than ReleaseVMs released (-preview +released):\n%s", d)
	}
	freed := map[string]int{}
	var devIPs []netip.Addr
	var names []string
	for _, v := range ch.Released {
		names = append(names, v.Name)
		freed[v.Host] += v.MemoryGiB
		devIPs = append(devIPs, v.IP)
		if before[v.Name].Host != v.Host {
			t.Fatalf("released %s is reported on %s, it ran on %s", v.Name, v.Host, before[v.Name].Host)
		}
	}
	if strings.Join(names, ",") != "dev-control-plane-0,dev-lb-0,dev-linux-0,dev-linux-1,dev-linux-2" {
		t.Fatalf("released %v, want dev's five VMs", names)
	}
	if len(ch.Events) != 5 || ch.Events[0].Type != VMReleased || ch.Events[0].At != t0.Add(time.Minute) || ch.Events[0].Host != ch.Released[0].Host {
		t.Fatalf("release events %+v", ch.Events)
	}
	for _, h := range s.Hosts() {
		if h.MemoryUsedGiB != used[h.Name]-freed[h.Name] {
			t.Fatalf("host %s uses %d GiB after the release, want %d - %d", h.Name, h.MemoryUsedGiB, used[h.Name], freed[h.Name])
		}
	}
	for _, v := range s.VMs() {
		if before[v.Name] != (spot{Host: v.Host, IP: v.IP.String()}) {
			t.Fatalf("VM %s moved from %v to %s/%s when dev was deleted", v.Name, before[v.Name], v.Host, v.IP)
		}
	}
	checkBooks(t, s)

	// The same cluster shape fits again in dev's place, on the addresses dev freed (the pool has no
	// others), and prod stays where it is.
	again := next.Clone()
	again.Spec.WorkloadClusters = append(again.Spec.WorkloadClusters, lightCluster("branch", 3))
	ch, err = s.PlaceVMs(again, PlaceOptions{})
	if err != nil {
		t.Fatalf("after dev's release: %v", err)
	}
	inUse := map[netip.Addr]string{}
	for _, v := range s.VMs() {
		if other, dup := inUse[v.IP]; dup {
			t.Fatalf("%s and %s share %s", v.Name, other, v.IP)
		}
		inUse[v.IP] = v.Name
		if b, ok := before[v.Name]; ok && b != (spot{Host: v.Host, IP: v.IP.String()}) {
			t.Fatalf("VM %s moved when branch was placed", v.Name)
		}
	}
	// Every address of the pool is held again, by a VM or a cluster's update reservation, none twice:
	// dev's were handed out anew.
	for _, r := range ch.Result.Network.Reservations {
		for _, a := range r.Addrs {
			if other, dup := inUse[a]; dup {
				t.Fatalf("reservation of %s takes %s, held by %s", r.Cluster, a, other)
			}
			inUse[a] = "reserved for " + r.Cluster
		}
	}
	if len(inUse) != full.Network.NodePool.Need {
		t.Fatalf("%d addresses held after branch was placed, the pool has %d", len(inUse), full.Network.NodePool.Need)
	}
	for _, a := range devIPs {
		if _, ok := inUse[a]; !ok {
			t.Fatalf("dev's address %s was not handed out again", a)
		}
	}
}

// A change is refused, changing nothing, when the plan does not add (PlaceVMs) or remove (ReleaseVMs)
// only, when it resizes a running VM, while something is pending and (placing) while a host is not Up.
func TestSimChangeRefusals(t *testing.T) {
	i, p := simEstate()
	s, clk := newSim(t, i, p)
	grown := withPoolCount(p, "a", "w", 3)
	shrunk := withPoolCount(p, "a", "w", 1)
	resized := p.Clone()
	resized.Spec.WorkloadClusters[0].NodePools[0].VMSize = "Standard_D8s_v3"
	cases := []struct {
		name string
		do   func() error
		is   error
		says string
	}{
		{"place drops a VM", func() error { _, err := s.PlaceVMs(shrunk, PlaceOptions{}); return err }, ErrInvalidSpec, "drops running VM(s) a-w-1"},
		{"release adds a VM", func() error { _, err := s.ReleaseVMs(grown); return err }, ErrInvalidSpec, "adds VM(s) a-w-2"},
		{"resize", func() error { _, err := s.PlaceVMs(resized, PlaceOptions{}); return err }, ErrInvalidSpec, "a running VM is not resized"},
		{"no plan", func() error { _, err := s.PlaceVMs(nil, PlaceOptions{}); return err }, ErrInvalidSpec, "no plan"},
		{"invalid plan", func() error { _, err := s.PlaceVMs(withPoolCount(p, "a", "w", -1), PlaceOptions{}); return err }, ErrInvalidSpec, "count"},
	}
	for _, c := range cases {
		before := snap(s)
		err := c.do()
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want %v saying %q", c.name, err, c.is, c.says)
		}
		sameSnapshot(t, c.name, before, snap(s))
	}

	// A live migration in flight: nothing changes until it is done.
	if _, err := s.DrainHost("h2"); err != nil {
		t.Fatal(err)
	}
	before := snap(s)
	if _, err := s.PlaceVMs(grown, PlaceOptions{}); !errors.Is(err, ErrNotAtRest) || !strings.Contains(err.Error(), "pending (due 2026-01-01T00:00:07Z)") {
		t.Fatalf("place during a migration: %v", err)
	}
	if _, err := s.ReleaseVMs(shrunk); !errors.Is(err, ErrNotAtRest) {
		t.Fatalf("release during a migration: %v", err)
	}
	sameSnapshot(t, "a change during a migration", before, snap(s))
	clk.Step(time.Minute)
	s.Advance()
	// h2 in maintenance: no placement (N-1 and the reserve count every host), but a release is fine.
	if _, err := s.PlaceVMs(grown, PlaceOptions{}); !errors.Is(err, ErrHostState) || !strings.Contains(err.Error(), "host h2 is Maintenance") {
		t.Fatalf("place with a host in maintenance: %v", err)
	}
	ch, err := s.ReleaseVMs(shrunk)
	if err != nil || len(ch.Released) != 1 || ch.Released[0].Name != "a-w-1" {
		t.Fatalf("release with a host in maintenance: %+v %v", ch, err)
	}
	checkBooks(t, s)
}

// Releasing the VMs a drain could not move away finishes the drain; a stranded VM is released from
// nowhere.
func TestReleaseVMsFinishesABlockedDrainAndFreesStranded(t *testing.T) {
	// 2 hosts of 16 GiB: management (8) on h1; control plane (4) and a-w-0 (8) on h2.
	i := inv("aks-hci-2022", 2, 16, true, 16)
	p := plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{Disabled: true}, NodePools: []NodePool{{Name: "w", VMSize: "Standard_A4_v2", Count: 1}}})
	s, clk := newSim(t, i, p, WithFailoverDelay(30*time.Second))
	if _, err := s.FailHost("h1"); err != nil {
		t.Fatal(err)
	}
	clk.Step(30 * time.Second)
	es := s.Advance()
	if len(es) != 1 || es[0].Type != VMStranded || es[0].VM != "management-0" {
		t.Fatalf("management should be stranded on the full h2: %+v", es)
	}
	if v := s.VMs()[0]; v.State != VMIsStrand || v.Reason != es[0].Reason || !strings.Contains(v.Reason, "needs 8 GiB") {
		t.Fatalf("the stranded VM's status carries the model's reason: %+v (event: %q)", v, es[0].Reason)
	}
	// h2 cannot be drained: h1 is down.
	es, err := s.DrainHost("h2")
	if err != nil || len(es) != 3 || es[1].Type != VMMigrationBlocked {
		t.Fatalf("drain h2: %+v %v", es, err)
	}
	clk.Step(time.Second)
	ch, err := s.ReleaseVMs(plan()) // cluster a deleted: h2 is empty, its drain is done
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "release", ch.Events, []ev{
		{31 * time.Second, VMReleased, "a-control-plane-0", "h2", "", ""},
		{31 * time.Second, VMReleased, "a-w-0", "h2", "", ""},
		{31 * time.Second, HostDrained, "", "h2", "", ""},
	})
	if h := s.Hosts()[1]; h.State != HostMaintenance || h.MemoryUsedGiB != 0 {
		t.Fatalf("h2 after the release: %+v", h)
	}
	// The stranded management VM can be released too (it ran nowhere).
	s2, clk2 := newSim(t, i, p, WithFailoverDelay(time.Second))
	_, _ = s2.FailHost("h2")
	clk2.Step(time.Second)
	s2.Advance()
	var stranded []string
	for _, v := range s2.VMs() {
		if v.State == VMIsStrand {
			stranded = append(stranded, v.Name)
		}
	}
	if len(stranded) == 0 {
		t.Fatal("precondition: losing h2 strands a VM of cluster a")
	}
	ch, err = s2.ReleaseVMs(plan())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ch.Released {
		if v.State == VMIsStrand && v.Host != "" {
			t.Fatalf("stranded %s released from host %q", v.Name, v.Host)
		}
	}
	checkBooks(t, s2)
}

// With AllowUnfit, a growth that breaks N-1 is placed (the verdict says so); VMs no host has room for
// are refused all the same.
func TestPlaceVMsAllowUnfit(t *testing.T) {
	i, p := simEstate()
	s, _ := newSim(t, i, p)
	mw, err := s.MoreWorkers("a", "w")
	if err != nil {
		t.Fatal(err)
	}
	over := withPoolCount(p, "a", "w", mw.Current+mw.More+1)
	if _, err := s.PlaceVMs(over, PlaceOptions{}); err == nil {
		t.Fatal("one worker past the limit was placed without AllowUnfit")
	}
	ch, err := s.PlaceVMs(over, PlaceOptions{AllowUnfit: true})
	if err != nil {
		t.Fatalf("AllowUnfit: %v", err)
	}
	if ch.Result.Fits || len(ch.Placed) != mw.More+1 {
		t.Fatalf("placed %d, verdict %s", len(ch.Placed), ch.Result.Summary())
	}
	checkBooks(t, s)
	before := snap(s)
	huge := withPoolCount(p, "a", "w", 1000)
	_, err = s.PlaceVMs(huge, PlaceOptions{AllowUnfit: true})
	var ue *UnfitError
	if !errors.As(err, &ue) || len(ue.Unplaced) == 0 || !strings.Contains(err.Error(), "placement: ") {
		t.Fatalf("VMs that find no host: want an *UnfitError naming the placement check, got %v", err)
	}
	sameSnapshot(t, "an unplaceable growth", before, snap(s))
}

// The same changes give the same events and placements.
func TestSimChangesDeterministic(t *testing.T) {
	run := func() ([]Event, []VMStatus) {
		i, p := twinEstate(t)
		s, clk := newSim(t, i, p)
		var all []Event
		do := func(ch *Change, err error) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ch.Events...)
		}
		without := p.Clone()
		without.Spec.WorkloadClusters = without.Spec.WorkloadClusters[1:]
		do(s.ReleaseVMs(without))
		clk.Step(time.Second)
		do(s.PlaceVMs(p, PlaceOptions{}))
		do(s.PlaceVMs(withPoolCount(p, "prod", "linux", 7), PlaceOptions{}))
		return all, s.VMs()
	}
	e1, v1 := run()
	e2, v2 := run()
	if !reflect.DeepEqual(e1, e2) || !reflect.DeepEqual(v1, v2) {
		t.Fatal("two runs of the same changes differ")
	}
	for k := 1; k < len(e1); k++ {
		if e1[k].Seq != e1[k-1].Seq+1 {
			t.Fatalf("event numbers skip at %d: %v then %v", k, e1[k-1], e1[k])
		}
	}
}

// Host snapshots carry the planner's capacities next to what is used.
func TestSimHostCapacities(t *testing.T) {
	i, p := twinEstate(t)
	s, _ := newSim(t, i, p)
	res := mustEval(t, i, p)
	for k, h := range s.Hosts() {
		r := res.Hosts[k]
		if h.VCPUCapacity != r.VCPUCapacity || h.MemoryCapacityGiB != r.MemoryCapacityGiB || h.VCPUUsed != r.VCPUUsed || h.MemoryUsedGiB != r.MemoryUsedGiB {
			t.Fatalf("host %s: sim %+v, planner %+v", h.Name, h, r)
		}
	}
}
