package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

// startTimeout bounds each control-plane component's start. envtest's default is 20 s
// (controller-runtime envtest server.go); RECIPES.md measured apiserver /readyz at ~2.5 s after etcd on
// an idle machine, but several builders share the 2 cores, so allow a minute.
const startTimeout = 60 * time.Second

// APIServer starts a kube-apiserver and etcd for this test alone and returns an admin (system:masters)
// client configuration with no client-side rate limit. They are stopped, and their data removed, when
// the test ends. A test that can share the binary's one API server calls SharedAPIServer instead.
func APIServer(t testing.TB) *rest.Config {
	t.Helper()
	s, err := startAPIServer(context.Background())
	if err != nil {
		t.Fatalf("start an API server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop the API server: %v", err)
		}
	})
	return rest.CopyConfig(s.config)
}

// SharedAPIServer is the test binary's one kube-apiserver and etcd, started on first use (so tests that
// need none do not wait for it) and stopped by Run, which the package's TestMain must call. Tests sharing
// it keep apart by namespace. A failed start fails every test that asks, with the same error.
func SharedAPIServer(t testing.TB) *rest.Config {
	t.Helper()
	s := sharedAPI.get(t, "API server", func() (*apiServer, error) { return startAPIServer(context.Background()) })
	return rest.CopyConfig(s.config)
}

// apiServer is a running kube-apiserver and etcd.
type apiServer struct {
	config *rest.Config
	env    *envtest.Environment
	wrap   string
}

// startAPIServer starts etcd and kube-apiserver from the tool cache (building them first if the cache
// is cold, which takes minutes). Stop it with stop; a failed start leaves nothing running.
//
// envtest starts each binary in its own process group; the binaries are launched through
// `setpriv --pdeathsig KILL` so they also die with the test process if it is killed outright.
func startAPIServer(ctx context.Context) (*apiServer, error) {
	c, err := toolcache.New()
	if err != nil {
		return nil, fmt.Errorf("open tool cache: %w", err)
	}
	apiserver, err := c.Ensure(ctx, toolcache.KubeAPIServer)
	if err != nil {
		return nil, fmt.Errorf("ensure kube-apiserver: %w", err)
	}
	etcd, err := c.Ensure(ctx, toolcache.Etcd)
	if err != nil {
		return nil, fmt.Errorf("ensure etcd: %w", err)
	}
	wrap, err := os.MkdirTemp("", "testenv-bin-")
	if err != nil {
		return nil, fmt.Errorf("create wrapper directory: %w", err)
	}
	apiPath, err := pdeathsigWrapper(wrap, "kube-apiserver", apiserver.Path)
	if err != nil {
		os.RemoveAll(wrap)
		return nil, err
	}
	etcdPath, err := pdeathsigWrapper(wrap, "etcd", etcd.Path)
	if err != nil {
		os.RemoveAll(wrap)
		return nil, err
	}
	env := &envtest.Environment{
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  startTimeout,
	}
	env.ControlPlane.GetAPIServer().Path = apiPath
	env.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		os.RemoveAll(wrap)
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	// The reconciler and the benchmarks issue thousands of requests; client-go's default 5 QPS / 10 burst
	// would measure the client's rate limiter, not the server.
	cfg.QPS, cfg.Burst = -1, -1
	return &apiServer{config: cfg, env: env, wrap: wrap}, nil
}

// stop stops the API server and etcd and removes their data.
func (s *apiServer) stop() error {
	err := s.env.Stop()
	os.RemoveAll(s.wrap)
	return err
}

func pdeathsigWrapper(dir, name, target string) (string, error) {
	setpriv := "/usr/bin/setpriv"
	if _, err := os.Stat(setpriv); err != nil {
		// Without setpriv the process group still gets stopped by stop; only a SIGKILLed test leaks.
		return target, nil
	}
	p := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %q \"$@\"\n", setpriv, target)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("write %s wrapper: %w", name, err)
	}
	return p, nil
}

// Kubeconfig is a kubeconfig file for cfg's cluster (client certificate or token), as a hub's Secret
// holds a spoke's for a Kustomization's spec.kubeConfig.
func Kubeconfig(t testing.TB, cfg *rest.Config) []byte {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["spoke"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["spoke"] = &clientcmdapi.Context{Cluster: "spoke", AuthInfo: "admin"}
	kc.CurrentContext = "spoke"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// EnvBucketTests makes RequireBucketServer build versitygw when the tool cache lacks it.
const EnvBucketTests = "HYBRIDTWIN_BUCKET_TESTS"

// RequireBucketServer skips a test that runs the S3 server of Bucket sources (versitygw, an optional tool:
// ~4-9 min cold build) unless the tool cache holds it or EnvBucketTests=1 asks to build it
// (`go tool task test:bucket`; the nightly workflow sets it).
func RequireBucketServer(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvBucketTests) == "1" {
		return
	}
	c, err := toolcache.New()
	if err != nil {
		t.Fatalf("open tool cache: %v", err)
	}
	if !c.Stat(context.Background(), toolcache.Versitygw).Built {
		t.Skipf("needs versitygw (optional tool, not built): set %s=1 or run go tool task test:bucket", EnvBucketTests)
	}
}

// EnvSealedTests set to 1 runs the sealed-secrets tests even when the tool cache lacks the controller and
// kubeseal, building them (`go tool task test:sealed`; the nightly workflow sets it).
const EnvSealedTests = "HYBRIDTWIN_SEALED_TESTS"

// RequireSealedSecrets skips a test that runs the sealed-secrets controller or kubeseal (optional tools,
// minutes of cold build) unless the tool cache holds both or EnvSealedTests=1 asks to build them.
func RequireSealedSecrets(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvSealedTests) == "1" {
		return
	}
	c, err := toolcache.New()
	if err != nil {
		t.Fatalf("open tool cache: %v", err)
	}
	for _, tool := range []toolcache.Tool{toolcache.SealedSecretsController, toolcache.Kubeseal} {
		if !c.Stat(context.Background(), tool).Built {
			t.Skipf("needs %s (optional tool, not built): set %s=1 or run go tool task test:sealed", tool, EnvSealedTests)
		}
	}
}

// EnvNotifyTests makes RequireNotificationController build notification-controller when the tool cache
// lacks it.
const EnvNotifyTests = "HYBRIDTWIN_NOTIFY_TESTS"

// RequireNotificationController skips a test that runs Flux's notification-controller (an optional tool,
// a long cold build) unless the tool cache holds it or EnvNotifyTests=1 asks to build it
// (`go tool task test:notify`; the nightly workflow sets it).
func RequireNotificationController(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvNotifyTests) == "1" {
		return
	}
	c, err := toolcache.New()
	if err != nil {
		t.Fatalf("open tool cache: %v", err)
	}
	if !c.Stat(context.Background(), toolcache.NotificationController).Built {
		t.Skipf("needs notification-controller (optional tool, not built): set %s=1 or run go tool task test:notify", EnvNotifyTests)
	}
}
