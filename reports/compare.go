package reports

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

// Verdict is the outcome of comparing one metric.
type Verdict string

// Verdicts of a benchmark comparison.
const (
	VerdictOK        Verdict = "ok"
	VerdictImproved  Verdict = "improved"
	VerdictRegressed Verdict = "regressed"
	VerdictNew       Verdict = "new"
	VerdictMissing   Verdict = "missing" // in the baseline, not in the new run: counts as a failure
)

// ComparisonRow is one metric of a comparison.
type ComparisonRow struct {
	Name   string        `json:"name"`
	Unit   string        `json:"unit"`
	Better result.Better `json:"better"`
	Base   float64       `json:"baseMedian"`
	New    float64       `json:"newMedian"`
	Ratio  float64       `json:"ratio"`  // new / base
	Change float64       `json:"change"` // relative worsening: > 0 is worse, in the metric's own direction
	// Tolerance is the relative worsening this metric may show before it regresses: the threshold, or
	// with noise-aware comparison the larger of the threshold and the metric's noise (see Noise).
	Tolerance float64      `json:"tolerance"`
	Verdict   Verdict      `json:"verdict"`
	Goal      *result.Goal `json:"goal,omitempty"`
	GoalMet   *bool        `json:"goalMet,omitempty"`
}

// Comparison is a baseline run against a new run.
type Comparison struct {
	Threshold  float64              `json:"threshold"`
	NoiseAware bool                 `json:"noiseAware"`
	BaseEnv    result.Environment   `json:"baseEnvironment"`
	NewEnv     result.Environment   `json:"newEnvironment"`
	Rows       []ComparisonRow      `json:"rows"`
	History    []*result.Run        `json:"-"`
	Warnings   []string             `json:"warnings,omitempty"`
	Failed     []string             `json:"failed,omitempty"` // metric names that regressed or went missing
	history    map[string][]float64 // metric -> medians over history + base + new
}

// CompareOptions say how much worse a metric may get.
type CompareOptions struct {
	// Threshold is the tolerated relative worsening of a median (0.15 = 15%).
	Threshold float64
	// NoiseAware widens a metric's tolerance to its noise when that is larger than Threshold: a metric
	// whose own samples scatter by 40% on this machine cannot regress by 15%, only by more than its
	// scatter. See Noise.
	NoiseAware bool
}

// Noise is a metric's relative scatter on the side that is worse: twice the distance from the median to
// the upper quartile (lower-is-better metrics) or to the lower quartile (higher-is-better), over the
// median. With three samples that is the distance from the median to the worst sample; with hundreds
// (drift latencies) single outliers do not count. One sample has no measurable noise: 0.
func Noise(m result.Metric) float64 {
	if len(m.Samples) < 2 {
		return 0
	}
	s := append([]float64(nil), m.Samples...)
	sort.Float64s(s)
	med := result.Quantile(s, 0.5)
	if med == 0 {
		return 0
	}
	if m.Better == result.Higher {
		return math.Abs(2 * (med - result.Quantile(s, 0.25)) / med)
	}
	return math.Abs(2 * (result.Quantile(s, 0.75) - med) / med)
}

// CompareRuns compares every metric's median; threshold is the tolerated relative worsening (0.10 = 10%).
// History, oldest first, only feeds the trend chart.
func CompareRuns(base, next *result.Run, threshold float64, history ...*result.Run) Comparison {
	return Compare(base, next, CompareOptions{Threshold: threshold}, history...)
}

