package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reports"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin"
)

// Environment of the suite, set by `go tool task scenario`.
const (
	// envRun must be 1 for the suite to run: it brings up a whole twin, which plain `go test ./...` must not.
	envRun = "HYBRIDTWIN_SCENARIOS"
	// envSpec names the twin spec (default: examples/twin.yaml).
	envSpec = "HYBRIDTWIN_SCENARIO_SPEC"
	// envOut is the folder scenario.json and scenario.html are written to (default: ../out/scenario).
	envOut = "HYBRIDTWIN_SCENARIO_OUT"
	// envBreak, set to "drift-watch", starts the twin's reconcilers with watch-driven drift correction off
	// (twin.Options.NoDriftWatch): the deliberately broken change of `go tool task scenario:broken`, under
	// which the drift specs must fail and say why.
	envBreak = "HYBRIDTWIN_SCENARIO_BREAK"
)

func TestScenarios(t *testing.T) {
	if os.Getenv(envRun) != "1" {
		t.Skipf("the scenario suite brings up a whole twin; run it with `go tool task scenario` (or set %s=1)", envRun)
	}
	// The twin's reconcilers run in this process, as in `hybridtwin up`: the same GC setting.
	reconciler.SetProcessGC(reconciler.DefaultProfile())
	RegisterFailHandler(Fail)
	RunSpecs(t, "hybridtwin scenarios")
}

// env is the suite's twin and what the specs need to drive it.
var env *Env

// run collects the report's suite-level facts as BeforeSuite learns them.
var run = &reports.ScenarioRun{Schema: reports.ScenarioSchema}

var _ = BeforeSuite(func(ctx SpecContext) {
	run.Started = time.Now()
	specPath := os.Getenv(envSpec)
	if specPath == "" {
		specPath = filepath.Join("..", "examples", "twin.yaml")
	}
	spec, err := twin.LoadSpec(specPath)
	Expect(err).NotTo(HaveOccurred(), "load the twin spec %s", specPath)
	run.Twin, run.SpecFile, run.TimeProfile = spec.Metadata.Name, specPath, string(spec.Spec.TimeProfile)
	for _, tl := range toolcache.Default() {
		run.Tools = append(run.Tools, reports.ToolVersion{Name: tl.Name, Version: tl.Version})
	}
	// See SourceIntervalSeconds: the suite polls Git every 10 s where the spec leaves Azure's 600 s default.
	for i := range spec.Spec.GitOps {
		if spec.Spec.GitOps[i].SyncIntervalInSeconds == 0 {
			spec.Spec.GitOps[i].SyncIntervalInSeconds = SourceIntervalSeconds
		}
	}
	waits, err := WaitsFor(spec.Spec.TimeProfile)
	Expect(err).NotTo(HaveOccurred())
	run.Timings = profileValues(spec, waits)
	if !defaultTwinNeeded(GinkgoLabelFilter()) { // flux_test.go
		run.Notes = append(run.Notes, fmt.Sprintf("The label filter %q selects only specs that bring up their own twin: the default twin (%s) was not started.", GinkgoLabelFilter(), specPath))
		return
	}

	tmp, err := os.MkdirTemp("", "hybridtwin-scenarios-")
	Expect(err).NotTo(HaveOccurred())
	stateDir := filepath.Join(tmp, "state")
	By("bringing up twin " + spec.Metadata.Name + " from " + specPath)
	opts := twin.Options{StateDir: stateDir, Progress: GinkgoWriter}
	switch b := os.Getenv(envBreak); b {
	case "":
	case "drift-watch":
		opts.NoDriftWatch = true
		run.Notes = append(run.Notes, "BROKEN ON PURPOSE: the reconcilers run without watch-driven drift correction ("+envBreak+"=drift-watch); the drift specs are expected to fail")
		By("breaking the twin on purpose: reconcilers without watch-driven drift correction")
	default:
		Fail(fmt.Sprintf("%s=%q: the only deliberate break is drift-watch", envBreak, b))
	}
	tw, err := twin.Up(ctx, spec, opts)
	if err != nil {
		_ = os.RemoveAll(tmp)
	}
	Expect(err).NotTo(HaveOccurred(), "bring up the twin of %s", specPath)
	run.TwinReady = tw.ReadyAfter()
	DeferCleanup(func() {
		By("taking the twin down")
		Expect(tw.Down(context.Background(), false)).To(Succeed())
		left := processesUnder(stateDir)
		_ = os.RemoveAll(tmp)
		Expect(left).To(BeEmpty(), "processes of the twin still running after Down")
	})
	env, err = NewEnv(ctx, tw, waits)
	Expect(err).NotTo(HaveOccurred())
	By("waiting for every GitOps configuration to be Compliant")
	Eventually(env.Compliance).WithContext(ctx).WithTimeout(waits.Converge).WithPolling(waits.Poll).
		Should(Succeed(), "the twin came up but its configurations did not converge")
}, NodeTimeout(30*time.Minute)) // twin.RunProfile.ReadyTimeout (10 min) plus Converge, with room for a cold tool build

