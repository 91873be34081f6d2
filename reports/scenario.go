package reports

import (
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io"
	"sort"
	"time"
)

// ScenarioSchema versions the JSON shape of a ScenarioRun; change it whenever a field changes meaning.
const ScenarioSchema = "hybridtwin.io/scenario-run/v1"

// ScenarioVerdict is one scenario's outcome, from Ginkgo's spec state.
type ScenarioVerdict string

// Scenario verdicts.
const (
	ScenarioPassed  ScenarioVerdict = "passed"
	ScenarioFailed  ScenarioVerdict = "failed"
	ScenarioSkipped ScenarioVerdict = "skipped"
)

// ScenarioRun is one run of the scenario suite: the twin it ran on and every scenario's outcome. The
// scenarios package fills it; this package only renders it.
type ScenarioRun struct {
	Schema string `json:"schema"`
	// Twin is the spec's metadata.name and SpecFile the file it was loaded from.
	Twin     string `json:"twin"`
	SpecFile string `json:"specFile"`
	// TimeProfile names the twin's time profile ("fast", "real"); Timings lists its values with their
	// sources (cluster, composition and reconciler profiles), as the run used them.
	TimeProfile string         `json:"timeProfile"`
	Timings     []ProfileValue `json:"profileValues,omitempty"`
	Tools       []ToolVersion  `json:"tools,omitempty"`
	Started     time.Time      `json:"started"`
	Finished    time.Time      `json:"finished"`
	// TwinReady is how long bringing the twin up took.
	TwinReady time.Duration `json:"twinReadyNs"`
	// LabelFilter is the Ginkgo label filter the run used ("" for all).
	LabelFilter string           `json:"labelFilter,omitempty"`
	Scenarios   []ScenarioResult `json:"scenarios"`
	// SuiteFailure is set when the suite itself failed (the twin did not come up, teardown failed).
	SuiteFailure string `json:"suiteFailure,omitempty"`
	// Notes are facts about the whole run a reader must see first (e.g. a deliberately broken twin).
	Notes []string `json:"notes,omitempty"`
	// Fidelity compares the twin's reconciler with real Flux behaviour by behaviour, when the run had
	// the fidelity scenarios (label fidelity).
	Fidelity *Fidelity `json:"fidelity,omitempty"`
}

// Fidelity is the side-by-side table of the twin's reconciler and real Flux: for each behaviour, the
// same Git content went through both, and the resulting cluster states were compared.
type Fidelity struct {
	// Hybridtwin and Flux name the two engines and their versions (reconciler profile; controller
	// releases); Method says how they were run side by side.
	Hybridtwin string        `json:"hybridtwin"`
	Flux       string        `json:"flux"`
	Method     string        `json:"method,omitempty"`
	Rows       []FidelityRow `json:"rows"`
}

// FidelityRow is one behaviour (apply, prune, dependsOn, health, drift, suspend, namespace scope).
type FidelityRow struct {
	Behaviour string `json:"behaviour"`
	// Check says in plain words what was done and what was compared.
	Check string `json:"check"`
	// Same is true when both engines ended in the same state (every fact equal).
	Same bool `json:"same"`
	// Facts are the observed facts, one per compared aspect, with each engine's value.
	Facts []FidelityFact `json:"facts"`
	// Timings say when each engine reached the compared state; they are shown, not compared.
	Timings []FidelityTiming `json:"timings,omitempty"`
	// Reason explains why the engines disagree where they do (empty when Same). Documented is true when
	// the disagreement is a known, explained difference; false means nobody has explained it yet.
	Reason     string `json:"reason,omitempty"`
	Documented bool   `json:"documented,omitempty"`
}

// FidelityFact is one compared aspect of the cluster state (e.g. "ConfigMap fid-prune/gone") and what
// each engine left.
type FidelityFact struct {
	Name       string `json:"name"`
	Hybridtwin string `json:"hybridtwin"`
	Flux       string `json:"flux"`
}

// Same reports whether both engines left the same value.
func (f FidelityFact) Same() bool { return f.Hybridtwin == f.Flux }

