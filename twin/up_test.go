package twin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/internal/proctest"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// Polling bounds for Eventually: generous for a loaded 2-core runner; they say nothing about speed
// (bench/twinup measures that).
const (
	poll      = 250 * time.Millisecond
	converge  = 3 * time.Minute // GitOps configurations reaching Compliant
	nodeState = 2 * time.Minute // fast profile: 10 s grace to NotReady, 15 s failover delay to restart
)

var examplePath = filepath.Join("..", "examples", "twin.yaml")

// envCtrlCChild makes the test binary run `up` of the example twin until SIGINT (TestCtrlCDuringUp).
const envCtrlCChild = "HYBRIDTWIN_TEST_CTRLC_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envCtrlCChild); dir != "" {
		os.Exit(ctrlCChild(dir))
	}
	os.Exit(m.Run())
}

// The example twin end to end: up, kubectl-equivalent listing of both clusters' VM-nodes through the
// merged kubeconfig, every GitOps configuration Compliant through ARM, a host crash (its worker nodes go
// NotReady, the VMs restart elsewhere, the nodes come back Ready on the new host label), repair, and down
// leaving no process, port or file. One twin for the whole package: it is the expensive part.
func TestExampleTwinLifecycle(t *testing.T) {
	g := NewWithT(t)
	spec, err := LoadSpec(examplePath)
	g.Expect(err).NotTo(HaveOccurred())
	stateDir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	progress := &hookWriter{}
	tw, err := Up(ctx, spec, Options{StateDir: stateDir, Progress: progress})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, progress.String())
	}
	downed := false
	defer func() {
		if !downed {
			_ = tw.Down(context.Background(), false)
		}
	}()
	t.Logf("up:\n%s", progress.String())
	ctl, err := ServeControl(tw)
	g.Expect(err).NotTo(HaveOccurred())
	defer ctl.Close(context.Background())

	// The merged kubeconfig has a context per cluster, and lists each cluster's worker VMs as Nodes on
	// the model's hosts.
	vms := map[string]hardware.VMStatus{}
	for _, vm := range tw.e.VMs() {
		vms[vm.Name] = vm
	}
	clients := map[string]kubernetes.Interface{}
	for _, name := range []string{"dev", "prod"} {
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: tw.Kubeconfig()},
			&clientcmd.ConfigOverrides{CurrentContext: name}).ClientConfig()
		g.Expect(err).NotTo(HaveOccurred())
		clients[name] = kubernetes.NewForConfigOrDie(cfg)
		nodes, err := clients[name].CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		var got []string
		for _, n := range nodes.Items {
			got = append(got, n.Name)
			vm, ok := vms[n.Name]
			g.Expect(ok).To(BeTrue(), "node %s is not a VM of the model", n.Name)
			g.Expect(vm.Role).To(Equal(hardware.RoleWorker))
			g.Expect(n.Labels[cluster.LabelHCIHost]).To(Equal(vm.Host))
		}
		g.Expect(got).To(ConsistOf(name+"-linux-0", name+"-linux-1", name+"-linux-2"))
	}

	// Through the control socket, as `hybridtwin status` does: every configuration Compliant.
	remote, err := Dial(stateDir)
	g.Expect(err).NotTo(HaveOccurred())
	defer remote.Close()
	compliance := func() []string {
		st, err := remote.Status(ctx)
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, c := range st.GitOps {
			out = append(out, c.Cluster+"/"+c.Name+"="+c.ComplianceState+" "+c.Message)
		}
		return out
	}
	g.Eventually(compliance).WithTimeout(converge).WithPolling(poll).Should(ConsistOf(
		"dev/apps-dev=Compliant ", "dev/platform-dev=Compliant ", "prod/apps-prod=Compliant ", "prod/platform-prod=Compliant "))
	st, err := remote.Status(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	var ports []int
	for _, c := range st.Components {
		g.Expect(c.Up).To(BeTrue(), "component %s: %s", c.Name, c.Detail)
		ports = append(ports, c.Ports...)
	}
	g.Expect(len(st.Hosts)).To(Equal(4))
	statusFigures(g, tw, st, stateDir)

	// A push reaches every reconciler through its Gitea webhook: the example's configurations keep Azure's
	// 600 s source interval, so only the webhook can make the new commit the artifact within the bound.
	repo := tw.e.Repos()[0]
	from, to := []byte(gitserver.PlaceholderRegistry), []byte(tw.RegistryHost())
	pushed, err := tw.e.GitServer().Admin().Push(ctx, gitserver.PushRequest{Repo: repo, Branch: "main",
		Dir: tw.Spec().Path(tw.Spec().Spec.Git.Repos[0].Path), Message: "webhook check",
		Rewrite: func(p string, data []byte) []byte {
			data = bytes.ReplaceAll(data, from, to)
			if p == "apps/dev/kustomization.yaml" {
				data = append(data, []byte("\n# webhook check\n")...)
			}
			return data
		}})
	g.Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{"dev", "prod"} {
		dyn, err := dynamic.NewForConfig(mustConfig(t, tw, name))
		g.Expect(err).NotTo(HaveOccurred())
		g.Eventually(func() []string {
			var revs []string
			list, err := dyn.Resource(gitRepositories).Namespace("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return []string{err.Error()}
			}
			for _, gr := range list.Items {
				if rev, ok, _ := unstructured.NestedString(gr.Object, "status", "artifact", "revision"); ok {
					revs = append(revs, rev)
				}
			}
			return revs
		}).WithTimeout(time.Minute).WithPolling(poll).Should(HaveEach(HaveSuffix(pushed.Commit)),
			"cluster %s: the push of %s was not fetched; is the Gitea push webhook to its reconciler wired (twin/engine/hybridtwin)?", name, pushed.Commit)
	}

	// Crash the host with the most worker VMs.
	victim, workers := "", []hardware.VMStatus(nil)
	for _, h := range st.Hosts {
		var ws []hardware.VMStatus
		for _, v := range h.VMs {
			if vms[v].Role == hardware.RoleWorker {
				ws = append(ws, vms[v])
			}
		}
		if len(ws) > len(workers) {
			victim, workers = h.Name, ws
		}
	}
	g.Expect(workers).NotTo(BeEmpty())
	recs, err := remote.Host(ctx, HostFail, victim)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(recs).NotTo(BeEmpty())
	node := func(w hardware.VMStatus) func() string {
		return func() string {
			n, err := clients[w.Cluster].CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			return nodeReady(n) + "@" + n.Labels[cluster.LabelHCIHost]
		}
	}
	for _, w := range workers {
		// NotReady (Unknown: the kubelet fell silent) while still labelled with the crashed host...
		g.Eventually(node(w)).WithTimeout(nodeState).WithPolling(poll).Should(Equal(string(corev1.ConditionUnknown) + "@" + victim))
	}
	for _, w := range workers {
		// ...then Ready again on another host after the failover restart.
		g.Eventually(node(w)).WithTimeout(nodeState).WithPolling(poll).Should(And(HavePrefix("True@"), Not(HaveSuffix("@"+victim))))
	}
	st, err = remote.Status(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	for _, v := range st.VMs {
		for _, w := range workers {
			if v.Name == w.Name {
				g.Expect(v.State).To(Equal(string(hardware.VMRunning)))
				g.Expect(v.Host).NotTo(Equal(victim))
				g.Expect(v.NodeReady).To(Equal("True"))
			}
		}
	}
	// A refused operation names the host.
	_, err = remote.Host(ctx, HostFail, "no-such-host")
	g.Expect(errors.Is(err, ErrHost)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("no-such-host"))
	_, err = remote.Host(ctx, HostRepair, victim)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() string {
		st, err := remote.Status(ctx)
		if err != nil {
			return err.Error()
		}
		for _, h := range st.Hosts {
			if h.Name == victim {
				return h.State
			}
		}
		return "missing"
	}).WithTimeout(nodeState).WithPolling(poll).Should(Equal(string(hardware.HostUp)))

	lifecycleOnARunningTwin(t, g, tw, remote, clients["dev"], stateDir, progress)

	// Down through the socket: nothing left.
	g.Expect(remote.Down(ctx, false)).To(Succeed())
	downed = true
	g.Eventually(tw.Done()).Should(BeClosed())
	g.Expect(processesUnder(stateDir)).To(BeEmpty())
	for _, p := range ports {
		g.Expect(portFree(p)).To(Succeed(), "port %d still taken after down", p)
	}
	_, err = os.Stat(stateDir)
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "state directory %s left after down", stateDir)
}

