package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/internal/proc"
	"github.com/hybridtwin/hybridtwin/twin/cluster/internal/simkubelet"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// Binaries are the control-plane executables a cluster runs.
type Binaries struct {
	Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler string
}

// ToolCacheBinaries returns the pinned binaries from the tool cache, building any that is missing
// (minutes, once per machine; see tools/toolcache).
func ToolCacheBinaries(ctx context.Context) (Binaries, error) {
	c, err := toolcache.New()
	if err != nil {
		return Binaries{}, err
	}
	var b Binaries
	for _, x := range []struct {
		tool toolcache.Tool
		dst  *string
	}{
		{toolcache.Etcd, &b.Etcd},
		{toolcache.KubeAPIServer, &b.KubeAPIServer},
		{toolcache.KubeControllerManager, &b.KubeControllerManager},
		{toolcache.KubeScheduler, &b.KubeScheduler},
	} {
		r, err := c.Ensure(ctx, x.tool)
		if err != nil {
			return Binaries{}, fmt.Errorf("control-plane binary %s: %w", x.tool, err)
		}
		*x.dst = r.Path
	}
	return b, nil
}

// Options configure a Provider.
type Options struct {
	// Dir holds one state directory per cluster. Empty: a new temporary directory, removed by Close.
	Dir string
	// KeepState keeps a cluster's directory (certificates, etcd data, logs) after Delete.
	KeepState bool
	// Binaries are the executables to run. Zero: ToolCacheBinaries, resolved on the first Create.
	Binaries Binaries
	// Logger receives what the provider does; nil means silent.
	Logger *slog.Logger
	// StartTimeout bounds each Create (default cluster.DefaultStartTimeout).
	StartTimeout time.Duration
	// StopGrace is how long components get between SIGTERM and SIGKILL (default cluster.DefaultStopGrace).
	StopGrace time.Duration
	// Env adds environment variables to a component's process (e.g. GOGC); they come after the
	// defaults (ComponentEnv), so they override them.
	Env map[cluster.Component][]string
	// OnRestart, if set, hears every restart of a crashed component (procgroup.Supervise), named
	// <cluster>/<component>.
	OnRestart func(procgroup.Restart)
}

// Provider runs embedded clusters. It is safe for concurrent use; clusters start in parallel.
type Provider struct {
	opts  Options
	log   *slog.Logger
	ports *proc.Ports

	mu       sync.Mutex
	dir      string
	ownDir   bool
	clusters map[string]*instance
	starting map[string]bool
	bins     Binaries

	// storeMu guards store, the light clusters' shared etcd (nil while none runs).
	storeMu sync.Mutex
	store   *sharedStore
}

var (
	_ cluster.Provider    = (*Provider)(nil)
	_ cluster.NodeFaults  = (*Provider)(nil)
	_ cluster.LogExporter = (*Provider)(nil)
)

// New returns a provider with no clusters.
func New(opts Options) *Provider {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = cluster.DefaultStartTimeout
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = cluster.DefaultStopGrace
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		opts:     opts,
		log:      log,
		ports:    proc.NewPorts(),
		clusters: map[string]*instance{},
		starting: map[string]bool{},
		bins:     opts.Binaries,
	}
}

// Name is cluster.ProviderEmbedded.
func (p *Provider) Name() cluster.ProviderName { return cluster.ProviderEmbedded }

