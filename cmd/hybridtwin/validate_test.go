package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/internal/proctest"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
)

// convergeData holds the converge tests' twin spec and layouts (good, bad: refused by the API server,
// stuck: never healthy).
const convergeData = "../../reconciler/layout/testdata/converge"

// buildCLI builds the hybridtwin binary, so the tests run the real main (its signal handling included).
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hybridtwin")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cli prepares the binary with its temporary files (the converge state directory among them) under
// tmp, in its own process group so a failed test can kill whatever it left.
func cli(t *testing.T, bin, tmp string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return cmd
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// processesUnder lists the processes whose command line names dir (the twin's children all do).
func processesUnder(dir string) []string { return proctest.Under(dir) }

// TestValidateConvergeNewTwin runs `validate --converge -f twin.yaml` as a process: the good layout
// converges (exit 0, a time to Ready per Kustomization); the bad one builds and passes the static rules
// but the twin's API server refuses its Service (exit 1, HT013 in every output format). Both times the
// twin is taken down: no process and no state is left.
func TestValidateConvergeNewTwin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a twin")
	}
	g := NewWithT(t)
	bin := buildCLI(t)
	spec := filepath.Join(convergeData, "twin.yaml")

	tmp := t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd := cli(t, bin, tmp, "validate", filepath.Join(convergeData, "good"), "-f", spec, "--converge", "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	g.Expect(exitCodeOf(cmd.Run())).To(Equal(0), stderr.String())
	var rep layout.Report
	g.Expect(json.Unmarshal(stdout.Bytes(), &rep)).To(Succeed())
	g.Expect(rep.Findings).To(BeEmpty())
	g.Expect(rep.Stages).To(ContainElement(layout.StageConverge))
	g.Expect(rep.Converge).NotTo(BeNil())
	g.Expect(rep.Converge.Mode).To(Equal("up"))
	g.Expect(rep.Converge.Pushed).To(HaveLen(1))
	g.Expect(rep.Converge.Pushed[0].Repo).To(Equal("platform/gitops-config"))
	g.Expect(rep.Converge.Kustomizations).To(HaveLen(2))
	g.Expect(rep.Converge.Resolution).To(Equal("kustomization"), "the twin reports each Kustomization's state")
	for _, k := range rep.Converge.Kustomizations {
		g.Expect(k.State).To(Equal(layout.StateReady), "%+v", k)
		g.Expect(k.ReadyAfterSeconds).To(BeNumerically(">=", 0))
	}
	g.Expect(stderr.String()).To(And(ContainSubstring("converge: waiting up to"), ContainSubstring("converge: twin stopped")))
	g.Expect(processesUnder(tmp)).To(BeEmpty())
	g.Expect(os.ReadDir(tmp)).To(BeEmpty(), "the converge state was left in %s", tmp)

	tmp = t.TempDir()
	stdout.Reset()
	stderr.Reset()
	cmd = cli(t, bin, tmp, "validate", filepath.Join(convergeData, "bad"), "-f", spec, "--converge", "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	g.Expect(exitCodeOf(cmd.Run())).To(Equal(1), stderr.String())
	rep = layout.Report{}
	g.Expect(json.Unmarshal(stdout.Bytes(), &rep)).To(Succeed())
	g.Expect(rep.Findings).To(HaveLen(1), "%+v", rep.Findings)
	f := rep.Findings[0]
	g.Expect(f.Rule).To(Equal(layout.RuleConverge))
	g.Expect(f.Kustomization).To(Equal("platform-apps"))
	g.Expect(f.File).To(Equal(spec))
	g.Expect(f.Line).To(BeNumerically(">", 0))
	g.Expect(f.Message).To(ContainSubstring("nodePort: Invalid value: 99999"))
	states := map[string]string{}
	for _, k := range rep.Converge.Kustomizations {
		states[k.Kustomization] = k.State
	}
	// infra is known Ready on its own (the twin reports each Kustomization), not Unknown behind apps' failure.
	g.Expect(states).To(Equal(map[string]string{"platform-infra": layout.StateReady, "platform-apps": layout.StateFailed}))
	g.Expect(processesUnder(tmp)).To(BeEmpty())
	g.Expect(os.ReadDir(tmp)).To(BeEmpty())

	// The same report as JUnit and SARIF: the converge failure is a failure of test case HT013 of
	// platform-apps, the schema rule is skipped, and the SARIF result points at the spec.
	var junit bytes.Buffer
	g.Expect(rep.Write(&junit, layout.FormatJUnit, layout.Error)).To(Succeed())
	var ju struct {
		Suites []struct {
			Skipped int `xml:"skipped,attr"`
			Cases   []struct {
				Name      string    `xml:"name,attr"`
				Classname string    `xml:"classname,attr"`
				Skipped   *struct{} `xml:"skipped"`
				Failures  []struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	g.Expect(xml.Unmarshal(junit.Bytes(), &ju)).To(Succeed())
	g.Expect(ju.Suites).To(HaveLen(1))
	g.Expect(ju.Suites[0].Skipped).To(Equal(4)) // HT009 schema and HT016 admission-policy, once per Kustomization
	failed := map[string]string{}
	for _, c := range ju.Suites[0].Cases {
		for _, fl := range c.Failures {
			failed[c.Classname+" "+c.Name] = fl.Message
		}
	}
	g.Expect(failed).To(HaveLen(1))
	g.Expect(failed).To(HaveKey("dev.platform.platform-apps HT013 converge"))
	var sarif bytes.Buffer
	g.Expect(rep.Write(&sarif, layout.FormatSARIF, layout.Error)).To(Succeed())
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
						Region           struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	g.Expect(json.Unmarshal(sarif.Bytes(), &log)).To(Succeed())
	g.Expect(log.Runs[0].Results).To(HaveLen(1))
	r := log.Runs[0].Results[0]
	g.Expect(r.RuleID).To(Equal("HT013"))
	g.Expect(r.Level).To(Equal("error"))
	g.Expect(r.Locations[0].PhysicalLocation.ArtifactLocation.URI).To(Equal(spec))
	g.Expect(r.Locations[0].PhysicalLocation.Region.StartLine).To(BeNumerically(">", 0))
}

// TestValidateConvergeCtrlC interrupts `validate --converge` while it waits for a layout that never
// becomes healthy: it stops the twin, exits 2 and leaves no process and no state.
func TestValidateConvergeCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a twin")
	}
	g := NewWithT(t)
	bin := buildCLI(t)
	tmp := t.TempDir()
	cmd := cli(t, bin, tmp, "validate", filepath.Join(convergeData, "stuck"), "-f", filepath.Join(convergeData, "twin.yaml"), "--converge")
	stderr, err := cmd.StderrPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Start()).To(Succeed())
	var lines []string
	interrupted := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if !interrupted && strings.Contains(sc.Text(), "converge: waiting up to") {
			// The twin runs and the wait has begun: the twin's processes exist now.
			g.Expect(processesUnder(tmp)).NotTo(BeEmpty())
			g.Expect(cmd.Process.Signal(os.Interrupt)).To(Succeed())
			interrupted = true
		}
	}
	err = cmd.Wait()
	all := strings.Join(lines, "\n")
	g.Expect(interrupted).To(BeTrue(), "the converge stage never started waiting:\n%s", all)
	g.Expect(exitCodeOf(err)).To(Equal(2), all)
	g.Expect(all).To(And(ContainSubstring("interrupted while waiting for convergence"), ContainSubstring("converge: twin stopped")))
	g.Expect(processesUnder(tmp)).To(BeEmpty())
	g.Expect(os.ReadDir(tmp)).To(BeEmpty(), "state left after Ctrl-C")
}

