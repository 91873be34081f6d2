package flux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// NotificationOptions configure StartNotification.
type NotificationOptions struct {
	// Kubeconfig is the path of the cluster's admin kubeconfig. Required. Flux's CRDs (Receiver,
	// Provider, Alert among them) must be installed in the cluster already (internal/fluxcrd), as they are
	// in every twin cluster.
	Kubeconfig string
	// StateDir holds the controller's log (logs/notification-controller.log) and temporary files.
	// Required; created if missing.
	StateDir string
	// Logger receives what StartNotification and Stop do; nil means silent.
	Logger *slog.Logger
	// Cache provides the binary; nil means toolcache.New(). Not built yet, it is built first (minutes,
	// once per machine), before StartTimeout begins.
	Cache *toolcache.Cache
	// StartTimeout bounds the start after the binary is resolved (default DefaultStartTimeout).
	StartTimeout time.Duration
	// Restart is the back-off with which a crashed controller is restarted (procgroup.Supervise; zero:
	// procgroup.KubeletBackoff, as for the other controllers); OnRestart, if set, hears every restart.
	Restart   procgroup.Backoff
	OnRestart func(procgroup.Restart)
	// StopGrace is the time between SIGTERM and SIGKILL on Stop (default DefaultStopGrace).
	StopGrace time.Duration
}

// Notification is Flux's notification-controller running against one cluster: its event endpoint (where
// Flux's controllers, started with --events-addr, and the twin's engine post events) and its webhook
// receiver endpoint (where Gitea's push webhooks reach Receivers), both on 127.0.0.1.
type Notification struct {
	opts     NotificationOptions
	log      *slog.Logger
	proc     *process
	info     Process
	events   string
	receiver string
	stopOnce sync.Once
	stopErr  error
}

// StartNotification runs notification-controller against the cluster until Stop and returns once it
// answers /readyz. Every listener is bound to an operating-system-picked port on 127.0.0.1: its defaults
// (:9090 events, :9292 receivers, :8080 metrics, :9440 health; notification-controller v1.9.3 main.go)
// would listen on every interface. A failed or cancelled start stops it. The error wraps
// ErrInvalidOptions or ErrStart.
func StartNotification(ctx context.Context, opts NotificationOptions) (*Notification, error) {
	if opts.Kubeconfig == "" {
		return nil, fmt.Errorf("%w: Kubeconfig is empty: give the path of the cluster's admin kubeconfig", ErrInvalidOptions)
	}
	if _, err := os.Stat(opts.Kubeconfig); err != nil {
		return nil, fmt.Errorf("%w: Kubeconfig %s: %v", ErrInvalidOptions, opts.Kubeconfig, err)
	}
	if opts.StateDir == "" {
		return nil, fmt.Errorf("%w: StateDir is empty: give a folder for notification-controller's log", ErrInvalidOptions)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	n := &Notification{opts: opts, log: opts.Logger}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	cache := opts.Cache
	if cache == nil {
		var err error
		if cache, err = toolcache.New(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStart, err)
		}
	}
	bin, err := cache.Ensure(ctx, toolcache.NotificationController)
	if err != nil {
		return nil, fmt.Errorf("%w: flux binary %s: %w", ErrStart, toolcache.NotificationController, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := n.start(ctx, bin.Path); err != nil {
		_ = n.Stop()
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("%w: notification-controller against %s: %w", ErrStart, opts.Kubeconfig, err)
	}
	return n, nil
}

func (n *Notification) start(ctx context.Context, bin string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", n.opts.Kubeconfig)
	if err != nil {
		return fmt.Errorf("read kubeconfig %s: %w", n.opts.Kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: RuntimeNamespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", RuntimeNamespace, err)
	}
	logs, tmp := filepath.Join(n.opts.StateDir, "logs"), filepath.Join(n.opts.StateDir, "tmp")
	for _, d := range []string{logs, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("prepare state folder: %w", err)
		}
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	n.events, n.receiver = "http://"+addr(ports[0]), "http://"+addr(ports[1])
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp,
		// No --kubeconfig flag, as for the other controllers (RECIPES.md "Real Flux outside a cluster").
		"KUBECONFIG=" + n.opts.Kubeconfig, "RUNTIME_NAMESPACE=" + RuntimeNamespace,
	}
	// notification-controller v1.9.3's flags (main.go); the receiver flag is spelt receiverAddr upstream.
	args := []string{
		"--events-addr=" + addr(ports[0]),
		"--receiverAddr=" + addr(ports[1]),
		"--metrics-addr=" + addr(ports[2]),
		"--health-addr=" + addr(ports[3]),
		"--watch-all-namespaces=true",
		"--enable-leader-election=false",
	}
	logPath := filepath.Join(logs, "notification-controller.log")
	p, err := startProcess("notification-controller", bin, args, env, n.opts.StateDir, logPath, n.opts.Restart, n.opts.OnRestart)
	if err != nil {
		return err
	}
	n.proc = p
	n.info = Process{Name: "notification-controller", PID: p.pid(), Ports: ports, Log: logPath}
	n.log.Info("flux controller started", "name", n.info.Name, "pid", p.pid(), "log", logPath)
	if err := waitReady(ctx, p, "http://"+addr(ports[3])+"/readyz"); err != nil {
		return err
	}
	n.log.Info("flux controller ready", "name", n.info.Name)
	return nil
}

// EventsURL is the event endpoint, e.g. http://127.0.0.1:41234: Flux's controllers take its host and port
// as --events-addr, and events are POSTed to it as JSON (fluxcd/pkg/apis/event v1beta1.Event).
func (n *Notification) EventsURL() string { return n.events }

// ReceiverURL is the webhook receiver endpoint, e.g. http://127.0.0.1:41235; a Receiver's webhook is this
// followed by its status.webhookPath.
func (n *Notification) ReceiverURL() string { return n.receiver }

// Process describes the running controller (for `hybridtwin status`).
func (n *Notification) Process() Process { return n.info }

// Stop stops the controller (SIGTERM to its process group, SIGKILL after StopGrace) and waits until it has
// ended. Safe to call more than once; it reports a controller that had ended before (it crashed) as an
// error wrapping ErrExited.
func (n *Notification) Stop() error {
	n.stopOnce.Do(func() {
		if n.proc == nil {
			return
		}
		if n.proc.exited() {
			n.stopErr = n.proc.exitError()
			return
		}
		n.proc.stop(n.opts.StopGrace)
		n.log.Info("flux controller stopped", "name", n.info.Name)
	})
	return n.stopErr
}