// FidelityTiming is one duration per engine, in seconds; nil means the engine did not get there within
// the bound the scenario waited.
type FidelityTiming struct {
	Name       string   `json:"name"`
	Hybridtwin *float64 `json:"hybridtwinSeconds"`
	Flux       *float64 `json:"fluxSeconds"`
}

// Differences lists the facts on which the engines disagree.
func (r FidelityRow) Differences() []FidelityFact {
	var out []FidelityFact
	for _, f := range r.Facts {
		if !f.Same() {
			out = append(out, f)
		}
	}
	return out
}

// AddFidelity merges a part of the fidelity table (one scenario's rows) into the run: the first part
// names the engines and the method; rows are appended in the order the scenarios ran.
func (r *ScenarioRun) AddFidelity(part Fidelity) {
	if r.Fidelity == nil {
		r.Fidelity = &Fidelity{}
	}
	f := r.Fidelity
	if f.Hybridtwin == "" {
		f.Hybridtwin, f.Flux, f.Method = part.Hybridtwin, part.Flux, part.Method
	}
	f.Rows = append(f.Rows, part.Rows...)
}

// ProfileValue is one timing or limit the run used, with where it comes from.
type ProfileValue struct {
	Profile string `json:"profile"`
	Name    string `json:"name"`
	Value   string `json:"value"`
}

// ToolVersion is one external binary the twin ran.
type ToolVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ScenarioResult is one scenario (one Ginkgo spec).
type ScenarioResult struct {
	// Name is the spec's full text (containers and leaf).
	Name     string          `json:"name"`
	Labels   []string        `json:"labels,omitempty"`
	Verdict  ScenarioVerdict `json:"verdict"`
	Duration time.Duration   `json:"durationNs"`
	// Failure is Ginkgo's failure message and location when Verdict is failed; the skip reason when skipped.
	Failure  string        `json:"failure,omitempty"`
	Location string        `json:"location,omitempty"`
	Measures []Measurement `json:"measurements,omitempty"`
	// Notes are what the scenario found out besides pass/fail (e.g. what the twin does with a field it
	// does not own), in plain words.
	Notes    []string        `json:"notes,omitempty"`
	Timeline []TimelineEvent `json:"timeline,omitempty"`
}

// Measurement is one measured figure of a scenario.
type Measurement struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// TimelineEvent is one moment of a scenario's timeline (failover: host down, nodes NotReady, pods
// rescheduled, healthy), as an offset from the scenario's start.
type TimelineEvent struct {
	At     time.Duration `json:"atNs"`
	Phase  string        `json:"phase"`
	Detail string        `json:"detail,omitempty"`
}

// Counts returns how many scenarios passed, failed and were skipped.
func (r *ScenarioRun) Counts() (passed, failed, skipped int) {
	for _, s := range r.Scenarios {
		switch s.Verdict {
		case ScenarioPassed:
			passed++
		case ScenarioFailed:
			failed++
		default:
			skipped++
		}
	}
	return
}

// Passed is true when the suite ran and no scenario failed.
func (r *ScenarioRun) Passed() bool {
	_, failed, _ := r.Counts()
	return failed == 0 && r.SuiteFailure == ""
}

// ScenarioJSON writes the run as indented JSON.
func ScenarioJSON(w io.Writer, r *ScenarioRun) error {
	if r.Schema == "" {
		c := *r
		c.Schema = ScenarioSchema
		r = &c
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

var scenarioTmpl = htmltemplate.Must(htmltemplate.New("scenario.html.tmpl").Funcs(funcs).Funcs(htmltemplate.FuncMap{
	"secs": func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) },
	"num":  func(v float64) string { return f1(v) },
	"optsecs": func(v *float64) string {
		if v == nil {
			return "not within the bound"
		}
		return fmt.Sprintf("%.1f s", *v)
	},
}).ParseFS(templates, "templates/scenario.html.tmpl"))

type scenarioView struct {
	R                         *ScenarioRun
	Passed, Failed, Skipped   int
	OK                        bool
	Scenarios                 []scenarioRow
	Started, Finished, Length string
}

type scenarioRow struct {
	ScenarioResult
	ID    string
	Chart htmltemplate.HTML
}

