package embedded

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/internal/simkubelet"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// readinessPoll is how often a starting cluster's health endpoints are polled. Start-up phases take
// 0.5-3 s (RECIPES.md); 50 ms polling adds at most that much to each.
const readinessPoll = 50 * time.Millisecond

// healthTimeout bounds one health request. A healthy endpoint answers in milliseconds; a request that
// hangs longer is retried at the next poll instead of holding the start.
const healthTimeout = 5 * time.Second

// instance is one running embedded cluster.
type instance struct {
	spec    cluster.Spec
	profile cluster.TimeProfile
	layout  layout
	ports   ports
	// shared is the light tier's shared etcd (nil: the cluster runs its own).
	shared *sharedStore
	creds  *credentials
	log    *slog.Logger
	// extraEnv is added to each component's environment.
	extraEnv map[cluster.Component][]string
	// onRestart hears every restart of a component, named <cluster>/<component>.
	onRestart func(procgroup.Restart)

	procs    []*procgroup.Supervised
	admin    kubernetes.Interface
	kubelets map[string]*simkubelet.Kubelet
	info     cluster.Info

	mu sync.Mutex // guards node fault operations
}

// start brings the cluster up phase by phase. On error the caller stops what was started.
func (c *instance) start(ctx context.Context, bins Binaries) error {
	began := time.Now()
	var phases []cluster.PhaseTime
	phase := func(p cluster.Phase, since time.Time) {
		phases = append(phases, cluster.PhaseTime{Phase: p, Took: time.Since(since)})
		c.log.Debug("cluster phase done", "phase", p, "took", time.Since(since))
	}

	t := time.Now()
	for _, d := range []string{c.layout.Dir, c.layout.etcdData(), c.layout.pki(""), c.layout.logs()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// etcd needs no certificate (it listens on loopback in plain HTTP), so it starts first and comes up
	// while the PKI is made. A light cluster's is the provider's shared one, running already.
	tEtcd := time.Now()
	etcd := c.shared.procOrNil()
	if c.shared == nil {
		var err error
		if etcd, err = c.run(cluster.Etcd, bins.Etcd); err != nil {
			return err
		}
	}
	creds, err := makeCredentials(c.spec, c.layout, c.ports, time.Now())
	if err != nil {
		return fmt.Errorf("phase %s: %w", cluster.PhaseCertificates, err)
	}
	c.creds = creds
	phase(cluster.PhaseCertificates, t)

	health, err := c.healthClient()
	if err != nil {
		return err
	}
	if err := c.waitHealthy(ctx, cluster.PhaseEtcd, []*procgroup.Supervised{etcd}, http.DefaultClient, c.store().URL+"/health", `"health":"true"`); err != nil {
		return err
	}
	phase(cluster.PhaseEtcd, tEtcd)

	t = time.Now()
	if _, err := c.run(cluster.KubeAPIServer, bins.KubeAPIServer); err != nil {
		return err
	}
	if err := c.waitHealthy(ctx, cluster.PhaseAPIServer, c.procs, health, c.creds.server+"/readyz", "ok"); err != nil {
		return err
	}
	phase(cluster.PhaseAPIServer, t)

	// The controller-manager gives up if the API server is not healthy within 10 s of its start
	// (k8s.io/kubernetes v1.33.13 cmd/kube-controller-manager/app/controllermanager.go,
	// WaitForAPIServer(..., 10*time.Second)), so it starts only now. The kubelets start alongside.
	t = time.Now()
	if _, err := c.run(cluster.KubeControllerManager, bins.KubeControllerManager); err != nil {
		return err
	}
	if _, err := c.run(cluster.KubeScheduler, bins.KubeScheduler); err != nil {
		return err
	}
	c.admin, err = kubernetes.NewForConfig(c.creds.restConfig(c.creds.admin, "hybridtwin"))
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	tNodes := time.Now()
	if err := c.startNodes(ctx); err != nil {
		return fmt.Errorf("phase %s: %w", cluster.PhaseNodes, err)
	}
	if err := c.waitHealthy(ctx, cluster.PhaseControllers, c.procs, health, "https://127.0.0.1:"+strconv.Itoa(c.ports.ControllerManager)+"/healthz", "ok"); err != nil {
		return err
	}
	if err := c.waitHealthy(ctx, cluster.PhaseControllers, c.procs, health, "https://127.0.0.1:"+strconv.Itoa(c.ports.Scheduler)+"/healthz", "ok"); err != nil {
		return err
	}
	phase(cluster.PhaseControllers, t)

	if err := c.waitFor(ctx, cluster.PhaseNodes, c.procs, c.nodesReady); err != nil {
		return err
	}
	phase(cluster.PhaseNodes, tNodes)

	c.info = cluster.Info{
		Name:              c.spec.Name,
		Provider:          cluster.ProviderEmbedded,
		KubernetesVersion: toolcache.KubernetesVersion,
		TimeProfile:       c.profile.Name,
		ProfilesVersion:   cluster.ProfilesVersion,
		Kubeconfig:        c.layout.adminKubeconfig(),
		Context:           c.creds.contextName,
		Server:            c.creds.server,
		Capacity:          c.spec.Capacity(),
		Start:             cluster.StartReport{Total: time.Since(began), Phases: phases},
		StateDir:          c.layout.Dir,
	}
	for _, n := range c.spec.Nodes {
		c.info.Nodes = append(c.info.Nodes, n.Name)
	}
	portsOf := map[cluster.Component][]int{
		cluster.Etcd:                  {c.ports.EtcdClient, c.ports.EtcdPeer},
		cluster.KubeAPIServer:         {c.ports.APIServer},
		cluster.KubeControllerManager: {c.ports.ControllerManager},
		cluster.KubeScheduler:         {c.ports.Scheduler},
	}
	if c.shared != nil {
		c.info.Processes = append(c.info.Processes, c.shared.process())
	}
	for _, p := range c.procs {
		comp := cluster.Component(p.Name())
		c.info.Processes = append(c.info.Processes, cluster.Process{Component: comp, PID: p.PID(), Ports: portsOf[comp], Log: p.LogPath()})
	}
	return nil
}

// store is where the cluster's API server keeps its objects.
func (c *instance) store() store {
	if c.shared != nil {
		return store{URL: c.shared.url(), Prefix: cluster.EtcdPrefix(c.spec.Name)}
	}
	return store{URL: url(c.ports.EtcdClient)}
}

// run starts one component.
func (c *instance) run(comp cluster.Component, binary string) (*procgroup.Supervised, error) {
	// Restarted on crash with the kubelet's back-off, as the kubelet of an AKS hybrid control-plane VM
	// restarts these static pods.
	backoff := c.profile.RestartBackoff()
	p, err := procgroup.Supervise(procgroup.Spec{
		Name:    string(comp),
		Path:    binary,
		Args:    componentArgs(comp, c.spec, c.profile, c.layout, c.ports, c.store()),
		Env:     c.env(comp),
		Dir:     c.layout.Dir,
		LogPath: c.layout.log(comp),
	}, backoff, func(r procgroup.Restart) {
		if r.Err != nil {
			c.log.Warn("restart failed", "component", comp, "restarts", r.Restarts, "err", r.Err)
		} else {
			c.log.Info("restarted after a crash", "component", comp, "restarts", r.Restarts, "pid", r.PID, "exited", r.Exited)
		}
		if c.onRestart != nil {
			r.Name = c.spec.Name + "/" + string(comp)
			c.onRestart(r)
		}
	})
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	c.log.Debug("started", "component", comp, "pid", p.PID())
	return p, nil
}

// env is a component's environment: PATH and HOME, then the provider's extra variables.
func (c *instance) env(comp cluster.Component) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	env = append(env, c.extraEnv[comp]...)
	return env
}

