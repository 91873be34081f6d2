package flux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// ErrStart is wrapped by every failed Start; ErrInvalidOptions by bad Options.
var (
	ErrStart          = errors.New("start flux controllers")
	ErrInvalidOptions = errors.New("invalid flux options")
)

// Options configure Start.
type Options struct {
	// Kubeconfig is the path of the cluster's admin kubeconfig (its current context is used). Required.
	Kubeconfig string
	// StateDir holds the controllers' logs (logs/<controller>.log), source-controller's artifact storage
	// and their temporary files. Required; created if missing.
	StateDir string
	// Logger receives what Start and Stop do; nil means silent.
	Logger *slog.Logger
	// Cache provides the binaries and CRDs; nil means toolcache.New(). A tool not built yet is built
	// first (minutes, once per machine), before StartTimeout begins.
	Cache *toolcache.Cache
	// StartTimeout bounds the start after the tools are resolved (default DefaultStartTimeout).
	StartTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL on Stop (default DefaultStopGrace).
	StopGrace time.Duration
	// Concurrency is kustomize-controller's --concurrent (default KustomizeConcurrency).
	Concurrency int
	// WatchLabelSelector is every controller's --watch-label-selector: only Flux objects whose labels
	// match are reconciled (Flux's sharding); empty watches them all.
	WatchLabelSelector string
	// Env is added to every controller's environment: the twin's chart mirror (engine.ChartMirror.Env:
	// HTTPS_PROXY, HTTP_PROXY, NO_PROXY, SSL_CERT_FILE), through which source-controller resolves
	// HelmRepository URLs, or settings such as GOGC. Nil: the controllers get no proxy.
	Env []string
	// RequeueDependency is kustomize-controller's and helm-controller's --requeue-dependency: how long a
	// Kustomization or HelmRelease whose dependency (or source artifact) is not ready waits before it
	// looks again. Zero keeps Flux's default (30 s, both controllers' main.go).
	RequeueDependency time.Duration
	// NoHelmController runs source-controller and kustomize-controller only (bench/fluxcmp compares
	// Kustomizations, and counts every controller's CPU and memory as Flux's).
	NoHelmController bool
	// Restart is the back-off with which a crashed controller is restarted (procgroup.Supervise; zero:
	// procgroup.KubeletBackoff, the kubelet's CrashLoopBackOff a controller's pod gets in flux-system).
	Restart procgroup.Backoff
	// OnRestart, if set, hears every restart of a crashed controller (named after it).
	OnRestart func(procgroup.Restart)
	// EventsURL is every controller's --events-addr: notification-controller's event endpoint
	// (Notification.EventsURL), to which they post their events as Flux's manifests wire them
	// (http://notification-controller.flux-system.svc.cluster.local./). Empty: no events are posted.
	EventsURL string
}

// Process describes one running controller.
type Process struct {
	Name string `json:"name"` // "source-controller", "kustomize-controller" or "helm-controller"
	PID  int    `json:"pid"`  // also its process group id
	// Ports are the TCP ports it listens on, all on 127.0.0.1.
	Ports []int  `json:"ports"`
	Log   string `json:"log"`
	// Restarts is how many times it was restarted after a crash.
	Restarts int `json:"restarts"`
}

// Controllers are Flux's source-controller, kustomize-controller and helm-controller running against one
// cluster.
type Controllers struct {
	opts      Options
	log       *slog.Logger
	procs     []*process
	info      []Process
	stopOnce  sync.Once
	stopErr   error
	storageAt string
}

