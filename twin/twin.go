package twin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/internal/estate"
	"github.com/hybridtwin/hybridtwin/twin/s3server"
)

// Options configure Up.
type Options struct {
	// StateDir holds everything the twin writes: kubeconfig, Gitea, registry, clusters, engines' state,
	// the control socket. Empty: DefaultStateDir(spec name).
	StateDir string
	// Progress receives one line per step with the elapsed time; nil keeps Up silent.
	Progress io.Writer
	// Logger receives the components' logs; nil keeps them silent.
	Logger *slog.Logger
	// Clock drives the hardware simulation; nil is the real clock.
	Clock clock.WithTicker
	// NoDriftWatch starts the twin's reconcilers without watch-driven drift correction (see
	// reconciler.Options.NoDriftWatch): the scenario suite's deliberately broken change.
	NoDriftWatch bool
}

// Twin is a running twin. Its methods are safe for concurrent use.
type Twin struct{ e *estate.Estate }

// Up starts the twin a loaded spec describes, as one pipeline of steps (twin/internal/estate): it plans
// with the hardware model; starts Gitea, the registry, the Arc fake and every workload cluster's
// control plane in parallel; publishes the images and artifacts and seeds the repositories; then, cluster
// by cluster, connects it to Arc with the Azure SDK, installs Flux's CRDs, starts its GitOps engine
// (spec.reconciler, from the engine room twin/engine) and Arc agent, and creates its GitOps
// configurations through ARM; and starts the hardware bridge. It returns once all of that is done; ctx
// bounds the start only (cancelling it mid-way stops what started).
//
// On any failure everything started is stopped again, in reverse order, the state directory is removed
// and the error is a *StepError naming the step (errors.Is(err, ErrUp)).
func Up(ctx context.Context, spec *Spec, opts Options) (*Twin, error) {
	e, err := estate.Up(ctx, spec, estate.Options(opts))
	if err != nil {
		return nil, err
	}
	return &Twin{e}, nil
}

// Down stops everything the twin started, in reverse order, and removes the state directory unless
// keep. It is safe to call more than once; later calls return nil.
func (t *Twin) Down(ctx context.Context, keep bool) error { return t.e.Down(ctx, keep) }

// Done is closed when the twin has been taken down.
func (t *Twin) Done() <-chan struct{} { return t.e.Done() }

// Spec is the spec the twin runs.
func (t *Twin) Spec() *Spec { return t.e.Spec() }

// StateDir is where the twin keeps its files.
func (t *Twin) StateDir() string { return t.e.StateDir() }

// Kubeconfig is the merged kubeconfig: one context per workload cluster, named after it.
func (t *Twin) Kubeconfig() string { return t.e.Kubeconfig() }

// GiteaURL is the Git server's base URL.
func (t *Twin) GiteaURL() string { return t.e.GitServer().URL() }

// RegistryHost is the registry's host:port.
func (t *Twin) RegistryHost() string { return t.e.Registry().Host() }

// S3 is the twin's S3 server (versitygw), which publishes spec.buckets; nil when the spec has none.
func (t *Twin) S3() *s3server.Server { return t.e.S3() }

// ArcEndpoint is the Arc fake's ARM endpoint URL.
func (t *Twin) ArcEndpoint() string { return t.e.ArcEndpoint().URL }

// ARMEndpoint is the Arc fake's ARM endpoint, for the arcsdk helpers (PutFluxConfiguration, ...).
func (t *Twin) ARMEndpoint() *arc.Endpoint { return t.e.ArcEndpoint() }

// GiteaSSHKnownHosts is the known_hosts line of Gitea's built-in SSH server (loopback, its own host key).
func (t *Twin) GiteaSSHKnownHosts() string { return t.e.GitServer().SSHKnownHosts() }

// Arc is the Arc fake's Azure side: connected clusters, fluxConfigurations, and what policy assignments
// deployed (PolicyDeployments).
func (t *Twin) Arc() *arc.Server { return t.e.ArcServer() }

// ARMClient is an HTTP client that trusts the Arc fake's TLS certificate and authenticates with a bearer
// token the fake issued, for ARM requests to
// ArcEndpoint() in the REST shapes the fake serves (e.g. a policy assignment).
func (t *Twin) ARMClient() *http.Client { return t.e.ARMClient() }

// ReadyAfter is how long Up took.
func (t *Twin) ReadyAfter() time.Duration { return t.e.ReadyAfter() }