// healthClient is an HTTPS client that trusts the cluster CA and presents the admin certificate.
func (c *instance) healthClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.creds.caPEM) {
		return nil, errors.New("cluster CA does not parse")
	}
	cert, err := tls.X509KeyPair(c.creds.admin.CertPEM, c.creds.admin.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("admin key pair: %w", err)
	}
	return &http.Client{
		Timeout:   healthTimeout,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}},
	}, nil
}

// waitHealthy polls a health URL until its body contains want.
func (c *instance) waitHealthy(ctx context.Context, ph cluster.Phase, watch []*procgroup.Supervised, client *http.Client, u, want string) error {
	return c.waitFor(ctx, ph, watch, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, fmt.Errorf("GET %s: %w", u, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			return false, fmt.Errorf("GET %s: %s: %s", u, resp.Status, truncate(string(body), 300))
		}
		return true, nil
	})
}

// waitFor polls check until it succeeds, a watched process ends, or ctx ends. The error names the phase,
// and the process's log tail or check's last error.
func (c *instance) waitFor(ctx context.Context, ph cluster.Phase, watch []*procgroup.Supervised, check func(context.Context) (bool, error)) error {
	tick := time.NewTicker(readinessPoll)
	defer tick.Stop()
	var last error
	for {
		for _, p := range watch {
			if exited, _ := p.Exited(); exited {
				return fmt.Errorf("phase %s: %w", ph, p.ExitError())
			}
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("phase %s: %w (last check: %v)", ph, ctx.Err(), last)
			}
			return fmt.Errorf("phase %s: %w", ph, ctx.Err())
		case <-tick.C:
		}
	}
}

