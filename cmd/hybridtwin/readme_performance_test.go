package main

// The README's Performance section states measured figures; these tests hold them to the committed
// benchmark results (bench/results/*.json and bench/results/baseline/*.json in the bench/result schema),
// so a figure that is not in the results -- or a goal verdict, a "median" or a single run the results do
// not bear out -- fails instead of staying in the README.
//
// The convention the section follows, and that checkPerformanceSection reads:
//
//   - The section runs from the line "## Performance" to the next "## " heading or the end of the file. It
//     is split into blocks at blank lines: a block whose lines all start with "|" is a table (its first row
//     the header, its second the delimiter row), any other block a paragraph.
//   - Sources. A table row, or a paragraph, that states figures names the metrics they come from in an HTML
//     comment anywhere in it, <!-- metrics: name, name, ... --> (not rendered). Every name must be a metric
//     of at least one results file.
//   - Figures. Every number in the checked text is a figure. The checked text of a table row is every cell
//     but the first and the last; of a paragraph, all of it. Never checked: inline code (`...`), HTML
//     comments, and a number directly after a letter, a digit, '_', '.' or '#', or after a hyphen after a
//     letter (p99, amd64, N-1): it is part of a word. So a table's first column says what was measured and
//     with which settings (counts, sizes, intervals, versions), and its last column holds goals and outside
//     anchors (flux-benchmark's 2m2s / 4m16s, kind's 12-17 s, kubeconform, the model's delays): neither is a
//     measurement, neither is checked. In a paragraph, a setting goes in code (`GOGC=400`) or in words.
//   - A figure matches when, rounded to the decimals it is printed with, it equals a statistic of one of the
//     named metrics: the median, or the p99 / min / max when the word right before it (or before the first
//     figure of its list "a / b / c" or range "a-b") is "p99" / "min" / "max" ("p50" and "median" name the
//     median). A unit after the last figure of a list or range applies to all of them; a figure in "s" of a
//     metric in "ms" (or the reverse) is converted; a "k" right after a figure multiplies it by 1,000.
//   - Samples. "N samples" states how many samples every named metric has: N is checked against them, not
//     as a figure. "median" or "p50" may only be said (anywhere in the row or paragraph) of metrics with
//     several samples, and a row or paragraph that names a metric with a single sample must say so: "one
//     run", "single run", "one sample" or "single sample".
//   - Goals. When a named metric carries a goal (result.Goal) that its median misses, the goal column (in a
//     paragraph: its text) must say "not met"; it may say "not met" only then.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

// sourcedMetric is a metric with the results file that holds it.
type sourcedMetric struct {
	file string
	result.Metric
}

// resultSet maps a metric name to every committed file's version of it.
type resultSet map[string][]sourcedMetric

func (rs resultSet) add(file string, r *result.Run) {
	for _, m := range r.Metrics {
		rs[m.Name] = append(rs[m.Name], sourcedMetric{file, m})
	}
}

// loadCommittedResults reads every results file of the bench/result schema under bench/results/ and
// bench/results/baseline/. Files of a driver's own schema (cluster-start.json) are skipped; a file of the
// schema that does not read is an error.
func loadCommittedResults(t *testing.T, root string) resultSet {
	t.Helper()
	rs := resultSet{}
	var files []string
	for _, pattern := range []string{"bench/results/*.json", "bench/results/baseline/*.json"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	read := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if head.Schema != result.Schema {
			continue
		}
		r, err := result.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		rs.add(rel, r)
		read++
	}
	if read == 0 || len(rs) == 0 {
		t.Fatalf("no committed benchmark results under %s/bench/results", root)
	}
	return rs
}

// performanceSection returns the README's Performance section and the line number of its heading.
func performanceSection(readme string) (string, int, error) {
	lines := strings.Split(readme, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimRight(l, " ") == "## Performance" {
			start = i
			break
		}
	}
	if start < 0 {
		return "", 0, fmt.Errorf("no \"## Performance\" heading")
	}
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "## ") {
			end = i
			break
		}
	}
	return strings.Join(lines[start+1:end], "\n"), start + 1, nil
}

