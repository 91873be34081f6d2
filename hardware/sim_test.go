package hardware

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSim(t *testing.T, i *Inventory, p *Plan, opts ...SimOption) (*Sim, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	s, err := NewSim(i, p, append([]SimOption{WithClock(clk)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

type ev struct {
	at       time.Duration
	typ      EventType
	vm, host string
	from, to string
}

func summarize(es []Event) []ev {
	out := make([]ev, len(es))
	for i, e := range es {
		out[i] = ev{e.At.Sub(t0), e.Type, e.VM, e.Host, e.From, e.To}
	}
	return out
}

func expect(t *testing.T, what string, got []Event, want []ev) {
	t.Helper()
	if g := summarize(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, g, want)
	}
}

// checkBooks verifies the capacity books when nothing is in flight: each host's usage is exactly its VMs.
func checkBooks(t *testing.T, s *Sim) {
	t.Helper()
	mem := map[string]int{}
	for _, v := range s.VMs() {
		if v.Host != "" {
			mem[v.Host] += v.MemoryGiB
		}
		if (v.State == VMRunning) != (v.Host != "") {
			t.Fatalf("VM %s is %s on host %q", v.Name, v.State, v.Host)
		}
	}
	for _, h := range s.Hosts() {
		if h.MemoryUsedGiB != mem[h.Name] {
			t.Fatalf("host %s books %d GiB but its VMs use %d", h.Name, h.MemoryUsedGiB, mem[h.Name])
		}
	}
}

// simEstate: 3 hosts of 128 GiB; management (8 GiB) on h1, the control plane (4) and a-w-1 (8) on h2, a-w-0
// (8) on h3, by the placement rule.
func simEstate() (*Inventory, *Plan) {
	return inv("aks-hci-2022", 3, 32, true, 128), plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{Disabled: true},
		NodePools: []NodePool{{Name: "w", VMSize: "Standard_A4_v2", Count: 2}}})
}

// Live migration time at the defaults (10 Gbit/s shared by 2 parallel migrations, 0.5 s blackout):
// 4 GiB = 34.36 Gbit at 5 Gbit/s = 6.872 s + 0.5 s; 8 GiB = 13.744 s + 0.5 s.
const (
	lm4GiB = 7372 * time.Millisecond
	lm8GiB = 14244 * time.Millisecond
)

func TestSimDrainByLiveMigration(t *testing.T) {
	i, p := simEstate()
	s, clk := newSim(t, i, p)
	if h := s.Hosts(); strings.Join(h[1].VMs, ",") != "a-control-plane-0,a-w-1" {
		t.Fatalf("initial placement %+v", h)
	}
	es, err := s.DrainHost("h2")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "drain start", es, []ev{
		{0, HostDraining, "", "h2", "", ""},
		{0, VMMigrationStarted, "a-control-plane-0", "h2", "h2", "h1"},
		{0, VMMigrationStarted, "a-w-1", "h2", "h2", "h1"},
	})
	if es[1].Duration != lm4GiB || es[2].Duration != lm8GiB {
		t.Fatalf("migration durations %v %v, want %v %v", es[1].Duration, es[2].Duration, lm4GiB, lm8GiB)
	}
	clk.Step(lm4GiB - time.Millisecond)
	if es := s.Advance(); len(es) != 0 {
		t.Fatalf("nothing is due before %v, got %+v", lm4GiB, es)
	}
	clk.Step(time.Hour) // Advance processes everything due, at the time it was due
	es = s.Advance()
	expect(t, "drain end", es, []ev{
		{lm4GiB, VMMigrated, "a-control-plane-0", "h1", "h2", "h1"},
		{lm8GiB, VMMigrated, "a-w-1", "h1", "h2", "h1"},
		{lm8GiB, HostDrained, "", "h2", "", ""},
	})
	if es[0].Blackout != 500*time.Millisecond {
		t.Fatalf("blackout %v", es[0].Blackout)
	}
	checkBooks(t, s)
	if st := s.Hosts()[1].State; st != HostMaintenance {
		t.Fatalf("h2 is %s after the drain", st)
	}
	if _, err := s.DrainHost("h2"); !errors.Is(err, ErrHostState) {
		t.Fatalf("draining a drained host: %v", err)
	}
}