// Create starts a cluster and waits until it is ready. On failure or cancellation every process it
// started is stopped, its ports are released and its directory removed (unless KeepState).
func (p *Provider) Create(ctx context.Context, spec cluster.Spec) (cluster.Info, error) {
	spec = spec.WithDefaults()
	if spec.Provider != cluster.ProviderEmbedded {
		return cluster.Info{}, fmt.Errorf("cluster %q asks for provider %q: %w; use that provider (twin/cluster/providers picks it from the spec)", spec.Name, spec.Provider, cluster.ErrInvalidSpec)
	}
	if err := spec.Validate(); err != nil {
		return cluster.Info{}, err
	}
	profile, err := cluster.Profile(spec.TimeProfile)
	if err != nil {
		return cluster.Info{}, err
	}
	root, bins, err := p.reserve(ctx, spec.Name)
	if err != nil {
		return cluster.Info{}, err
	}
	release := func() {
		p.mu.Lock()
		delete(p.starting, spec.Name)
		p.mu.Unlock()
	}

	tier, err := cluster.LookupTier(spec.Tier)
	if err != nil { // Validate refused it already
		release()
		return cluster.Info{}, err
	}
	c := &instance{
		spec:      spec,
		profile:   profile,
		layout:    layout{Dir: filepath.Join(root, spec.Name)},
		log:       p.log.With("cluster", spec.Name),
		extraEnv:  p.env(),
		onRestart: p.opts.OnRestart,
	}
	var pt []int
	if tier.SharedEtcd {
		// The light tier: the API server stores in the provider's shared etcd, under the cluster's prefix,
		// cleared first in case an earlier cluster of this name left keys behind.
		if c.shared, err = p.acquireStore(ctx, root, bins, profile); err != nil {
			release()
			return cluster.Info{}, fmt.Errorf("create cluster %q: %w", spec.Name, err)
		}
		if _, err := deletePrefix(ctx, c.shared.url(), cluster.EtcdPrefix(spec.Name)); err != nil {
			p.releaseStore()
			release()
			return cluster.Info{}, fmt.Errorf("create cluster %q: %w", spec.Name, err)
		}
		if pt, err = p.ports.Take(3); err == nil {
			c.ports = ports{APIServer: pt[0], ControllerManager: pt[1], Scheduler: pt[2]}
		}
	} else if pt, err = p.ports.Take(5); err == nil {
		c.ports = ports{EtcdClient: pt[0], EtcdPeer: pt[1], APIServer: pt[2], ControllerManager: pt[3], Scheduler: pt[4]}
	}
	if err != nil {
		if c.shared != nil {
			p.releaseStore()
		}
		release()
		return cluster.Info{}, fmt.Errorf("create cluster %q: %w: %v", spec.Name, cluster.ErrStart, err)
	}
	// A directory left by an earlier run of a cluster of this name (KeepState) would hold a stale etcd.
	if err := os.RemoveAll(c.layout.Dir); err != nil {
		if c.shared != nil {
			p.releaseStore()
		}
		release()
		p.ports.Release(pt)
		return cluster.Info{}, fmt.Errorf("create cluster %q: clear %s: %w", spec.Name, c.layout.Dir, err)
	}

	startCtx, cancel := context.WithTimeout(ctx, p.opts.StartTimeout)
	defer cancel()
	if err := c.start(startCtx, bins); err != nil {
		c.stop(p.opts.StopGrace)
		p.ports.Release(pt)
		if c.shared != nil {
			if _, derr := deletePrefix(context.WithoutCancel(ctx), c.shared.url(), cluster.EtcdPrefix(spec.Name)); derr != nil {
				p.log.Warn("clear a failed light cluster's keys", "cluster", spec.Name, "err", derr)
			}
			p.releaseStore()
		}
		se := &cluster.StartError{Cluster: spec.Name, Ports: pt, Logs: c.layout.logs(), Err: err}
		for _, pr := range c.procs {
			se.Stopped = append(se.Stopped, cluster.Process{Component: cluster.Component(pr.Name()), PID: pr.PID(), Log: pr.LogPath()})
		}
		if !p.opts.KeepState {
			_ = os.RemoveAll(c.layout.Dir)
			se.Logs = "removed with the cluster's directory; set KeepState to keep them"
		}
		release()
		return cluster.Info{}, se
	}
	if err := writeInfo(c); err != nil {
		p.log.Warn("write cluster info", "cluster", spec.Name, "err", err)
	}
	p.mu.Lock()
	delete(p.starting, spec.Name)
	p.clusters[spec.Name] = c
	p.mu.Unlock()
	p.log.Info("cluster ready", "cluster", spec.Name, "took", c.info.Start.Total, "profile", profile.Name)
	return c.info, nil
}