var (
	metricsCommentRe = regexp.MustCompile(`<!--\s*metrics:\s*(.*?)\s*-->`)
	htmlCommentRe    = regexp.MustCompile(`(?s)<!--.*?-->`)
	codeSpanRe       = regexp.MustCompile("`[^`]*`")
	delimiterRowRe   = regexp.MustCompile(`^\|[\s:|-]+\|?\s*$`)
	numberRe         = regexp.MustCompile(`\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?`)
	unitRe           = regexp.MustCompile(`^ ?(ms|MiB|s|x)\b|^ ?%`)
	samplesRe        = regexp.MustCompile(`^\s+samples?\b`)
	separatorRe      = regexp.MustCompile(`^\s*[-/]\s*$`)
	statWordRe       = regexp.MustCompile(`(?i)\b(p50|p99|median|min|max)\s*:?\s*$`)
	saysMedianRe     = regexp.MustCompile(`(?i)\b(medians?|p50)\b`)
	saysSingleRe     = regexp.MustCompile(`(?i)\b(one|single) (run|sample)\b`)
	saysNotMetRe     = regexp.MustCompile(`(?i)\bnot met\b`)
)

// perfUnit is one table row or paragraph of the section.
type perfUnit struct {
	line    int    // README line of its start
	all     string // its whole text
	checked string // the text whose numbers are figures
	goals   string // the text that states goal verdicts
}

func splitUnits(section string, firstLine int) []perfUnit {
	var units []perfUnit
	lines := strings.Split(section, "\n")
	for i := 0; i < len(lines); {
		if strings.TrimSpace(lines[i]) == "" {
			i++
			continue
		}
		j := i
		table := true
		for j < len(lines) && strings.TrimSpace(lines[j]) != "" {
			table = table && strings.HasPrefix(strings.TrimSpace(lines[j]), "|")
			j++
		}
		if !table {
			text := strings.Join(lines[i:j], "\n")
			units = append(units, perfUnit{line: firstLine + i, all: text, checked: text, goals: text})
			i = j
			continue
		}
		for k := i; k < j; k++ {
			row := strings.TrimSpace(lines[k])
			if k == i || delimiterRowRe.MatchString(row) {
				continue // header, delimiter
			}
			cells := strings.Split(strings.Trim(row, "|"), "|")
			u := perfUnit{line: firstLine + k, all: row}
			if len(cells) >= 3 {
				u.checked = strings.Join(cells[1:len(cells)-1], " | ")
				u.goals = cells[len(cells)-1]
			} else {
				u.checked = row // no what / goal columns to set aside
			}
			units = append(units, u)
		}
		i = j
	}
	return units
}

// plain is text without HTML comments and inline code, which no check reads.
func plain(s string) string {
	s = htmlCommentRe.ReplaceAllString(s, " ")
	return codeSpanRe.ReplaceAllString(s, "·")
}

// figure is one number of the checked text.
type figure struct {
	text       string
	value      float64 // as printed, without the multiplier
	decimals   int
	mult       float64
	unit       string // "s", "ms", "MiB", "x", "%" or ""
	stat       string // "median", "p99", "min", "max"
	samples    bool   // "N samples": a sample count, not a figure
	start, end int
}

func (f figure) String() string {
	s := f.text
	if f.mult == 1000 {
		s += "k"
	}
	if f.unit != "" {
		s += " " + f.unit
	}
	if f.stat != "median" {
		s = f.stat + " " + s
	}
	return s
}