// A spec with ten errors never reaches Up; Up refuses a spec that was not loaded, creating nothing.
func TestTenErrorSpecStartsNothing(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	t.Setenv("XDG_STATE_HOME", root)
	spec, err := LoadSpec("spec/testdata/specs/ten-errors.yaml")
	var se *SpecErrors
	g.Expect(errors.As(err, &se)).To(BeTrue())
	g.Expect(se.Problems).To(HaveLen(10))
	g.Expect(spec).To(BeNil())
	tw, err := Up(context.Background(), spec, Options{})
	g.Expect(errors.Is(err, ErrInvalidSpec)).To(BeTrue())
	g.Expect(tw).To(BeNil())
	entries, err := os.ReadDir(root)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entries).To(BeEmpty())
}

// Ctrl-C in the middle of up: the child (this test binary) gets SIGINT once Gitea runs and the clusters
// are starting; it stops everything, says which step failed, and leaves no process or file.
func TestCtrlCDuringUp(t *testing.T) {
	g := NewWithT(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCtrlCChild+"="+stateDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Start()).To(Succeed())
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	interrupted := false
	for l := range lines {
		out = append(out, l)
		// Gitea is up and the clusters are still starting: interrupt.
		if !interrupted && strings.Contains(l, "] gitea: ") {
			g.Expect(cmd.Process.Signal(os.Interrupt)).To(Succeed())
			interrupted = true
		}
	}
	err = cmd.Wait()
	all := strings.Join(out, "\n")
	g.Expect(interrupted).To(BeTrue(), "gitea never started:\n%s", all)
	var ee *exec.ExitError
	g.Expect(errors.As(err, &ee)).To(BeTrue(), "the child exited 0 after SIGINT:\n%s", all)
	g.Expect(ee.ExitCode()).To(Equal(3))
	g.Expect(all).To(ContainSubstring("context canceled"))
	g.Expect(all).To(ContainSubstring("failed"))
	g.Expect(processesUnder(stateDir)).To(BeEmpty())
	_, err = os.Stat(stateDir)
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "state directory left after Ctrl-C:\n%s", all)
}