// The specs, in a fixed order: read-only layout checks first, then drift, failover, and the Git flows
// last (the promotion spec protects main, after which direct pushes are refused). Ordered makes Ginkgo
// run them as listed here (without it, specs of one container run in code-location order, i.e. sorted
// by file name, which put scale after the promotion); ContinueOnFailure keeps one failed scenario from
// skipping the rest, as independent scenarios should.
var _ = Describe("hybridtwin", Ordered, ContinueOnFailure, func() {
	layoutSpecs()
	driftSpecs()
	failoverSpecs()
	scaleSpecs() // before flow: it pushes to main, which the promotion spec protects
	sopsSpecs()  // before flow, for the same reason
	// policy pushes to main too: before flow.
	policySpecs()
	chaosSpecs() // before flow: it pushes to main
	flowSpecs()
	helmSpecs() // its own twin (examples/twins/helm-platform.yaml); with flux, real Flux beside the twin's engine
	fluxSpecs()
	fidelitySpecs()
	bucketSpecs()
	sealedSpecs()    // its own twin; needs the optional sealed-secrets tools
	notifySpecs()    // its own twin; needs the optional notification-controller tool (label notify)
	sshSpecs()       // its own twin (the default spec read over SSH); with flux, real Flux too
	lifecycleSpecs() // last: it deletes, recreates and adds clusters and grows a pool (each put back as found)
})

// Entry names the specs use to hand measurements, notes and timelines to the report.
const (
	entryMeasure  = "hybridtwin-measure"
	entryNote     = "hybridtwin-note"
	entryTimeline = "hybridtwin-timeline"
)

var _ = ReportAfterSuite("scenario report", func(r Report) {
	run.Finished = time.Now()
	run.LabelFilter = r.SuiteConfig.LabelFilter
	for _, sr := range r.SpecReports {
		switch sr.LeafNodeType {
		case types.NodeTypeIt:
		case types.NodeTypeBeforeSuite, types.NodeTypeAfterSuite, types.NodeTypeSynchronizedBeforeSuite, types.NodeTypeSynchronizedAfterSuite:
			if sr.State.Is(types.SpecStateFailureStates) {
				run.SuiteFailure += fmt.Sprintf("%s: %s\n%s\n", sr.LeafNodeType, sr.Failure.Message, sr.Failure.Location)
			}
			continue
		default:
			continue
		}
		res := reports.ScenarioResult{Name: strings.TrimPrefix(sr.FullText(), "hybridtwin "), Labels: sr.Labels(),
			Duration: sr.RunTime, Location: sr.LeafNodeLocation.String()}
		switch {
		case sr.State.Is(types.SpecStateFailureStates):
			res.Verdict = reports.ScenarioFailed
			res.Failure = sr.Failure.Message
			if sr.Failure.Location.FileName != "" {
				res.Failure += "\n" + sr.Failure.Location.String()
			}
		case sr.State == types.SpecStatePassed:
			res.Verdict = reports.ScenarioPassed
		default:
			res.Verdict = reports.ScenarioSkipped
			res.Failure = sr.Failure.Message
		}
		for _, e := range sr.ReportEntries {
			switch v := e.Value.GetRawValue().(type) {
			case reports.Measurement:
				res.Measures = append(res.Measures, v)
			case note:
				res.Notes = append(res.Notes, string(v))
			case []reports.TimelineEvent:
				res.Timeline = append(res.Timeline, v...)
			case reports.Fidelity:
				run.AddFidelity(v)
			}
		}
		run.Scenarios = append(run.Scenarios, res)
	}
	out := os.Getenv(envOut)
	if out == "" {
		out = filepath.Join("..", "out", "scenario")
	}
	Expect(os.MkdirAll(out, 0o755)).To(Succeed())
	write := func(name string, render func(f *os.File) error) {
		f, err := os.Create(filepath.Join(out, name))
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		Expect(render(f)).To(Succeed(), "write %s", name)
	}
	write("scenario.json", func(f *os.File) error { return reports.ScenarioJSON(f, run) })
	write("scenario.html", func(f *os.File) error { return reports.ScenarioHTML(f, run) })
	abs, _ := filepath.Abs(out)
	p, f, s := run.Counts()
	fmt.Fprintf(os.Stdout, "\nscenario report: %d passed, %d failed, %d skipped\n  %s\n  %s\n",
		p, f, s, filepath.Join(abs, "scenario.html"), filepath.Join(abs, "scenario.json"))
})
