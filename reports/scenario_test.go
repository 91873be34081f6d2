package reports

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleRun is a run with one failover scenario (with its timeline), one failed drift scenario and one
// skipped scenario: every part of the page.
func sampleRun() *ScenarioRun {
	start := time.Date(2025, 3, 1, 6, 0, 0, 0, time.UTC)
	return &ScenarioRun{
		Schema: ScenarioSchema, Twin: "example", SpecFile: "examples/twin.yaml", TimeProfile: "fast",
		Timings: []ProfileValue{{Profile: "cluster timeprofiles/v1", Name: "nodeMonitorGracePeriod", Value: "10s"},
			{Profile: "twin twinrun/v1", Name: "failoverDelay", Value: "15s"}},
		Tools:   []ToolVersion{{Name: "kube-apiserver", Version: "v1.33.13"}, {Name: "gitea", Version: "1.26.4"}},
		Started: start, Finished: start.Add(9 * time.Minute), TwinReady: 41 * time.Second,
		LabelFilter: "!slow",
		Scenarios: []ScenarioResult{
			{Name: "failover: crash one HCI host with the reserve met", Labels: []string{"failover"}, Verdict: ScenarioPassed,
				Duration: 52 * time.Second, Measures: []Measurement{{Name: "time to healthy", Value: 47.3, Unit: "s"}},
				Timeline: []TimelineEvent{
					{At: 0, Phase: "host down", Detail: "hci-node-2"},
					{At: 11 * time.Second, Phase: "nodes NotReady", Detail: "dev-linux-1"},
					{At: 15 * time.Second, Phase: "vm restarted", Detail: "dev-linux-1 on hci-node-3"},
					{At: 17 * time.Second, Phase: "nodes Ready", Detail: "dev-linux-1"},
					{At: 47 * time.Second, Phase: "healthy", Detail: "all configurations Compliant"},
				}},
			{Name: "drift: image edited by hand", Labels: []string{"drift"}, Verdict: ScenarioFailed, Duration: 12 * time.Second,
				Failure: "Deployment apps/podinfo image still example:hacked after 10s; the reconciler did not correct the drift"},
			{Name: "scale: 10 clusters", Labels: []string{"scale", "slow"}, Verdict: ScenarioSkipped},
		},
		Fidelity: &Fidelity{Hybridtwin: "reconciler profile flux-v2.7-twin/v2", Flux: "source-controller v1.9.6, kustomize-controller v1.9.5",
			Method: "one twin, two clusters, the same GitRepository and Kustomization objects",
			Rows: []FidelityRow{
				{Behaviour: "prune", Check: "a commit drops two ConfigMaps, one marked prune: disabled", Same: true,
					Facts: []FidelityFact{{Name: "ConfigMap fid-prune/gone", Hybridtwin: "absent", Flux: "absent"},
						{Name: "ConfigMap fid-prune/kept", Hybridtwin: "present", Flux: "present"}}},
				{Behaviour: "drift", Check: "a ConfigMap edited by hand", Same: false, Documented: true,
					Reason: "Flux corrects drift only at its interval or on a reconcile.fluxcd.io/requestedAt request",
					Facts: []FidelityFact{{Name: "corrected within the drift bound", Hybridtwin: "yes", Flux: "no"},
						{Name: "data.mode at the end", Hybridtwin: "git", Flux: "git"}},
					Timings: []FidelityTiming{{Name: "hand edit to corrected", Hybridtwin: ptr(0.4)}}},
			}},
	}
}

func ptr(v float64) *float64 { return &v }

