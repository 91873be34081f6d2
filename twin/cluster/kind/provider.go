package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// Options configure a Provider.
type Options struct {
	// NodeImage is the kind node image (default DefaultNodeImage).
	NodeImage string
	// Dir holds the kubeconfigs (default: a new temporary directory).
	Dir string
	// StartTimeout bounds kind's wait for the control plane (default cluster.DefaultStartTimeout).
	StartTimeout time.Duration
	// Docker is the docker command, for pausing nodes (default "docker").
	Docker string
}

// Provider runs twin clusters with kind on Docker.
type Provider struct {
	opts Options
	kp   *kindcluster.Provider

	mu    sync.Mutex
	infos map[string]cluster.Info
}

var (
	_ cluster.Provider    = (*Provider)(nil)
	_ cluster.NodeFaults  = (*Provider)(nil)
	_ cluster.LogExporter = (*Provider)(nil)
)

// New returns a kind provider using Docker.
func New(opts Options) *Provider {
	if opts.NodeImage == "" {
		opts.NodeImage = DefaultNodeImage
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = cluster.DefaultStartTimeout
	}
	if opts.Docker == "" {
		opts.Docker = "docker"
	}
	return &Provider{opts: opts, kp: kindcluster.NewProvider(kindcluster.ProviderWithDocker()), infos: map[string]cluster.Info{}}
}

// Name is cluster.ProviderKind.
func (p *Provider) Name() cluster.ProviderName { return cluster.ProviderKind }

// CheckDocker reports whether a Docker engine answers; kind needs one (with privileged containers).
func (p *Provider) CheckDocker(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, p.opts.Docker, "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("the kind provider needs a Docker engine: `%s info` failed: %v: %s: %w; use the embedded provider on this machine",
			p.opts.Docker, err, strings.TrimSpace(string(out)), cluster.ErrUnsupported)
	}
	return nil
}

// Create creates a kind cluster from the spec and waits for its nodes.
func (p *Provider) Create(ctx context.Context, spec cluster.Spec) (cluster.Info, error) {
	spec = spec.WithDefaults()
	if spec.Provider != cluster.ProviderKind {
		return cluster.Info{}, fmt.Errorf("cluster %q asks for provider %q: %w; the kind provider runs specs with provider: kind", spec.Name, spec.Provider, cluster.ErrInvalidSpec)
	}
	if err := spec.Validate(); err != nil {
		return cluster.Info{}, err
	}
	if err := p.CheckDocker(ctx); err != nil {
		return cluster.Info{}, err
	}
	cfg, err := Config(spec, p.opts.NodeImage)
	if err != nil {
		return cluster.Info{}, err
	}
	dir, err := p.dir()
	if err != nil {
		return cluster.Info{}, err
	}
	kubeconfig := filepath.Join(dir, spec.Name+".kubeconfig")
	start := time.Now()
	if err := p.kp.Create(spec.Name,
		kindcluster.CreateWithV1Alpha4Config(cfg),
		kindcluster.CreateWithKubeconfigPath(kubeconfig),
		kindcluster.CreateWithWaitForReady(p.opts.StartTimeout),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	); err != nil {
		return cluster.Info{}, &cluster.StartError{Cluster: spec.Name, Logs: "kind export logs --name " + spec.Name, Err: err}
	}
	info := cluster.Info{
		Name:            spec.Name,
		Provider:        cluster.ProviderKind,
		TimeProfile:     spec.TimeProfile,
		ProfilesVersion: cluster.ProfilesVersion,
		Kubeconfig:      kubeconfig,
		Context:         "kind-" + spec.Name,
		Capacity:        spec.Capacity(),
		Start:           cluster.StartReport{Total: time.Since(start)},
	}
	if rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig); err == nil {
		info.Server = rc.Host
		if c, err := kubernetes.NewForConfig(rc); err == nil {
			if v, err := c.Discovery().ServerVersion(); err == nil {
				info.KubernetesVersion = v.GitVersion
			}
		}
	}
	for _, n := range spec.Nodes {
		info.Nodes = append(info.Nodes, n.Name)
	}
	p.mu.Lock()
	p.infos[spec.Name] = info
	p.mu.Unlock()
	return info, nil
}