// startNodes registers each worker VM as a Node (as AKS hybrid provisions it, with the admin identity,
// so the twin may set any label) and starts its kubelet, which reports as system:node:<name>.
func (c *instance) startNodes(ctx context.Context) error {
	c.kubelets = map[string]*simkubelet.Kubelet{}
	for _, n := range c.spec.Nodes {
		if err := c.startNode(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// startNode registers one VM-node and starts its kubelet; its credentials must exist.
func (c *instance) startNode(ctx context.Context, n cluster.NodeSpec) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: cluster.NodeLabels(c.spec, n)},
	}
	for _, t := range n.Taints {
		node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	if _, err := c.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("register node %s: %w", n.Name, err)
	}
	client, err := kubernetes.NewForConfig(c.creds.restConfig(c.creds.nodes[n.Name], "hybridtwin-simkubelet/"+n.Name))
	if err != nil {
		return fmt.Errorf("client for node %s: %w", n.Name, err)
	}
	k := simkubelet.New(simkubelet.Config{
		Node:   nodeConfig(n),
		Timing: timing(c.profile),
		Client: client,
		Logger: c.log,
	})
	c.kubelets[n.Name] = k
	return k.Start(context.WithoutCancel(ctx))
}

// nodeReady is true once one node is Ready and has a pod CIDR (the node-ipam controller saw it).
func (c *instance) nodeReady(name string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		n, err := c.admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "" {
				return true, nil
			}
		}
		return false, fmt.Errorf("node %s is not Ready with a pod CIDR yet", name)
	}
}

// nodesReady is true once every VM-node is Ready and the default service account exists (the
// controllers are then serving the cluster: pods can be created).
func (c *instance) nodesReady(ctx context.Context) (bool, error) {
	nodes, err := c.admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "" {
				ready++
			}
		}
	}
	if ready < len(c.spec.Nodes) {
		return false, fmt.Errorf("%d of %d nodes Ready with a pod CIDR", ready, len(c.spec.Nodes))
	}
	if _, err := c.admin.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return false, fmt.Errorf("default service account: %w", err)
	}
	return true, nil
}

// stop stops the kubelets, then the API server, controller-manager and scheduler together, then etcd
// last: an API server whose etcd is gone hangs in its shutdown (it removes its endpoint from the
// kubernetes Service on the way out) until it is killed.
func (c *instance) stop(grace time.Duration) {
	for _, k := range c.kubelets {
		k.Stop()
	}
	var store []*procgroup.Supervised
	var wg sync.WaitGroup
	for _, p := range c.procs {
		if p.Name() == string(cluster.Etcd) {
			store = append(store, p)
			continue
		}
		wg.Add(1)
		go func(p *procgroup.Supervised) {
			defer wg.Done()
			p.Stop(grace)
		}(p)
	}
	wg.Wait()
	for _, p := range store {
		p.Stop(grace)
	}
}

func nodeConfig(n cluster.NodeSpec) simkubelet.NodeConfig {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(n.CPU)*1000, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(n.MemoryMiB<<20, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(n.Pods), resource.DecimalSI),
	}
	allocatable := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(n.CPU)*1000-n.Reserved.CPUMilli, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity((n.MemoryMiB-n.Reserved.MemoryMiB)<<20, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(n.Pods), resource.DecimalSI),
	}
	return simkubelet.NodeConfig{
		Name:           n.Name,
		IP:             n.IP,
		OS:             n.OS,
		KubeletVersion: toolcache.KubernetesVersion,
		Capacity:       capacity,
		Allocatable:    allocatable,
		KubeletPort:    cluster.KubeletPort,
	}
}

func timing(p cluster.TimeProfile) simkubelet.Timing {
	return simkubelet.Timing{
		LeaseDuration:         time.Duration(p.NodeLeaseDurationSeconds) * time.Second,
		RenewInterval:         p.LeaseRenewInterval(),
		StatusUpdateFrequency: p.NodeStatusUpdateFrequency,
		StatusReportFrequency: p.NodeStatusReportFrequency,
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// liveInfo is the cluster's Info with its processes as they are now: a restarted component has a new
// pid and a restart count.
func (c *instance) liveInfo() cluster.Info {
	info := c.info
	info.Processes = make([]cluster.Process, len(c.info.Processes))
	for i, pr := range c.info.Processes {
		if pr.Shared && c.shared != nil {
			pr = c.shared.process()
		}
		for _, sp := range c.procs {
			if sp.Name() == string(pr.Component) {
				pr.PID, pr.Restarts = sp.PID(), sp.Restarts()
			}
		}
		info.Processes[i] = pr
	}
	return info
}
