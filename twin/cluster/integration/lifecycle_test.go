package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
)

// childEnv makes the test binary run as a child twin process (see runChild); its value is the
// directory the child works in.
const childEnv = "HYBRIDTWIN_CLUSTER_TEST_CHILD_DIR"

// smallSpec is a one-node cluster for the lifecycle tests.
func smallSpec(name string) cluster.Spec {
	return cluster.Spec{
		Name:        name,
		TimeProfile: cluster.ProfileFast,
		Nodes:       []cluster.NodeSpec{{Name: "moc-" + name, Pool: "np1", Host: "hci-1", Size: "Standard_A2_v2", CPU: 2, MemoryMiB: 4096}},
	}
}

// runChild is the child twin: it starts one cluster, writes its Info to <dir>/info.json, and on SIGINT
// or SIGTERM stops it and exits, the way the hybridtwin command handles Ctrl-C.
func runChild() int {
	dir := os.Getenv(childEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := embedded.New(embedded.Options{Dir: filepath.Join(dir, "state")})
	info, err := p.Create(ctx, smallSpec("child-"+randomSuffix()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: create:", err)
		return 3
	}
	b, _ := json.Marshal(info)
	tmp := filepath.Join(dir, "info.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil || os.Rename(tmp, filepath.Join(dir, "info.json")) != nil {
		fmt.Fprintln(os.Stderr, "child: write info:", err)
		_ = p.Close(context.Background())
		return 4
	}
	<-ctx.Done()
	if err := p.Close(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child: close:", err)
		return 5
	}
	return 0
}

// child is a running child twin.
type child struct {
	cmd  *exec.Cmd
	dir  string
	out  string
	done chan error
}

// startChild re-executes the test binary as a child twin and waits for its cluster to be ready.
func startChild(t *testing.T) (*child, cluster.Info) {
	t.Helper()
	g := gomega.NewWithT(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "child.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, dir: dir, out: out.Name(), done: make(chan error, 1)}
	go func() { ch.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})

	var info cluster.Info
	g.Eventually(func() error {
		select {
		case err := <-ch.done:
			ch.done <- err
			log, _ := os.ReadFile(ch.out)
			return gomega.StopTrying(fmt.Sprintf("the child exited (%v) before its cluster was ready:\n%s", err, log))
		default:
		}
		b, err := os.ReadFile(filepath.Join(dir, "info.json"))
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &info)
	}).WithTimeout(settle).WithPolling(poll).Should(gomega.Succeed())
	g.Expect(info.Processes).To(gomega.HaveLen(4))
	return ch, info
}

// TestCtrlCStopsEveryProcess: a twin process that gets SIGINT (Ctrl-C) stops its cluster and exits;
// no component process, process-group member or listening port is left.
func TestCtrlCStopsEveryProcess(t *testing.T) {
	g := gomega.NewWithT(t)
	ch, info := startChild(t)
	g.Expect(ch.cmd.Process.Signal(os.Interrupt)).To(gomega.Succeed())
	var exitErr error
	g.Eventually(ch.done).WithTimeout(settle).WithPolling(poll).Should(gomega.Receive(&exitErr))
	log, _ := os.ReadFile(ch.out)
	g.Expect(exitErr).NotTo(gomega.HaveOccurred(), "child output:\n%s", log)

	expectNothingLeft(t, info.Processes, allPorts(info))
	g.Expect(processesMentioning(info.StateDir)).To(gomega.BeEmpty())
	g.Expect(info.StateDir).NotTo(gomega.BeAnExistingFile(), "the cluster's state directory is left behind")
}

// TestKilledParentTakesItsClusterDown: if the twin process is killed outright (no chance to clean up),
// the parent-death signal still ends every component.
func TestKilledParentTakesItsClusterDown(t *testing.T) {
	g := gomega.NewWithT(t)
	ch, info := startChild(t)
	g.Expect(ch.cmd.Process.Kill()).To(gomega.Succeed())
	g.Eventually(ch.done).WithTimeout(settle).WithPolling(poll).Should(gomega.Receive())

	expectNothingLeft(t, info.Processes, allPorts(info))
	g.Expect(processesMentioning(info.StateDir)).To(gomega.BeEmpty())
}

// TestFailedStartLeavesNothing: a controller-manager that cannot start (a bad flag) fails the create
// after etcd and the API server are up; the error names the component and its log, and everything
// started is stopped.
func TestFailedStartLeavesNothing(t *testing.T) {
	g := gomega.NewWithT(t)
	dir := t.TempDir()
	p := embedded.New(embedded.Options{Dir: dir})
	spec := smallSpec("fail-" + randomSuffix())
	spec.ExtraArgs = map[cluster.Component][]string{cluster.KubeControllerManager: {"--no-such-flag=1"}}

	_, err := p.Create(context.Background(), spec)
	g.Expect(err).To(gomega.MatchError(cluster.ErrStart))
	var se *cluster.StartError
	g.Expect(errors.As(err, &se)).To(gomega.BeTrue(), "error is %T: %v", err, err)
	g.Expect(err.Error()).To(gomega.And(gomega.ContainSubstring("kube-controller-manager"), gomega.ContainSubstring("unknown flag: --no-such-flag")))
	var started []cluster.Component
	for _, pr := range se.Stopped {
		started = append(started, pr.Component)
	}
	g.Expect(started).To(gomega.ContainElements(cluster.Etcd, cluster.KubeAPIServer, cluster.KubeControllerManager))

	expectNothingLeft(t, se.Stopped, se.Ports)
	g.Expect(processesMentioning(dir)).To(gomega.BeEmpty())
	g.Expect(filepath.Join(dir, spec.Name)).NotTo(gomega.BeAnExistingFile())
	list, _ := p.List(context.Background())
	g.Expect(list).To(gomega.BeEmpty())
}

// TestCancelledStartLeavesNothing: cancelling a create (Ctrl-C during start-up) stops what had started.
func TestCancelledStartLeavesNothing(t *testing.T) {
	g := gomega.NewWithT(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel the moment the API server process has been started: etcd is then running and the API server
	// is starting, so both must be stopped again.
	p := embedded.New(embedded.Options{Dir: dir, Logger: slog.New(cancelOnStart{component: string(cluster.KubeAPIServer), cancel: cancel})})

	_, err := p.Create(ctx, smallSpec("cancel-"+randomSuffix()))
	g.Expect(err).To(gomega.MatchError(cluster.ErrStart))
	g.Expect(err).To(gomega.MatchError(context.Canceled))
	var se *cluster.StartError
	g.Expect(errors.As(err, &se)).To(gomega.BeTrue())
	expectNothingLeft(t, se.Stopped, se.Ports)
	g.Expect(processesMentioning(dir)).To(gomega.BeEmpty())
}

func TestCreateRejectsBadSpecsAndDuplicates(t *testing.T) {
	g := gomega.NewWithT(t)
	p := embedded.New(embedded.Options{Dir: t.TempDir()})
	ctx := context.Background()

	bad := smallSpec("BAD_NAME")
	_, err := p.Create(ctx, bad)
	g.Expect(err).To(gomega.MatchError(cluster.ErrInvalidSpec))
	g.Expect(err.Error()).To(gomega.ContainSubstring("name"))

	kind := smallSpec("on-kind")
	kind.Provider = cluster.ProviderKind
	_, err = p.Create(ctx, kind)
	g.Expect(err).To(gomega.MatchError(cluster.ErrInvalidSpec))
	g.Expect(err.Error()).To(gomega.ContainSubstring("kind"))

	g.Expect(p.Delete(ctx, "never-created")).To(gomega.MatchError(cluster.ErrNotFound))
	_, err = p.Kubeconfig(ctx, "never-created")
	g.Expect(err).To(gomega.MatchError(cluster.ErrNotFound))
}

// cancelOnStart is a slog handler that cancels a context when the provider logs that it started the
// given component.
type cancelOnStart struct {
	component string
	cancel    context.CancelFunc
}

func (h cancelOnStart) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOnStart) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h cancelOnStart) WithGroup(string) slog.Handler            { return h }
func (h cancelOnStart) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "started" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" && strings.EqualFold(a.Value.String(), h.component) {
			h.cancel()
		}
		return true
	})
	return nil
}