// TestConvergeAndDiffOnRunningTwin starts the converge twin in this process (as `hybridtwin up` does,
// with its control socket) and drives it through --twin: the bad layout is pushed and fails on the twin
// while the cluster keeps the good one (the apply is all-or-nothing per stage); `diff` then shows the
// good layout unchanged (exit 0) and the bad one changed (exit 1); pushing the good
// layout again converges (exit 0).
func TestConvergeAndDiffOnRunningTwin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a twin")
	}
	g := NewWithT(t)
	ctx := context.Background()
	specFile := filepath.Join(convergeData, "twin.yaml")
	tw, stateDir := runningTwin(t, g, specFile)
	g.Eventually(func() string {
		st, err := tw.Status(ctx)
		if err != nil || len(st.GitOps) != 1 {
			return ""
		}
		return st.GitOps[0].ComplianceState
	}).WithTimeout(5 * time.Minute).WithPolling(250 * time.Millisecond).Should(Equal(layout.Compliant))

	run := func(path string) (*layout.Report, int, string) {
		var out, errb bytes.Buffer
		err := runValidate(ctx, &out, &errb, path, validateFlags{output: "json", failOn: "error", converge: true, stateDir: stateDir})
		code := 0
		if err != nil {
			code = exitCode(err)
		}
		var rep layout.Report
		if code != 2 {
			g.Expect(json.Unmarshal(out.Bytes(), &rep)).To(Succeed(), errb.String())
		}
		return &rep, code, errb.String() + errString(err)
	}

	rep, code, log := run(filepath.Join(convergeData, "bad"))
	g.Expect(code).To(Equal(1), log)
	g.Expect(rep.Converge.Mode).To(Equal("running"))
	g.Expect(rep.Converge.Pushed).To(HaveLen(1))
	g.Expect(log).To(ContainSubstring("converge: pushed the layout to platform/gitops-config@main"))
	g.Expect(rep.Findings).To(HaveLen(1))
	g.Expect(rep.Findings[0].Message).To(ContainSubstring("nodePort: Invalid value: 99999"))
	badCommit := rep.Converge.Pushed[0].Commit

	diff := func(path string) (string, int) {
		var out bytes.Buffer
		err := runDiff(ctx, &out, path, diffFlags{output: "text", stateDir: stateDir, cluster: "dev"})
		code := 0
		if err != nil {
			code = exitCode(err)
		}
		return out.String() + errString(err), code
	}
	out, code := diff(filepath.Join(convergeData, "good"))
	g.Expect(code).To(Equal(0), out)
	g.Expect(out).To(ContainSubstring("cluster dev: 0 created, 0 configured, 0 deleted, 0 rejected, 4 unchanged"))
	out, code = diff(filepath.Join(convergeData, "bad"))
	g.Expect(code).To(Equal(1), out)
	g.Expect(out).To(And(ContainSubstring("► ConfigMap/shop/web-settings configured [platform/platform-apps]"),
		ContainSubstring("-  color: blue"), ContainSubstring("+  color: green"),
		// The nodePort range is checked when the port is allocated, which a dry-run does not do: like
		// `flux diff`, the diff shows the Service as created; only the real apply (--converge) fails.
		ContainSubstring("► Service/shop/web created [platform/platform-apps]")))
	out, code = diff(filepath.Join(convergeData, "missing"))
	g.Expect(code).To(Equal(2), out)
	_, code = diff("")
	g.Expect(code).To(Equal(2))

	rep, code, log = run(filepath.Join(convergeData, "good"))
	g.Expect(code).To(Equal(0), log)
	g.Expect(rep.Findings).To(BeEmpty())
	for _, k := range rep.Converge.Kustomizations {
		g.Expect(k.State).To(Equal(layout.StateReady), "%+v", k)
		g.Expect(k.ReadyAfterSeconds).To(BeNumerically(">", 0))
	}
	t.Logf("converge on the running twin: %s; %+v", rep.Converge.Elapsed, rep.Converge.Kustomizations)

	// The twin's own Gitea as a remote: validate the repository by URL at the commit just pushed, with
	// the token from the environment; the previous (bad) commit by its SHA; a wrong token is exit 2.
	pushed := rep.Converge.Pushed[0].Commit
	token, err := os.ReadFile(tw.Info().GiteaToken)
	g.Expect(err).NotTo(HaveOccurred())
	url := tw.GiteaURL() + "/platform/gitops-config.git"
	t.Setenv(envGitUsername, "twin-admin")
	t.Setenv(envGitToken, strings.TrimSpace(string(token)))
	var buf bytes.Buffer
	err = runValidate(ctx, &buf, io.Discard, url, validateFlags{output: "json", failOn: "error", ref: "main", files: []string{specFile}})
	g.Expect(err).NotTo(HaveOccurred(), buf.String())
	var remote layout.Report
	g.Expect(json.Unmarshal(buf.Bytes(), &remote)).To(Succeed())
	g.Expect(remote.Source).NotTo(BeNil())
	g.Expect(remote.Source.Revision).To(Equal("main@sha1:" + pushed))
	g.Expect(remote.Findings).To(BeEmpty())
	g.Expect(remote.Objects).To(Equal(4))
	buf.Reset()
	err = runValidate(ctx, &buf, io.Discard, url, validateFlags{output: "json", failOn: "error", ref: badCommit[:12], files: []string{specFile}})
	g.Expect(err).NotTo(HaveOccurred(), buf.String())
	remote = layout.Report{}
	g.Expect(json.Unmarshal(buf.Bytes(), &remote)).To(Succeed())
	g.Expect(remote.Source.Revision).To(Equal(badCommit[:12] + "@sha1:" + badCommit))
	g.Expect(remote.Objects).To(Equal(5)) // the bad layout's Service too
	t.Setenv(envGitToken, "not-the-token")
	err = runValidate(ctx, io.Discard, io.Discard, url, validateFlags{output: "json", failOn: "error", ref: "main", files: []string{specFile}})
	g.Expect(err).To(HaveOccurred())
	g.Expect(exitCode(err)).To(Equal(2))
	g.Expect(err.Error()).To(And(ContainSubstring("clone"), Not(ContainSubstring("not-the-token"))))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return "\nerror: " + err.Error()
}