func TestFidelityRows(t *testing.T) {
	r := sampleRun()
	if d := r.Fidelity.Rows[1].Differences(); len(d) != 1 || d[0].Name != "corrected within the drift bound" {
		t.Errorf("Differences() = %+v, want only the drift-bound fact", d)
	}
	if d := r.Fidelity.Rows[0].Differences(); len(d) != 0 {
		t.Errorf("a row whose facts agree has differences: %+v", d)
	}
	var run ScenarioRun
	run.AddFidelity(Fidelity{Hybridtwin: "a", Flux: "b", Rows: []FidelityRow{{Behaviour: "apply"}}})
	run.AddFidelity(Fidelity{Hybridtwin: "x", Flux: "y", Rows: []FidelityRow{{Behaviour: "prune"}}})
	if run.Fidelity.Hybridtwin != "a" || len(run.Fidelity.Rows) != 2 || run.Fidelity.Rows[1].Behaviour != "prune" {
		t.Errorf("AddFidelity merged into %+v, want the first part's engines and both rows in order", run.Fidelity)
	}
}

func TestScenarioJSONRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := ScenarioJSON(&buf, sampleRun()); err != nil {
		t.Fatal(err)
	}
	var back ScenarioRun
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("the JSON does not read back: %v", err)
	}
	if back.Schema != ScenarioSchema || len(back.Scenarios) != 3 || len(back.Scenarios[0].Timeline) != 5 {
		t.Fatalf("round trip lost data: %+v", back)
	}
	if back.Fidelity == nil || len(back.Fidelity.Rows) != 2 || back.Fidelity.Rows[1].Timings[0].Flux != nil ||
		*back.Fidelity.Rows[1].Timings[0].Hybridtwin != 0.4 {
		t.Fatalf("round trip lost the fidelity table: %+v", back.Fidelity)
	}
	if back.Scenarios[0].Timeline[4].At != 47*time.Second {
		t.Errorf("timeline offset = %v, want 47s", back.Scenarios[0].Timeline[4].At)
	}
	if p, f, s := back.Counts(); p != 1 || f != 1 || s != 1 || back.Passed() {
		t.Errorf("counts = %d/%d/%d passed=%v, want 1/1/1 false", p, f, s, back.Passed())
	}
}

func TestScenarioHTMLContent(t *testing.T) {
	var buf bytes.Buffer
	if err := ScenarioHTML(&buf, sampleRun()); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"FAILED: 1 passed, 1 failed, 1 skipped",
		`<svg id="timeline-1"`,
		"time to healthy: 47.3 s",
		"the reconciler did not correct the drift",
		"nodeMonitorGracePeriod", "kube-apiserver", "v1.33.13", "time profile fast",
		`id="fidelity"`, "kustomize-controller v1.9.5", `href="#fidelity-drift"`,
		"corrected within the drift bound: hybridtwin <code>yes</code>, Flux <code>no</code>",
		"Flux corrects drift only at its interval", "not within the bound", `<span class="tag documented">differs, explained</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("page has a script; it must be self-contained and static")
	}
	if strings.Count(page, "<svg ") != 1 {
		t.Errorf("page has %d charts, want 1 (only the failover scenario has a timeline)", strings.Count(page, "<svg "))
	}
}

// The page in headless Chromium: the DOM holds the verdict and the timeline, and the screenshot shows the
// timeline's colours (host down red, nodes NotReady amber, healthy green).
func TestScenarioHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "scenario.html")
	var buf bytes.Buffer
	if err := ScenarioHTML(&buf, sampleRun()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := string(runChromium(t, bin, "--dump-dom", "file://"+page))
	for _, want := range []string{`<svg id="timeline-1"`, "FAILED: 1 passed, 1 failed, 1 skipped", "hci-node-2",
		`<table id="fidelity-summary">`, `<tr class="differs">`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	shot := filepath.Join(dir, "shot.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1300,1600", "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	want := map[string][3]uint8{"host down": {0xd9, 0x53, 0x4f}, "nodes NotReady": {0xe3, 0xa2, 0x1a}, "healthy": {0x2e, 0x8b, 0x57}}
	for name, n := range count(img, want) {
		if n < 60 { // a marker is ~90 solid pixels, a bar hundreds; anti-aliasing alone gives a handful
			t.Errorf("screenshot shows %d pixels of the %q colour; the timeline did not render", n, name)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 12: 20, 60: 100} {
		if got := niceStep(raw); got < want*0.999 || got > want*1.001 {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}
