package result

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// testdata/gobench-hardware-registry.txt is real output of
// `go test -run '^$' -bench . -benchtime 200x -count 2 ./hardware/ ./twin/registry/` on this machine.
func TestParseGoBenchRealOutput(t *testing.T) {
	f, err := os.Open("testdata/gobench-hardware-registry.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run, err := ParseGoBench(f, "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		unit    string
		better  Better
		samples []float64
		goal    bool
	}{
		{"hardware.evaluate.edge-2node.evals_per_s", "evals/s", Higher, []float64{60278, 80962}, true},
		{"hardware.evaluate.edge-2node.evals_per_cpu_s", "evals/cpu-s", Higher, []float64{54645, 79650}, false},
		{"hardware.evaluate.datacenter-8node.ns_per_op", "ns/op", Lower, []float64{12517, 11874}, false},
		{"hardware.evaluate.branch-4node.bytes_per_op", "B/op", Lower, []float64{12840, 12840}, false},
		{"hardware.evaluate.branch-4node.allocs_per_op", "allocs/op", Lower, []float64{87, 87}, false},
		{"hardware.evaluate-large.evals_per_s", "evals/s", Higher, []float64{8025, 6100}, false},
		{"hardware.analyze.analyses_per_s", "analyses/s", Higher, []float64{989.6, 393.2}, false},
		{"hardware.sim-drain-crash.ns_per_op", "ns/op", Lower, []float64{28407, 36184}, false},
		{"registry.publish.ns_per_op", "ns/op", Lower, []float64{64600702, 81749774}, false},
		{"registry.start.ns_per_op", "ns/op", Lower, []float64{2428007, 2822459}, false},
	}
	for _, c := range cases {
		m, ok := run.Metric(c.name)
		if !ok {
			t.Errorf("no metric %s", c.name)
			continue
		}
		if m.Unit != c.unit || m.Better != c.better || len(m.Samples) != len(c.samples) || (m.Goal != nil) != c.goal {
			t.Errorf("%s = unit %q better %s samples %v goal %v", c.name, m.Unit, m.Better, m.Samples, m.Goal)
			continue
		}
		for i := range c.samples {
			if m.Samples[i] != c.samples[i] {
				t.Errorf("%s samples = %v, want %v", c.name, m.Samples, c.samples)
				break
			}
		}
	}
	if n := len(run.Metrics); n != 26 {
		t.Errorf("%d metrics, want 26 (5 units x 3 estates, 5 large, 3 analyze, 1 sim, 2 registry)", n)
	}
	if run.Env.CPUModel != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpu model %q", run.Env.CPUModel)
	}
	if g, _ := run.Metric("hardware.evaluate.edge-2node.evals_per_s"); g.Goal.Value != 10000 || !strings.Contains(g.Goal.Source, "issue 3") {
		t.Errorf("planner goal = %+v", g.Goal)
	}
}

func TestParseGoBenchNamesAndFailures(t *testing.T) {
	t.Run("split line, prefix, no procs suffix", func(t *testing.T) {
		out := "BenchmarkPushVisible\nsome output of the code under test\n       5\t  300000000 ns/op\t 12.5 MB/s\n" +
			"BenchmarkStart-1 \t 3 \t 2.5 s-to-ready\n"
		run, err := ParseGoBench(strings.NewReader(out), "gitserver")
		if err != nil {
			t.Fatal(err)
		}
		for name, better := range map[string]Better{"gitserver.push-visible.ns_per_op": Lower, "gitserver.push-visible.mb_per_s": Higher, "gitserver.start-1.s_to_ready": Lower} {
			if m, ok := run.Metric(name); !ok || m.Better != better {
				t.Errorf("%s: %+v, %v (have %v)", name, m, ok, names(run))
			}
		}
	})
	for name, out := range map[string]string{
		"failed":      "pkg: x/hardware\nBenchmarkA-2 \t 10 \t 5 ns/op\n--- FAIL: BenchmarkB-2\n    b_test.go:10: boom\nFAIL\n",
		"empty":       "PASS\nok  \tx/hardware\t0.1s\n",
		"no pkg line": "BenchmarkA-2 \t 10 \t 5 ns/op\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseGoBench(strings.NewReader(out), "")
			if !errors.Is(err, ErrGoBench) {
				t.Fatalf("err = %v, want ErrGoBench", err)
			}
			if name == "failed" && !strings.Contains(err.Error(), "--- FAIL: BenchmarkB-2") {
				t.Errorf("the error does not name the failed benchmark: %v", err)
			}
		})
	}
}

func names(r *Run) []string {
	var out []string
	for _, m := range r.Metrics {
		out = append(out, m.Name)
	}
	return out
}