// RESTConfig is the admin REST config of a workload cluster.
func (t *Twin) RESTConfig(clusterName string) (*rest.Config, error) {
	return t.e.RESTConfig(clusterName)
}

// Clusters are the workload clusters the twin runs now, in plan order (Spec().ClusterNames() is what it
// started with).
func (t *Twin) Clusters() []string { return t.e.Clusters() }

// Plan is a copy of the ClusterPlan the twin runs now.
func (t *Twin) Plan() *hardware.Plan { return t.e.Plan() }

// Info describes the running twin, as twin.json records it.
func (t *Twin) Info() Info { return t.e.Info() }

// Status takes a snapshot of the twin: every component, host, VM, node and GitOps configuration.
func (t *Twin) Status(ctx context.Context) (*Status, error) { return t.e.Status(ctx) }

// Host runs a host operation (fail, drain, repair: the table twin/hostops.Operations) on an HCI host:
// the hardware model decides, and the VMs' nodes follow.
func (t *Twin) Host(ctx context.Context, op HostOp, host string) ([]BridgeRecord, error) {
	return t.e.Host(ctx, op, host)
}

// MoreWorkers is how many more workers a node pool of the running twin takes before the hardware model
// refuses: the capacity planner's what-if on the estate as it runs. ScaleNodePool to Current+More is
// accepted, one more is refused for LimitedBy (while nothing else changes).
func (t *Twin) MoreWorkers(clusterName, pool string) (hardware.MoreWorkers, error) {
	return t.e.MoreWorkers(clusterName, pool)
}

// RemoveCluster is the disaster: a workload cluster is lost. Its Arc agent and GitOps engine stop, its
// connectedCluster is deleted as `az connectedk8s delete` does, its control plane and kubelets stop and
// their state is removed, and its VMs are released in the hardware model. The twin's last cluster cannot
// be removed. Once begun, the teardown runs to the end; the error then names every stage that failed.
func (t *Twin) RemoveCluster(ctx context.Context, name string) (*ClusterReport, error) {
	return t.e.RemoveCluster(ctx, name)
}

// AddCluster onboards a new workload cluster: the hardware model places its VMs (or refuses with its
// reason, a *CapacityError, starting nothing), then the same per-cluster steps as Up run for it --
// control plane, Arc connect (where policy assignments covering it deploy their configurations), engine
// and Arc agent, the spec's configurations that target it. A failure part-way undoes everything (a
// *StepError, errors.Is(err, ErrLifecycle)).
func (t *Twin) AddCluster(ctx context.Context, wc hardware.WorkloadCluster) (*ClusterReport, error) {
	return t.e.AddCluster(ctx, wc)
}

// RecreateCluster brings back a workload cluster of the spec's plan (after RemoveCluster), as the spec
// plans it, and it converges from Git again.
func (t *Twin) RecreateCluster(ctx context.Context, name string) (*ClusterReport, error) {
	return t.e.RecreateCluster(ctx, name)
}

// AddClusterFile onboards the cluster a cluster file describes (ParseClusterFragment), as AddCluster
// does, after checking it against the running twin (a *ClusterFileError, nothing started); its own
// configurations are created with the spec's, and it waits until every configuration on the cluster is
// Compliant. onStep, if set, hears each stage when it is done.
func (t *Twin) AddClusterFile(ctx context.Context, f *ClusterFragment, onStep func(LifecycleStep)) (*ClusterReport, error) {
	return t.e.AddClusterFile(ctx, f, onStep)
}

// ScaleNodePool sets the VM count of a node pool, as `az aksarc nodepool scale --node-count` does. The
// hardware model decides first (a *CapacityError when it does not fit, nothing changed). Growing adds
// the VMs and their Ready Nodes; shrinking drains the highest-numbered VMs' nodes (cordon, evict, as
// `kubectl drain` does), removes them and releases the VMs.
func (t *Twin) ScaleNodePool(ctx context.Context, clusterName, pool string, count int) (*ClusterReport, error) {
	return t.e.ScaleNodePool(ctx, clusterName, pool, count)
}

// ReconcilerMetrics gathers the Prometheus metrics of one cluster's engine, when it is the twin's own
// reconciler (hybridtwin_reconciler_*, labelled cluster=<name>), from the cluster's own registry. A
// cluster on Flux's controllers has none (ErrNoReconcilerMetrics: they serve theirs on their metrics
// ports, listed by Status).
func (t *Twin) ReconcilerMetrics(clusterName string) (prometheus.Gatherer, error) {
	return t.e.ReconcilerMetrics(clusterName)
}
