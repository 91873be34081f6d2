package spec

import (
	"errors"
	"strings"
	"testing"
)

// spec.charts loads: an https and an oci source, URLs kept as written, folders relative to the spec.
func TestSpecChartsLoad(t *testing.T) {
	s, err := ParseSpec("testdata/specs/charts.yaml", ociSpec(`  charts:
  - url: https://kubernetes.github.io/ingress-nginx
    charts: [charts/hello]
  - url: oci://ghcr.io/stefanprodan/charts
    charts: [charts/hello]
  - url: http://charts.example.com:8080/stable/
    charts: [charts/hello]
`, ""))
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	if got := len(s.Spec.Charts); got != 3 {
		t.Fatalf("charts: %d, want 3", got)
	}
	if c := s.Spec.Charts[1]; c.URL != "oci://ghcr.io/stefanprodan/charts" || len(c.Charts) != 1 || c.Charts[0] != "charts/hello" {
		t.Errorf("charts[1] = %+v", c)
	}
}

// Every chart problem is reported at once with its line and field.
func TestSpecChartsProblems(t *testing.T) {
	_, err := ParseSpec("testdata/specs/charts.yaml", ociSpec(`  charts:
  - url: git://example.com/charts
    charts: [charts/hello]
  - url: https://Charts.Example.com:443/stable/
    charts: [charts/hello, charts/hello]
  - url: https://charts.example.com/stable
    charts: [charts/missing]
  - url: oci://ghcr.io/Upper/charts
    charts: [charts/hello]
  - url: https:///nohost
    charts: []
  - url: https://example.com/more
    charts: [charts/nochart, charts/noversion, charts/hello/values.yaml]
`, ""))
	var se *SpecErrors
	if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("ParseSpec: %v, want *SpecErrors", err)
	}
	want := []struct {
		line       int
		field, msg string
	}{
		{13, "spec.charts[0].url", "the scheme must be https or http"},
		{16, "spec.charts[1].charts[1]", "chart hello 0.1.0 is given already as charts[0]"},
		{17, "spec.charts[2].url", "is mirrored already by spec.charts[1]"},
		{18, "spec.charts[2].charts[0]", "does not exist"},
		{19, "spec.charts[3].url", "lower-case repository path"},
		{21, "spec.charts[4].url", "names no host"},
		{22, "spec.charts[4].charts", "list at least one chart folder"},
		{24, "spec.charts[5].charts[0]", "has no Chart.yaml"},
		{24, "spec.charts[5].charts[1]", "must give name and version"},
		{24, "spec.charts[5].charts[2]", "is a file, not a chart folder"},
	}
	if len(se.Problems) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(se.Problems), len(want), err)
	}
	for i, w := range want {
		p := se.Problems[i]
		if p.Line != w.line || p.Field != w.field || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d = %s, want line %d, %s: ...%s...", i, p, w.line, w.field, w.msg)
		}
	}
}

// The example twin with a mirrored Helm repository (examples/twins/helm-repository.yaml) loads.
func TestHelmRepositoryExampleLoads(t *testing.T) {
	s, err := LoadSpec("../../examples/twins/helm-repository.yaml")
	if err != nil {
		t.Fatalf("LoadSpec: %v", err)
	}
	if len(s.Spec.Charts) != 1 || s.Spec.Charts[0].URL != "https://stefanprodan.github.io/podinfo" || s.ReconcilerFor("dev") != ReconcilerFlux {
		t.Errorf("charts = %+v, reconciler %s", s.Spec.Charts, s.ReconcilerFor("dev"))
	}
}