func TestSimMigrationBandwidthAndLanes(t *testing.T) {
	i, p := simEstate()
	// One lane at 25 Gbit/s and a 100 ms blackout, one migration after another:
	// 4 GiB = 34.36 Gbit / 25 = 1.374 s + 0.1 s; 8 GiB = 68.72 Gbit / 25 = 2.749 s + 0.1 s.
	s, clk := newSim(t, i, p, WithMigrationBandwidth(25), WithMaxParallelMigrations(1), WithMigrationBlackout(100*time.Millisecond))
	es, _ := s.DrainHost("h2")
	if len(es) != 2 || es[1].Duration != 1474*time.Millisecond {
		t.Fatalf("one lane: %+v", es)
	}
	clk.Step(time.Minute)
	es = s.Advance()
	// The second migration starts when the first ends.
	expect(t, "serial lanes", es, []ev{
		{1474 * time.Millisecond, VMMigrated, "a-control-plane-0", "h1", "h2", "h1"},
		{1474 * time.Millisecond, VMMigrationStarted, "a-w-1", "h2", "h2", "h1"},
		{1474*time.Millisecond + 2849*time.Millisecond, VMMigrated, "a-w-1", "h1", "h2", "h1"},
		{1474*time.Millisecond + 2849*time.Millisecond, HostDrained, "", "h2", "", ""},
	})
}

func TestSimCrashRestartsAfterFailoverDelay(t *testing.T) {
	i, p := simEstate()
	s, clk := newSim(t, i, p)
	es, err := s.FailHost("h2")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "crash", es, []ev{
		{0, HostDown, "", "h2", "", ""},
		{0, VMDown, "a-control-plane-0", "h2", "", ""},
		{0, VMDown, "a-w-1", "h2", "", ""},
	})
	at, ok := s.NextAt()
	if !ok || at.Sub(t0) != 10*time.Second {
		t.Fatalf("restart due at %v, want +10s (1 s heartbeat x 10 missed)", at.Sub(t0))
	}
	clk.Step(10*time.Second - time.Millisecond)
	if es := s.Advance(); len(es) != 0 {
		t.Fatalf("restarted before the failover delay: %+v", es)
	}
	clk.Step(time.Millisecond)
	// Both go to h1: the control plane by most free memory (a tie with h3, lowest index wins), a-w-1 away
	// from its pool mate a-w-0 on h3.
	expect(t, "restart", s.Advance(), []ev{
		{10 * time.Second, VMRestarted, "a-control-plane-0", "h1", "", "h1"},
		{10 * time.Second, VMRestarted, "a-w-1", "h1", "", "h1"},
	})
	checkBooks(t, s)
	// Repair: the host comes back empty (no failback).
	es, _ = s.RepairHost("h2")
	expect(t, "repair", es, []ev{{10 * time.Second, HostRepaired, "", "h2", "", ""}})
	if len(s.Hosts()[1].VMs) != 0 {
		t.Fatal("VMs failed back")
	}
}

func TestSimStrandedUntilRepair(t *testing.T) {
	// 2 hosts of 16 GiB: management (8) on h1; control plane (4) and a-w-0 (8) on h2.
	i := inv("aks-hci-2022", 2, 16, true, 16)
	p := plan(WorkloadCluster{Name: "a", LoadBalancer: LoadBalancerSpec{Disabled: true}, NodePools: []NodePool{{Name: "w", VMSize: "Standard_A4_v2", Count: 1}}})
	s, clk := newSim(t, i, p, WithFailoverDelay(30*time.Second))
	if _, err := s.FailHost("h2"); err != nil {
		t.Fatal(err)
	}
	clk.Step(30 * time.Second)
	es := s.Advance()
	expect(t, "restart with too little room", es, []ev{
		{30 * time.Second, VMRestarted, "a-control-plane-0", "h1", "", "h1"},
		{30 * time.Second, VMStranded, "a-w-0", "", "", ""},
	})
	if !strings.Contains(es[1].Reason, "needs 8 GiB") || !strings.Contains(es[1].Reason, "4 GiB") {
		t.Fatalf("stranded reason %q should say what is short", es[1].Reason)
	}
	checkBooks(t, s)
	// A planned drain of h1 now has nowhere to go: blocked, and h1 stays Draining.
	es, _ = s.DrainHost("h1")
	if len(es) != 3 || es[1].Type != VMMigrationBlocked || es[2].Type != VMMigrationBlocked || s.Hosts()[0].State != HostInDraining {
		t.Fatalf("blocked drain: %+v", es)
	}
	clk.Step(time.Minute)
	es, _ = s.RepairHost("h2")
	expect(t, "repair restarts the stranded VM", es, []ev{
		{90 * time.Second, HostRepaired, "", "h2", "", ""},
		{90 * time.Second, VMRestarted, "a-w-0", "h2", "", "h2"},
	})
	checkBooks(t, s)
}

