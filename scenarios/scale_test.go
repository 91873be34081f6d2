package scenarios

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/reports"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// The scale scenario's sizes, from issue #9 ("Scale: N workload clusters x M applications"): the default
// twin's clusters with M = 20, and a bigger 3 clusters x 50 on a twin of its own under the slow label.
const (
	scaleDefaultApps = 20
	scaleBigApps     = 50
	// scaleBigTwin is the bigger run's twin: dev, staging and prod on the branch estate.
	scaleBigTwin = "../examples/twins/three-clusters.yaml"
)

// Where the scale scenario puts its applications in a dir-per-env repository (examples/repos/dir-per-env):
// every environment's app layer includes apps/base, so one folder there reaches every cluster. The
// namespace is the one the namespace-scoped app configurations own.
const (
	scaleBase      = "apps/base"
	scaleFolder    = "scale"
	scaleNamespace = "apps"
	scaleTemplate  = "testdata/scale/app"
	// scaleRunLabel marks every object of one run, so the scenario counts them with one list per kind.
	scaleRunLabel = "hybridtwin.io/scale-run"
)

// scaleSpecs: one commit adds M small applications (a Deployment, a Service and a ConfigMap each, in their
// own folder and kustomization) for every cluster; the spec measures push-to-converged across all clusters
// and what the reconcilers cost meanwhile, then removes the applications again (prune), so later specs see
// the twin as before.
func scaleSpecs() {
	Describe("scale", Label("scale"), func() {
		It(fmt.Sprintf("converges one commit of %d apps per cluster on every cluster of the twin (push-to-converged, CPU, memory), then prunes them", scaleDefaultApps), func(ctx SpecContext) {
			runScale(ctx, env, scaleDefaultApps)
		})

		It(fmt.Sprintf("converges %d apps per cluster on a three-cluster twin of its own", scaleBigApps), Label("slow"), func(ctx SpecContext) {
			spec, err := twin.LoadSpec(scaleBigTwin)
			Expect(err).NotTo(HaveOccurred(), "load %s", scaleBigTwin)
			By("bringing up twin " + spec.Metadata.Name + " from " + scaleBigTwin)
			runScale(ctx, ownTwin(ctx, spec), scaleBigApps)
		})
	})
}

// runScale pushes m applications per cluster in one commit to the twin e, waits until they converge,
// records the figures, and prunes them.
func runScale(ctx context.Context, e *Env, m int) {
	clusters := e.Twin.Spec().ClusterNames()
	title := fmt.Sprintf("%d clusters x %d apps", len(clusters), m)
	exp := Experiment("scale: " + title)
	runID := fmt.Sprintf("%d-%d", GinkgoRandomSeed(), m)
	dir, seed := e.WorkingCopy(), e.WorkingCopy()
	addScaleApps(dir, m, runID, e.Twin.RegistryHost())
	pruned := false
	DeferCleanup(func(ctx context.Context) {
		if pruned {
			return
		}
		// The spec failed before its own prune: put the seed back so later specs see main as before.
		_, err := e.Git.Push(ctx, gitserver.PushRequest{Repo: e.Repo, Branch: "main", Dir: seed, Message: "scale: remove the applications of run " + runID, From: "main"})
		Expect(err).NotTo(HaveOccurred(), "push the seed back after a failed scale run")
	})

	use := startUsage(e)
	start := time.Now()
	commit := e.Push(ctx, "main", dir, fmt.Sprintf("scale: %d applications for every cluster (run %s)", m, runID))
	conv := e.waitScale(ctx, start, commit, runID, m, use)
	converged := conv.compliant
	cost := use.stop(ctx)

	for _, c := range clusters {
		recordTiming(exp, "push to every app object applied on "+c, conv.applied[c])
	}
	recordTiming(exp, "push to converged ("+title+": every configuration Compliant at the commit)", converged)
	recordTiming(exp, "push to every app Deployment available ("+title+")", conv.available)
	cost.record(exp)

	By("pruning the applications")
	pruneStart := time.Now()
	seedCommit := e.Push(ctx, "main", seed, "scale: remove the applications of run "+runID)
	pr := e.waitScale(ctx, pruneStart, seedCommit, runID, 0, nil)
	pruned = true
	recordTiming(exp, "push to pruned ("+title+": every app object gone, every configuration Compliant)", pr.compliant)

	Note("Scale %s: commit %.12s added %d applications (Deployment + Service + ConfigMap each, in %s/%s/<app>) for every cluster: %d objects per cluster, %d in all. "+
		"Every app object applied: %s; every configuration Compliant at the commit after %s; every app Deployment available after %s; pruned again after %s. "+
		"The source is polled every %d s (see the profile), so up to that much of each figure is waiting for the fetch. %s",
		title, commit, m, scaleBase, scaleFolder, 3*m, 3*m*len(clusters),
		appliedText(clusters, conv), converged.Round(100*time.Millisecond), conv.available.Round(100*time.Millisecond), pr.compliant.Round(100*time.Millisecond),
		SourceIntervalSeconds, cost.text())
}