// Start installs Flux's CRDs into the cluster (server-side apply, field manager hybridtwin; waits until
// they are Established), creates the flux-system namespace, and runs the three controllers against the
// cluster until Stop. It returns once all answer /readyz. A failed or cancelled Start stops whatever it
// started. The error wraps ErrInvalidOptions or ErrStart.
func Start(ctx context.Context, opts Options) (*Controllers, error) {
	if opts.Kubeconfig == "" {
		return nil, fmt.Errorf("%w: Kubeconfig is empty: give the path of the cluster's admin kubeconfig", ErrInvalidOptions)
	}
	if _, err := os.Stat(opts.Kubeconfig); err != nil {
		return nil, fmt.Errorf("%w: Kubeconfig %s: %v", ErrInvalidOptions, opts.Kubeconfig, err)
	}
	if opts.StateDir == "" {
		return nil, fmt.Errorf("%w: StateDir is empty: give a folder for the controllers' logs and storage", ErrInvalidOptions)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = KustomizeConcurrency
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controllers{opts: opts, log: log}

	bins, crdDirs, err := resolveTools(ctx, opts.Cache, !opts.NoHelmController)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.start(ctx, bins, crdDirs); err != nil {
		_ = c.Stop()
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("%w against %s: %w", ErrStart, opts.Kubeconfig, err)
	}
	return c, nil
}

type binaries struct{ source, kustomize, helm string }

// resolveTools ensures the three controllers and their CRDs in the tool cache: the CRDs every twin
// cluster gets (fluxcrd.Dirs) and helm-controller's HelmRelease CRD, from the pinned module it runs.
func resolveTools(ctx context.Context, cache *toolcache.Cache, helm bool) (binaries, []string, error) {
	if cache == nil {
		var err error
		if cache, err = toolcache.New(); err != nil {
			return binaries{}, nil, err
		}
	}
	type toolBin struct {
		tool toolcache.Tool
		bin  *string
	}
	var b binaries
	tools := []toolBin{{toolcache.SourceController, &b.source}, {toolcache.KustomizeController, &b.kustomize}}
	if helm {
		tools = append(tools, toolBin{toolcache.HelmController, &b.helm})
	}
	for _, x := range tools {
		r, err := cache.Ensure(ctx, x.tool)
		if err != nil {
			return binaries{}, nil, fmt.Errorf("flux binary %s: %w", x.tool, err)
		}
		*x.bin = r.Path
	}
	dirs, err := fluxcrd.Dirs(ctx, cache)
	if err != nil {
		return binaries{}, nil, err
	}
	if !helm {
		return b, dirs, nil
	}
	share, err := cache.EnsureAssets(ctx, toolcache.HelmController)
	if err != nil {
		return binaries{}, nil, fmt.Errorf("CRDs of %s: %w", toolcache.HelmController, err)
	}
	if d := filepath.Join(share, "config", "crd", "bases"); !slices.Contains(dirs, d) {
		dirs = append(dirs, d)
	}
	return b, dirs, nil
}

func (c *Controllers) start(ctx context.Context, bins binaries, crdDirs []string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.opts.Kubeconfig)
	if err != nil {
		return fmt.Errorf("read kubeconfig %s: %w", c.opts.Kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds, err := fluxcrd.Read(crdDirs)
	if err != nil {
		return err
	}
	if err := fluxcrd.Apply(ctx, dyn, crds); err != nil {
		return err
	}
	c.log.Info("flux CRDs established", "count", len(crds))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: RuntimeNamespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", RuntimeNamespace, err)
	}

	dirs := map[string]string{}
	for _, d := range []string{"logs", "storage", "tmp"} {
		dirs[d] = filepath.Join(c.opts.StateDir, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			return fmt.Errorf("prepare state folder: %w", err)
		}
	}
	ports, err := freePorts(7)
	if err != nil {
		return err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + dirs["tmp"],
		// No controller has a --kubeconfig flag (RECIPES.md "Real Flux outside a cluster").
		"KUBECONFIG=" + c.opts.Kubeconfig, "RUNTIME_NAMESPACE=" + RuntimeNamespace,
	}
	env = append(env, c.opts.Env...)
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	c.storageAt = "http://" + addr(ports[0])
	// The flags that worked here: RECIPES.md "Real Flux outside a cluster".
	specs := []struct {
		name, bin string
		args      []string
		ports     []int
		health    int
	}{
		{"source-controller", bins.source, []string{
			"--storage-path=" + dirs["storage"],
			"--storage-addr=" + addr(ports[0]),
			"--storage-adv-addr=" + addr(ports[0]),
			"--metrics-addr=" + addr(ports[1]),
			"--health-addr=" + addr(ports[2]),
			"--watch-all-namespaces=true",
			"--enable-leader-election=false",
		}, ports[0:3], ports[2]},
		{"kustomize-controller", bins.kustomize, []string{
			"--metrics-addr=" + addr(ports[3]),
			"--health-addr=" + addr(ports[4]),
			"--watch-all-namespaces=true",
			"--enable-leader-election=false",
			"--concurrent=" + strconv.Itoa(c.opts.Concurrency),
			"--no-remote-bases=true",
		}, ports[3:5], ports[4]},
		// helm-controller v1.6.4's flags (its main.go): the same shape as kustomize-controller's. It
		// fetches chart artifacts from source-controller's advertised storage address on 127.0.0.1.
		{"helm-controller", bins.helm, []string{
			"--metrics-addr=" + addr(ports[5]),
			"--health-addr=" + addr(ports[6]),
			"--watch-all-namespaces=true",
			"--enable-leader-election=false",
			"--concurrent=" + strconv.Itoa(HelmConcurrency),
		}, ports[5:7], ports[6]},
	}
	if bins.helm == "" {
		specs = specs[:2]
	}
	for _, s := range specs {
		if d := c.opts.RequeueDependency; d > 0 && s.name != "source-controller" {
			s.args = append(s.args, "--requeue-dependency="+d.String())
		}
		if u := c.opts.EventsURL; u != "" {
			s.args = append(s.args, "--events-addr="+u)
		}
		if sel := c.opts.WatchLabelSelector; sel != "" {
			s.args = append(s.args, "--watch-label-selector="+sel)
		}
		logPath := filepath.Join(dirs["logs"], s.name+".log")
		p, err := startProcess(s.name, s.bin, s.args, env, c.opts.StateDir, logPath, c.opts.Restart, c.restarted)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
		c.info = append(c.info, Process{Name: s.name, PID: p.pid(), Ports: s.ports, Log: logPath})
		c.log.Info("flux controller started", "name", s.name, "pid", p.pid(), "log", logPath)
	}
	for i, s := range specs {
		if err := waitReady(ctx, c.procs[i], "http://"+addr(s.health)+"/readyz"); err != nil {
			return err
		}
		c.log.Info("flux controller ready", "name", s.name)
	}
	return nil
}

// waitReady polls url until it answers 200, failing at once if the process ends.
func waitReady(ctx context.Context, p *process, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(healthPoll)
	defer tick.Stop()
	last := "no answer yet"
	for {
		if p.exited() {
			return p.exitError()
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s (pid %d) not ready at %s (last: %s): %w; last lines of %s:\n%s",
				p.name, p.pid(), url, last, ctx.Err(), p.logPath, tail(p.logPath, 20))
		case <-p.Done():
		case <-tick.C:
		}
	}
}

