package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Schema identifies the file format; readers refuse other schemas.
const Schema = "hybridtwin.io/bench/v1"

// Better says which direction of a metric is an improvement.
type Better string

// Directions.
const (
	Lower  Better = "lower"  // durations, memory
	Higher Better = "higher" // throughput
)

// Run is one benchmark run.
type Run struct {
	Schema  string      `json:"schema"`
	RunAt   time.Time   `json:"runAt"`
	Env     Environment `json:"environment"`
	Metrics []Metric    `json:"metrics"`
	// Parts lists the drivers a merged run was made of (Merge); empty for one driver's run.
	Parts []PartInfo `json:"parts,omitempty"`
}

// Environment records where a run happened, so comparisons across machines are visibly apples to oranges.
type Environment struct {
	Cores       int               `json:"cores"`
	MemoryBytes uint64            `json:"memoryBytes,omitempty"`
	CPUModel    string            `json:"cpuModel,omitempty"`
	GOOS        string            `json:"goos"`
	GOARCH      string            `json:"goarch"`
	GoVersion   string            `json:"goVersion"`
	Hybridtwin  string            `json:"hybridtwin,omitempty"`
	PinsVersion string            `json:"pinsVersion,omitempty"`
	Tools       map[string]string `json:"tools,omitempty"`
	TimeProfile string            `json:"timeProfile,omitempty"`
	Notes       []string          `json:"notes,omitempty"`
}

// Metric is one measured figure with its samples.
type Metric struct {
	Name    string    `json:"name"` // dotted, e.g. "cluster.start.parallel3.seconds"
	Unit    string    `json:"unit"` // "s", "ms", "MiB", "evals/s", "objects/s"
	Better  Better    `json:"better"`
	Samples []float64 `json:"samples"`
	Median  float64   `json:"median"`
	P99     float64   `json:"p99"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	// Anchor is a published figure to read this one against (Flux's flux-benchmark, kind, kubeconform...).
	Anchor *Anchor `json:"anchor,omitempty"`
	// Goal is the project's target for the median, from the issue that set it.
	Goal *Goal `json:"goal,omitempty"`
}

// Anchor is an outside reference figure.
type Anchor struct {
	Value  float64 `json:"value"`
	Source string  `json:"source"`
}

// Goal is a target for the median: "<" (at most) or ">" (at least).
type Goal struct {
	Op     string  `json:"op"`
	Value  float64 `json:"value"`
	Source string  `json:"source"`
}

// Met reports whether a median meets the goal.
func (g *Goal) Met(median float64) bool {
	if g == nil {
		return true
	}
	if g.Op == ">" || g.Op == ">=" {
		return median >= g.Value
	}
	return median <= g.Value
}

// NewMetric computes the summary figures of samples. It panics on no samples: a metric without a
// measurement is a driver bug, never something to record.
func NewMetric(name, unit string, better Better, samples []float64) Metric {
	if len(samples) == 0 {
		panic("result.NewMetric(" + name + "): no samples")
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	return Metric{Name: name, Unit: unit, Better: better, Samples: samples,
		Median: Quantile(s, 0.5), P99: Quantile(s, 0.99), Min: s[0], Max: s[len(s)-1]}
}

// Quantile of sorted samples, linear interpolation between closest ranks.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}

// CurrentEnvironment fills what the process can see; callers add tools and the time profile.
func CurrentEnvironment() Environment {
	env := Environment{Cores: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			var kb uint64
			if n, _ := fmt.Sscanf(line, "MemTotal: %d kB", &kb); n == 1 {
				env.MemoryBytes = kb * 1024
			}
		}
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				env.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return env
}

// Add appends a metric, replacing one of the same name.
func (r *Run) Add(m Metric) {
	for i := range r.Metrics {
		if r.Metrics[i].Name == m.Name {
			r.Metrics[i] = m
			return
		}
	}
	r.Metrics = append(r.Metrics, m)
}

// Metric returns the named metric.
func (r *Run) Metric(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Write saves the run as indented JSON, metrics sorted by name.
func (r *Run) Write(path string) error {
	if r.Schema == "" {
		r.Schema = Schema
	}
	sort.Slice(r.Metrics, func(i, j int) bool { return r.Metrics[i].Name < r.Metrics[j].Name })
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode benchmark result: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write benchmark result %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ErrSchema is wrapped when a file is not a benchmark result of this schema.
var ErrSchema = errors.New("not a hybridtwin benchmark result")

// Read loads and checks a result file.
func Read(path string) (*Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read benchmark result: %w", err)
	}
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read benchmark result %s: %w: %v", path, ErrSchema, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("read benchmark result %s: %w: schema %q, want %q", path, ErrSchema, r.Schema, Schema)
	}
	for i, m := range r.Metrics {
		if m.Name == "" || len(m.Samples) == 0 || (m.Better != Lower && m.Better != Higher) {
			return nil, fmt.Errorf("read benchmark result %s: %w: metrics[%d] (%q) needs a name, samples and better=lower|higher", path, ErrSchema, i, m.Name)
		}
	}
	return &r, nil
}