// ScenarioHTML writes a self-contained HTML page (inline CSS and SVG, no scripts, no network): the verdict
// of the run and of each scenario, its measurements and notes, a timeline picture for each scenario that
// recorded one, the twin's spec, time profile and tool versions.
func ScenarioHTML(w io.Writer, r *ScenarioRun) error {
	v := scenarioView{R: r, OK: r.Passed(),
		Started: r.Started.UTC().Format(time.RFC3339), Finished: r.Finished.UTC().Format(time.RFC3339),
		Length: r.Finished.Sub(r.Started).Round(time.Second).String()}
	v.Passed, v.Failed, v.Skipped = r.Counts()
	for i, s := range r.Scenarios {
		row := scenarioRow{ScenarioResult: s, ID: fmt.Sprintf("scenario-%d", i+1)}
		if len(s.Timeline) > 0 {
			row.Chart = TimelineSVG(fmt.Sprintf("timeline-%d", i+1), s.Name, s.Timeline)
		}
		v.Scenarios = append(v.Scenarios, row)
	}
	return scenarioTmpl.Execute(w, v)
}

// Timeline colours, one per phase kind; unknown phases are drawn in colMuted.
var phaseColours = map[string]string{
	"host down":         colLoss,
	"vm down":           colLoss,
	"nodes NotReady":    colReserve,
	"vm restarted":      colUsed,
	"vm migrated":       colUsed,
	"nodes Ready":       colUsable,
	"pods rescheduled":  colDemand,
	"healthy":           colUsable,
	"drain started":     colReserve,
	"drain finished":    colUsable,
	"pods Pending":      colLoss,
	"host repaired":     colUsable,
	"correction seen":   colUsable,
	"configuration set": colUsed,
	// The image update flow (scenarios/flow_test.go).
	"image published":     colUsed,
	"pull request opened": colReserve,
	"merge requested":     colDemand,
	"applied":             colUsed,
	"new pods Ready":      colUsable,
}

// PhaseColour is the colour the timeline draws a phase in.
func PhaseColour(phase string) string {
	if c, ok := phaseColours[phase]; ok {
		return c
	}
	return colMuted
}

// TimelineSVG draws a scenario's events on a time axis: one row per event, a marker at its offset, a bar
// from the start to it, the phase and detail as text. Events are drawn in time order.
func TimelineSVG(id, label string, events []TimelineEvent) htmltemplate.HTML {
	evs := append([]TimelineEvent(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
	const (
		left, right, top, row = 250.0, 40.0, 34.0, 22.0
		width                 = 960.0
	)
	height := top + row*float64(len(evs)) + 36
	end := 1.0
	if n := len(evs); n > 0 && evs[n-1].At.Seconds() > end {
		end = evs[n-1].At.Seconds()
	}
	scale := (width - left - right) / end
	var b svgBuf
	b.open(id, width, height, "Timeline: "+label)
	b.text(left, 18, "start", colText, 13, "seconds since the scenario started")
	// Axis with ticks at a round step.
	step := niceStep(end / 8)
	axisY := top + row*float64(len(evs)) + 6
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, left, axisY, width-right, axisY, colMuted)
	for t := 0.0; t <= end+step/1000; t += step {
		x := left + t*scale
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e7eb"/>`, x, top-6, x, axisY)
		b.text(x, axisY+16, "middle", colMuted, 11, f1(t))
	}
	for i, e := range evs {
		y := top + row*float64(i)
		x := left + e.At.Seconds()*scale
		c := PhaseColour(e.Phase)
		b.text(left-8, y+14, "end", colText, 12, e.Phase)
		b.rect(left, y+6, x-left, 8, c, fmt.Sprintf("%s at %.1f s: %s", e.Phase, e.At.Seconds(), e.Detail))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="6" fill="%s"><title>%s</title></circle>`, x, y+10, c,
			esc(fmt.Sprintf("%s at %.1f s: %s", e.Phase, e.At.Seconds(), e.Detail)))
		anchor, tx := "start", x+10
		if x > width-right-200 {
			anchor, tx = "end", x-10
		}
		b.text(tx, y+14, anchor, colMuted, 11, fmt.Sprintf("%.1f s %s", e.At.Seconds(), e.Detail))
	}
	return b.close()
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= raw {
		p *= 10
	}
	for p > raw {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
