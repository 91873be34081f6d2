package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCapacityCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCommand()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code = 0
	if err != nil {
		code = exitCode(err)
		errb.WriteString("error: " + err.Error())
	}
	return out.String(), errb.String(), code
}

func TestCapacityExitCodes(t *testing.T) {
	ex := func(n string) string { return filepath.Join("..", "..", "examples", "hardware", n+".yaml") }
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: hybridtwin.io/v1alpha1\nkind: HCICluster\nmetadata: {name: x}\nspec:\n  hostz: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"fits", []string{"capacity", "-f", ex("branch-4node"), "-f", ex("plan")}, 0, "Verdict: FITS", "plan fits on 4 hosts"},
		{"fails N-1", []string{"capacity", "-f", ex("edge-2node"), "-f", ex("plan")}, 1, "DOES NOT FIT", "losing host edge-hci-01"},
		{"json", []string{"capacity", "-f", ex("datacenter-8node"), "-f", ex("plan"), "-o", "json"}, 0, `"fits": true`, ""},
		{"bad field", []string{"capacity", "-f", bad}, 2, "", "bad.yaml:5: spec.hostz: unknown field"},
		{"missing file", []string{"capacity", "-f", filepath.Join(dir, "nope.yaml")}, 2, "", "nope.yaml: cannot read"},
		{"no input", []string{"capacity"}, 2, "", "pass the inventory with -f"},
		{"bad format", []string{"capacity", "-f", ex("branch-4node"), "-o", "pdf"}, 2, "", "use html, json or md"},
		{"plan only", []string{"capacity", "-f", ex("plan")}, 2, "", "no HCICluster inventory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := runCapacityCLI(t, c.args...)
			if code != c.code || !strings.Contains(out, c.stdout) || !strings.Contains(errs, c.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %.300s\nstderr: %s", code, c.code, out, errs)
			}
		})
	}
}

func TestCapacityWritesReportFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "report")
	ex := filepath.Join("..", "..", "examples", "hardware")
	_, errs, code := runCapacityCLI(t, "capacity", "-f", filepath.Join(ex, "edge-2node.yaml"), "-f", filepath.Join(ex, "plan.yaml"), "-o", "html", "--out", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errs)
	}
	page, err := os.ReadFile(filepath.Join(dir, "capacity.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<svg id="hosts-after"`) || !strings.Contains(errs, "report: "+filepath.Join(dir, "capacity.html")) {
		t.Fatalf("report not written as expected; stderr %s", errs)
	}
}
