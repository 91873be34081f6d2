// Package estate is a running twin: its parts (hardware model, Git server, registry, Azure fakes,
// workload clusters with their engines and Arc agents), the bring-up pipeline that starts them
// (pipeline.go: one list of shared steps, one list of per-cluster steps that Up and the cluster
// operations both run, one undo path), the cluster operations, and the status snapshot. Package twin is
// its public front.
package estate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/chartmirror"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/providers"
	"github.com/hybridtwin/hybridtwin/twin/engine"
	"github.com/hybridtwin/hybridtwin/twin/flux"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/hostops"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
	"github.com/hybridtwin/hybridtwin/twin/registry"
	"github.com/hybridtwin/hybridtwin/twin/s3server"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// Options configure Up (twin.Options).
type Options struct {
	StateDir     string
	Progress     io.Writer
	Logger       *slog.Logger
	Clock        clock.WithTicker
	NoDriftWatch bool
}

// Estate is a running twin. Its methods are safe for concurrent use.
type Estate struct {
	spec     *spec.Spec
	specFile string // the spec's absolute path, as twin.json records it
	opts     Options
	prof     api.RunProfile
	log      *slog.Logger
	stateDir string
	start    time.Time
	ready    time.Duration
	clk      clock.WithTicker

	// sim is the hardware model of the running estate; once Up is done only through the bridge (its lock).
	sim      *hardware.Sim
	bridge   *hostops.Bridge
	provider providers.Provider
	git      *gitserver.Server
	reader   *gitserver.User
	// notifier posts commit statuses for notification-controller's gitea Providers (spec.notifications).
	notifier *gitserver.User
	// readerKey is the reader's SSH private key (OpenSSH PEM), registered in Gitea as its read-only key:
	// what configurations with gitAuth ssh carry as sshPrivateKey.
	readerKey []byte
	reg       *registry.Registry
	s3        *s3server.Server // nil unless the spec has buckets
	charts    *chartmirror.Mirror
	arcSrv    *arc.Server
	arcEP     *arc.Endpoint
	flux      *armkubernetesconfiguration.FluxConfigurationsClient

	// cmu guards clusters and plan: cluster operations change them while Status and the bridge read them.
	cmu      sync.RWMutex
	clusters map[string]*Cluster
	// plan is the ClusterPlan the twin runs now: the spec's at Up, then as cluster operations change it.
	plan     *hardware.Plan
	repoURLs map[string]string
	sshURLs  map[string]string // repository name -> ssh:// clone URL on Gitea's built-in SSH server
	// gitRepos are the seeded repositories, each of which gets a push webhook per engine that wants one.
	gitRepos   []gitserver.Repo
	kubeconfig string

	// opMu serialises the operations that change the estate (cluster operations and host operations);
	// opsCtx ends when Down starts, so an operation in flight stops and undoes what it started.
	opMu      sync.Mutex
	opsCtx    context.Context
	opsCancel context.CancelFunc

	runCtx    context.Context
	runCancel context.CancelFunc
	wg        sync.WaitGroup

	// backoff restarts every crashed process of the twin (the time profile's, timeprofiles/v2).
	backoff procgroup.Backoff
	// rmu guards restarts: every restart of a crashed process, oldest first (Status, the scenario report).
	rmu      sync.Mutex
	restarts []api.ProcessRestart

	mu       sync.Mutex
	cleanups []cleanup
	down     bool
	done     chan struct{}
}

// Cluster is a running workload cluster.
type Cluster struct {
	info   cluster.Info
	config *rest.Config
	client kubernetes.Interface
	arcID  string
	// engine is the cluster's GitOps engine (twin/engine).
	engine engine.Running
	// notify is the cluster's notification-controller (spec.notifications), nil without it.
	notify *flux.Notification
	// agentDone is closed when the cluster's Arc agent goroutine has returned.
	agentDone chan struct{}
	// addons are the spec's add-ons running against the cluster (steps_addons.go).
	addons []engine.Component
}

// cleanup is one entry of the one undo path: everything a step starts registers how to stop it. Down runs
// them all, newest first; removing a cluster or undoing a failed add runs the cluster's own. A
// removeOnly cleanup runs only for a cluster taken out of a running twin (deleting its connectedCluster,
// its engine's directory), not at Down, where the Arc fake and the state directory go anyway.
type cleanup struct {
	name       string
	cluster    string
	stage      api.StepName // the report stage a cluster's removal records once it ran
	removeOnly bool
	fn         func(ctx context.Context) error
}

func (e *Estate) progress(format string, args ...any) {
	if e.opts.Progress == nil {
		return
	}
	fmt.Fprintf(e.opts.Progress, "[%6.1fs] %s\n", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...))
}

// recordRestart keeps a crashed process's restart for Status.
func (e *Estate) recordRestart(r procgroup.Restart) {
	pr := api.ProcessRestart{At: r.At, Component: r.Name, Restarts: r.Restarts, PID: r.PID, Exited: r.Exited}
	if r.Err != nil {
		pr.Error = r.Err.Error()
	}
	e.rmu.Lock()
	e.restarts = append(e.restarts, pr)
	e.rmu.Unlock()
}

// Restarts are the restarts of crashed processes so far, oldest first.
func (e *Estate) Restarts() []api.ProcessRestart {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	return append([]api.ProcessRestart(nil), e.restarts...)
}

// onStop registers a cleanup of the twin's shared parts.
func (e *Estate) onStop(name string, fn func(ctx context.Context) error) {
	e.addCleanup(cleanup{name: name, fn: fn})
}

func (e *Estate) addCleanup(c cleanup) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, c)
}

