package layout

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Format is an output format of a Report.
type Format string

// Formats.
const (
	FormatText  Format = "text"
	FormatJSON  Format = "json"
	FormatSARIF Format = "sarif"
	FormatJUnit Format = "junit"
)

// Write renders the report; failOn decides which findings are JUnit failures.
func (r *Report) Write(w io.Writer, f Format, failOn Severity) error {
	switch f {
	case FormatText, "":
		return r.writeText(w)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatSARIF:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r.SARIF())
	case FormatJUnit:
		if _, err := io.WriteString(w, xml.Header); err != nil {
			return err
		}
		enc := xml.NewEncoder(w)
		enc.Indent("", "  ")
		if err := enc.Encode(r.JUnit(failOn)); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	}
	return fmt.Errorf("%w: output format %q: use text, json, sarif or junit", ErrInput, f)
}

func (r *Report) writeText(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Findings {
		loc := f.File
		if loc == "" {
			loc = "-"
		}
		if f.Line > 0 {
			loc += fmt.Sprintf(":%d", f.Line)
		}
		fmt.Fprintf(&b, "%s: %s %s [%s/%s/%s]", loc, strings.ToUpper(string(f.Severity)), f.Rule, f.Cluster, f.Configuration, f.Kustomization)
		if f.Object != "" {
			fmt.Fprintf(&b, " %s", f.Object)
		}
		fmt.Fprintf(&b, ": %s\n", f.Message)
		if f.Hint != "" {
			fmt.Fprintf(&b, "    fix: %s\n", f.Hint)
		}
	}
	if r.Converge != nil {
		c := r.Converge
		fmt.Fprintf(&b, "converge on twin %s (%s): ", c.Twin, c.Mode)
		for i, p := range c.Pushed {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s@%s %.12s", p.Repo, p.Branch, p.Commit)
		}
		fmt.Fprintf(&b, "; waited %s of at most %s; time to Ready per %s\n", c.Elapsed, c.Timeout, c.Resolution)
		for _, k := range c.Kustomizations {
			if k.State == StateReady {
				fmt.Fprintf(&b, "  %s/%s/%s: Ready after %.1fs\n", k.Cluster, k.Configuration, k.Kustomization, k.ReadyAfterSeconds)
				continue
			}
			fmt.Fprintf(&b, "  %s/%s/%s: %s: %s\n", k.Cluster, k.Configuration, k.Kustomization, k.State, k.Message)
		}
	}
	for _, h := range r.HelmReleases {
		fmt.Fprintf(&b, "HelmRelease %s [%s/%s/%s]: chart %s rendered %d object(s)\n", h.Release, h.Cluster, h.Configuration, h.Kustomization, h.Chart, h.Objects)
	}
	if r.Source != nil {
		fmt.Fprintf(&b, "source: %s at %s\n", r.Source.URL, r.Source.Revision)
	}
	n := r.Count()
	ks := 0
	for _, c := range r.Configs {
		ks += len(c.Kustomizations)
	}
	fmt.Fprintf(&b, "%d configuration(s), %d kustomization(s), %d object(s) checked against Kubernetes %s: %d error(s), %d warning(s), %d info\n",
		len(r.Configs), ks, r.Objects, r.TargetVersion, n[Error], n[Warning], n[Info])
	_, err := io.WriteString(w, b.String())
	return err
}

// SARIF 2.1.0 (OASIS sarif-v2.1.0, https://docs.oasis-open.org/sarif/sarif/v2.1.0/) -- the subset
// code-scanning tools read.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	DefaultConfiguration map[string]any `json:"defaultConfiguration"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine int `json:"startLine"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

// sarifSchema is the schema URI the SARIF 2.1.0 standard publishes (OASIS errata 01, §3.13.3).
const sarifSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

