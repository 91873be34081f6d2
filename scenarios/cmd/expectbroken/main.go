// Command expectbroken checks the report of `go tool task scenario:broken`: the suite ran against a twin
// broken on purpose (no watch-driven drift correction), so the twin must have come up and the drift specs
// that depend on the correction must have failed. It exits 1 when the break went unnoticed or the run
// failed for another reason, printing the failure messages a person would read.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hybridtwin/hybridtwin/reports"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: expectbroken out/scenario-broken/scenario.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "expectbroken: %v (did the suite run?)\n", err)
		os.Exit(2)
	}
	var run reports.ScenarioRun
	if err := json.Unmarshal(data, &run); err != nil {
		fmt.Fprintf(os.Stderr, "expectbroken: %s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	if run.SuiteFailure != "" {
		fmt.Fprintf(os.Stderr, "expectbroken: the suite itself failed, so the break proves nothing:\n%s\n", run.SuiteFailure)
		os.Exit(1)
	}
	var failed, passed []reports.ScenarioResult
	for _, s := range run.Scenarios {
		if !slices.Contains(s.Labels, "drift") {
			continue
		}
		switch s.Verdict {
		case reports.ScenarioFailed:
			failed = append(failed, s)
		case reports.ScenarioPassed:
			passed = append(passed, s)
		}
	}
	if len(failed) == 0 {
		fmt.Fprintf(os.Stderr, "expectbroken: %d drift scenarios passed with drift correction switched off: they cannot catch the break\n", len(passed))
		os.Exit(1)
	}
	fmt.Printf("as expected, %d drift scenarios caught the break (%d still pass: they check fields the reconciler must leave alone, or compliance):\n", len(failed), len(passed))
	for _, s := range failed {
		fmt.Printf("  FAILED %s\n    %s\n", s.Name, strings.ReplaceAll(strings.TrimSpace(s.Failure), "\n", "\n    "))
	}
}
