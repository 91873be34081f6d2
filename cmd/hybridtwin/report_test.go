package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		return out.String() + err.Error(), exitCode(err)
	}
	return out.String(), 0
}

func writeRun(t *testing.T, dir, name string, seconds float64) string {
	t.Helper()
	r := &result.Run{Env: result.CurrentEnvironment()}
	r.Add(result.NewMetric("twin.up.seconds", "s", result.Lower, []float64{seconds}))
	p := filepath.Join(dir, name)
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReportCompareExitCodes(t *testing.T) {
	dir := t.TempDir()
	base := writeRun(t, dir, "base.json", 20)
	same := writeRun(t, dir, "same.json", 20)
	slow := writeRun(t, dir, "slow.json", 30)

	if out, code := runCLI(t, "report", "compare", base, same); code != 0 || !strings.Contains(out, "PASS") {
		t.Errorf("self-compare: exit %d\n%s", code, out)
	}
	out, code := runCLI(t, "report", "compare", base, slow, "--threshold", "10%")
	if code != 1 || !strings.Contains(out, "twin.up.seconds") || !strings.Contains(out, "50.0% worse") {
		t.Errorf("doctored slower run: exit %d\n%s", code, out)
	}
	if _, code := runCLI(t, "report", "compare", base, slow, "--threshold", "60%"); code != 0 {
		t.Errorf("within a 60%% threshold: exit %d", code)
	}
	if out, code := runCLI(t, "report", "compare", base, filepath.Join(dir, "missing.json")); code != 2 || !strings.Contains(out, "missing.json") {
		t.Errorf("unreadable file: exit %d\n%s", code, out)
	}
	html := filepath.Join(dir, "cmp.html")
	if _, code := runCLI(t, "report", "compare", base, slow, "-o", "html", "--out", html, "--history", same); code != 1 {
		t.Errorf("html: exit %d", code)
	}
}