// addScaleApps writes m applications from the template into the working copy, each in its own folder with
// its own kustomization, and adds the folder to the base every environment includes.
func addScaleApps(root string, m int, runID, registryHost string) {
	names, err := os.ReadDir(scaleTemplate)
	Expect(err).NotTo(HaveOccurred())
	Expect(names).NotTo(BeEmpty(), "%s holds no template files", scaleTemplate)
	var list strings.Builder
	list.WriteString("# The scale scenario's applications (run " + runID + ").\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for i := 1; i <= m; i++ {
		app := fmt.Sprintf("scale-%03d", i)
		fmt.Fprintf(&list, "  - %s\n", app)
		for _, n := range names {
			data, err := os.ReadFile(filepath.Join(scaleTemplate, n.Name()))
			Expect(err).NotTo(HaveOccurred())
			s := strings.NewReplacer("APP_NAME", app, "RUN_ID", runID, gitserver.PlaceholderRegistry, registryHost).Replace(string(data))
			writeFile(root, scaleBase+"/"+scaleFolder+"/"+app+"/"+n.Name(), s)
		}
	}
	writeFile(root, scaleBase+"/"+scaleFolder+"/kustomization.yaml", list.String())
	appendResource(root, scaleBase+"/kustomization.yaml", scaleFolder)
}

// convergence is when each stage was reached, from the push.
type convergence struct {
	applied   map[string]time.Duration // cluster -> every app object present (or, for m = 0, gone), as polled
	created   map[string]time.Duration // cluster -> the last app object's creationTimestamp (API server clock, 1 s resolution)
	available time.Duration            // every app Deployment on every cluster available
	compliant time.Duration            // every configuration Compliant at the commit
}

// waitScale waits until every cluster holds exactly m applications of the run (a Deployment, a Service and
// a ConfigMap each), every one of them available, and every configuration of the twin reports Compliant at
// commit; it returns when each stage was first seen. use, when set, is sampled at every poll.
func (e *Env) waitScale(ctx context.Context, start time.Time, commit, runID string, m int, use *usage) convergence {
	clusters := e.Twin.Spec().ClusterNames()
	c := convergence{applied: map[string]time.Duration{}, created: map[string]time.Duration{}}
	sel := metav1.ListOptions{LabelSelector: scaleRunLabel + "=" + runID}
	Eventually(func(ctx context.Context) error {
		use.sample()
		now := time.Since(start)
		var missing []string
		availableAll := true
		for _, cl := range clusters {
			k := e.Kube[cl]
			deps, err := k.AppsV1().Deployments(scaleNamespace).List(ctx, sel)
			if err != nil {
				return err
			}
			svcs, err := k.CoreV1().Services(scaleNamespace).List(ctx, sel)
			if err != nil {
				return err
			}
			cms, err := k.CoreV1().ConfigMaps(scaleNamespace).List(ctx, sel)
			if err != nil {
				return err
			}
			if len(deps.Items) != m || len(svcs.Items) != m || len(cms.Items) != m {
				missing = append(missing, fmt.Sprintf("cluster %s has %d Deployments, %d Services, %d ConfigMaps of run %s in %s, want %d of each",
					cl, len(deps.Items), len(svcs.Items), len(cms.Items), runID, scaleNamespace, m))
				availableAll = false
				continue
			}
			if _, ok := c.applied[cl]; !ok {
				c.applied[cl] = now
				var last time.Time
				for _, d := range deps.Items {
					last = later(last, d.CreationTimestamp.Time)
				}
				for _, s := range svcs.Items {
					last = later(last, s.CreationTimestamp.Time)
				}
				for _, cm := range cms.Items {
					last = later(last, cm.CreationTimestamp.Time)
				}
				if !last.IsZero() {
					c.created[cl] = last.Sub(start)
				}
			}
			var notReady []string
			for _, d := range deps.Items {
				want := int32(1)
				if d.Spec.Replicas != nil {
					want = *d.Spec.Replicas
				}
				if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas < want {
					notReady = append(notReady, d.Name)
				}
			}
			if len(notReady) > 0 {
				availableAll = false
				missing = append(missing, fmt.Sprintf("cluster %s: %d app Deployment(s) not available yet (first %s)", cl, len(notReady), notReady[0]))
			}
		}
		if availableAll && c.available == 0 {
			c.available = now
		}
		st, err := e.Twin.Status(ctx)
		if err != nil {
			return err
		}
		compliant := len(st.GitOps) > 0
		for _, g := range st.GitOps {
			if g.ComplianceState != "Compliant" || !strings.Contains(g.SyncedCommit, commit) {
				compliant = false
				missing = append(missing, fmt.Sprintf("configuration %s on %s is %s at %q, want Compliant at %.12s", g.Name, g.Cluster, g.ComplianceState, g.SyncedCommit, commit))
			}
		}
		if compliant && c.compliant == 0 {
			c.compliant = now
		}
		if len(missing) > 0 {
			return errors.New(strings.Join(missing, "; "))
		}
		return nil
	}).WithContext(ctx).WithTimeout(e.Waits.Converge).WithPolling(e.Waits.Poll).Should(Succeed(),
		"the commit %.12s did not converge with %d applications per cluster", commit, m)
	return c
}