// scanFigures finds the numbers of text (already plain) that are figures or sample counts.
func scanFigures(text string) []figure {
	var figs []figure
	for _, loc := range numberRe.FindAllStringIndex(text, -1) {
		a, b := loc[0], loc[1]
		if a > 0 {
			prev := rune(text[a-1])
			if unicode.IsLetter(prev) || unicode.IsDigit(prev) || strings.ContainsRune("_.#", prev) ||
				(prev == '-' && a > 1 && unicode.IsLetter(rune(text[a-2]))) {
				continue // part of a word: p99, amd64, N-1
			}
		}
		txt := text[a:b]
		v, err := strconv.ParseFloat(strings.ReplaceAll(txt, ",", ""), 64)
		if err != nil {
			continue
		}
		f := figure{text: txt, value: v, mult: 1, stat: "median", start: a, end: b}
		if dot := strings.IndexByte(txt, '.'); dot >= 0 {
			f.decimals = len(txt) - dot - 1
		}
		rest := text[b:]
		if strings.HasPrefix(rest, "k") && (len(rest) == 1 || !unicode.IsLetter(rune(rest[1]))) {
			f.mult, rest = 1000, rest[1:]
		}
		if m := unitRe.FindStringSubmatch(rest); m != nil {
			f.unit = m[1]
			if f.unit == "" {
				f.unit = "%"
			}
		}
		f.samples = samplesRe.MatchString(rest)
		figs = append(figs, f)
	}
	// A list or range "a / b / c s" shares the unit and multiplier of its last figure...
	for i := len(figs) - 2; i >= 0; i-- {
		if figs[i].unit == "" && figs[i].mult == 1 && separatorRe.MatchString(text[figs[i].end:figs[i+1].start]) {
			figs[i].unit, figs[i].mult = figs[i+1].unit, figs[i+1].mult
		}
	}
	// ...and the statistic word before its first.
	for i := range figs {
		from := 0
		if i > 0 {
			from = figs[i-1].end
		}
		before := text[from:figs[i].start]
		if m := statWordRe.FindStringSubmatch(before); m != nil {
			figs[i].stat = strings.ToLower(m[1])
			if figs[i].stat == "p50" {
				figs[i].stat = "median"
			}
		} else if i > 0 && separatorRe.MatchString(before) {
			figs[i].stat = figs[i-1].stat
		}
	}
	return figs
}

// statValue is the figure's statistic of a metric in the figure's unit and multiplier.
func statValue(f figure, m result.Metric) float64 {
	v := m.Median
	switch f.stat {
	case "p99":
		v = m.P99
	case "min":
		v = m.Min
	case "max":
		v = m.Max
	}
	switch {
	case f.unit == "s" && m.Unit == "ms":
		v /= 1000
	case f.unit == "ms" && m.Unit == "s":
		v *= 1000
	}
	return v / f.mult
}

