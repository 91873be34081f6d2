package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/twin"
)

// Bad input is refused before any twin is dialled (exit 2); a state directory with no twin says so.
func TestClusterCommandInput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown operation", []string{"cluster", "restart", "dev", "--state-dir", dir}, 2, `"restart" is not a cluster operation`},
		{"delete without a name", []string{"cluster", "delete", "--state-dir", dir}, 2, "give an operation and a cluster"},
		{"delete with too many", []string{"cluster", "delete", "dev", "prod", "--state-dir", dir}, 2, "takes one argument"},
		{"scale without a count", []string{"cluster", "scale", "dev", "linux", "--state-dir", dir}, 2, "takes three arguments"},
		{"scale to a word", []string{"cluster", "scale", "dev", "linux", "many", "--state-dir", dir}, 2, `COUNT "many"`},
		{"scale to a negative count", []string{"cluster", "scale", "--state-dir", dir, "--", "dev", "linux", "-1"}, 2, `COUNT "-1"`},
		{"bad output", []string{"cluster", "delete", "dev", "-o", "yaml", "--state-dir", dir}, 2, `-o "yaml"`},
		{"no twin running", []string{"cluster", "recreate", "dev", "--state-dir", dir}, 1, "no twin running"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runCapacityCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q does not say %q", stderr, c.stderr)
			}
		})
	}
}

// The text report lists the steps with their times and the model's verdict.
func TestPrintClusterReport(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := &twin.ClusterReport{Op: twin.OpRecreateCluster, Cluster: "dev", Started: start, Took: 12340 * time.Millisecond,
		Steps: []twin.LifecycleStep{
			{Step: twin.StepPlaced, At: start, Detail: "dev-linux-0@br-hci-04"},
			{Step: twin.StepControlPlaneUp, At: start.Add(4200 * time.Millisecond), After: 4200 * time.Millisecond},
		},
		Capacity: "plan fits on 4 hosts with N-1 and a 15% reserve"}
	var b bytes.Buffer
	printClusterReport(&b, rep)
	for _, want := range []string{"recreate-cluster dev: done in 12.34s", "[   0.0s] VMs placed: dev-linux-0@br-hci-04",
		"[   4.2s] control plane up", "hardware: plan fits"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	printClusterReport(&b, &twin.ClusterReport{Op: twin.OpScalePool, Cluster: "dev", Pool: "linux", From: 3, To: 3})
	if got := b.String(); !strings.Contains(got, "nothing to do") {
		t.Errorf("a no-op scale says %q", got)
	}
}