func (p *Provider) dir() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.Dir == "" {
		d, err := os.MkdirTemp("", "hybridtwin-kind-")
		if err != nil {
			return "", fmt.Errorf("kubeconfig directory: %w", err)
		}
		p.opts.Dir = d
	}
	return p.opts.Dir, os.MkdirAll(p.opts.Dir, 0o700)
}

// Delete deletes the kind cluster.
func (p *Provider) Delete(_ context.Context, name string) error {
	p.mu.Lock()
	info, ok := p.infos[name]
	delete(p.infos, name)
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("delete cluster %q: %w (not created by this provider)", name, cluster.ErrNotFound)
	}
	if err := p.kp.Delete(name, info.Kubeconfig); err != nil {
		return fmt.Errorf("delete kind cluster %q: %w", name, err)
	}
	return nil
}

// Kubeconfig returns the path of the cluster's kubeconfig.
func (p *Provider) Kubeconfig(_ context.Context, name string) (string, error) {
	info, err := p.info(name)
	return info.Kubeconfig, err
}

// List returns the clusters this provider created, sorted by name.
func (p *Provider) List(_ context.Context) ([]cluster.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]cluster.Info, 0, len(p.infos))
	for _, in := range p.infos {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ExportLogs runs kind's log collection into dest.
func (p *Provider) ExportLogs(_ context.Context, name, dest string) error {
	if _, err := p.info(name); err != nil {
		return err
	}
	return p.kp.CollectLogs(name, dest)
}

// CutOff pauses the VM's kind node container: its kubelet stops, as when the VM's host dies.
func (p *Provider) CutOff(ctx context.Context, clusterName, node string) error {
	kn, _, err := p.kindNode(ctx, clusterName, node)
	if err != nil {
		return err
	}
	return p.docker(ctx, "pause", kn)
}

// Restore removes the out-of-service taint, if set, and unpauses the node container.
func (p *Provider) Restore(ctx context.Context, clusterName, node string) error {
	kn, c, err := p.kindNode(ctx, clusterName, node)
	if err != nil {
		return err
	}
	if err := setOutOfService(ctx, c, kn, false); err != nil {
		return err
	}
	return p.docker(ctx, "unpause", kn)
}

// MarkOutOfService taints the VM's kind node node.kubernetes.io/out-of-service=nodeshutdown:NoExecute.
func (p *Provider) MarkOutOfService(ctx context.Context, clusterName, node string) error {
	kn, c, err := p.kindNode(ctx, clusterName, node)
	if err != nil {
		return err
	}
	return setOutOfService(ctx, c, kn, true)
}

func (p *Provider) info(name string) (cluster.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in, ok := p.infos[name]
	if !ok {
		return cluster.Info{}, fmt.Errorf("cluster %q: %w", name, cluster.ErrNotFound)
	}
	return in, nil
}

// kindNode finds the kind node (Node and container name) that carries a VM's name in LabelVM.
func (p *Provider) kindNode(ctx context.Context, clusterName, vm string) (string, kubernetes.Interface, error) {
	info, err := p.info(clusterName)
	if err != nil {
		return "", nil, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return "", nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", nil, err
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelVM + "=" + vm})
	if err != nil {
		return "", nil, fmt.Errorf("find the kind node of VM %q: %w", vm, err)
	}
	if len(nodes.Items) != 1 {
		return "", nil, fmt.Errorf("VM %q of cluster %q: %w (%d kind nodes carry %s=%s)", vm, clusterName, cluster.ErrNotFound, len(nodes.Items), LabelVM, vm)
	}
	return nodes.Items[0].Name, c, nil
}

func (p *Provider) docker(ctx context.Context, verb, container string) error {
	out, err := exec.CommandContext(ctx, p.opts.Docker, verb, container).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s %s: %v: %s", verb, container, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func setOutOfService(ctx context.Context, c kubernetes.Interface, node string, on bool) error {
	n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	taints, changed := withOutOfService(n.Spec.Taints, on)
	if !changed {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": n.ResourceVersion},
		"spec":     map[string]any{"taints": taints},
	})
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// withOutOfService adds or removes the out-of-service taint and says whether anything changed.
func withOutOfService(taints []corev1.Taint, on bool) ([]corev1.Taint, bool) {
	var out []corev1.Taint
	has := false
	for _, t := range taints {
		if t.Key == corev1.TaintNodeOutOfService {
			has = true
			if !on {
				continue
			}
		}
		out = append(out, t)
	}
	if on && !has {
		out = append(out, corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute})
	}
	return out, on != has
}
