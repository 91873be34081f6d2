package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/support"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// defaultWait bounds WaitForControlPlane; Create has already waited for readiness, so this only covers
// a cluster reused from an earlier Create. Same bound as a start (cluster.DefaultStartTimeout).
const defaultWait = cluster.DefaultStartTimeout

// Cluster is one twin cluster seen through e2e-framework.
type Cluster struct {
	provider cluster.Provider
	spec     cluster.Spec
	name     string
	version  string
	path     string
	wait     time.Duration

	info       cluster.Info
	kubeconfig string
	rc         *rest.Config
}

var (
	_ support.E2EClusterProvider              = (*Cluster)(nil)
	_ support.E2EClusterProviderWithLifeCycle = (*Cluster)(nil)
)

// New returns an e2e-framework cluster provider that creates spec with p. WithName overrides the spec's
// name; CreateWithConfig reads the spec from a ClusterSet file instead.
func New(p cluster.Provider, spec cluster.Spec) *Cluster {
	return &Cluster{provider: p, spec: spec, name: spec.Name}
}

// WithWaitDuration bounds WaitForControlPlane (an e2e-framework ClusterOpts).
func WithWaitDuration(d time.Duration) support.ClusterOpts {
	return func(p support.E2EClusterProvider) {
		if c, ok := p.(*Cluster); ok {
			c.wait = d
		}
	}
}

// WithName sets the cluster's name.
func (c *Cluster) WithName(name string) support.E2EClusterProvider { c.name = name; return c }

// WithVersion asks for a Kubernetes version; only the pinned one (toolcache.KubernetesVersion) runs.
func (c *Cluster) WithVersion(version string) support.E2EClusterProvider {
	c.version = version
	return c
}

// WithPath would point at other binaries; the twin runs the tool cache's, so Create refuses a path.
func (c *Cluster) WithPath(path string) support.E2EClusterProvider { c.path = path; return c }

// WithOpts applies e2e-framework cluster options such as WithWaitDuration.
func (c *Cluster) WithOpts(opts ...support.ClusterOpts) support.E2EClusterProvider {
	for _, o := range opts {
		o(c)
	}
	return c
}

// SetDefaults fills the wait bound.
func (c *Cluster) SetDefaults() support.E2EClusterProvider {
	if c.wait == 0 {
		c.wait = defaultWait
	}
	return c
}

// Create creates the cluster and returns its kubeconfig path. A cluster of that name already running
// in the provider is reused, as e2e-framework's kind and kwok providers do.
func (c *Cluster) Create(ctx context.Context, args ...string) (string, error) {
	if len(args) > 0 {
		return "", fmt.Errorf("create twin cluster %q: %w: no extra arguments are taken (got %s); put settings in the cluster spec", c.name, cluster.ErrUnsupported, strings.Join(args, " "))
	}
	return c.create(ctx, c.spec)
}

// CreateWithConfig creates the cluster described in a ClusterSet file (see examples/clusters): the
// cluster whose name matches, or the file's only cluster.
func (c *Cluster) CreateWithConfig(ctx context.Context, configFile string) (string, error) {
	if configFile == "" {
		return c.Create(ctx)
	}
	specs, err := cluster.LoadFile(configFile)
	if err != nil {
		return "", err
	}
	for _, s := range specs {
		if s.Name == c.name {
			return c.create(ctx, s)
		}
	}
	if len(specs) == 1 {
		return c.create(ctx, specs[0])
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	return "", fmt.Errorf("%s has no cluster named %q (it has %s): %w", configFile, c.name, strings.Join(names, ", "), cluster.ErrNotFound)
}

func (c *Cluster) create(ctx context.Context, spec cluster.Spec) (string, error) {
	if c.path != "" {
		return "", fmt.Errorf("create twin cluster %q: %w: binaries come from the tool cache, not %s; set %s to use another cache", c.name, cluster.ErrUnsupported, c.path, toolcache.EnvCache)
	}
	if c.version != "" && strings.TrimPrefix(c.version, "v") != strings.TrimPrefix(toolcache.KubernetesVersion, "v") {
		return "", fmt.Errorf("create twin cluster %q: %w: Kubernetes %s was asked for; the twin runs %s (tools/toolcache/pins.go)", c.name, cluster.ErrUnsupported, c.version, toolcache.KubernetesVersion)
	}
	if c.name != "" {
		spec.Name = c.name
	}
	infos, err := c.provider.List(ctx)
	if err != nil {
		return "", err
	}
	found := false
	for _, in := range infos {
		if in.Name == spec.Name {
			c.info, found = in, true
		}
	}
	if !found {
		if c.info, err = c.provider.Create(ctx, spec); err != nil {
			return "", err
		}
	}
	c.name = c.info.Name
	c.kubeconfig = c.info.Kubeconfig
	c.rc, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return "", fmt.Errorf("read kubeconfig of twin cluster %q: %w", c.name, err)
	}
	return c.kubeconfig, nil
}

// GetKubeconfig returns the kubeconfig path from Create.
func (c *Cluster) GetKubeconfig() string { return c.kubeconfig }