// env merges the default component environment with Options.Env.
func (p *Provider) env() map[cluster.Component][]string {
	out := map[cluster.Component][]string{}
	for _, c := range cluster.Components() {
		out[c] = append(append([]string(nil), ComponentEnv[c]...), p.opts.Env[c]...)
	}
	return out
}

// reserve marks a name as starting and returns the state root and binaries.
func (p *Provider) reserve(ctx context.Context, name string) (string, Binaries, error) {
	p.mu.Lock()
	if p.clusters[name] != nil || p.starting[name] {
		p.mu.Unlock()
		return "", Binaries{}, fmt.Errorf("create cluster %q: %w; delete it first or choose another name", name, cluster.ErrExists)
	}
	p.starting[name] = true
	if p.dir == "" {
		if p.opts.Dir != "" {
			p.dir = p.opts.Dir
		} else {
			d, err := os.MkdirTemp("", "hybridtwin-clusters-")
			if err != nil {
				delete(p.starting, name)
				p.mu.Unlock()
				return "", Binaries{}, fmt.Errorf("create cluster %q: state directory: %w", name, err)
			}
			p.dir, p.ownDir = d, true
		}
	}
	root, bins := p.dir, p.bins
	p.mu.Unlock()

	if bins == (Binaries{}) {
		b, err := ToolCacheBinaries(ctx)
		if err != nil {
			p.mu.Lock()
			delete(p.starting, name)
			p.mu.Unlock()
			return "", Binaries{}, fmt.Errorf("create cluster %q: %w", name, err)
		}
		p.mu.Lock()
		p.bins, bins = b, b
		p.mu.Unlock()
	}
	return root, bins, nil
}

// Delete stops a cluster's kubelets and processes, releases its ports and removes its directory
// (unless KeepState).
func (p *Provider) Delete(ctx context.Context, name string) error {
	p.mu.Lock()
	c := p.clusters[name]
	delete(p.clusters, name)
	p.mu.Unlock()
	if c == nil {
		return fmt.Errorf("delete cluster %q: %w", name, cluster.ErrNotFound)
	}
	c.stop(p.opts.StopGrace)
	p.ports.Release(c.ports.all())
	var storeErr error
	if c.shared != nil {
		// Its objects go with it, as with a full cluster's etcd directory; a cluster of this name later
		// starts empty.
		if _, err := deletePrefix(ctx, c.shared.url(), cluster.EtcdPrefix(name)); err != nil {
			storeErr = fmt.Errorf("delete cluster %q: %w", name, err)
		}
		p.releaseStore()
	}
	if storeErr != nil {
		return storeErr
	}
	if !p.opts.KeepState {
		if err := os.RemoveAll(c.layout.Dir); err != nil {
			return fmt.Errorf("delete cluster %q: remove %s: %w", name, c.layout.Dir, err)
		}
	}
	p.log.Info("cluster deleted", "cluster", name)
	return nil
}