// TestValidateInputErrors: bad flag combinations are exit 2 with a message saying what to do.
func TestValidateInputErrors(t *testing.T) {
	g := NewWithT(t)
	spec := filepath.Join(convergeData, "twin.yaml")
	for _, tc := range []struct {
		path string
		f    validateFlags
		want string
	}{
		{filepath.Join(convergeData, "good"), validateFlags{output: "text", failOn: "error", converge: true}, "--converge needs a twin"},
		{filepath.Join(convergeData, "good"), validateFlags{output: "text", failOn: "error", twinName: "x"}, "add --converge"},
		{filepath.Join(convergeData, "good"), validateFlags{output: "text", failOn: "error", converge: true, schema: true, files: []string{spec}}, "drop --schema"},
		{"", validateFlags{output: "text", failOn: "error", ref: "main"}, "--ref needs the repository"},
		{"git@example.invalid:x/y.git", validateFlags{output: "text", failOn: "error"}, "only http(s) and ssh:// Git URLs"},
		{filepath.Join(convergeData, "good"), validateFlags{output: "yaml", failOn: "error"}, `-o "yaml"`},
		{t.TempDir(), validateFlags{output: "text", failOn: "error", ref: "main"}, "not inside one"},
		{filepath.Join(convergeData, "good"), validateFlags{output: "text", failOn: "error", sources: []string{"podinfo"}}, "use NAME=DIR"},
		{filepath.Join(convergeData, "good"), validateFlags{output: "text", failOn: "error", path: "x", files: []string{spec}}, "--path picks the entry point"},
		{corpusRepo, validateFlags{output: "text", failOn: "error", cluster: "productoin"}, "did you mean production?"},
	} {
		var out, errb bytes.Buffer
		err := runValidate(context.Background(), &out, &errb, tc.path, tc.f)
		g.Expect(err).To(HaveOccurred(), tc.want)
		g.Expect(exitCode(err)).To(Equal(2), err.Error())
		g.Expect(err.Error()).To(ContainSubstring(tc.want))
	}
}

