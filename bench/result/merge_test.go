package result

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func machineEnv() Environment {
	return Environment{Cores: 2, MemoryBytes: 25274793984, CPUModel: "Intel(R) Xeon(R) Processor", GOOS: "linux", GOARCH: "amd64", GoVersion: "go1.26.8"}
}

func part(name string, at time.Time, env Environment, metrics ...Metric) Part {
	r := &Run{Schema: Schema, RunAt: at, Env: env}
	for _, m := range metrics {
		r.Add(m)
	}
	return Part{Name: name, Run: r}
}

func TestMergeKeepsEveryMetricAndUnitesTheEnvironment(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 18, 0, 0, 0, time.UTC)
	planner := machineEnv()
	planner.Notes = []string{"3 samples per metric"}
	twin := machineEnv()
	twin.MemoryBytes = 25273827328 // bench/clusterstart keeps whole MiB: the same machine
	twin.PinsVersion, twin.TimeProfile = "pins/v2", "fast"
	twin.Tools = map[string]string{"kube-apiserver": "v1.33.13", "gitea": "v1.26.4"}
	twin.Notes = []string{"examples/twin.yaml"}
	rec := machineEnv()
	rec.PinsVersion = "pins/v2"
	rec.Tools = map[string]string{"kube-apiserver": "v1.33.13", "etcd": "v3.5.21"}
	got, err := Merge(
		part("hardware-planner", t0.Add(time.Minute), planner, NewMetric("hardware.evaluate.edge-2node.evals_per_s", "evals/s", Higher, []float64{3, 1, 2})),
		part("twin-up", t0.Add(2*time.Minute), twin, NewMetric("twin.up.ready.seconds", "s", Lower, []float64{13})),
		part("reconciler", t0, rec, NewMetric("reconciler.scale.100.allReadySeconds", "s", Lower, []float64{0.3})),
	)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got.Metrics {
		names = append(names, m.Name)
	}
	want := []string{"hardware.evaluate.edge-2node.evals_per_s", "reconciler.scale.100.allReadySeconds", "twin.up.ready.seconds"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	wantEnv := Environment{Cores: 2, MemoryBytes: 25274793984, CPUModel: "Intel(R) Xeon(R) Processor", GOOS: "linux", GOARCH: "amd64",
		GoVersion: "go1.26.8", PinsVersion: "pins/v2", TimeProfile: "fast",
		Tools: map[string]string{"kube-apiserver": "v1.33.13", "gitea": "v1.26.4", "etcd": "v3.5.21"},
		Notes: []string{"hardware-planner: 3 samples per metric", "twin-up: examples/twin.yaml"}}
	if diff := cmp.Diff(wantEnv, got.Env); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	if !got.RunAt.Equal(t0) {
		t.Errorf("runAt = %v, want the earliest part's %v", got.RunAt, t0)
	}
	if len(got.Parts) != 3 || got.Parts[1].Name != "twin-up" || got.Parts[1].Metrics != 1 {
		t.Errorf("parts = %+v", got.Parts)
	}
	// The merged run is a valid result file.
	p := filepath.Join(t.TempDir(), "bench.json")
	if err := got.Write(p); err != nil {
		t.Fatal(err)
	}
	back, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Metrics) != 3 || len(back.Parts) != 3 {
		t.Fatalf("read back %d metrics, %d parts", len(back.Metrics), len(back.Parts))
	}
}