// ctrlCChild runs Up of the example twin until SIGINT; exit 3 means Up failed with the context cancelled.
func ctrlCChild(stateDir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	spec, err := LoadSpec(examplePath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tw, err := Up(ctx, spec, Options{StateDir: stateDir, Progress: os.Stderr})
	if err == nil {
		_ = tw.Down(context.Background(), false)
		fmt.Fprintln(os.Stderr, "up finished before the interrupt")
		return 0
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	if errors.Is(err, context.Canceled) && errors.Is(err, ErrUp) {
		return 3
	}
	return 1
}

// processesUnder lists the processes whose command line names dir (the twin's children all do).
func processesUnder(dir string) []string { return proctest.Under(dir) }

func portFree(p int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return err
	}
	return ln.Close()
}

// lifecycleOnARunningTwin: cluster operations through the control socket, as `hybridtwin cluster` sends
// them. A pool grows by one VM (a Ready node on the model's host) and shrinks back (the node drained and
// gone); growing past the hardware is refused with the model's reason and changes nothing; an unknown
// cluster is refused; an add that fails part-way (its context ends after the cluster connected to Arc)
// stops everything it started. The happy paths of delete, recreate and add are the scenarios'
// (scenarios/lifecycle_test.go).
func lifecycleOnARunningTwin(t *testing.T, g *WithT, tw *Twin, remote *Remote, dev kubernetes.Interface, stateDir string, progress *hookWriter) {
	ctx := context.Background()
	before := map[string]string{}
	for _, vm := range tw.e.VMs() {
		before[vm.Name] = vm.Host
	}
	rep, err := remote.ScaleNodePool(ctx, "dev", "linux", 4)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Placed).To(HaveLen(1))
	placed := rep.Placed[0]
	g.Expect(placed.VM).To(Equal("dev-linux-3"))
	n, err := dev.CoreV1().Nodes().Get(ctx, "dev-linux-3", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(nodeReady(n)).To(Equal("True"), "AddNode returns once the node is Ready")
	g.Expect(n.Labels[cluster.LabelHCIHost]).To(Equal(placed.Host))
	g.Expect(n.Labels[cluster.LabelNodePool]).To(Equal("linux"))
	var addr string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			addr = a.Address
		}
	}
	g.Expect(addr).To(Equal(placed.IP), "the node has the model's address")
	// Nothing else moved, and labels and the model agree.
	st, err := remote.Status(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	for _, v := range st.VMs {
		if old, ok := before[v.Name]; ok {
			g.Expect(v.Host).To(Equal(old), "VM %s moved from %s to %s when dev grew", v.Name, old, v.Host)
		}
	}
	for _, c := range st.Clusters {
		for _, node := range c.Nodes {
			for _, v := range st.VMs {
				if v.Name == node.Name {
					g.Expect(node.Host).To(Equal(v.Host), "node %s/%s is labelled %s but the model has its VM on %s", c.Name, node.Name, node.Host, v.Host)
				}
			}
		}
	}

	// Past the hardware: refused with the model's reason (the running estate's what-if answer); the pool
	// keeps its four nodes.
	mw, err := tw.MoreWorkers("dev", "linux")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = remote.ScaleNodePool(ctx, "dev", "linux", mw.Current+mw.More+1)
	var ce *CapacityError
	g.Expect(errors.As(err, &ce)).To(BeTrue(), "want a *CapacityError through the socket, got %v", err)
	g.Expect(errors.Is(err, ErrRefused)).To(BeTrue())
	g.Expect(ce.Reasons).NotTo(BeEmpty())
	g.Expect(ce.Reasons[0]).To(Equal(mw.LimitedBy))
	nodes, err := dev.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(nodes.Items).To(HaveLen(4))

	// Back to three: the added node is drained and removed, its VM released.
	rep, err = remote.ScaleNodePool(ctx, "dev", "linux", 3)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Released).To(HaveLen(1))
	g.Expect(rep.Released[0].VM).To(Equal("dev-linux-3"))
	_, err = dev.CoreV1().Nodes().Get(ctx, "dev-linux-3", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "node dev-linux-3 still there: %v", err)
	g.Expect(cmp.Diff(tw.Spec().Plan.Spec, tw.Plan().Spec)).To(BeEmpty())

	_, err = remote.RemoveCluster(ctx, "staging")
	g.Expect(errors.Is(err, ErrRefused)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring(`cluster "staging" is not running`))

	// An add that fails part-way: its context ends once it is connected to Arc and its reconciler and Arc
	// agent run, so the next step (the add-ons, none in this spec) fails and its configurations are never
	// created.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	progress.arm("engine branch-x:", cancel)
	_, err = tw.AddCluster(actx, hardware.WorkloadCluster{Name: "branch-x", ControlPlane: hardware.ControlPlaneSpec{Count: 1},
		NodePools: []hardware.NodePool{{Name: "linux", OSType: hardware.Linux, VMSize: "Standard_K8S3_v1", Count: 1}}})
	var oe *OpError
	g.Expect(errors.As(err, &oe)).To(BeTrue(), "want an *OpError, got %v", err)
	g.Expect(errors.Is(err, ErrLifecycle)).To(BeTrue())
	g.Expect(errors.Is(err, context.Canceled)).To(BeTrue())
	g.Expect(oe.Step).To(Equal(StepAddons))
	g.Expect(oe.UndoErr).NotTo(HaveOccurred())
	g.Expect(oe.Undone).To(ContainElements("arc agent branch-x", "engine branch-x", "connectedCluster branch-x", "cluster branch-x",
		HavePrefix("VMs released: branch-x-control-plane-0@")))
	g.Expect(processesUnder(filepath.Join(stateDir, ClustersDir, "branch-x"))).To(BeEmpty())
	for _, cc := range tw.Arc().ConnectedClusters() {
		g.Expect(cc.Name).NotTo(Equal("branch-x"), "the connectedCluster was left behind")
	}
	g.Expect(tw.Clusters()).To(Equal([]string{"dev", "prod"}))
	g.Expect(cmp.Diff(tw.Spec().Plan.Spec, tw.Plan().Spec)).To(BeEmpty())
	for _, vm := range tw.e.VMs() {
		g.Expect(vm.Cluster).NotTo(Equal("branch-x"))
	}
	kc, err := clientcmd.LoadFromFile(tw.Kubeconfig())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kc.Contexts).To(HaveLen(2))
}