// undoCluster takes a cluster's cleanups out of the teardown list and runs them, newest first: its Arc
// agent and engine, its engine directory, its connectedCluster, its control plane. onStage, if set, hears
// each report stage once its cleanups are done. It returns what it stopped, in order.
func (e *Estate) undoCluster(ctx context.Context, name string, onStage func(api.StepName)) ([]string, error) {
	e.mu.Lock()
	var take, keep []cleanup
	for _, c := range e.cleanups {
		if c.cluster == name {
			take = append(take, c)
		} else {
			keep = append(keep, c)
		}
	}
	e.cleanups = keep
	e.mu.Unlock()
	var stopped []string
	var errs []error
	for i := len(take) - 1; i >= 0; i-- {
		c := take[i]
		if err := c.fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
		}
		stopped = append(stopped, c.name)
		if onStage != nil && (i == 0 || take[i-1].stage != c.stage) {
			onStage(c.stage)
		}
	}
	return stopped, errors.Join(errs...)
}

// Done is closed when the twin has been taken down.
func (e *Estate) Done() <-chan struct{} { return e.done }

// Down stops everything the twin started, in reverse order, and removes the state directory unless
// keep. It is safe to call more than once; later calls return nil.
func (e *Estate) Down(_ context.Context, keep bool) error {
	_, err := e.teardown(keep)
	return err
}

// teardown runs the cleanups in reverse order (bounded by the profile's StopTimeout), waits for the
// twin's goroutines and removes the state directory unless keep.
func (e *Estate) teardown(keep bool) ([]string, error) {
	e.mu.Lock()
	if e.down {
		e.mu.Unlock()
		return nil, nil
	}
	e.down = true
	e.mu.Unlock()
	// A cluster or host operation in flight stops and undoes what it started; no new one begins.
	e.opsCancel()
	e.opMu.Lock()
	defer e.opMu.Unlock()
	e.mu.Lock()
	cs := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	timeout := e.prof.StopTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute // api.RunProfileFor's StopTimeout, for a start that failed before the profile
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stopped []string
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].removeOnly {
			continue
		}
		if err := cs[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", cs[i].name, err))
		}
		stopped = append(stopped, cs[i].name)
	}
	e.runCancel()
	e.wg.Wait()
	if !keep && e.stateDir != "" {
		if err := os.RemoveAll(e.stateDir); err != nil {
			errs = append(errs, fmt.Errorf("remove state %s: %w", e.stateDir, err))
		}
	}
	close(e.done)
	return stopped, errors.Join(errs...)
}

// Spec is the spec the twin runs.
func (e *Estate) Spec() *spec.Spec { return e.spec }

// Profile is the run profile the twin runs with.
func (e *Estate) Profile() api.RunProfile { return e.prof }

// StateDir is where the twin keeps its files.
func (e *Estate) StateDir() string { return e.stateDir }

// Kubeconfig is the merged kubeconfig: one context per workload cluster, named after it.
func (e *Estate) Kubeconfig() string { return e.kubeconfig }

// GitServer is the twin's Gitea.
func (e *Estate) GitServer() *gitserver.Server { return e.git }

// Repos are the seeded repositories.
func (e *Estate) Repos() []gitserver.Repo { return e.gitRepos }

// Registry is the twin's OCI registry.
func (e *Estate) Registry() *registry.Registry { return e.reg }

// ArcServer is the Arc fake's Azure side; ArcEndpoint its ARM endpoint.
func (e *Estate) ArcServer() *arc.Server     { return e.arcSrv }
func (e *Estate) ArcEndpoint() *arc.Endpoint { return e.arcEP }

// ARMClient is an HTTP client that trusts the Arc fake's TLS certificate and sends a bearer token of the
// fake's service principal.
func (e *Estate) ARMClient() *http.Client { return arcsdk.AuthorizedClient(e.arcEP) }

// ReadyAfter is how long Up took.
func (e *Estate) ReadyAfter() time.Duration { return e.ready }

// VMs is a snapshot of every VM's state and host in the hardware model.
func (e *Estate) VMs() []hardware.VMStatus { return e.bridge.VMs() }

// RESTConfig is the admin REST config of a workload cluster.
func (e *Estate) RESTConfig(clusterName string) (*rest.Config, error) {
	rc, ok := e.cluster(clusterName)
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w (have: %v)", clusterName, cluster.ErrNotFound, e.clusterNames())
	}
	return rest.CopyConfig(rc.config), nil
}

// Host runs a host operation (hostops.Operations: fail, drain, repair) on an HCI host of the running
// estate, serialised with the cluster operations.
func (e *Estate) Host(ctx context.Context, op hostops.Op, host string) ([]hostops.Record, error) {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	return e.bridge.Do(ctx, op, host)
}

// clientOf is the admin client of a running cluster, for the bridge.
func (e *Estate) clientOf(name string) (kubernetes.Interface, bool) {
	rc, ok := e.cluster(name)
	if !ok {
		return nil, false
	}
	return rc.client, true
}

// nodeName is the name of a VM's Node in a running cluster (cluster.Info.NodeName).
func (e *Estate) nodeName(clusterName, vm string) string {
	if rc, ok := e.cluster(clusterName); ok {
		return rc.info.NodeName(vm)
	}
	return vm
}

// clusterNames are the running workload clusters, in plan order.
func (e *Estate) clusterNames() []string {
	e.cmu.RLock()
	defer e.cmu.RUnlock()
	return planClusterNames(e.plan)
}

// cluster returns a running cluster.
func (e *Estate) cluster(name string) (*Cluster, bool) {
	e.cmu.RLock()
	defer e.cmu.RUnlock()
	rc, ok := e.clusters[name]
	return rc, ok
}

// engineDir is a cluster's engine directory, removed with the cluster.
func (e *Estate) engineDir(name string) string {
	return filepath.Join(e.stateDir, api.EnginesDir, name)
}