// Compare compares every metric's median against the options' tolerance. A metric of the baseline that
// the new run lacks is a failure; a metric only in the new run is listed as new. History, oldest first,
// only feeds the trend chart.
func Compare(base, next *result.Run, opts CompareOptions, history ...*result.Run) Comparison {
	threshold := opts.Threshold
	c := Comparison{Threshold: threshold, NoiseAware: opts.NoiseAware, BaseEnv: base.Env, NewEnv: next.Env, History: history, history: map[string][]float64{}}
	if base.Env.Cores != next.Env.Cores || base.Env.CPUModel != next.Env.CPUModel {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the runs come from different machines (%d cores %q vs %d cores %q): ratios mix machine and code",
			base.Env.Cores, base.Env.CPUModel, next.Env.Cores, next.Env.CPUModel))
	}
	names := map[string]bool{}
	for _, m := range base.Metrics {
		names[m.Name] = true
	}
	for _, m := range next.Metrics {
		names[m.Name] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		b, inBase := base.Metric(n)
		x, inNew := next.Metric(n)
		for _, h := range history {
			if m, ok := h.Metric(n); ok {
				c.history[n] = append(c.history[n], m.Median)
			}
		}
		if inBase {
			c.history[n] = append(c.history[n], b.Median)
		}
		if inNew {
			c.history[n] = append(c.history[n], x.Median)
		}
		row := ComparisonRow{Name: n}
		switch {
		case !inNew:
			row.Unit, row.Better, row.Base, row.Verdict = b.Unit, b.Better, b.Median, VerdictMissing
			c.Failed = append(c.Failed, n)
		case !inBase:
			row.Unit, row.Better, row.New, row.Verdict, row.Goal = x.Unit, x.Better, x.Median, VerdictNew, x.Goal
		default:
			row.Unit, row.Better, row.Base, row.New, row.Goal = x.Unit, x.Better, b.Median, x.Median, x.Goal
			if b.Median != 0 {
				row.Ratio = x.Median / b.Median
			}
			if x.Better == result.Higher {
				row.Change = safeDiv(b.Median-x.Median, b.Median)
			} else {
				row.Change = safeDiv(x.Median-b.Median, b.Median)
			}
			row.Tolerance = threshold
			if opts.NoiseAware {
				row.Tolerance = math.Max(threshold, math.Max(Noise(b), Noise(x)))
			}
			switch {
			case row.Change > row.Tolerance:
				row.Verdict = VerdictRegressed
				c.Failed = append(c.Failed, n)
			case row.Change < -row.Tolerance:
				row.Verdict = VerdictImproved
			default:
				row.Verdict = VerdictOK
			}
		}
		if row.Goal != nil && row.Verdict != VerdictMissing {
			met := row.Goal.Met(row.New)
			row.GoalMet = &met
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 0
		}
		return math.Inf(int(math.Copysign(1, a)))
	}
	return a / b
}

// Regressed reports whether any metric regressed beyond the threshold or went missing.
func (c Comparison) Regressed() bool { return len(c.Failed) > 0 }