// Close deletes every cluster and, if the provider made its state directory, removes it.
func (p *Provider) Close(ctx context.Context) error {
	p.mu.Lock()
	names := make([]string, 0, len(p.clusters))
	for n := range p.clusters {
		names = append(names, n)
	}
	p.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, n := range names {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			if err := p.Delete(ctx, n); err != nil && !errors.Is(err, cluster.ErrNotFound) {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	p.mu.Lock()
	if p.ownDir && !p.opts.KeepState && len(p.starting) == 0 {
		if err := os.RemoveAll(p.dir); err != nil {
			errs = append(errs, err)
		}
		p.dir, p.ownDir = "", false
	}
	p.mu.Unlock()
	return errors.Join(errs...)
}

// Kubeconfig returns the path of the cluster's admin kubeconfig.
func (p *Provider) Kubeconfig(_ context.Context, name string) (string, error) {
	c, err := p.get(name)
	if err != nil {
		return "", err
	}
	return c.info.Kubeconfig, nil
}

// List returns the running clusters, sorted by name.
func (p *Provider) List(_ context.Context) ([]cluster.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]cluster.Info, 0, len(p.clusters))
	for _, c := range p.clusters {
		out = append(out, c.liveInfo())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (p *Provider) get(name string) (*instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.clusters[name]
	if c == nil {
		return nil, fmt.Errorf("cluster %q: %w", name, cluster.ErrNotFound)
	}
	return c, nil
}

// onNode runs fn on the kubelet of one node of a cluster, under the cluster's lock. what names the
// operation, the node and the cluster in its errors (`cut off node "w1" of cluster "dev"`): a node the
// cluster does not run is cluster.ErrNotFound, and fn's error is wrapped.
func (p *Provider) onNode(clusterName, node, what string, fn func(c *instance, k *simkubelet.Kubelet) error) error {
	c, err := p.get(clusterName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.kubelets[node]
	if k == nil {
		return fmt.Errorf("%s: %w", what, cluster.ErrNotFound)
	}
	if err := fn(c, k); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// CutOff silences the node's kubelet (see cluster.NodeFaults).
func (p *Provider) CutOff(_ context.Context, clusterName, node string) error {
	return p.onNode(clusterName, node, fmt.Sprintf("cut off node %q of cluster %q", node, clusterName), func(c *instance, k *simkubelet.Kubelet) error {
		k.Stop()
		c.log.Info("node cut off", "node", node)
		return nil
	})
}

// Restore removes the out-of-service taint if it was set and starts the node's kubelet again.
func (p *Provider) Restore(ctx context.Context, clusterName, node string) error {
	return p.onNode(clusterName, node, fmt.Sprintf("restore node %q of cluster %q", node, clusterName), func(c *instance, k *simkubelet.Kubelet) error {
		if err := c.setOutOfService(ctx, node, false); err != nil {
			return err
		}
		if err := k.Start(context.Background()); err != nil {
			return err
		}
		c.log.Info("node restored", "node", node)
		return nil
	})
}

// MarkOutOfService taints a cut-off node node.kubernetes.io/out-of-service=nodeshutdown:NoExecute.
func (p *Provider) MarkOutOfService(ctx context.Context, clusterName, node string) error {
	return p.onNode(clusterName, node, fmt.Sprintf("mark node %q of cluster %q out of service", node, clusterName), func(c *instance, k *simkubelet.Kubelet) error {
		if k.Running() {
			return errors.New("its kubelet is running; the taint is for a node that is shut down, so cut it off first")
		}
		return c.setOutOfService(ctx, node, true)
	})
}

// outOfServiceValue is the value the Kubernetes documentation uses for the out-of-service taint
// ("Non-graceful node shutdown handling": node.kubernetes.io/out-of-service=nodeshutdown:NoExecute).
const outOfServiceValue = "nodeshutdown"

func (c *instance) setOutOfService(ctx context.Context, node string, on bool) error {
	n, err := c.admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var taints []corev1.Taint
	has := false
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService {
			has = true
			if !on {
				continue
			}
		}
		taints = append(taints, t)
	}
	if on == has {
		return nil
	}
	if on {
		taints = append(taints, corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: outOfServiceValue, Effect: corev1.TaintEffectNoExecute})
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": n.ResourceVersion},
		"spec":     map[string]any{"taints": taints},
	})
	if err != nil {
		return err
	}
	if _, err := c.admin.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set taints of node %s: %w", node, err)
	}
	return nil
}

// writeInfo records the cluster's Info next to its state, for people looking at a kept directory.
func writeInfo(c *instance) error {
	b, err := json.MarshalIndent(c.info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.layout.Dir, "cluster.json"), b, 0o600)
}

