package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

// TestComparisonHTMLInChromium renders a failing comparison with a history in headless Chromium: the DOM
// must carry the verdict naming the regressed metric, the change bars and a trend line per metric, and
// no script is needed for any of it.
func TestComparisonHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	older := benchRun(2, result.NewMetric("twin.up.ready.seconds", "s", result.Lower, []float64{13}),
		result.NewMetric("hardware.evaluate.edge-2node.evals_per_s", "evals/s", result.Higher, []float64{24000}))
	base := benchRun(2, result.NewMetric("twin.up.ready.seconds", "s", result.Lower, []float64{14}),
		result.NewMetric("hardware.evaluate.edge-2node.evals_per_s", "evals/s", result.Higher, []float64{25000}))
	next := benchRun(2, result.NewMetric("twin.up.ready.seconds", "s", result.Lower, []float64{21}),
		result.NewMetric("hardware.evaluate.edge-2node.evals_per_s", "evals/s", result.Higher, []float64{25500}))
	c := Compare(base, next, CompareOptions{Threshold: 0.15, NoiseAware: true}, older)
	var buf bytes.Buffer
	if err := ComparisonHTML(&buf, c); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "compare.html")
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := string(runChromium(t, bin, "--dump-dom", "file://"+page))
	for _, want := range []string{"FAIL: 1 metric(s)", "twin.up.ready.seconds", `aria-label="relative change per metric"`,
		`aria-label="trend over 3 runs"`, "50.0% worse", "2cpu-0gib"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Count(dom, "<polyline") != 2 {
		t.Errorf("want a trend line per metric, DOM has %d", strings.Count(dom, "<polyline"))
	}
}