// ComparisonText writes a table a person reads in a terminal or CI log.
func ComparisonText(w io.Writer, c Comparison) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tUNIT\tBASE\tNEW\tRATIO\tCHANGE\tTOLERANCE\tVERDICT\tGOAL")
	for _, r := range c.Rows {
		goal := ""
		if r.Goal != nil {
			goal = fmt.Sprintf("%s %s", r.Goal.Op, num(r.Goal.Value))
			if r.GoalMet != nil && !*r.GoalMet {
				goal += " (not met)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Unit, dash(r.Base, r.Verdict == VerdictNew), dash(r.New, r.Verdict == VerdictMissing),
			ratio(r), change(r), tolerance(r), r.Verdict, goal)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range c.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	if c.Regressed() {
		fmt.Fprintf(w, "FAIL: %d metric(s) worse than the baseline by more than %s or missing: %s\n", len(c.Failed), c.ToleranceText(), strings.Join(c.Failed, ", "))
	} else {
		fmt.Fprintf(w, "PASS: no metric worse than the baseline by more than %s\n", c.ToleranceText())
	}
	return nil
}

// ToleranceText says what a metric may lose: "15%" or "15% (or its own noise, if larger)".
func (c Comparison) ToleranceText() string {
	t := fmt.Sprintf("%.0f%%", c.Threshold*100)
	if c.NoiseAware {
		t += " (or its own noise, if larger)"
	}
	return t
}

func tolerance(r ComparisonRow) string {
	if r.Verdict == VerdictNew || r.Verdict == VerdictMissing {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", r.Tolerance*100)
}

// ComparisonJSON writes the comparison as JSON.
func ComparisonJSON(w io.Writer, c Comparison) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

func num(v float64) string {
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return fmt.Sprint(v)
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func dash(v float64, empty bool) string {
	if empty {
		return "-"
	}
	return num(v)
}

func ratio(r ComparisonRow) string {
	if r.Verdict == VerdictNew || r.Verdict == VerdictMissing || r.Ratio == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r.Ratio)
}

func change(r ComparisonRow) string {
	if r.Verdict == VerdictNew || r.Verdict == VerdictMissing {
		return "-"
	}
	word := "worse"
	v := r.Change
	if v < 0 {
		word, v = "better", -v
	}
	return fmt.Sprintf("%.1f%% %s", v*100, word)
}

// ComparisonHTML writes a self-contained page (inline SVG, no scripts): the verdict, a bar per metric of
// its change against the threshold, a trend line per metric over the history, and both environments.
func ComparisonHTML(w io.Writer, c Comparison) error {
	type rowView struct {
		ComparisonRow
		BaseS, NewS, RatioS, ChangeS, TolS, GoalS string
		Trend                                     template.HTML
	}
	var rows []rowView
	for _, r := range c.Rows {
		goal := ""
		if r.Goal != nil {
			goal = fmt.Sprintf("%s %s", r.Goal.Op, num(r.Goal.Value))
			if r.GoalMet != nil {
				goal += map[bool]string{true: " met", false: " not met"}[*r.GoalMet]
			}
		}
		rows = append(rows, rowView{ComparisonRow: r, BaseS: dash(r.Base, r.Verdict == VerdictNew), NewS: dash(r.New, r.Verdict == VerdictMissing),
			RatioS: ratio(r), ChangeS: change(r), TolS: tolerance(r), GoalS: goal, Trend: trendSVG(c.history[r.Name])})
	}
	return compareTemplate.Execute(w, map[string]any{
		"C": c, "Rows": rows, "Bars": changeBarsSVG(c), "ThresholdPct": c.ToleranceText(),
	})
}

// changeBarsSVG draws each metric's relative change as a horizontal bar around zero, with the threshold
// marked: red beyond it (worse), green beyond it the other way (better), grey within.
func changeBarsSVG(c Comparison) template.HTML {
	const w, rowH, labelW = 820.0, 22.0, 300.0
	h := rowH*float64(len(c.Rows)) + 30
	limit := math.Max(c.Threshold*2, 0.05)
	for _, r := range c.Rows {
		if !math.IsInf(r.Change, 0) {
			limit = math.Max(limit, math.Abs(r.Change))
		}
	}
	plotW := w - labelW - 20
	x0 := labelW + plotW/2
	scale := plotW / 2 / limit
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="relative change per metric" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`, w, h, w, h)
	for _, t := range []float64{-c.Threshold, c.Threshold} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="0" x2="%.1f" y2="%.0f" stroke="#999" stroke-dasharray="4 3"/>`, x0+t*scale, x0+t*scale, h-20)
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="0" x2="%.1f" y2="%.0f" stroke="#333"/>`, x0, x0, h-20)
	for i, r := range c.Rows {
		y := float64(i)*rowH + 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`, labelW-8, y+13, template.HTMLEscapeString(r.Name))
		if r.Verdict == VerdictNew || r.Verdict == VerdictMissing {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#666">%s</text>`, x0+4, y+13, r.Verdict)
			continue
		}
		v := math.Max(-limit, math.Min(limit, r.Change))
		color := map[Verdict]string{VerdictRegressed: "#d9534f", VerdictImproved: "#5cb85c", VerdictOK: "#aaa"}[r.Verdict]
		x, bw := x0, v*scale
		if bw < 0 {
			x, bw = x0+bw, -bw
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s: %s</title></rect>`, x, y+2, math.Max(bw, 1), rowH-8, color,
			template.HTMLEscapeString(r.Name), change(r))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#333">better &#8592;  0  &#8594; worse (dashed: &#177;%.0f%% threshold)</text>`, x0, h-4, c.Threshold*100)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped names only
}

