package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		return out.String() + err.Error(), exitCode(err)
	}
	return out.String(), 0
}

func writeRun(t *testing.T, dir, name string, seconds float64) string {
	t.Helper()
	r := &result.Run{Env: result.CurrentEnvironment()}
	r.Add(result.NewMetric("twin.up.seconds", "s", result.Lower, []float64{seconds}))
	p := filepath.Join(dir, name)
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReportCompareExitCodes(t *testing.T) {
	dir := t.TempDir()
	base := writeRun(t, dir, "base.json", 20)
	same := writeRun(t, dir, "same.json", 20)
	slow := writeRun(t, dir, "slow.json", 30)

	if out, code := runCLI(t, "report", "compare", base, same); code != 0 || !strings.Contains(out, "PASS") {
		t.Errorf("self-compare: exit %d\n%s", code, out)
	}
	out, code := runCLI(t, "report", "compare", base, slow, "--threshold", "10%")
	if code != 1 || !strings.Contains(out, "twin.up.seconds") || !strings.Contains(out, "50.0% worse") {
		t.Errorf("doctored slower run: exit %d\n%s", code, out)
	}
	if _, code := runCLI(t, "report", "compare", base, slow, "--threshold", "60%"); code != 0 {
		t.Errorf("within a 60%% threshold: exit %d", code)
	}
	if out, code := runCLI(t, "report", "compare", base, filepath.Join(dir, "missing.json")); code != 2 || !strings.Contains(out, "missing.json") {
		t.Errorf("unreadable file: exit %d\n%s", code, out)
	}
	html := filepath.Join(dir, "cmp.html")
	if _, code := runCLI(t, "report", "compare", base, slow, "-o", "html", "--out", html, "--history", same); code != 1 {
		t.Errorf("html: exit %d", code)
	}
}

// driverResult writes one driver's result file as the drivers do, into dir.
func driverResult(t *testing.T, dir, name string, env result.Environment, metrics ...result.Metric) string {
	t.Helper()
	r := &result.Run{RunAt: time.Now().UTC(), Env: env}
	for _, m := range metrics {
		r.Add(m)
	}
	p := filepath.Join(dir, name)
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// gobenchOnThisMachine copies recorded go test -bench output with its "cpu:" line replaced by cpu (this
// machine's model), into a temporary file whose path it returns.
func gobenchOnThisMachine(t *testing.T, fixture, cpu string) string {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	replaced := false
	for i, l := range lines {
		if strings.HasPrefix(l, "cpu:") {
			lines[i], replaced = "cpu: "+cpu, true
		}
	}
	if !replaced {
		t.Fatalf("%s has no cpu: line", fixture)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(fixture))
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBenchRunChain is the chain `go tool task bench` runs after the drivers: go test -bench output to a
// result file, the drivers' files merged into bench.json, the machine kind that names the baseline, and
// the comparison: the run against itself passes, against a doctored slower copy fails naming the metric.
func TestBenchRunChain(t *testing.T) {
	run := filepath.Join(t.TempDir(), "20261121T180000Z")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	env := result.CurrentEnvironment()
	twinEnv := env
	twinEnv.TimeProfile, twinEnv.PinsVersion = "fast", "pins/v3"
	twinEnv.Tools = map[string]string{"kube-apiserver": "v1.33.13", "gitea": "v1.26.4"}
	twinEnv.Notes = []string{"examples/twin.yaml"}
	driverResult(t, run, "twin-up.json", twinEnv,
		result.NewMetric("twin.up.ready.seconds", "s", result.Lower, []float64{13.1, 13.6, 14.0}))
	driverResult(t, run, "failover.json", twinEnv,
		result.NewMetric("failover.crash.notready.seconds", "s", result.Lower, []float64{11.2, 11.4, 11.3}),
		result.NewMetric("failover.crash.healthy.seconds", "s", result.Lower, []float64{15.4, 16.0, 15.8}))
	// A driver's own detail file in the run directory is skipped, not an error.
	if err := os.WriteFile(filepath.Join(run, "cluster-start.json"), []byte(`{"schema":"cluster-start/v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	// go test -bench output (real output of the planner benchmarks) becomes a result file. The fixture was
	// recorded on another machine: its "cpu:" line is set to this machine's CPU model, as go test would
	// print it here, so the merge below sees one machine whatever CPU runs the test.
	out, code := runCLI(t, "report", "gobench", "-o", filepath.Join(run, "hardware-planner.json"), "--note", "go test ./hardware -bench .",
		gobenchOnThisMachine(t, filepath.Join("..", "..", "bench", "result", "testdata", "gobench-hardware-registry.txt"), env.CPUModel))
	if code != 0 || !strings.Contains(out, "wrote 26 metrics") {
		t.Fatalf("gobench: exit %d\n%s", code, out)
	}
	if out, code := runCLI(t, "report", "gobench", filepath.Join(t.TempDir(), "none.txt")); code != 2 || !strings.Contains(out, "none.txt") {
		t.Errorf("gobench of a missing file: exit %d\n%s", code, out)
	}

	bench := filepath.Join(run, "bench.json")
	out, code = runCLI(t, "report", "merge", "-o", bench, run)
	if code != 0 || !strings.Contains(out, "merged 29 metrics") || !strings.Contains(out, "skipping") || !strings.Contains(out, env.MachineKind()) {
		t.Fatalf("merge: exit %d\n%s", code, out)
	}
	merged, err := result.Read(bench)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Parts) != 3 || merged.Env.TimeProfile != "fast" || merged.Env.Tools["gitea"] != "v1.26.4" {
		t.Fatalf("merged run: parts %+v env %+v", merged.Parts, merged.Env)
	}
	// Merging again (bench.json now sits in the directory) leaves bench.json out of its own input.
	if out, code := runCLI(t, "report", "merge", "-o", bench, run); code != 0 || !strings.Contains(out, "merged 29 metrics") {
		t.Fatalf("second merge: exit %d\n%s", code, out)
	}
	if out, _ := runCLI(t, "report", "machine-kind", bench); strings.TrimSpace(out) != env.MachineKind() {
		t.Errorf("machine-kind = %q, want %q", out, env.MachineKind())
	}

	if out, code := runCLI(t, "report", "compare", bench, bench, "--threshold", "15%"); code != 0 || !strings.Contains(out, "PASS") {
		t.Errorf("compare with itself: exit %d\n%s", code, out)
	}
	// The doctored copy: every sample of the failover healthy time 40% slower.
	doctored := *merged
	doctored.Metrics = append([]result.Metric(nil), merged.Metrics...)
	for i, m := range doctored.Metrics {
		if m.Name == "failover.crash.healthy.seconds" {
			var s []float64
			for _, v := range m.Samples {
				s = append(s, v*1.4)
			}
			doctored.Metrics[i] = result.NewMetric(m.Name, m.Unit, m.Better, s)
		}
	}
	slower := filepath.Join(t.TempDir(), "slower.json")
	if err := doctored.Write(slower); err != nil {
		t.Fatal(err)
	}
	out, code = runCLI(t, "report", "compare", bench, slower, "--threshold", "15%")
	if code != 1 || !strings.Contains(out, "FAIL: 1 metric(s)") || !strings.Contains(out, "regressed beyond 15% (or its own noise, if larger): failover.crash.healthy.seconds") {
		t.Errorf("compare with a doctored slower copy: exit %d\n%s", code, out)
	}
	html := filepath.Join(t.TempDir(), "compare.html")
	if _, code := runCLI(t, "report", "compare", bench, slower, "--threshold", "15%", "-o", "html", "--out", html); code != 1 {
		t.Errorf("html compare: exit %d", code)
	}
	if page, err := os.ReadFile(html); err != nil || !strings.Contains(string(page), "failover.crash.healthy.seconds") {
		t.Errorf("html compare does not name the metric: %v", err)
	}

	// A part from another machine is refused, naming the field, and nothing is written.
	other := env
	other.Cores = env.Cores + 6
	driverResult(t, run, "validate.json", other, result.NewMetric("validate.static.2000objects.seconds", "s", result.Lower, []float64{1.7}))
	fresh := filepath.Join(t.TempDir(), "bench.json")
	out, code = runCLI(t, "report", "merge", "-o", fresh, run)
	if code != 2 || !strings.Contains(out, "cores:") || !strings.Contains(out, "validate") {
		t.Errorf("merge across machines: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a refused merge wrote %s", fresh)
	}
}
