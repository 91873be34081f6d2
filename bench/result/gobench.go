package result

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode"
)

// GoalsVersion names the goal table below; change it whenever a goal or its source changes.
const GoalsVersion = "bench-goals/v1"

// PatternGoal attaches a goal to every metric whose name matches Pattern (path.Match syntax).
type PatternGoal struct {
	Pattern string
	Goal    Goal
}

// GoBenchGoals are the goals of the metrics that come from plain `go test -bench` output (converted by
// ParseGoBench) rather than from a driver that writes this schema itself and sets its own goals.
func GoBenchGoals() []PatternGoal {
	return []PatternGoal{
		// Issue 3 (hardware: the HCI model and capacity planner), "Done when": the planner evaluates a plan
		// at >= 10,000 evaluations per second (the example estates with the example plan).
		{Pattern: "hardware.evaluate.*.evals_per_s", Goal: Goal{Op: ">=", Value: 10000, Source: "issue 3: goal >= 10,000 plan evaluations/s"}},
	}
}

// ErrGoBench is wrapped when `go test -bench` output cannot be turned into a run.
var ErrGoBench = errors.New("not usable go test -bench output")

// ParseGoBench turns the text output of `go test -bench` (one or more packages, any -count) into a run:
// each benchmark and unit is a metric named <prefix>.<benchmark>.<unit>, every repetition a sample.
//
//   - prefix "" takes the last element of the package path of the "pkg:" line above the benchmark
//     (hardware for github.com/hybridtwin/hybridtwin/hardware);
//   - the benchmark name loses "Benchmark" and the "-N" GOMAXPROCS suffix go test appends (when every
//     name carries the same one), is written in
//     lower case with dashes ("EvaluateLarge" -> "evaluate-large"), sub-benchmarks become dotted parts;
//   - the unit becomes a suffix: ns/op -> ns_per_op, B/op -> bytes_per_op, allocs/op -> allocs_per_op,
//     evals/cpu-s -> evals_per_cpu_s; a unit per time (x/s, x/cpu-s) is better higher, any other lower;
//   - GoBenchGoals are attached; the CPU model comes from the "cpu:" line.
//
// A failed benchmark ("--- FAIL", "FAIL", a panic) or output without any benchmark line is an error.
func ParseGoBench(r io.Reader, prefix string) (*Run, error) {
	run := &Run{Schema: Schema, Env: CurrentEnvironment()}
	type row struct {
		line   int
		prefix string
		name   string
		pairs  []string // value, unit, value, unit...
	}
	var rows []row
	var failures []string
	pkg, pending := "", ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(text, "pkg:"):
			pkg = strings.TrimSpace(strings.TrimPrefix(text, "pkg:"))
			continue
		case strings.HasPrefix(text, "cpu:"):
			run.Env.CPUModel = strings.TrimSpace(strings.TrimPrefix(text, "cpu:"))
			continue
		case strings.HasPrefix(text, "--- FAIL"), strings.HasPrefix(text, "FAIL"), strings.HasPrefix(text, "panic:"):
			failures = append(failures, fmt.Sprintf("line %d: %s", line, text))
			continue
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		name := ""
		switch {
		case strings.HasPrefix(f[0], "Benchmark") && len(f) == 1:
			// The name is printed before the run; output of the benchmarked code may split the line.
			pending = f[0]
			continue
		case strings.HasPrefix(f[0], "Benchmark"):
			name, f = f[0], f[1:]
		case pending != "" && isUint(f[0]):
			name = pending
		default:
			continue
		}
		pending = ""
		if len(f) < 3 || !isUint(f[0]) || len(f)%2 != 1 {
			continue // a "Benchmark..." word in a log line, not a result
		}
		p := prefix
		if p == "" {
			p = path.Base(pkg)
		}
		if p == "" || p == "." {
			return nil, fmt.Errorf("go test -bench output, line %d (%s): %w: no pkg: line above it; give a prefix", line, name, ErrGoBench)
		}
		rows = append(rows, row{line: line, prefix: p, name: name, pairs: f[1:]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read go test -bench output: %w", err)
	}
	if len(failures) > 0 {
		return nil, fmt.Errorf("%w: the benchmarks failed:\n  %s", ErrGoBench, strings.Join(failures, "\n  "))
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no benchmark result line (BenchmarkName N value unit ...)", ErrGoBench)
	}
	// go test appends -GOMAXPROCS to every name when it is above 1: strip it when all names share it.
	procs := procsSuffix(rows[0].name)
	for _, rw := range rows {
		if procsSuffix(rw.name) != procs {
			procs = ""
			break
		}
	}
	samples := map[string][]float64{}
	units := map[string]string{}
	for _, rw := range rows {
		base := rw.prefix + "." + benchName(strings.TrimSuffix(rw.name, procs))
		for i := 0; i+1 < len(rw.pairs); i += 2 {
			v, err := strconv.ParseFloat(rw.pairs[i], 64)
			if err != nil {
				return nil, fmt.Errorf("go test -bench output, line %d: %w: value %q of %s is not a number", rw.line, ErrGoBench, rw.pairs[i], rw.pairs[i+1])
			}
			m := base + "." + unitSlug(rw.pairs[i+1])
			if u, seen := units[m]; seen && u != rw.pairs[i+1] {
				return nil, fmt.Errorf("go test -bench output, line %d: %w: %s in both %s and %s", rw.line, ErrGoBench, m, u, rw.pairs[i+1])
			}
			samples[m] = append(samples[m], v)
			units[m] = rw.pairs[i+1]
		}
	}
	goals := GoBenchGoals()
	for _, n := range sortedKeys(units) {
		m := NewMetric(n, units[n], betterOf(units[n]), samples[n])
		for _, g := range goals {
			if ok, _ := path.Match(g.Pattern, n); ok {
				goal := g.Goal
				m.Goal = &goal
			}
		}
		run.Add(m)
	}
	return run, nil
}

// procsSuffix is the trailing "-N" of a benchmark name, or "".
func procsSuffix(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || !isUint(name[i+1:]) {
		return ""
	}
	return name[i:]
}

func isUint(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// benchName is "BenchmarkEvaluateLarge" -> "evaluate-large", "BenchmarkEvaluate/edge-2node" ->
// "evaluate.edge-2node".
func benchName(full string) string {
	full = strings.TrimPrefix(full, "Benchmark")
	parts := strings.Split(full, "/")
	parts[0] = kebab(parts[0])
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToLower(parts[i])
	}
	return strings.Join(parts, ".")
}

func kebab(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unitSlug(u string) string {
	switch u {
	case "B/op":
		return "bytes_per_op"
	case "MB/s":
		return "mb_per_s"
	}
	u = strings.ReplaceAll(u, "/", "_per_")
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' {
			return unicode.ToLower(r)
		}
		return '_'
	}, u)
}

// betterOf: a rate (something per second or per CPU-second) is better higher; times, sizes and counts
// per operation are better lower.
func betterOf(unit string) Better {
	if _, per, ok := strings.Cut(unit, "/"); ok && (per == "s" || strings.HasSuffix(per, "-s")) {
		return Higher
	}
	return Lower
}