// trendSVG is a small line of a metric's medians over the runs given (history, base, new).
func trendSVG(vs []float64) template.HTML {
	if len(vs) < 2 {
		return ""
	}
	const w, h = 160.0, 32.0
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	span := hi - lo
	if span == 0 {
		span = 1
	}
	var pts []string
	for i, v := range vs {
		x := 4 + (w-8)*float64(i)/float64(len(vs)-1)
		y := h - 4 - (h-8)*(v-lo)/span
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	last := strings.Split(pts[len(pts)-1], ",")
	return template.HTML(fmt.Sprintf( //nolint:gosec // numbers only
		`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" role="img" aria-label="trend over %d runs"><polyline fill="none" stroke="#337ab7" stroke-width="2" points="%s"/><circle cx="%s" cy="%s" r="3" fill="#337ab7"/></svg>`,
		w, h, len(vs), strings.Join(pts, " "), last[0], last[1]))
}

var compareTemplate = template.Must(template.New("compare").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hybridtwin benchmark comparison</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}
.regressed,.missing{color:#b52b27;font-weight:bold}.improved{color:#2d7a2d}
.verdict{font-size:1.3em;padding:.5em 1em;display:inline-block;border-radius:4px}
.pass{background:#dff0d8}.fail{background:#f2dede}
</style></head><body>
<h1>Benchmark comparison</h1>
{{if .C.Regressed}}<p class="verdict fail">FAIL: {{len .C.Failed}} metric(s) worse than the baseline by more than {{.ThresholdPct}} or missing: {{range $i, $n := .C.Failed}}{{if $i}}, {{end}}{{$n}}{{end}}</p>
{{else}}<p class="verdict pass">PASS: no metric worse than the baseline by more than {{.ThresholdPct}}</p>{{end}}
{{range .C.Warnings}}<p><strong>Warning:</strong> {{.}}</p>{{end}}
<h2>Change per metric</h2>
{{.Bars}}
<h2>Figures</h2>
<table><tr><th>metric</th><th>unit</th><th>baseline median</th><th>new median</th><th>ratio</th><th>change</th><th>tolerance</th><th>verdict</th><th>goal</th><th>trend</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td>{{.Unit}}</td><td>{{.BaseS}}</td><td>{{.NewS}}</td><td>{{.RatioS}}</td><td>{{.ChangeS}}</td><td>{{.TolS}}</td><td class="{{.Verdict}}">{{.Verdict}}</td><td>{{.GoalS}}</td><td>{{.Trend}}</td></tr>
{{end}}</table>
<h2>Environments</h2>
<table><tr><th></th><th>baseline</th><th>new</th></tr>
<tr><td>machine kind</td><td>{{.C.BaseEnv.MachineKind}}</td><td>{{.C.NewEnv.MachineKind}}</td></tr>
<tr><td>cores</td><td>{{.C.BaseEnv.Cores}}</td><td>{{.C.NewEnv.Cores}}</td></tr>
<tr><td>CPU</td><td>{{.C.BaseEnv.CPUModel}}</td><td>{{.C.NewEnv.CPUModel}}</td></tr>
<tr><td>Go</td><td>{{.C.BaseEnv.GoVersion}}</td><td>{{.C.NewEnv.GoVersion}}</td></tr>
<tr><td>tool pins</td><td>{{.C.BaseEnv.PinsVersion}}</td><td>{{.C.NewEnv.PinsVersion}}</td></tr>
<tr><td>time profile</td><td>{{.C.BaseEnv.TimeProfile}}</td><td>{{.C.NewEnv.TimeProfile}}</td></tr>
</table>
</body></html>
`))