func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// checkPerformanceSection returns what in the section does not hold against the results, and how many
// figures it checked.
func checkPerformanceSection(section string, firstLine int, rs resultSet) (problems []string, figures int) {
	for _, u := range splitUnits(section, firstLine) {
		where := fmt.Sprintf("README.md:%d", u.line)
		var names []string
		for _, m := range metricsCommentRe.FindAllStringSubmatch(u.all, -1) {
			for _, n := range strings.Split(m[1], ",") {
				if n = strings.TrimSpace(n); n != "" {
					names = append(names, n)
				}
			}
		}
		var named []sourcedMetric
		for _, n := range names {
			ms, ok := rs[n]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: names metric %q, which no results file holds", where, n))
				continue
			}
			named = append(named, ms...)
		}
		figs := scanFigures(plain(u.checked))
		var stated []string
		for _, f := range figs {
			if !f.samples {
				stated = append(stated, f.String())
			}
		}
		if len(stated) > 0 && len(names) == 0 {
			problems = append(problems, fmt.Sprintf("%s: states %s without a source: name the metrics in <!-- metrics: ... -->, or put a setting in the first column, code or words, and a goal or anchor in the last column",
				where, strings.Join(stated, ", ")))
			continue
		}
		for _, f := range figs {
			if f.samples {
				for _, m := range named {
					if float64(len(m.Samples)) != f.value {
						problems = append(problems, fmt.Sprintf("%s: says %s samples, but %s has %d in %s", where, f.text, m.Name, len(m.Samples), m.file))
					}
				}
				continue
			}
			figures++
			ok := false
			var near []string
			for _, m := range named {
				v := statValue(f, m.Metric)
				if roundTo(v, f.decimals) == roundTo(f.value, f.decimals) {
					ok = true
					break
				}
				near = append(near, fmt.Sprintf("%s %s=%s", m.Name, f.stat, strconv.FormatFloat(roundTo(v, f.decimals), 'f', f.decimals, 64)))
			}
			if !ok && len(named) > 0 {
				sort.Strings(near)
				near = dedupe(near)
				problems = append(problems, fmt.Sprintf("%s: figure %q is not the %s of any metric the row names (at its %d decimal(s): %s)",
					where, f.String(), f.stat, f.decimals, strings.Join(near, "; ")))
			}
		}
		text := plain(u.all)
		for _, m := range named {
			if len(m.Samples) != 1 {
				continue
			}
			if saysMedianRe.MatchString(text) {
				problems = append(problems, fmt.Sprintf("%s: says median of %s, which has a single sample in %s: call it one run", where, m.Name, m.file))
			}
			if !saysSingleRe.MatchString(text) {
				problems = append(problems, fmt.Sprintf("%s: %s has a single sample in %s: say \"one run\"", where, m.Name, m.file))
			}
		}
		var unmet []string
		for _, m := range named {
			if m.Goal != nil && !m.Goal.Met(m.Median) {
				unmet = append(unmet, fmt.Sprintf("%s (median %g, goal %s %g)", m.Name, m.Median, m.Goal.Op, m.Goal.Value))
			}
		}
		notMet := saysNotMetRe.MatchString(plain(u.goals))
		switch {
		case len(unmet) > 0 && !notMet:
			problems = append(problems, fmt.Sprintf("%s: the goal of %s is not met: say \"not met\"", where, strings.Join(dedupe(unmet), ", ")))
		case len(unmet) == 0 && notMet:
			problems = append(problems, fmt.Sprintf("%s: says \"not met\", but every goal of the metrics it names is met", where))
		}
	}
	return problems, figures
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// TestREADMEPerformanceFiguresAreInTheResults checks every figure of the README's Performance section
// against the committed benchmark results (the convention is at the top of this file), and that the
// checker catches a figure changed in that very section.
func TestREADMEPerformanceFiguresAreInTheResults(t *testing.T) {
	root := filepath.Join("..", "..")
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, first, err := performanceSection(string(data))
	if err != nil {
		t.Fatal(err)
	}
	rs := loadCommittedResults(t, root)
	problems, figures := checkPerformanceSection(section, first, rs)
	for _, p := range problems {
		t.Error(p)
	}
	// A section the parser misreads would check nothing and pass: the section states dozens of figures.
	if figures < 50 {
		t.Errorf("checked only %d figures in the Performance section; the parser no longer reads it", figures)
	}
	t.Logf("checked %d figures against %d metrics", figures, len(rs))

	// The same section with one figure changed fails, naming it.
	const good, bad = "| 12.2 s; 420 MiB |", "| 12.3 s; 420 MiB |"
	if !strings.Contains(section, good) {
		t.Fatalf("the cluster-start row no longer reads %q: update the broken case", good)
	}
	broken, _ := checkPerformanceSection(strings.Replace(section, good, bad, 1), first, rs)
	if len(broken) != 1 || !strings.Contains(broken[0], `"12.3 s"`) {
		t.Errorf("a changed figure: want one problem naming \"12.3 s\", got %q", broken)
	}
}