func sarifLevel(s Severity) string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// SARIF returns the report as a SARIF 2.1.0 log.
func (r *Report) SARIF() any {
	d := sarifDriver{Name: "hybridtwin-validate", InformationURI: "https://github.com/hybridtwin/hybridtwin"}
	index := map[RuleID]int{}
	for i, rule := range Rules {
		index[rule.ID] = i
		d.Rules = append(d.Rules, sarifRule{ID: string(rule.ID), Name: rule.Name, ShortDescription: sarifText{rule.Description},
			DefaultConfiguration: map[string]any{"level": sarifLevel(rule.Default)}})
	}
	run := sarifRun{Tool: sarifTool{Driver: d}, Results: []sarifResult{}}
	for _, f := range r.Findings {
		msg := f.Message
		if f.Object != "" {
			msg = f.Object + ": " + msg
		}
		if f.Hint != "" {
			msg += " Fix: " + f.Hint
		}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = f.File
		if loc.PhysicalLocation.ArtifactLocation.URI == "" || strings.Contains(f.File, "(generated") {
			loc.PhysicalLocation.ArtifactLocation.URI = strings.TrimSuffix(strings.SplitN(f.File, "(generated", 2)[0], "/")
			if loc.PhysicalLocation.ArtifactLocation.URI == "" {
				loc.PhysicalLocation.ArtifactLocation.URI = "."
			}
		}
		// SARIF regions are 1-based; an unknown line points at the file's start.
		loc.PhysicalLocation.Region.StartLine = max(f.Line, 1)
		run.Results = append(run.Results, sarifResult{RuleID: string(f.Rule), RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity),
			Message: sarifText{msg}, Locations: []sarifLocation{loc}})
	}
	return sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}}
}

// JUnit XML as Jenkins, GitLab and Ginkgo's --junit-report read it (testsuites > testsuite > testcase,
// failure with message/type).
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one configuration.
type JUnitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []JUnitCase `xml:"testcase"`
}

// JUnitCase is one rule on one Kustomization.
type JUnitCase struct {
	Name      string         `xml:"name,attr"`
	Classname string         `xml:"classname,attr"`
	Skipped   *JUnitSkipped  `xml:"skipped,omitempty"`
	Failures  []JUnitFailure `xml:"failure,omitempty"`
	SystemOut string         `xml:"system-out,omitempty"`
}

// JUnitSkipped marks a rule whose stage did not run (schema without --schema, converge without
// --converge).
type JUnitSkipped struct {
	Message string `xml:"message,attr"`
}

// JUnitFailure is one finding.
type JUnitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// JUnit returns the report as JUnit XML: a testsuite per configuration, a testcase per rule per
// Kustomization; findings at or above failOn are failures, the rest system-out.
func (r *Report) JUnit(failOn Severity) JUnitSuites {
	out := JUnitSuites{Name: "hybridtwin validate"}
	for _, c := range r.Configs {
		s := JUnitSuite{Name: c.Cluster + "/" + c.Name}
		for _, k := range c.Kustomizations {
			for _, rule := range Rules {
				tc := JUnitCase{Name: string(rule.ID) + " " + rule.Name, Classname: c.Cluster + "." + c.Name + "." + k}
				if !r.Ran(rule.ID) {
					tc.Skipped = &JUnitSkipped{Message: fmt.Sprintf("stage %s did not run (--%s)", stageOf(rule.ID), stageOf(rule.ID))}
					s.Tests++
					s.Skipped++
					s.Cases = append(s.Cases, tc)
					continue
				}
				var notes []string
				for _, f := range r.Findings {
					if f.Cluster != c.Cluster || f.Configuration != c.Name || f.Kustomization != k || f.Rule != rule.ID {
						continue
					}
					text := fmt.Sprintf("%s:%d %s\n%s\nfix: %s", f.File, f.Line, f.Object, f.Message, f.Hint)
					if f.Severity.AtLeast(failOn) {
						tc.Failures = append(tc.Failures, JUnitFailure{Message: f.Message, Type: string(f.Severity), Text: text})
					} else {
						notes = append(notes, string(f.Severity)+": "+text)
					}
				}
				tc.SystemOut = strings.Join(notes, "\n")
				s.Tests++
				if len(tc.Failures) > 0 {
					s.Failures++
				}
				s.Cases = append(s.Cases, tc)
			}
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Suites = append(out.Suites, s)
	}
	return out
}
