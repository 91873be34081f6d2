package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

func benchRun(cores int, metrics ...result.Metric) *result.Run {
	r := &result.Run{Schema: result.Schema, Env: result.Environment{Cores: cores, CPUModel: "test cpu", GoVersion: "go1.26"}}
	for _, m := range metrics {
		r.Add(m)
	}
	return r
}

func TestCompareWithItselfPasses(t *testing.T) {
	base := benchRun(2,
		result.NewMetric("cluster.start.parallel3.seconds", "s", result.Lower, []float64{6.1, 5.9, 6.4}),
		result.NewMetric("hardware.planner.evals_per_second", "evals/s", result.Higher, []float64{41000, 40000}))
	c := CompareRuns(base, base, 0.10)
	if c.Regressed() {
		t.Fatalf("a run compared with itself regressed: %+v", c.Failed)
	}
	var out bytes.Buffer
	if err := ComparisonText(&out, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "1.00x") {
		t.Fatalf("text report:\n%s", out.String())
	}
}

func TestCompareFlagsRegressionsByDirection(t *testing.T) {
	base := benchRun(2,
		result.NewMetric("cluster.start.parallel3.seconds", "s", result.Lower, []float64{6}),
		result.NewMetric("hardware.planner.evals_per_second", "evals/s", result.Higher, []float64{40000}),
		result.NewMetric("drift.p99.seconds", "s", result.Lower, []float64{0.5}),
		result.NewMetric("gone.metric", "s", result.Lower, []float64{1}))
	slower := benchRun(2,
		result.NewMetric("cluster.start.parallel3.seconds", "s", result.Lower, []float64{7.5}),            // 25% slower: regressed
		result.NewMetric("hardware.planner.evals_per_second", "evals/s", result.Higher, []float64{30000}), // 25% fewer: regressed
		result.NewMetric("drift.p99.seconds", "s", result.Lower, []float64{0.4}),                          // 20% faster: improved
		result.NewMetric("brand.new", "s", result.Lower, []float64{3}))
	c := CompareRuns(base, slower, 0.10)
	want := map[string]Verdict{
		"cluster.start.parallel3.seconds":   VerdictRegressed,
		"hardware.planner.evals_per_second": VerdictRegressed,
		"drift.p99.seconds":                 VerdictImproved,
		"gone.metric":                       VerdictMissing,
		"brand.new":                         VerdictNew,
	}
	for _, r := range c.Rows {
		if want[r.Name] != r.Verdict {
			t.Errorf("%s: verdict %s, want %s", r.Name, r.Verdict, want[r.Name])
		}
	}
	if !c.Regressed() || strings.Join(c.Failed, ",") != "cluster.start.parallel3.seconds,gone.metric,hardware.planner.evals_per_second" {
		t.Fatalf("failed = %v", c.Failed)
	}
	var out bytes.Buffer
	_ = ComparisonText(&out, c)
	if !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "25.0% worse") {
		t.Fatalf("text report does not name the regression:\n%s", out.String())
	}
	// Within the threshold is not a regression.
	if c := CompareRuns(base, benchRun(2, append([]result.Metric{result.NewMetric("cluster.start.parallel3.seconds", "s", result.Lower, []float64{6.5})}, base.Metrics[1:]...)...), 0.10); c.Regressed() {
		t.Fatalf("8%% slower failed a 10%% threshold: %v", c.Failed)
	}
}

func TestComparisonHTMLShowsVerdictChartsAndEnvironmentWarning(t *testing.T) {
	base := benchRun(2, result.NewMetric("a.seconds", "s", result.Lower, []float64{1}))
	older := benchRun(2, result.NewMetric("a.seconds", "s", result.Lower, []float64{0.9}))
	next := benchRun(8, result.NewMetric("a.seconds", "s", result.Lower, []float64{2}))
	c := CompareRuns(base, next, 0.10, older)
	var out bytes.Buffer
	if err := ComparisonHTML(&out, c); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, want := range []string{"FAIL", "a.seconds", "<svg", "trend over 3 runs", "different machines", "100.0% worse"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("the report must render without scripts")
	}
}

func TestNoiseAwareToleranceFollowsTheSamples(t *testing.T) {
	// Three samples scattering 40% above the median: a 30% slower median is within that noise, a 60%
	// slower one is not. Higher-is-better metrics scatter downwards.
	noisy := result.NewMetric("analyze.seconds", "s", result.Lower, []float64{1.0, 1.4, 0.9})
	if n := Noise(noisy); n < 0.399 || n > 0.401 {
		t.Fatalf("Noise = %v, want 0.4 (worst sample 40%% above the median)", n)
	}
	rate := result.NewMetric("evals_per_s", "evals/s", result.Higher, []float64{100, 80, 110})
	if n := Noise(rate); n < 0.199 || n > 0.201 {
		t.Fatalf("Noise(higher) = %v, want 0.2", n)
	}
	if n := Noise(result.NewMetric("one", "s", result.Lower, []float64{5})); n != 0 {
		t.Fatalf("Noise of one sample = %v", n)
	}
	// Hundreds of samples: one outlier does not widen the tolerance.
	many := make([]float64, 600)
	for i := range many {
		many[i] = 2 + float64(i%10)*0.01
	}
	many[17] = 40
	if n := Noise(result.NewMetric("drift.ms", "ms", result.Lower, many)); n > 0.05 {
		t.Fatalf("Noise with one outlier in 600 = %v", n)
	}

	scaled := func(m result.Metric, f float64) result.Metric {
		var s []float64
		for _, v := range m.Samples {
			s = append(s, v*f)
		}
		return result.NewMetric(m.Name, m.Unit, m.Better, s)
	}
	base := benchRun(2, noisy, result.NewMetric("steady.seconds", "s", result.Lower, []float64{10, 10.1, 9.9}))
	next := benchRun(2, scaled(noisy, 1.3), result.NewMetric("steady.seconds", "s", result.Lower, []float64{13, 13.1, 12.9}))
	strict := Compare(base, next, CompareOptions{Threshold: 0.15})
	aware := Compare(base, next, CompareOptions{Threshold: 0.15, NoiseAware: true})
	if strings.Join(strict.Failed, ",") != "analyze.seconds,steady.seconds" {
		t.Errorf("fixed 15%%: failed = %v", strict.Failed)
	}
	if strings.Join(aware.Failed, ",") != "steady.seconds" {
		t.Errorf("noise-aware: failed = %v, want only the steady metric (the noisy one moved within its noise)", aware.Failed)
	}
	for _, r := range aware.Rows {
		if r.Name == "steady.seconds" && r.Tolerance != 0.15 {
			t.Errorf("steady metric tolerance = %v, want the threshold", r.Tolerance)
		}
	}
	if worse := Compare(base, benchRun(2, scaled(noisy, 1.6), base.Metrics[1]), CompareOptions{Threshold: 0.15, NoiseAware: true}); strings.Join(worse.Failed, ",") != "analyze.seconds" {
		t.Errorf("60%% slower than a 40%%-noisy baseline: failed = %v", worse.Failed)
	}
	var out bytes.Buffer
	_ = ComparisonText(&out, aware)
	if !strings.Contains(out.String(), "TOLERANCE") || !strings.Contains(out.String(), "(or its own noise, if larger)") {
		t.Errorf("text report does not show the tolerance:\n%s", out.String())
	}
}