// corpusRepo is a layout of the differential corpus with two clusters.
const corpusRepo = "../../reconciler/layout/testdata/corpus/bootstrap/repo"

// TestValidateUsageErrors: an unknown flag or two paths are usage errors, exit 2 (not 1, which means
// findings), through the real command tree.
func TestValidateUsageErrors(t *testing.T) {
	g := NewWithT(t)
	for _, args := range [][]string{
		{"validate", corpusRepo, "--no-such-flag"},
		{"validate", corpusRepo, corpusRepo},
		{"validate", corpusRepo, "--fail-on"},
	} {
		root := newRootCommand()
		root.SetArgs(args)
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		err := root.ExecuteContext(context.Background())
		g.Expect(err).To(HaveOccurred(), "%v", args)
		g.Expect(exitCode(err)).To(Equal(2), "%v: %v", args, err)
	}
}

// TestValidateCorpusCLI: the command finds the planted fault of the bootstrap layout (exit 1) and
// validates its clean cluster alone (exit 0).
func TestValidateCorpusCLI(t *testing.T) {
	g := NewWithT(t)
	var out bytes.Buffer
	err := runValidate(context.Background(), &out, io.Discard, corpusRepo, validateFlags{output: "text", failOn: "error", offline: true})
	g.Expect(exitCode(err)).To(Equal(1), out.String())
	g.Expect(out.String()).To(ContainSubstring("clusters/production/apps.yaml:4: ERROR HT003"))
	g.Expect(out.String()).To(ContainSubstring("did you mean flux-system/infra-configs?"))
	out.Reset()
	err = runValidate(context.Background(), &out, io.Discard, corpusRepo, validateFlags{output: "text", failOn: "error", offline: true, cluster: "staging"})
	g.Expect(err).NotTo(HaveOccurred(), out.String())
}