// GenerateKubeconfig asks the provider for the kubeconfig path again.
func (c *Cluster) GenerateKubeconfig(args ...string) (string, error) {
	if len(args) > 0 {
		return "", fmt.Errorf("kubeconfig of twin cluster %q: %w: no arguments are taken", c.name, cluster.ErrUnsupported)
	}
	return c.provider.Kubeconfig(context.Background(), c.name)
}

// GetKubectlContext is the kubeconfig's context name.
func (c *Cluster) GetKubectlContext() string { return c.info.Context }

// ExportLogs copies the cluster's component logs into dest, if the provider can.
func (c *Cluster) ExportLogs(ctx context.Context, dest string) error {
	le, ok := c.provider.(cluster.LogExporter)
	if !ok {
		return fmt.Errorf("export logs of twin cluster %q: %w by the %s provider", c.name, cluster.ErrUnsupported, c.provider.Name())
	}
	return le.ExportLogs(ctx, c.name, dest)
}

// Destroy deletes the cluster.
func (c *Cluster) Destroy(ctx context.Context) error {
	return c.provider.Delete(ctx, c.name)
}

// WaitForControlPlane waits until every node of the cluster is Ready, seen through klient.
func (c *Cluster) WaitForControlPlane(ctx context.Context, client klient.Client) error {
	d := c.wait
	if d == 0 {
		d = defaultWait
	}
	var nodes corev1.NodeList
	err := wait.For(func(ctx context.Context) (bool, error) {
		if err := client.Resources().List(ctx, &nodes); err != nil {
			return false, nil
		}
		if len(nodes.Items) < len(c.info.Nodes) {
			return false, nil
		}
		for _, n := range nodes.Items {
			if !nodeReady(&n) {
				return false, nil
			}
		}
		return true, nil
	}, wait.WithContext(ctx), wait.WithTimeout(d), wait.WithInterval(250*time.Millisecond))
	if err != nil {
		return fmt.Errorf("twin cluster %q: nodes not Ready within %s: %w", c.name, d, err)
	}
	return nil
}

// KubernetesRestConfig is the admin REST config.
func (c *Cluster) KubernetesRestConfig() *rest.Config { return c.rc }

// StopNode cuts the node off: its kubelet falls silent, as when the VM's host dies. node.Name is the
// Node's name, as ListNode gives it; the provider is asked for the VM of that Node (they differ on kind).
func (c *Cluster) StopNode(ctx context.Context, node *support.Node, _ ...string) error {
	f, err := c.faults()
	if err != nil {
		return err
	}
	return f.CutOff(ctx, c.name, c.info.VMName(node.Name))
}

// StartNode restores a cut-off node; node.Name as for StopNode.
func (c *Cluster) StartNode(ctx context.Context, node *support.Node, _ ...string) error {
	f, err := c.faults()
	if err != nil {
		return err
	}
	return f.Restore(ctx, c.name, c.info.VMName(node.Name))
}

// AddNode is not supported: a twin's nodes are the hardware model's VMs.
func (c *Cluster) AddNode(_ context.Context, node *support.Node, _ ...string) error {
	return fmt.Errorf("add node %q to twin cluster %q: %w: nodes are the hardware model's worker VMs; add the VM to the spec", node.Name, c.name, cluster.ErrUnsupported)
}

// RemoveNode is not supported: a twin's nodes are the hardware model's VMs.
func (c *Cluster) RemoveNode(_ context.Context, node *support.Node, _ ...string) error {
	return fmt.Errorf("remove node %q from twin cluster %q: %w: nodes are the hardware model's worker VMs; use StopNode to fail one", node.Name, c.name, cluster.ErrUnsupported)
}

// ListNode lists the cluster's nodes with their state (Ready, NotReady or Unknown) and InternalIP.
func (c *Cluster) ListNode(ctx context.Context, _ ...string) ([]support.Node, error) {
	if c.rc == nil {
		return nil, fmt.Errorf("list nodes of twin cluster %q: not created yet", c.name)
	}
	r, err := resources.New(c.rc)
	if err != nil {
		return nil, err
	}
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list nodes of twin cluster %q: %w", c.name, err)
	}
	out := make([]support.Node, 0, len(nodes.Items))
	for _, n := range nodes.Items {
		sn := support.Node{Name: n.Name, Role: nodeRole(&n), Cluster: c.name, State: nodeState(&n)}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				sn.IP = net.ParseIP(a.Address)
			}
		}
		out = append(out, sn)
	}
	return out, nil
}

func (c *Cluster) faults() (cluster.NodeFaults, error) {
	f, ok := c.provider.(cluster.NodeFaults)
	if !ok {
		return nil, fmt.Errorf("twin cluster %q: %w: the %s provider cannot fail nodes", c.name, cluster.ErrUnsupported, c.provider.Name())
	}
	return f, nil
}

// nodeRole is "control-plane" for a node kubeadm labelled so (kind's control-plane node; the embedded
// provider's control plane has no Node), else "worker".
func nodeRole(n *corev1.Node) string {
	if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; ok {
		return "control-plane"
	}
	return "worker"
}

func nodeReady(n *corev1.Node) bool { return nodeState(n) == "Ready" }

func nodeState(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			switch c.Status {
			case corev1.ConditionTrue:
				return "Ready"
			case corev1.ConditionFalse:
				return "NotReady"
			}
			return "Unknown"
		}
	}
	return "Unknown"
}
