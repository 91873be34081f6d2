package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
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
	info := newInfo(spec, cfg, kubeconfig)
	info.Start = cluster.StartReport{Total: time.Since(start)}
	if err := p.observe(ctx, &info); err != nil {
		if derr := p.kp.Delete(spec.Name, kubeconfig); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete kind cluster %q: %w", spec.Name, derr))
		}
		return cluster.Info{}, &cluster.StartError{Cluster: spec.Name, Logs: "deleted with the kind cluster", Err: err}
	}
	p.mu.Lock()
	p.infos[spec.Name] = info
	p.mu.Unlock()
	return info, nil
}

// newInfo is the Info of a cluster created from cfg: the worker VMs in spec order, and the Node name
// kind gives each VM (NodeNames).
func newInfo(spec cluster.Spec, cfg *v1alpha4.Cluster, kubeconfig string) cluster.Info {
	info := cluster.Info{
		Name:            spec.Name,
		Provider:        cluster.ProviderKind,
		TimeProfile:     spec.TimeProfile,
		ProfilesVersion: cluster.ProfilesVersion,
		Kubeconfig:      kubeconfig,
		Context:         "kind-" + spec.Name,
		Capacity:        spec.Capacity(),
		NodeNames:       NodeNames(cfg),
	}
	for _, n := range spec.Nodes {
		info.Nodes = append(info.Nodes, n.Name)
	}
	return info
}

// observe reads the API server's URL and version into info, and checks that kind named the Nodes as
// NodeNames predicts: every later call finds a VM's Node by that name.
func (p *Provider) observe(ctx context.Context, info *cluster.Info) error {
	rc, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return fmt.Errorf("read the kubeconfig kind wrote: %w", err)
	}
	info.Server = rc.Host
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if v, err := c.Discovery().ServerVersion(); err == nil {
		info.KubernetesVersion = v.GitVersion
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the nodes kind made: %w", err)
	}
	return checkNodeNames(info.NodeNames, nodes.Items)
}

// checkNodeNames compares the predicted VM -> Node names with the Nodes' LabelVM labels.
func checkNodeNames(want map[string]string, nodes []corev1.Node) error {
	got := map[string]string{}
	for _, n := range nodes {
		if vm, ok := n.Labels[LabelVM]; ok {
			got[vm] = n.Name
		}
	}
	var problems []string
	for _, vm := range slices.Sorted(maps.Keys(want)) {
		if got[vm] != want[vm] {
			problems = append(problems, fmt.Sprintf("VM %s: Node %q, expected %q", vm, got[vm], want[vm]))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("kind named the Nodes otherwise than kind.NodeNames expects (%s): %w; "+
			"the kind release's node naming changed, so update NodeNames", strings.Join(problems, "; "), ErrNodeNames)
	}
	return nil
}

// ErrNodeNames is wrapped when kind names a VM's Node otherwise than NodeNames says.
var ErrNodeNames = errors.New("unexpected kind node names")

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
func (p *Provider) CutOff(ctx context.Context, clusterName, vm string) error {
	_, node, err := p.kindNode(clusterName, vm)
	if err != nil {
		return err
	}
	return p.docker(ctx, "pause", node)
}

// Restore removes the out-of-service taint, if set, and unpauses the VM's kind node container.
func (p *Provider) Restore(ctx context.Context, clusterName, vm string) error {
	info, node, err := p.kindNode(clusterName, vm)
	if err != nil {
		return err
	}
	if err := setOutOfService(ctx, info, node, false); err != nil {
		return err
	}
	return p.docker(ctx, "unpause", node)
}

// MarkOutOfService taints the VM's kind node node.kubernetes.io/out-of-service=nodeshutdown:NoExecute.
func (p *Provider) MarkOutOfService(ctx context.Context, clusterName, vm string) error {
	info, node, err := p.kindNode(clusterName, vm)
	if err != nil {
		return err
	}
	return setOutOfService(ctx, info, node, true)
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

// kindNode returns the cluster's Info and the name of a VM's kind node, which is both its Node's and its
// container's name.
func (p *Provider) kindNode(clusterName, vm string) (cluster.Info, string, error) {
	info, err := p.info(clusterName)
	if err != nil {
		return cluster.Info{}, "", err
	}
	node, ok := info.NodeNames[vm]
	if !ok {
		return cluster.Info{}, "", fmt.Errorf("VM %q of kind cluster %q: %w; its VMs are %s", vm, clusterName, cluster.ErrNotFound,
			strings.Join(slices.Sorted(maps.Keys(info.NodeNames)), ", "))
	}
	return info, node, nil
}

func (p *Provider) docker(ctx context.Context, verb, container string) error {
	out, err := exec.CommandContext(ctx, p.opts.Docker, verb, container).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s %s: %v: %s", verb, container, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func setOutOfService(ctx context.Context, info cluster.Info, node string, on bool) error {
	rc, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
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