func TestSimCrashOfMigrationTarget(t *testing.T) {
	i, p := simEstate()
	s, clk := newSim(t, i, p)
	if _, err := s.DrainHost("h2"); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	// h1, the target of both migrations, crashes: the migrations go back to h2's queue and restart towards
	// h3; management goes down with h1 and restarts on h3 after the failover delay.
	es, err := s.FailHost("h1")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "target crash", es, []ev{
		{time.Second, HostDown, "", "h1", "", ""},
		{time.Second, VMDown, "management-0", "h1", "", ""},
		{time.Second, VMMigrationStarted, "a-control-plane-0", "h2", "h2", "h3"},
		{time.Second, VMMigrationStarted, "a-w-1", "h2", "h2", "h3"},
	})
	clk.Step(time.Minute)
	es = s.Advance()
	expect(t, "after", es, []ev{
		{time.Second + lm4GiB, VMMigrated, "a-control-plane-0", "h3", "h2", "h3"},
		{11 * time.Second, VMRestarted, "management-0", "h3", "", "h3"},
		{time.Second + lm8GiB, VMMigrated, "a-w-1", "h3", "h2", "h3"},
		{time.Second + lm8GiB, HostDrained, "", "h2", "", ""},
	})
	checkBooks(t, s)
	for _, v := range s.VMs() {
		if v.Host != "h3" || v.State != VMRunning {
			t.Fatalf("%s is %s on %q, want Running on h3", v.Name, v.State, v.Host)
		}
	}
}

func TestSimCrashOfMigrationSource(t *testing.T) {
	i, p := simEstate()
	s, clk := newSim(t, i, p)
	_, _ = s.DrainHost("h2")
	clk.Step(time.Second)
	es, _ := s.FailHost("h2") // the draining host itself crashes mid-migration: its VMs go down
	expect(t, "source crash", es, []ev{
		{time.Second, HostDown, "", "h2", "", ""},
		{time.Second, VMDown, "a-control-plane-0", "h2", "", ""},
		{time.Second, VMDown, "a-w-1", "h2", "", ""},
	})
	checkBooks(t, s)
	clk.Step(time.Minute)
	if es := s.Advance(); len(es) != 2 || es[0].Type != VMRestarted || es[1].Type != VMRestarted {
		t.Fatalf("restarts after the failover delay only, no stale migration: %+v", es)
	}
	checkBooks(t, s)
}

func TestSimDeterministic(t *testing.T) {
	run := func() []Event {
		i, p := loadExample(t, "branch-4node")
		s, clk := newSim(t, i, p)
		var all []Event
		add := func(es []Event, err error) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, es...)
		}
		add(s.DrainHost("br-hci-01"))
		clk.Step(5 * time.Second)
		all = append(all, s.Advance()...)
		add(s.FailHost("br-hci-03"))
		for k := 0; k < 10; k++ {
			clk.Step(7 * time.Second)
			all = append(all, s.Advance()...)
		}
		add(s.RepairHost("br-hci-03"))
		add(s.RepairHost("br-hci-01"))
		return all
	}
	a, b := run(), run()
	if len(a) < 10 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs differ or are too short (%d events)", len(a))
	}
	for k := 1; k < len(a); k++ {
		if a[k].At.Before(a[k-1].At) || a[k].Seq != a[k-1].Seq+1 {
			t.Fatalf("events out of order at %d: %v then %v", k, a[k-1], a[k])
		}
	}
}

func TestSimErrors(t *testing.T) {
	i, p := simEstate()
	if _, err := NewSim(i, p); !errors.Is(err, ErrNoClock) {
		t.Fatalf("no clock: %v", err)
	}
	s, _ := newSim(t, i, p)
	if _, err := s.FailHost("nope"); !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("unknown host: %v", err)
	}
	if _, err := s.RepairHost("h1"); !errors.Is(err, ErrHostState) {
		t.Fatalf("repairing an Up host: %v", err)
	}
	_, _ = s.FailHost("h1")
	if _, err := s.FailHost("h1"); !errors.Is(err, ErrHostState) {
		t.Fatalf("failing a Down host: %v", err)
	}
	if _, err := s.DrainHost("h1"); !errors.Is(err, ErrHostState) {
		t.Fatalf("draining a Down host: %v", err)
	}
}

// NewSimOf starts from a result evaluated already (a twin spec's verdict) exactly as NewSim does, and
// leaves that result as it was when the simulation changes.
func TestSimOfAnEvaluatedPlan(t *testing.T) {
	i, p := simEstate()
	res, err := Evaluate(i, p)
	if err != nil {
		t.Fatal(err)
	}
	before := append([]VM(nil), res.VMs...)
	want, _ := newSim(t, i, p)
	got, err := NewSimOf(i, p, res, WithClock(clocktesting.NewFakeClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.VMs(), want.VMs()) || !reflect.DeepEqual(got.Hosts(), want.Hosts()) {
		t.Fatalf("NewSimOf placed\n%+v\nNewSim\n%+v", got.VMs(), want.VMs())
	}
	if _, err := got.FailHost("h2"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.VMs, before) {
		t.Errorf("the evaluated result changed with the simulation")
	}
}