func appliedText(clusters []string, c convergence) string {
	var out []string
	for _, cl := range clusters {
		out = append(out, fmt.Sprintf("%s seen after %s (last object created at +%s by the API server's clock)", cl,
			c.applied[cl].Round(100*time.Millisecond), c.created[cl].Round(time.Second)))
	}
	return strings.Join(out, ", ")
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// usage measures what a scale run costs, as far as it is honestly measurable here: the twin runs its
// reconcilers, Arc agents, simulated kubelets, registry and Arc fake inside the suite's own process, so
// their CPU is the process's (getrusage, RUSAGE_SELF) and their memory is the process's Go heap and RSS,
// both also counting the spec's own polling. The control planes (etcd, kube-apiserver, controller-manager,
// scheduler per cluster) and Gitea are processes of their own: their CPU comes from /proc/PID/stat.
type usage struct {
	e        *Env
	start    time.Time
	selfCPU  time.Duration
	children map[string]procCPU // component -> CPU at start
	heap0    uint64
	rss0     uint64
	heapPeak uint64
	rssPeak  uint64
}

// procCPU is one process's user+system CPU time, read from /proc/PID/stat.
type procCPU struct {
	pid int
	cpu time.Duration
}

func startUsage(e *Env) *usage {
	runtime.GC() // start from the live heap, not from garbage of the previous spec
	u := &usage{e: e, start: time.Now(), selfCPU: selfCPU(), children: componentCPU(e)}
	u.heap0, u.rss0 = heapInUse(), selfRSS()
	u.heapPeak, u.rssPeak = u.heap0, u.rss0
	return u
}

// sample takes the peaks; nil-safe, so waits without a measurement pass nil.
func (u *usage) sample() {
	if u == nil {
		return
	}
	u.heapPeak = max(u.heapPeak, heapInUse())
	u.rssPeak = max(u.rssPeak, selfRSS())
}

// cost is what a run used between startUsage and stop.
type cost struct {
	wall               time.Duration
	selfCPU            time.Duration
	controlPlaneCPU    time.Duration // every cluster's etcd, kube-apiserver, controller-manager and scheduler
	apiServerCPU       time.Duration // of which kube-apiserver
	giteaCPU           time.Duration
	heap0, heapPeak    uint64
	rss0, rssPeak, rss uint64
}

func (u *usage) stop(ctx context.Context) cost {
	u.sample()
	c := cost{wall: time.Since(u.start), selfCPU: selfCPU() - u.selfCPU, heap0: u.heap0, heapPeak: u.heapPeak, rss0: u.rss0, rssPeak: u.rssPeak, rss: selfRSS()}
	for name, now := range componentCPU(u.e) {
		was, ok := u.children[name]
		if !ok || was.pid != now.pid {
			continue // started or restarted during the run: no baseline
		}
		d := now.cpu - was.cpu
		switch {
		case name == "gitea":
			c.giteaCPU += d
		default:
			c.controlPlaneCPU += d
			if strings.HasSuffix(name, "/kube-apiserver") {
				c.apiServerCPU += d
			}
		}
	}
	return c
}

func (c cost) record(exp *gmeasure.Experiment) {
	value := func(name string, v float64, unit string) {
		exp.RecordValue(name, v, gmeasure.Units(unit), gmeasure.Precision(2))
		AddReportEntry(entryMeasure, reports.Measurement{Name: name, Value: v, Unit: unit})
	}
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	value("suite process CPU (reconcilers, Arc agents, simulated kubelets, polling)", c.selfCPU.Seconds(), "CPU-s")
	value("suite process average cores", c.selfCPU.Seconds()/c.wall.Seconds(), "cores")
	value("control planes CPU (etcd, kube-apiserver, controller-manager, scheduler; all clusters)", c.controlPlaneCPU.Seconds(), "CPU-s")
	value("of which kube-apiserver", c.apiServerCPU.Seconds(), "CPU-s")
	value("Gitea CPU", c.giteaCPU.Seconds(), "CPU-s")
	value("suite process Go heap in use, peak", mib(c.heapPeak), "MiB")
	value("suite process Go heap growth (peak - start)", mib(c.heapPeak)-mib(c.heap0), "MiB")
	value("suite process RSS, peak", mib(c.rssPeak), "MiB")
}

func (c cost) text() string {
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("From the push to converged (%s): the suite process -- which runs every cluster's reconciler, Arc agent and simulated kubelets, "+
		"the registry and the Arc fake, and the spec's own polling -- used %.1f CPU-s (%.2f cores on average); the control planes of all clusters "+
		"(separate processes) %.1f CPU-s, of which kube-apiserver %.1f; Gitea %.1f CPU-s. Go heap in use %.0f MiB at the push, %.0f MiB at its peak; "+
		"RSS %.0f MiB at the push, %.0f MiB at its peak (sampled at every poll). The reconcilers' Prometheus metrics are not reachable through the "+
		"twin's API (each keeps a private registry), so there is no per-reconciler figure.",
		c.wall.Round(100*time.Millisecond), c.selfCPU.Seconds(), c.selfCPU.Seconds()/c.wall.Seconds(), c.controlPlaneCPU.Seconds(),
		c.apiServerCPU.Seconds(), c.giteaCPU.Seconds(), mib(c.heap0), mib(c.heapPeak), mib(c.rss0), mib(c.rssPeak))
}

// selfCPU is the suite process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		Fail(fmt.Sprintf("getrusage: %v", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapInUse is the Go heap's in-use bytes (runtime.MemStats.HeapInuse).
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// selfRSS is the process's resident set (VmRSS of /proc/self/status), in bytes.
func selfRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// componentCPU reads the CPU time of every twin component that is a process of its own (not the suite's
// process), by the component name twin.Status gives it.
func componentCPU(e *Env) map[string]procCPU {
	st, err := e.Twin.Status(context.Background())
	Expect(err).NotTo(HaveOccurred())
	out := map[string]procCPU{}
	self := os.Getpid()
	for _, c := range st.Components {
		if c.PID <= 0 || c.PID == self {
			continue
		}
		if cpu, err := processCPU(c.PID); err == nil {
			out[c.Name] = procCPU{pid: c.PID, cpu: cpu}
		}
	}
	return out
}

// processCPU is utime+stime of /proc/PID/stat (fields 14 and 15, in clock ticks: proc(5)).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it follow its closing parenthesis.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / time.Duration(clockTicks()), nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times: the AT_CLKTCK entry (17) of the
// process's auxiliary vector (getauxval(3)), which is what sysconf(_SC_CLK_TCK) returns.
func clockTicks() uint64 {
	const atClkTck = 17
	data, err := os.ReadFile("/proc/self/auxv")
	Expect(err).NotTo(HaveOccurred(), "read /proc/self/auxv for the clock tick")
	for i := 0; i+16 <= len(data); i += 16 {
		if binary.NativeEndian.Uint64(data[i:]) == atClkTck {
			return binary.NativeEndian.Uint64(data[i+8:])
		}
	}
	Fail("/proc/self/auxv has no AT_CLKTCK entry")
	return 0
}