// ExportLogs copies the cluster's process logs into dest (created if needed), one file per component.
func (p *Provider) ExportLogs(_ context.Context, name, dest string) error {
	c, err := p.get(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("export logs of cluster %q: %w", name, err)
	}
	for _, pr := range c.procs {
		data, err := os.ReadFile(pr.LogPath())
		if err != nil {
			return fmt.Errorf("export logs of cluster %q: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dest, filepath.Base(pr.LogPath())), data, 0o644); err != nil {
			return fmt.Errorf("export logs of cluster %q: %w", name, err)
		}
	}
	return nil
}

var _ cluster.NodePools = (*Provider)(nil)

// AddNode registers a worker VM as a Node of a running cluster: it issues the node's kubelet certificate
// from the cluster's CA, creates the Node with the twin's labels, starts its simulated kubelet and waits
// until the node is Ready with a pod CIDR (bounded by Options.StartTimeout). On failure the kubelet is
// stopped and the Node deleted again.
func (p *Provider) AddNode(ctx context.Context, clusterName string, n cluster.NodeSpec) error {
	c, err := p.get(clusterName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kubelets[n.Name] != nil {
		return fmt.Errorf("add node %q to cluster %q: %w", n.Name, clusterName, cluster.ErrExists)
	}
	spec := c.spec
	spec.Nodes = append(append([]cluster.NodeSpec(nil), c.spec.Nodes...), n)
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("add node %q to cluster %q: %w", n.Name, clusterName, err)
	}
	n = spec.Nodes[len(spec.Nodes)-1]
	if err := c.creds.issueNode(n.Name, time.Now()); err != nil {
		return fmt.Errorf("add node %q to cluster %q: %w", n.Name, clusterName, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.StartTimeout)
	defer cancel()
	err = c.startNode(ctx, n)
	if err == nil {
		err = c.waitFor(ctx, cluster.PhaseNodes, c.procs, c.nodeReady(n.Name))
	}
	if err != nil {
		if k := c.kubelets[n.Name]; k != nil {
			k.Stop()
		}
		delete(c.kubelets, n.Name)
		delete(c.creds.nodes, n.Name)
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), healthTimeout)
		defer dcancel()
		if derr := c.admin.CoreV1().Nodes().Delete(dctx, n.Name, metav1.DeleteOptions{}); derr != nil && !apierrors.IsNotFound(derr) {
			err = errors.Join(err, fmt.Errorf("delete the half-added node again: %w", derr))
		}
		return fmt.Errorf("add node %q to cluster %q: %w", n.Name, clusterName, err)
	}
	c.spec = spec
	p.setNodes(c)
	c.log.Info("node added", "node", n.Name)
	return nil
}

// RemoveNode stops a node's kubelet and deletes its Node (see cluster.NodePools). If the delete fails
// the kubelet is started again, so the node is as it was.
func (p *Provider) RemoveNode(ctx context.Context, clusterName, node string) error {
	return p.onNode(clusterName, node, fmt.Sprintf("remove node %q of cluster %q", node, clusterName), func(c *instance, k *simkubelet.Kubelet) error {
		wasRunning := k.Running()
		k.Stop()
		if err := c.admin.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			if wasRunning {
				if serr := k.Start(context.Background()); serr != nil {
					err = errors.Join(err, serr)
				}
			}
			return err
		}
		delete(c.kubelets, node)
		delete(c.creds.nodes, node)
		var nodes []cluster.NodeSpec
		for _, n := range c.spec.Nodes {
			if n.Name != node {
				nodes = append(nodes, n)
			}
		}
		c.spec.Nodes = nodes
		p.setNodes(c)
		c.log.Info("node removed", "node", node)
		return nil
	})
}

// setNodes refreshes the cluster's Info from its spec after a node was added or removed. Info is read
// under p.mu (List), so it is replaced there, never changed in place.
func (p *Provider) setNodes(c *instance) {
	info := c.info
	info.Nodes = make([]string, 0, len(c.spec.Nodes))
	for _, n := range c.spec.Nodes {
		info.Nodes = append(info.Nodes, n.Name)
	}
	info.Capacity = c.spec.Capacity()
	p.mu.Lock()
	c.info = info
	p.mu.Unlock()
	if err := writeInfo(c); err != nil {
		p.log.Warn("write cluster info", "cluster", c.spec.Name, "err", err)
	}
}
