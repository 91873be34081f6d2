package sealedsecrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// ErrStart is wrapped by every failed Start; ErrInvalidOptions by bad Options; ErrSeal by a failed Seal.
var (
	ErrStart          = errors.New("start the sealed-secrets controller")
	ErrInvalidOptions = errors.New("invalid sealed-secrets options")
	ErrSeal           = errors.New("seal a secret")
)

// Options configure Start.
type Options struct {
	// Kubeconfig is the path of the cluster's admin kubeconfig (its current context is used). Required.
	Kubeconfig string
	// StateDir holds the controller's log (sealed-secrets-controller.log). Required; created if missing.
	StateDir string
	// Logger receives what Start and Stop do; nil means silent.
	Logger *slog.Logger
	// Cache provides the binary and the CRD; nil means toolcache.New(). A tool not built yet is built first
	// (minutes, once per machine), before Profile.ReadyTimeout begins.
	Cache *toolcache.Cache
	// Profile overrides DefaultProfile.
	Profile *Profile
}

// Controller is a running sealed-secrets controller.
type Controller struct {
	prof     Profile
	log      *slog.Logger
	proc     *procgroup.Process
	ports    []int
	stopOnce sync.Once
	stopErr  error
}

// Start installs the SealedSecret CRD into the cluster, creates the controller's namespace, and runs the
// controller against the cluster until Stop, its HTTP server (the certificate, /v1/verify, /v1/rotate)
// and its metrics on 127.0.0.1 only. It returns once /readyz answers 200: the key pair exists (generated
// on the first start into a Secret of Profile.Namespace) and the informers run. A failed Start leaves
// nothing running. The error wraps ErrInvalidOptions or ErrStart.
func Start(ctx context.Context, opts Options) (*Controller, error) {
	if opts.Kubeconfig == "" {
		return nil, fmt.Errorf("%w: Kubeconfig is empty: give the path of the cluster's admin kubeconfig", ErrInvalidOptions)
	}
	if _, err := os.Stat(opts.Kubeconfig); err != nil {
		return nil, fmt.Errorf("%w: Kubeconfig %s: %v", ErrInvalidOptions, opts.Kubeconfig, err)
	}
	if opts.StateDir == "" {
		return nil, fmt.Errorf("%w: StateDir is empty: give a folder for the controller's log", ErrInvalidOptions)
	}
	prof := DefaultProfile()
	if opts.Profile != nil {
		prof = *opts.Profile
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := opts.Cache
	if cache == nil {
		var err error
		if cache, err = toolcache.New(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStart, err)
		}
	}
	bin, err := cache.Ensure(ctx, toolcache.SealedSecretsController)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	crdDir, err := CRDDir(ctx, cache)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	c := &Controller{prof: prof, log: log}
	sctx, cancel := context.WithTimeout(ctx, prof.ReadyTimeout)
	defer cancel()
	if err := c.start(sctx, opts, bin.Path, crdDir); err != nil {
		_ = c.Stop()
		if ctx.Err() == nil && sctx.Err() != nil {
			err = fmt.Errorf("%w (not ready within %s)", err, prof.ReadyTimeout)
		}
		return nil, fmt.Errorf("%w against %s: %w", ErrStart, opts.Kubeconfig, err)
	}
	return c, nil
}

// CRDDir is the folder holding the SealedSecret CRD of the pinned controller's module version (its Helm
// chart's crds folder), copied into the tool cache from the module without building anything (seconds):
// `validate --schema` installs it into its schema server so a SealedSecret is checked against its schema.
// A nil cache means toolcache.New().
func CRDDir(ctx context.Context, cache *toolcache.Cache) (string, error) {
	if cache == nil {
		var err error
		if cache, err = toolcache.New(); err != nil {
			return "", err
		}
	}
	share, err := cache.EnsureAssets(ctx, toolcache.SealedSecretsController)
	if err != nil {
		return "", fmt.Errorf("the SealedSecret CRD of %s: %w", toolcache.SealedSecretsController, err)
	}
	return filepath.Join(share, "helm", "sealed-secrets", "crds"), nil
}