// TestDiffCommandInputErrors runs the diff command's flag parsing: the cluster must be picked one way,
// and every bad combination is exit 2 with what to do.
func TestDiffCommandInputErrors(t *testing.T) {
	g := NewWithT(t)
	good := filepath.Join(convergeData, "good")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{good}, "pick the cluster with --twin"},
		{[]string{good, "--twin", "x", "--kubeconfig", "k"}, "pick the cluster with --twin"},
		{[]string{good, "--state-dir", t.TempDir()}, "--cluster is required"},
		{[]string{"--kubeconfig", "k"}, "pass the repository to diff"},
		{[]string{good, "--kubeconfig", "k", "-o", "sarif"}, `-o "sarif"`},
		{[]string{good, "--kubeconfig", filepath.Join(t.TempDir(), "none")}, "kubeconfig"},
		{[]string{filepath.Join(t.TempDir(), "none"), "--kubeconfig", "k"}, "is not a directory"},
	} {
		cmd := newDiffCommand()
		cmd.SetArgs(tc.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(context.Background())
		g.Expect(err).To(HaveOccurred(), "%v", tc.args)
		g.Expect(exitCode(err)).To(Equal(2), err.Error())
		g.Expect(err.Error()).To(ContainSubstring(tc.want), "%v", tc.args)
	}
}

// TestValidateChartsFromTheSpecMirror: with a twin spec whose spec.charts maps the layout's upstream chart
// URLs (two https:// Helm repositories, one oci:// prefix) to chart folders, validate renders every
// HelmRelease from those folders through the chart mirror, as the twin's engines install them, and
// reports no "chart not rendered" warning; --offline renders none of them.
func TestValidateChartsFromTheSpecMirror(t *testing.T) {
	g := NewWithT(t)
	repo := filepath.Join("..", "..", "examples", "repos", "helm-platform")
	spec := filepath.Join("..", "..", "examples", "twins", "helm-platform.yaml")
	var out, errb bytes.Buffer
	err := runValidate(context.Background(), &out, &errb, repo, validateFlags{output: "text", failOn: "warning", files: []string{spec}})
	g.Expect(err).NotTo(HaveOccurred(), out.String()+errb.String())
	for _, hr := range []string{"edge-ingress-4.2.0", "cert-keeper-1.3.0", "greeter-1.0.0"} {
		g.Expect(out.String()).To(MatchRegexp(`chart `+hr+` rendered \d+ object`), out.String())
	}
	g.Expect(errb.String()).To(ContainSubstring("oci://ghcr.io/acme-platform/charts <- 1 chart(s) from spec.charts"))
	out.Reset()
	err = runValidate(context.Background(), &out, io.Discard, repo, validateFlags{output: "text", failOn: "warning", files: []string{spec}, offline: true})
	g.Expect(exitCode(err)).To(Equal(1), out.String())
	g.Expect(out.String()).To(ContainSubstring("HT012"))
	g.Expect(out.String()).NotTo(MatchRegexp(`rendered \d+ object`))
}
