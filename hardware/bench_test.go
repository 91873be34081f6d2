package hardware

import (
	"syscall"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// BenchmarkEvaluate measures full plan evaluations (limits, S2D, placement, reserve, N-1 over every host, IP
// and VIP allocation) of the example estates with the example plan. Goal (issue 3): >= 10,000 evaluations/s.
// Record results in bench/results/hardware-planner.json.
func BenchmarkEvaluate(b *testing.B) {
	for _, name := range []string{"edge-2node", "branch-4node", "datacenter-8node"} {
		b.Run(name, func(b *testing.B) {
			i, p, err := LoadFiles("../examples/hardware/"+name+".yaml", "../examples/hardware/plan.yaml")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := Evaluate(i, p); err != nil {
					b.Fatal(err)
				}
			}
			reportRates(b, cpuTime()-cpu0, "evals")
		})
	}
}

// cpuTime is the process's user+system CPU time. On a shared machine the wall-clock rate drops with the
// load; the CPU-time rate is what one core does for this code (GC included, as it runs in the process).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRates(b *testing.B, cpu time.Duration, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), unit+"/cpu-s")
	}
}

// BenchmarkEvaluateLarge is a full aks-arc-23h2 estate: 16 hosts, 8 clusters of 3 control plane nodes and
// 2 pools of 12 workers (225 VMs), N-1 over all 16 hosts.
func BenchmarkEvaluateLarge(b *testing.B) {
	i := inv("aks-arc-23h2", 16, 64, true, 1024)
	var cs []WorkloadCluster
	for k := 0; k < 8; k++ {
		cs = append(cs, WorkloadCluster{Name: string(rune('a' + k)), ControlPlane: ControlPlaneSpec{Count: 3, VMSize: "Standard_A4_v2"}, LoadBalancerServices: 5,
			NodePools: []NodePool{{Name: "lin", VMSize: "Standard_D8s_v3", Count: 12}, {Name: "win", OSType: Windows, Count: 12}}})
	}
	p := plan(cs...)
	if r, err := Evaluate(i, p); err != nil || !r.Fits {
		b.Fatalf("large plan should fit: %v %s", err, r.Summary())
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := Evaluate(i, p); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, cpuTime()-cpu0, "evals")
}

// BenchmarkAnalyze adds the what-if questions (minimal host count, more workers per pool), which run many
// evaluations each.
func BenchmarkAnalyze(b *testing.B) {
	i, p, err := LoadFiles("../examples/hardware/branch-4node.yaml", "../examples/hardware/plan.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := Analyze(i, p); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, cpuTime()-cpu0, "analyses")
}

// BenchmarkSimDrainCrash drains one host and crashes another on the 8-node example, to the last event.
func BenchmarkSimDrainCrash(b *testing.B) {
	i, p, err := LoadFiles("../examples/hardware/datacenter-8node.yaml", "../examples/hardware/plan.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		clk := clocktesting.NewFakeClock(t0)
		s, err := NewSim(i, p, WithClock(clk))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = s.DrainHost("dc-hci-01")
		_, _ = s.FailHost("dc-hci-02")
		clk.Step(time.Hour)
		s.Advance()
	}
}