// TestPerformanceCheckerFails proves each rule of checkPerformanceSection can fail, on small sections
// against made-up results.
func TestPerformanceCheckerFails(t *testing.T) {
	up := result.NewMetric("demo.up.seconds", "s", result.Lower, []float64{1.0, 1.24, 1.5})
	up.Goal = &result.Goal{Op: "<", Value: 30}
	drift := make([]float64, 100)
	for i := range drift {
		drift[i] = float64(i + 1)
	}
	ratio := result.NewMetric("demo.ratio", "ratio", result.Higher, []float64{0.3, 0.34, 0.4})
	ratio.Goal = &result.Goal{Op: ">", Value: 0.7}
	run := &result.Run{Metrics: []result.Metric{
		up,
		result.NewMetric("demo.drift.latencyMs", "ms", result.Lower, drift), // median 50.5, p99 99.01
		result.NewMetric("demo.single.seconds", "s", result.Lower, []float64{874.623}),
		result.NewMetric("demo.evals", "evals/s", result.Higher, []float64{38842, 43605, 52869}),
		ratio,
	}}
	rs := resultSet{}
	rs.add("demo.json", run)

	const header = "| what | measured | samples | goal / anchor |\n|---|---|---|---|\n"
	cases := []struct {
		name, section string
		want          string // a substring of the one problem; "" for none
	}{
		{"a figure that is the median", header +
			"| up <!-- metrics: demo.up.seconds --> | 1.2 s | median of 3 samples | goal < 30 s: met |", ""},
		{"a figure that is not", header +
			"| up <!-- metrics: demo.up.seconds --> | 1.3 s | median of 3 samples | goal < 30 s: met |", `figure "1.3 s"`},
		{"a metric no results file holds", header +
			"| up <!-- metrics: demo.up.seconds, demo.nope --> | 1.2 s | median of 3 samples | |", `"demo.nope", which no results file holds`},
		{"a figure without a source", header +
			"| up | 1.2 s | median of 3 samples | |", "without a source"},
		{"p50 and p99, ms as s", header +
			"| drift <!-- metrics: demo.drift.latencyMs --> | p50 0.05 s, p99 99.0 ms | p50 and p99 of 100 samples | |", ""},
		{"a p99 passed off as the median", header +
			"| drift <!-- metrics: demo.drift.latencyMs --> | 99.0 ms | median of 100 samples | |", `figure "99.0 ms"`},
		{"min and max of a list, k", header +
			"| plans <!-- metrics: demo.evals --> | min 38.8k / max 52.9k evaluations/s | 3 samples | |", ""},
		{"a wrong max", header +
			"| plans <!-- metrics: demo.evals --> | min 38.8k / max 52.8k evaluations/s | 3 samples | |", `"max 52.8k"`},
		{"a wrong sample count", header +
			"| up <!-- metrics: demo.up.seconds --> | 1.2 s | median of 5 samples | |", "says 5 samples"},
		{"a single run said to be one", header +
			"| flux <!-- metrics: demo.single.seconds --> | 875 s | one run | published: 4m16s |", ""},
		{"a single run called a median", header +
			"| flux <!-- metrics: demo.single.seconds --> | 875 s | one run, the median | |", "says median"},
		{"a single run not called one", header +
			"| flux <!-- metrics: demo.single.seconds --> | 875 s | | |", `say "one run"`},
		{"an unmet goal called met", header +
			"| ratio <!-- metrics: demo.ratio --> | 0.34 | median of 3 samples | goal >= 0.7: met |", `say "not met"`},
		{"an unmet goal shown", header +
			"| ratio <!-- metrics: demo.ratio --> | 0.34 | median of 3 samples | goal >= 0.7: not met |", ""},
		{"a met goal called not met", header +
			"| up <!-- metrics: demo.up.seconds --> | 1.2 s | median of 3 samples | goal < 30 s: not met |", "every goal"},
		{"settings, goals, anchors, code and words are not figures", header +
			"| up, 100 / 500 nodes <!-- metrics: demo.up.seconds --> | 1.2 s (`GOGC=400`, p99, amd64, N-1) | median of 3 samples | kind: 12-17 s; 2m2s |", ""},
		{"a paragraph's figures", "Ours took 1.2 s and ran `GOGC=400` (median of 3 samples).\n<!-- metrics: demo.up.seconds -->", ""},
		{"a paragraph's wrong figure", "<!-- metrics: demo.up.seconds -->\nOurs took 1.4 s (median of 3 samples).", `figure "1.4 s"`},
		{"a paragraph's figure without a source", "That run was 16-30% slower than the one before.", "without a source"},
		{"a paragraph's unmet goal", "<!-- metrics: demo.ratio -->\nThe twin reaches 0.34 of the loop (median of 3 samples).", `say "not met"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems, _ := checkPerformanceSection(c.section, 1, rs)
			switch {
			case c.want == "" && len(problems) > 0:
				t.Errorf("want no problem, got %q", problems)
			case c.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], c.want)):
				t.Errorf("want one problem containing %q, got %q", c.want, problems)
			}
		})
	}
}
