package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/internal/proctest"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reports"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// Env is the running twin and the clients the specs drive it with.
type Env struct {
	Twin    *twin.Twin
	Waits   Waits
	Kube    map[string]kubernetes.Interface
	Git     *gitserver.Client
	Repo    gitserver.Repo
	repoDir string // the spec's folder pushed as main, before any scenario changed it
}

// NewEnv connects to a running twin: a client per workload cluster and the Gitea admin.
func NewEnv(ctx context.Context, tw *twin.Twin, w Waits) (*Env, error) {
	e := &Env{Twin: tw, Waits: w, Kube: map[string]kubernetes.Interface{}}
	for _, name := range tw.Spec().ClusterNames() {
		cfg, err := tw.RESTConfig(name)
		if err != nil {
			return nil, err
		}
		if e.Kube[name], err = kubernetes.NewForConfig(cfg); err != nil {
			return nil, fmt.Errorf("client for cluster %s: %w", name, err)
		}
	}
	token, err := os.ReadFile(filepath.Join(tw.StateDir(), twin.GiteaTokenFile))
	if err != nil {
		return nil, fmt.Errorf("read the Gitea admin token: %w", err)
	}
	p := gitserver.DefaultProfile()
	if e.Git, err = gitserver.NewClient(tw.GiteaURL(), p.AdminUser, strings.TrimSpace(string(token)), p); err != nil {
		return nil, err
	}
	s := tw.Spec()
	if len(s.Spec.Git.Repos) == 0 || s.Spec.Git.Repos[0].Path == "" {
		return nil, fmt.Errorf("twin spec %s: the scenarios need spec.git.repos[0].path (a folder pushed as main)", s.File)
	}
	e.Repo = gitserver.Repo{Owner: s.Spec.Git.Org, Name: s.Spec.Git.Repos[0].Name}
	e.repoDir = s.Path(s.Spec.Git.Repos[0].Path)
	return e, nil
}

// Compliance fails unless every GitOps configuration of the twin is Compliant, naming those that are not
// (cluster/name, state and message): faultphases.Compliant, the check the failover phases wait on.
func (e *Env) Compliance(ctx context.Context) error {
	st, err := e.Twin.Status(ctx)
	if err != nil {
		return err
	}
	return faultphases.Compliant(st)
}

// GitOps returns one configuration's state on one cluster.
func (e *Env) GitOps(ctx context.Context, clusterName, name string) (twin.GitOpsStatus, error) {
	st, err := e.Twin.Status(ctx)
	if err != nil {
		return twin.GitOpsStatus{}, err
	}
	for _, g := range st.GitOps {
		if g.Cluster == clusterName && g.Name == name {
			return g, nil
		}
	}
	return twin.GitOpsStatus{}, fmt.Errorf("configuration %s on cluster %s: not reported", name, clusterName)
}

// Deployment reads a Deployment.
func (e *Env) Deployment(ctx context.Context, clusterName, ns, name string) (*appsv1.Deployment, error) {
	return e.Kube[clusterName].AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
}

// WorkingCopy copies the repository's seed folder into a fresh folder, with the registry placeholder
// replaced as the twin's seeding does, for a spec to change and push.
func (e *Env) WorkingCopy() string {
	dst := GinkgoT().TempDir()
	from, to := []byte(gitserver.PlaceholderRegistry), []byte(e.Twin.RegistryHost())
	err := filepath.WalkDir(e.repoDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.repoDir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), bytes.ReplaceAll(data, from, to), 0o644)
	})
	Expect(err).NotTo(HaveOccurred(), "copy %s", e.repoDir)
	return dst
}

// Push commits dir as the whole tree of branch and returns the commit.
func (e *Env) Push(ctx context.Context, branch, dir, message string) string {
	res, err := e.Git.Push(ctx, gitserver.PushRequest{Repo: e.Repo, Branch: branch, Dir: dir, Message: message, From: "main"})
	Expect(err).NotTo(HaveOccurred(), "push %s to %s@%s", dir, e.Repo, branch)
	Expect(res.Pushed).To(BeTrue(), "the push to %s@%s changed nothing", e.Repo, branch)
	return res.Commit
}

// GitRevertHead runs the real git CLI: clone branch, `git revert --no-edit HEAD`, push; it returns the
// revert commit.
func (e *Env) GitRevertHead(ctx context.Context, branch string) string {
	u, err := url.Parse(e.Git.CloneURL(e.Repo))
	Expect(err).NotTo(HaveOccurred())
	token, err := os.ReadFile(filepath.Join(e.Twin.StateDir(), twin.GiteaTokenFile))
	Expect(err).NotTo(HaveOccurred())
	u.User = url.UserPassword(e.Git.User(), strings.TrimSpace(string(token)))
	dir := GinkgoT().TempDir()
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=platform-oncall", "-c", "user.email=oncall@example.invalid"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		// The token is part of the URL: never show it.
		msg := strings.ReplaceAll(string(out), strings.TrimSpace(string(token)), "***")
		Expect(err).NotTo(HaveOccurred(), "git %s: %s", args[0], msg)
		return strings.TrimSpace(string(out))
	}
	git("clone", "--quiet", "--branch", branch, u.String(), ".")
	git("revert", "--no-edit", "HEAD")
	head := git("rev-parse", "HEAD")
	git("push", "--quiet", "origin", "HEAD:"+branch)
	Expect(e.Git.WaitBranch(ctx, e.Repo, branch, head)).To(Succeed())
	return head
}