func TestMergeRefusesWhatDoesNotBelongToOneRun(t *testing.T) {
	m := func(n string) Metric { return NewMetric(n, "s", Lower, []float64{1}) }
	other := func(change func(*Environment)) Environment {
		e := machineEnv()
		change(&e)
		return e
	}
	cases := []struct {
		name  string
		parts []Part
		want  []string // every one must be named in the error
	}{
		{"cores", []Part{part("a", time.Time{}, machineEnv(), m("a.x")), part("b", time.Time{}, other(func(e *Environment) { e.Cores = 8 }), m("b.x"))},
			[]string{"cores: a records 2, b records 8"}},
		{"memory", []Part{part("a", time.Time{}, machineEnv(), m("a.x")), part("b", time.Time{}, other(func(e *Environment) { e.MemoryBytes = 16 << 30 }), m("b.x"))},
			[]string{"memory: a records 25274793984 bytes, b records 17179869184 bytes"}},
		{"cpu", []Part{part("a", time.Time{}, machineEnv(), m("a.x")), part("b", time.Time{}, other(func(e *Environment) { e.CPUModel = "AMD EPYC" }), m("b.x"))},
			[]string{`cpuModel: a records "Intel(R) Xeon(R) Processor", b records "AMD EPYC"`}},
		{"same metric twice and a tool at two versions", []Part{
			part("a", time.Time{}, other(func(e *Environment) { e.Tools = map[string]string{"etcd": "v3.5.21"} }), m("x.y")),
			part("b", time.Time{}, other(func(e *Environment) { e.Tools = map[string]string{"etcd": "v3.4.23"} }), m("x.y"))},
			[]string{"metric x.y: in both a and b", `tool etcd: a records "v3.5.21", b records "v3.4.23"`}},
		{"time profile", []Part{part("a", time.Time{}, other(func(e *Environment) { e.TimeProfile = "fast" }), m("a.x")),
			part("b", time.Time{}, other(func(e *Environment) { e.TimeProfile = "real" }), m("b.x"))},
			[]string{`timeProfile: a records "fast", b records "real"`}},
		{"nothing", nil, []string{"no results given"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Merge(c.parts...)
			if !errors.Is(err, ErrMerge) {
				t.Fatalf("err = %v, want ErrMerge", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestPartNameAndMachineKind(t *testing.T) {
	for in, want := range map[string]string{"out/bench/x/cluster-start.bench.json": "cluster-start", "failover.json": "failover", "/a/hardware-planner.json": "hardware-planner"} {
		if got := PartName(in); got != want {
			t.Errorf("PartName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := machineEnv().MachineKind(); got != "linux-amd64-2cpu-24gib" {
		t.Errorf("MachineKind = %q", got)
	}
	e := machineEnv()
	e.Cores, e.MemoryBytes, e.GOARCH = 4, 16<<30-200<<20, "arm64"
	if got := e.MachineKind(); got != "linux-arm64-4cpu-16gib" {
		t.Errorf("MachineKind = %q", got)
	}
}

func TestOutPath(t *testing.T) {
	t.Setenv(EnvDir, "")
	if p, err := OutPath("x.json"); err != nil || p != filepath.Join("..", "results", "x.json") {
		t.Fatalf("default: %q, %v", p, err)
	}
	dir := filepath.Join(t.TempDir(), "run", "20261121T180000Z")
	t.Setenv(EnvDir, dir)
	p, err := OutPath("failover.json")
	if err != nil || p != filepath.Join(dir, "failover.json") {
		t.Fatalf("absolute: %q, %v", p, err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("the run directory was not created: %v", err)
	}
	// A relative directory is the module root's, not the package folder go test runs in.
	rel := filepath.Join("out", "bench-test-"+filepath.Base(t.TempDir()))
	t.Setenv(EnvDir, rel)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(root, rel)) })
	p, err = OutPath("a.json")
	if err != nil || p != filepath.Join(root, rel, "a.json") {
		t.Fatalf("relative: %q, %v (module root %s)", p, err, root)
	}
}

func TestOutPathFlag(t *testing.T) {
	t.Setenv(EnvDir, "")
	if got := OutPathFlag("r.json"); got != filepath.Join("..", "results", "r.json") {
		t.Errorf("default = %q", got)
	}
	dir := filepath.Join(t.TempDir(), "run")
	t.Setenv(EnvDir, dir)
	if got := OutPathFlag("r.json"); got != filepath.Join(dir, "r.json") {
		t.Errorf("run dir = %q", got)
	}
	// A run directory that cannot be created: the path is still inside it, and writing there fails
	// naming it.
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvDir, filepath.Join(file, "run"))
	got := OutPathFlag("r.json")
	if got != filepath.Join(file, "run", "r.json") {
		t.Fatalf("uncreatable dir = %q", got)
	}
	r := &Run{}
	r.Add(NewMetric("m", "s", Lower, []float64{1}))
	if err := r.Write(got); err == nil || !strings.Contains(err.Error(), got) {
		t.Errorf("write into an uncreatable run dir: %v", err)
	}
}