func (c *Controller) start(ctx context.Context, opts Options, bin, crdDir string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return fmt.Errorf("read kubeconfig %s: %w", opts.Kubeconfig, err)
	}
	// fluxcrd applies any CRD folder: server-side apply, then wait until Established.
	if _, err := fluxcrd.Install(ctx, cfg, nil, []string{crdDir}); err != nil {
		return fmt.Errorf("install the SealedSecret CRD: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.prof.Namespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", c.prof.Namespace, err)
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("prepare state folder: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	c.ports = ports
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	// The controller's flags (pkg/controller/main.go and server.go of v0.40.0): its HTTP server and
	// metrics on loopback; every other flag keeps upstream's default (4096-bit keys renewed every 30
	// days, all namespaces).
	args := []string{"--listen-addr=" + addr(ports[0]), "--listen-metrics-addr=" + addr(ports[1])}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		// The build's patch (pins.go) makes the controller read $KUBECONFIG; POD_NAMESPACE is the
		// namespace it keeps its keys in (myNamespace, pkg/controller/main.go).
		"KUBECONFIG=" + opts.Kubeconfig, "POD_NAMESPACE=" + c.prof.Namespace,
	}
	logPath := filepath.Join(opts.StateDir, c.prof.Name+".log")
	p, err := procgroup.Start(procgroup.Spec{Name: c.prof.Name, Path: bin, Args: args, Env: env, Dir: opts.StateDir, LogPath: logPath})
	if err != nil {
		return err
	}
	c.proc = p
	c.log.Info("sealed-secrets controller started", "pid", p.PID(), "log", logPath)
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	c.log.Info("sealed-secrets controller ready", "cert", c.CertURL())
	return nil
}

// waitReady polls /readyz until it answers 200, failing at once if the process ends.
func (c *Controller) waitReady(ctx context.Context) error {
	url := "http://127.0.0.1:" + strconv.Itoa(c.ports[0]) + "/readyz"
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(c.prof.ReadyPoll)
	defer tick.Stop()
	last := "no answer yet"
	for {
		if done, _ := c.proc.Exited(); done {
			return c.proc.ExitError()
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
				c.prof.Name, c.proc.PID(), url, last, ctx.Err(), c.proc.LogPath(), c.proc.LogTail(20))
		case <-c.proc.Done():
		case <-tick.C:
		}
	}
}

// freePorts asks the operating system for n distinct free ports on 127.0.0.1. They are released before
// the controller binds them; if another process takes one in between, the controller exits and Start
// reports it.
func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
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

// PID is the controller's process id (also its process group id).
func (c *Controller) PID() int { return c.proc.PID() }

// Ports are the controller's HTTP server and metrics ports, on 127.0.0.1.
func (c *Controller) Ports() []int { return append([]int(nil), c.ports...) }

// LogPath is the controller's log file.
func (c *Controller) LogPath() string { return c.proc.LogPath() }

// CertURL is where the controller serves its current public certificate (PEM), as kubeseal --fetch-cert
// reads it through the cluster's service proxy.
func (c *Controller) CertURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(c.ports[0]) + "/v1/cert.pem"
}

// Cert fetches the controller's current public certificate (PEM).
func (c *Controller) Cert(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.CertURL(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the sealing certificate from %s: %w", c.CertURL(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the sealing certificate from %s: %s %v: %s", c.CertURL(), resp.Status, err, bytes.TrimSpace(b))
	}
	return b, nil
}

// Stop stops the controller (SIGTERM to its process group, SIGKILL after Profile.StopGrace) and waits
// until it has ended. It is safe to call more than once; the CRD, the key Secret and the unsealed Secrets
// stay in the cluster. It reports a controller that had ended before Stop (it crashed) as an error.
func (c *Controller) Stop() error {
	c.stopOnce.Do(func() {
		if c.proc == nil {
			return
		}
		if done, _ := c.proc.Exited(); done {
			c.stopErr = c.proc.ExitError()
			return
		}
		c.proc.Stop(c.prof.StopGrace)
		c.log.Info("sealed-secrets controller stopped")
	})
	return c.stopErr
}

// Seal seals a Secret manifest (YAML or JSON, with its namespace set) with the controller's certificate
// cert (PEM), as `kubeseal --cert` does, and returns the SealedSecret manifest (YAML). It runs the pinned
// kubeseal (toolcache.Kubeseal) offline: nothing is sent to the cluster. cache nil means toolcache.New().
func Seal(ctx context.Context, cache *toolcache.Cache, cert, secret []byte) ([]byte, error) {
	if cache == nil {
		var err error
		if cache, err = toolcache.New(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSeal, err)
		}
	}
	bin, err := cache.Ensure(ctx, toolcache.Kubeseal)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeal, err)
	}
	dir, err := os.MkdirTemp("", "hybridtwin-kubeseal-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeal, err)
	}
	defer os.RemoveAll(dir)
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeal, err)
	}
	cmd := exec.CommandContext(ctx, bin.Path, "--cert", certFile, "--format", "yaml")
	// kubeseal reads no cluster with --cert; an empty kubeconfig keeps it from the user's own.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "KUBECONFIG=" + filepath.Join(dir, "kubeconfig")}
	cmd.Stdin = bytes.NewReader(secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: kubeseal: %v: %s", ErrSeal, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