// note hands a finding to the report.
type note string

func Note(format string, args ...any) {
	AddReportEntry(entryNote, note(fmt.Sprintf(format, args...)), ReportEntryVisibilityFailureOrVerbose)
}

// recordTiming records a duration in the spec's gmeasure experiment and in the report.
func recordTiming(exp *gmeasure.Experiment, name string, d time.Duration) {
	exp.RecordDuration(name, d, gmeasure.Precision(10*time.Millisecond))
	AddReportEntry(entryMeasure, reports.Measurement{Name: name, Value: d.Seconds(), Unit: "s"})
}

// Experiment starts a gmeasure experiment that is added to the spec's report when the spec ends.
func Experiment(name string) *gmeasure.Experiment {
	exp := gmeasure.NewExperiment(name)
	DeferCleanup(func() { AddReportEntry(exp.Name, exp) })
	return exp
}

// Timeline collects a scenario's moments and hands them to the report when the spec ends (also when it
// fails: a failed failover's timeline shows how far it got).
type Timeline struct {
	start  time.Time
	events []reports.TimelineEvent
}

func NewTimeline(start time.Time) *Timeline {
	t := &Timeline{start: start}
	DeferCleanup(func() {
		sort.SliceStable(t.events, func(i, j int) bool { return t.events[i].At < t.events[j].At })
		AddReportEntry(entryTimeline, t.events, ReportEntryVisibilityNever)
	})
	return t
}

func (t *Timeline) Add(at time.Time, phase, detail string) {
	t.events = append(t.events, reports.TimelineEvent{At: at.Sub(t.start), Phase: phase, Detail: detail})
}

// nodeReady is a Node's Ready condition status, "-" when it has none.
func nodeReady(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return string(c.Status)
		}
	}
	return "-"
}

// profileValues lists the run's timings for the report.
func profileValues(s *twin.Spec, w Waits) []reports.ProfileValue {
	var out []reports.ProfileValue
	add := func(profile, name string, v any) {
		out = append(out, reports.ProfileValue{Profile: profile, Name: name, Value: fmt.Sprint(v)})
	}
	if tp, err := cluster.Profile(s.Spec.TimeProfile); err == nil {
		p := "cluster " + cluster.ProfilesVersion + " " + string(tp.Name)
		add(p, "nodeMonitorPeriod", tp.NodeMonitorPeriod)
		add(p, "nodeMonitorGracePeriod", tp.NodeMonitorGracePeriod)
		add(p, "defaultUnreachableTolerationSeconds", tp.DefaultUnreachableTolerationSeconds)
		add(p, "defaultNotReadyTolerationSeconds", tp.DefaultNotReadyTolerationSeconds)
		add(p, "nodeLeaseDurationSeconds", tp.NodeLeaseDurationSeconds)
	}
	if rp, err := twin.RunProfileFor(s.Spec.TimeProfile); err == nil {
		p := "twin " + rp.Version
		add(p, "failoverDelay (0: the hardware profile's)", rp.FailoverDelay)
		add(p, "arcProvisioningDelay", rp.ArcProvisioningDelay)
	}
	rec := reconciler.DefaultProfile()
	add("reconciler "+rec.Name, "driftRetry", rec.DriftRetry)
	add("reconciler "+rec.Name, "healthCheckInterval", rec.HealthCheckInterval)
	p := "scenarios " + w.Version
	add(p, "source interval (syncIntervalInSeconds where the spec sets none)", time.Duration(SourceIntervalSeconds)*time.Second)
	add(p, "converge bound", w.Converge)
	add(p, "drift bound", w.Drift)
	add(p, "node NotReady bound", w.NodeNotReady)
	add(p, "crashed process back, nodes Ready bound", w.Restart)
	add(p, "node back bound", w.NodeBack)
	add(p, "healthy bound", w.Healthy)
	return out
}

// processesUnder lists the processes whose command line names dir (the twin's children all do).
func processesUnder(dir string) []string { return proctest.Under(dir) }

func sortStrings(s []string) { sort.Strings(s) }

// writeFile writes a file of a working copy, relative to its root.
func writeFile(root, rel, content string) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	Expect(os.MkdirAll(filepath.Dir(p), 0o755)).To(Succeed())
	Expect(os.WriteFile(p, []byte(content), 0o644)).To(Succeed())
}

// appendResource adds a file to the resources list of a kustomization.yaml (the list must exist).
func appendResource(root, rel, resource string) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	data, err := os.ReadFile(p)
	Expect(err).NotTo(HaveOccurred())
	s := string(data)
	i := strings.Index(s, "resources:\n")
	Expect(i).To(BeNumerically(">=", 0), "%s has no resources list", rel)
	i += len("resources:\n")
	Expect(os.WriteFile(p, []byte(s[:i]+"  - "+resource+"\n"+s[i:]), 0o644)).To(Succeed())
}

// replaceIn replaces old by new in a file of a working copy; old must occur.
// replaceIn replaces the first occurrence of old in a file of the working copy. Anchor old well: "data:\n"
// also matches inside "metadata:\n" (that mistake once put a ConfigMap key under metadata, which the API
// server silently drops).
func replaceIn(root, rel, old, new string) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	data, err := os.ReadFile(p)
	Expect(err).NotTo(HaveOccurred())
	Expect(string(data)).To(ContainSubstring(old), "%s", rel)
	Expect(os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644)).To(Succeed())
}