// freePorts asks the operating system for n distinct free ports on 127.0.0.1. They are released before
// the controllers bind them; a controller that loses the race exits, and Start reports it.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// restarted logs a controller's restart and passes it on.
func (c *Controllers) restarted(r procgroup.Restart) {
	if r.Err != nil {
		c.log.Warn("flux controller restart failed", "name", r.Name, "restarts", r.Restarts, "err", r.Err)
	} else {
		c.log.Info("flux controller restarted after a crash", "name", r.Name, "restarts", r.Restarts, "pid", r.PID, "exited", r.Exited)
	}
	if c.opts.OnRestart != nil {
		c.opts.OnRestart(r)
	}
}

// Processes are the running controllers, source-controller first, with their current pids (a restart
// changes it) and restart counts.
func (c *Controllers) Processes() []Process {
	out := append([]Process(nil), c.info...)
	for i := range out {
		if i < len(c.procs) {
			out[i].PID, out[i].Restarts = c.procs[i].PID(), c.procs[i].Restarts()
		}
	}
	return out
}

// StorageURL is source-controller's artifact server, e.g. http://127.0.0.1:41234.
func (c *Controllers) StorageURL() string { return c.storageAt }

// Stop stops the controllers (SIGTERM to each process group, SIGKILL after StopGrace) and waits until
// they have ended. It is safe to call more than once; the CRDs and Flux objects stay in the cluster.
// It reports a controller that had ended before Stop (it crashed) as an error wrapping ErrExited.
func (c *Controllers) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		var wg sync.WaitGroup
		for _, p := range c.procs {
			if p.exited() {
				errs = append(errs, p.exitError())
				// It crashed and waits for its restart: end the supervision, so nothing restarts it.
				p.Kill()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.stop(c.opts.StopGrace)
			}()
		}
		wg.Wait()
		c.log.Info("flux controllers stopped", "count", len(c.procs))
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