// statusFigures checks what status adds to the model's hosts and VMs and the twin's records: used vCPU
// and memory per host (the model's books: the sum of its VMs), each configuration's Kustomizations as the
// Arc agent reports them, twin.json's absolute spec path and a Prometheus registry per reconciler.
func statusFigures(g *WithT, tw *Twin, st *Status, stateDir string) {
	vcpu, mem := map[string]int{}, map[string]int{}
	for _, v := range tw.e.VMs() {
		vcpu[v.Host] += v.VCPU
		mem[v.Host] += v.MemoryGiB
	}
	for _, h := range st.Hosts {
		g.Expect(h.VCPUUsed).To(Equal(vcpu[h.Name]), "host %s vCPU used", h.Name)
		g.Expect(h.MemoryUsedGiB).To(Equal(mem[h.Name]), "host %s memory used", h.Name)
		g.Expect(h.VCPUCapacity).To(Equal(tw.Spec().Capacity.Hosts[0].VCPUCapacity), "host %s vCPU capacity is the planner's", h.Name)
		g.Expect(h.MemoryCapacityGiB).To(Equal(tw.Spec().Capacity.Hosts[0].MemoryCapacityGiB), "host %s memory capacity is the planner's", h.Name)
	}
	for _, c := range st.GitOps {
		g.Expect(c.Kustomizations).NotTo(BeEmpty(), "configuration %s/%s reports no Kustomization", c.Cluster, c.Name)
		for _, k := range c.Kustomizations {
			g.Expect(k.Name).To(HavePrefix(c.Name+"-"), "configuration %s/%s", c.Cluster, c.Name)
			g.Expect(k.ComplianceState).To(Equal("Compliant"), "Kustomization %s of %s/%s", k.Name, c.Cluster, c.Name)
			g.Expect(k.Ready).To(Equal("True"))
			g.Expect(k.Message).To(ContainSubstring("Applied revision: main@sha1:"))
		}
	}
	info, err := ReadInfo(stateDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(filepath.IsAbs(info.Spec)).To(BeTrue(), "twin.json records the spec as %q", info.Spec)
	_, err = os.Stat(info.Spec)
	g.Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{"dev", "prod"} {
		gat, err := tw.ReconcilerMetrics(name)
		g.Expect(err).NotTo(HaveOccurred())
		mfs, err := gat.Gather()
		g.Expect(err).NotTo(HaveOccurred())
		reconciles := 0.0
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "cluster" {
						g.Expect(l.GetValue()).To(Equal(name), "metric %s in cluster %s's registry", mf.GetName(), name)
					}
				}
				if mf.GetName() == "hybridtwin_reconciler_reconcile_duration_seconds" {
					reconciles += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		g.Expect(reconciles).To(BeNumerically(">", 0), "cluster %s's reconciler recorded no reconciliation", name)
	}
	_, err = tw.ReconcilerMetrics("staging")
	g.Expect(errors.Is(err, cluster.ErrNotFound)).To(BeTrue(), "%v", err)
}

// hookWriter collects Up's progress lines (they come from several goroutines) and calls a hook, once,
// on the first line containing a text.
type hookWriter struct {
	mu sync.Mutex
	b  strings.Builder
	on string
	fn func()
}

func (w *hookWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	var fn func()
	if w.on != "" && strings.Contains(string(p), w.on) {
		fn, w.on = w.fn, ""
	}
	w.mu.Unlock()
	if fn != nil {
		fn()
	}
	return len(p), nil
}

func (w *hookWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *hookWriter) arm(on string, fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.on, w.fn = on, fn
}

// gitRepositories is Flux's GitRepository resource, which the engine's status is read from.
var gitRepositories = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}

// mustConfig is a running cluster's admin REST config.
func mustConfig(t *testing.T, tw *Twin, name string) *rest.Config {
	t.Helper()
	cfg, err := tw.RESTConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// nodeReady is the node's Ready condition status, "Unknown" when it has none.
func nodeReady(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return string(c.Status)
		}
	}
	return string(corev1.ConditionUnknown)
}
