package result

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrMerge is wrapped when driver results cannot form one run: they come from different machines, name
// the same metric twice, or record different versions of one tool.
var ErrMerge = errors.New("benchmark results cannot be merged")

// memoryTolerance is how far two drivers' MemoryBytes may differ and still be the same machine: the
// drivers read /proc/meminfo MemTotal, some keep whole MiB (bench/clusterstart), others bytes; MemTotal of
// one boot does not change, and two machines of different kinds differ by GiBs.
const memoryTolerance = 16 << 20

// Part is one driver's result in a merge: its name (see PartName) and its run.
type Part struct {
	Name string
	Run  *Run
}

// PartInfo records, in a merged run, which driver contributed which metrics and when it ran.
type PartInfo struct {
	Name    string    `json:"name"`
	RunAt   time.Time `json:"runAt"`
	Metrics int       `json:"metrics"`
}

// PartName is the driver name of a result file: its base name without ".json" (and without ".bench"
// for cluster-start.bench.json).
func PartName(path string) string {
	n := strings.TrimSuffix(filepath.Base(path), ".json")
	return strings.TrimSuffix(n, ".bench")
}

// Merge makes one run of several drivers' runs:
//   - every metric of every part (the same metric name in two parts is an error);
//   - the machine facts (cores, memory, CPU model, OS, architecture, Go version) must agree where parts
//     recorded them, else it is an error: a run whose figures come from two machines compares with nothing;
//   - tools are the union (one tool at two versions is an error), likewise the pins version, the
//     hybridtwin version and the time profile: parts that recorded one must agree;
//   - notes are kept, each prefixed with its part's name;
//   - RunAt is the earliest part's, and Parts lists each part with its RunAt and metric count.
//
// Every problem is reported at once.
func Merge(parts ...Part) (*Run, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("merge: %w: no results given", ErrMerge)
	}
	out := &Run{Schema: Schema}
	var problems []string
	owner := map[string]string{} // metric -> part
	type fact struct {
		value, part string
	}
	facts := map[string]fact{} // field -> first recorded value
	agree := func(field, value, part string) {
		if value == "" {
			return
		}
		if f, ok := facts[field]; ok {
			if f.value != value {
				problems = append(problems, fmt.Sprintf("%s: %s records %q, %s records %q", field, f.part, f.value, part, value))
			}
			return
		}
		facts[field] = fact{value, part}
		switch field {
		case "pinsVersion":
			out.Env.PinsVersion = value
		case "hybridtwin":
			out.Env.Hybridtwin = value
		case "timeProfile":
			out.Env.TimeProfile = value
		case "cpuModel":
			out.Env.CPUModel = value
		case "goos":
			out.Env.GOOS = value
		case "goarch":
			out.Env.GOARCH = value
		case "goVersion":
			out.Env.GoVersion = value
		}
	}
	var memPart string
	for i, p := range parts {
		if p.Run == nil {
			problems = append(problems, fmt.Sprintf("part %d (%q) has no run", i, p.Name))
			continue
		}
		if p.Name == "" {
			problems = append(problems, fmt.Sprintf("part %d has no name", i))
			continue
		}
		e := p.Run.Env
		if e.Cores != 0 {
			if out.Env.Cores == 0 {
				out.Env.Cores = e.Cores
				facts["cores"] = fact{fmt.Sprint(e.Cores), p.Name}
			} else if out.Env.Cores != e.Cores {
				problems = append(problems, fmt.Sprintf("cores: %s records %d, %s records %d", facts["cores"].part, out.Env.Cores, p.Name, e.Cores))
			}
		}
		if e.MemoryBytes != 0 {
			if out.Env.MemoryBytes == 0 {
				out.Env.MemoryBytes, memPart = e.MemoryBytes, p.Name
			} else if diff := int64(out.Env.MemoryBytes) - int64(e.MemoryBytes); diff > memoryTolerance || diff < -memoryTolerance {
				problems = append(problems, fmt.Sprintf("memory: %s records %d bytes, %s records %d bytes", memPart, out.Env.MemoryBytes, p.Name, e.MemoryBytes))
			}
		}
		agree("cpuModel", e.CPUModel, p.Name)
		agree("goos", e.GOOS, p.Name)
		agree("goarch", e.GOARCH, p.Name)
		agree("goVersion", e.GoVersion, p.Name)
		agree("pinsVersion", e.PinsVersion, p.Name)
		agree("hybridtwin", e.Hybridtwin, p.Name)
		agree("timeProfile", e.TimeProfile, p.Name)
		for _, tool := range sortedKeys(e.Tools) {
			agree("tool "+tool, e.Tools[tool], p.Name)
			if out.Env.Tools == nil {
				out.Env.Tools = map[string]string{}
			}
			if _, ok := out.Env.Tools[tool]; !ok {
				out.Env.Tools[tool] = e.Tools[tool]
			}
		}
		for _, n := range e.Notes {
			out.Env.Notes = append(out.Env.Notes, p.Name+": "+n)
		}
		for _, m := range p.Run.Metrics {
			if prev, dup := owner[m.Name]; dup {
				problems = append(problems, fmt.Sprintf("metric %s: in both %s and %s", m.Name, prev, p.Name))
				continue
			}
			owner[m.Name] = p.Name
			out.Metrics = append(out.Metrics, m)
		}
		if !p.Run.RunAt.IsZero() && (out.RunAt.IsZero() || p.Run.RunAt.Before(out.RunAt)) {
			out.RunAt = p.Run.RunAt
		}
		out.Parts = append(out.Parts, PartInfo{Name: p.Name, RunAt: p.Run.RunAt, Metrics: len(p.Run.Metrics)})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("merge %s: %w:\n  %s", partNames(parts), ErrMerge, strings.Join(problems, "\n  "))
	}
	sort.Slice(out.Metrics, func(i, j int) bool { return out.Metrics[i].Name < out.Metrics[j].Name })
	return out, nil
}

func partNames(parts []Part) string {
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MachineKind names the kind of machine a run came from, for finding its baseline:
// "<goos>-<goarch>-<cores>cpu-<memory rounded to GiB>gib", e.g. linux-amd64-2cpu-24gib. Figures are only
// comparable between runs of one kind (and, within a kind, the CPU model is shown next to the verdict).
func (e Environment) MachineKind() string {
	gib := (e.MemoryBytes + 1<<29) >> 30 // rounded to the nearest GiB
	return fmt.Sprintf("%s-%s-%dcpu-%dgib", e.GOOS, e.GOARCH, e.Cores, gib)
}
